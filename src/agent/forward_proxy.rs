//! The agent's local forwarding proxy: an HTTP proxy on 127.0.0.1 that the worker's browser
//! uses, forwarding to the agent's upstream proxy **with its credentials** (browsers cannot
//! take proxy credentials on the command line), or straight to the target when there is none.
//!
//! It speaks HTTP/1.1 proxy requests in absolute form (`GET http://host/path`) and `CONNECT`
//! tunnels (HTTPS). Toward an upstream it adds `Proxy-Authorization: Basic …` from the
//! upstream URL's userinfo and strips whatever the client sent; directly it rewrites the request
//! to origin form. Each client connection carries one request (`Connection: close` is sent on),
//! which keeps the forwarding a plain byte copy. The upstream can be switched at runtime; the
//! switch applies to new connections, open tunnels keep theirs.
//!
//! Never logged: the upstream's password (logs show `http://user:***@host:port`).

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use base64::Engine;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::inventory::mask_proxy_url;
use crate::settings::ForwardProxySettings;

/// Longest request or response head read (request line and headers).
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// How long a client may take to send its request head, and a server to be reached.
const HEAD_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ForwardProxyError {
    /// The upstream URL cannot be used (the message shows it masked).
    #[error("upstream proxy {0}")]
    BadUpstream(String),
    /// No port to listen on.
    #[error("{0}")]
    Bind(String),
    /// The upstream proxy does not accept connections.
    #[error("upstream proxy {url} is unreachable: {reason}")]
    UpstreamUnreachable { url: String, reason: String },
}

/// An upstream HTTP proxy, parsed once: where to connect and what to authenticate with.
#[derive(Clone)]
pub struct Upstream {
    host: String,
    port: u16,
    /// `Basic …`, from the URL's userinfo.
    authorization: Option<String>,
    /// The URL with its password masked, for logs and errors.
    masked: String,
    /// The URL as given, to recognise it again; never shown.
    raw: String,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Upstream({})", self.masked)
    }
}

impl Upstream {
    /// `http://[user:password@]host[:port]`; other schemes are refused (the forwarding speaks
    /// plain HTTP to its upstream).
    pub fn parse(url: &str) -> Result<Self, ForwardProxyError> {
        let masked = mask_proxy_url(url);
        let bad = |why: &str| ForwardProxyError::BadUpstream(format!("{masked}: {why}"));
        let parsed = reqwest::Url::parse(url).map_err(|e| bad(&format!("not a URL ({e})")))?;
        if parsed.scheme() != "http" {
            return Err(bad(&format!(
                "the {} scheme is not supported; the local proxy forwards to http:// proxies",
                parsed.scheme()
            )));
        }
        let host = parsed.host_str().filter(|h| !h.is_empty()).ok_or_else(|| bad("no host"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']').to_string();
        let port = parsed.port_or_known_default().unwrap_or(80);
        let decode = |raw: &str| percent_encoding::percent_decode_str(raw).decode_utf8_lossy().into_owned();
        let authorization = (!parsed.username().is_empty() || parsed.password().is_some()).then(|| {
            let pair = format!("{}:{}", decode(parsed.username()), decode(parsed.password().unwrap_or_default()));
            format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(pair))
        });
        Ok(Self { host, port, authorization, masked, raw: url.to_string() })
    }

    /// The URL with its password masked.
    pub fn masked(&self) -> &str {
        &self.masked
    }

    async fn connect(&self) -> Result<TcpStream, String> {
        connect((self.host.as_str(), self.port)).await
    }
}

/// A running local proxy. Dropping it (or [`ForwardProxy::stop`]) stops accepting; open
/// connections finish on their own.
pub struct ForwardProxy {
    addr: SocketAddr,
    upstream: Arc<RwLock<Option<Upstream>>>,
    accept: JoinHandle<()>,
}

impl std::fmt::Debug for ForwardProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ForwardProxy").field("addr", &self.addr).field("upstream", &self.upstream()).finish()
    }
}

impl ForwardProxy {
    /// Listens on 127.0.0.1 at `settings.port`, or the next free port after it (several
    /// agents may share a host), and forwards to `upstream` (`None` = directly).
    pub async fn start(settings: &ForwardProxySettings, upstream: Option<&str>) -> Result<Self, ForwardProxyError> {
        let upstream = upstream.map(Upstream::parse).transpose()?;
        let listener = bind(settings.port, settings.ports_to_try).await?;
        let addr = listener.local_addr().map_err(|e| ForwardProxyError::Bind(format!("no local address: {e}")))?;
        let upstream = Arc::new(RwLock::new(upstream));
        let accept = tokio::spawn(accept_loop(listener, upstream.clone()));
        tracing::info!(address = %addr, upstream = ?current(&upstream).map(|u| u.masked), "local proxy listening");
        Ok(Self { addr, upstream, accept })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`: what the browser is given.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The upstream new connections go to, masked; `None` = direct.
    pub fn upstream(&self) -> Option<String> {
        current(&self.upstream).map(|u| u.masked)
    }

    /// Whether new connections go to the upstream at `url` (as given to `start` or `switch_upstream`).
    pub fn uses_upstream(&self, url: &str) -> bool {
        current(&self.upstream).is_some_and(|u| u.raw == url)
    }

    /// Sends new connections to another upstream (`None` = directly). A bad URL changes nothing.
    pub fn switch_upstream(&self, upstream: Option<&str>) -> Result<(), ForwardProxyError> {
        let next = upstream.map(Upstream::parse).transpose()?;
        tracing::info!(upstream = ?next.as_ref().map(Upstream::masked), "local proxy upstream switched");
        match self.upstream.write() {
            Ok(mut guard) => *guard = next,
            Err(poisoned) => *poisoned.into_inner() = next,
        }
        Ok(())
    }

    /// Whether the current upstream accepts connections (within `timeout`); direct is always fine.
    pub async fn check_upstream(&self, timeout: Duration) -> Result<(), ForwardProxyError> {
        let Some(upstream) = current(&self.upstream) else { return Ok(()) };
        let unreachable =
            |reason: String| ForwardProxyError::UpstreamUnreachable { url: upstream.masked.clone(), reason };
        match tokio::time::timeout(timeout, upstream.connect()).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(reason)) => Err(unreachable(reason)),
            Err(_) => Err(unreachable(format!("no answer within {timeout:?}"))),
        }
    }

    /// Stops accepting connections.
    pub fn stop(self) {}
}

impl Drop for ForwardProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

fn current(upstream: &RwLock<Option<Upstream>>) -> Option<Upstream> {
    match upstream.read() {
        Ok(guard) => guard.clone(),
        Err(poisoned) => poisoned.into_inner().clone(),
    }
}

/// The first free port of `port..port + tries` on loopback (`0` = any free port).
async fn bind(port: u16, tries: u16) -> Result<TcpListener, ForwardProxyError> {
    if port == 0 {
        return TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .map_err(|e| ForwardProxyError::Bind(format!("cannot listen on 127.0.0.1: {e}")));
    }
    let last = port.saturating_add(tries.saturating_sub(1));
    for candidate in port..=last {
        match TcpListener::bind((Ipv4Addr::LOCALHOST, candidate)).await {
            Ok(listener) => return Ok(listener),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => continue,
            Err(e) => return Err(ForwardProxyError::Bind(format!("cannot listen on 127.0.0.1:{candidate}: {e}"))),
        }
    }
    Err(ForwardProxyError::Bind(format!(
        "no free port for the local proxy in 127.0.0.1:{port}..={last}; \
         set ARMADA_FORWARD_PROXY_PORT (0 = any) or ARMADA_FORWARD_PROXY_PORTS"
    )))
}

async fn accept_loop(listener: TcpListener, upstream: Arc<RwLock<Option<Upstream>>>) {
    loop {
        let client = match listener.accept().await {
            Ok((client, _)) => client,
            Err(e) => {
                // Out of file descriptors and the like: wait rather than spin.
                tracing::warn!(error = %e, "local proxy cannot accept a connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let upstream = current(&upstream);
        tokio::spawn(async move {
            if let Err(reason) = serve(client, upstream.as_ref()).await {
                tracing::debug!(%reason, "local proxy connection ended");
            }
        });
    }
}

/// A request head: the request line's parts and the headers, in order.
struct Head {
    method: String,
    target: String,
    version: String,
    headers: Vec<(String, String)>,
}

impl Head {
    fn parse(raw: &[u8]) -> Result<Self, String> {
        let text = std::str::from_utf8(raw).map_err(|_| "the request head is not UTF-8".to_string())?;
        let mut lines = text.split("\r\n");
        let mut parts = lines.next().unwrap_or_default().split(' ').filter(|p| !p.is_empty());
        let (Some(method), Some(target), Some(version), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err("malformed request line".into());
        };
        let headers = lines
            .filter(|line| !line.is_empty())
            .map(|line| {
                line.split_once(':')
                    .map(|(name, value)| (name.trim().to_string(), value.trim().to_string()))
                    .ok_or_else(|| format!("malformed header line {line:?}"))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { method: method.to_string(), target: target.to_string(), version: version.to_string(), headers })
    }

    /// The head with the hop-by-hop and proxy headers replaced: `Connection: close`, and our
    /// own `Proxy-Authorization` when given.
    fn render(&self, request_target: &str, authorization: Option<&str>, host: Option<&str>) -> Vec<u8> {
        const DROPPED: [&str; 4] = ["proxy-authorization", "proxy-connection", "connection", "keep-alive"];
        let mut out = format!("{} {request_target} {}\r\n", self.method, self.version);
        let has_host = self.headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host"));
        if let (false, Some(host)) = (has_host, host) {
            out.push_str(&format!("Host: {host}\r\n"));
        }
        for (name, value) in &self.headers {
            if !DROPPED.iter().any(|d| name.eq_ignore_ascii_case(d)) {
                out.push_str(&format!("{name}: {value}\r\n"));
            }
        }
        if let Some(authorization) = authorization {
            out.push_str(&format!("Proxy-Authorization: {authorization}\r\n"));
        }
        out.push_str("Connection: close\r\n\r\n");
        out.into_bytes()
    }
}

async fn serve(mut client: TcpStream, upstream: Option<&Upstream>) -> Result<(), String> {
    let (raw, early) = match tokio::time::timeout(HEAD_TIMEOUT, read_head(&mut client)).await {
        Ok(Ok(read)) => read,
        Ok(Err(reason)) => return reply_error(&mut client, 400, &reason).await,
        Err(_) => return Err("the client sent no request head in time".into()),
    };
    let head = match Head::parse(&raw) {
        Ok(head) => head,
        Err(reason) => return reply_error(&mut client, 400, &reason).await,
    };
    if head.method.eq_ignore_ascii_case("CONNECT") {
        tunnel(client, &head, early, upstream).await
    } else {
        forward(client, &head, early, upstream).await
    }
}

/// `CONNECT host:port`: a byte tunnel, through the upstream's own CONNECT when there is one.
async fn tunnel(mut client: TcpStream, head: &Head, early: Vec<u8>, upstream: Option<&Upstream>) -> Result<(), String> {
    let target = head.target.as_str();
    let mut server = match upstream {
        None => match connect(target).await {
            Ok(server) => server,
            Err(reason) => return reply_error(&mut client, 502, &format!("cannot reach {target}: {reason}")).await,
        },
        Some(upstream) => match open_upstream_tunnel(upstream, target).await {
            Ok((server, leftover)) => {
                if !leftover.is_empty() {
                    client.write_all(&leftover).await.map_err(|e| e.to_string())?;
                }
                server
            }
            Err(reason) => return reply_error(&mut client, 502, &reason).await,
        },
    };
    client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n").await.map_err(|e| e.to_string())?;
    server.write_all(&early).await.map_err(|e| e.to_string())?;
    pipe(client, server).await
}

/// Asks the upstream to open a tunnel to `target`; returns the connection and any bytes the
/// upstream sent after its answer.
async fn open_upstream_tunnel(upstream: &Upstream, target: &str) -> Result<(TcpStream, Vec<u8>), String> {
    let mut server = upstream
        .connect()
        .await
        .map_err(|reason| format!("upstream proxy {} is unreachable: {reason}", upstream.masked))?;
    let mut request = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n");
    if let Some(authorization) = &upstream.authorization {
        request.push_str(&format!("Proxy-Authorization: {authorization}\r\n"));
    }
    request.push_str("\r\n");
    server.write_all(request.as_bytes()).await.map_err(|e| e.to_string())?;
    let (answer, leftover) = tokio::time::timeout(HEAD_TIMEOUT, read_head(&mut server))
        .await
        .map_err(|_| format!("upstream proxy {} did not answer CONNECT in time", upstream.masked))??;
    let status_line = String::from_utf8_lossy(&answer).lines().next().unwrap_or_default().to_string();
    let status: u16 = status_line.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    if !(200..300).contains(&status) {
        return Err(format!("upstream proxy {} refused the tunnel to {target}: {status_line}", upstream.masked));
    }
    Ok((server, leftover))
}

/// An absolute-form request (`GET http://host/path`): to the upstream as is (with our
/// credentials), or to the target in origin form.
async fn forward(
    mut client: TcpStream,
    head: &Head,
    early: Vec<u8>,
    upstream: Option<&Upstream>,
) -> Result<(), String> {
    let (mut server, rendered) = match upstream {
        Some(upstream) => match upstream.connect().await {
            Ok(server) => (server, head.render(&head.target, upstream.authorization.as_deref(), None)),
            Err(reason) => {
                let message = format!("upstream proxy {} is unreachable: {reason}", upstream.masked);
                return reply_error(&mut client, 502, &message).await;
            }
        },
        None => {
            let Some((authority, path)) = split_absolute(&head.target) else {
                let message = "this is a proxy: send requests in absolute form (GET http://host/path) or CONNECT";
                return reply_error(&mut client, 400, message).await;
            };
            let address = if authority.contains(':') && !authority.ends_with(']') {
                authority.to_string()
            } else {
                format!("{authority}:80")
            };
            match connect(address.as_str()).await {
                Ok(server) => (server, head.render(path, None, Some(authority))),
                Err(reason) => {
                    return reply_error(&mut client, 502, &format!("cannot reach {authority}: {reason}")).await;
                }
            }
        }
    };
    server.write_all(&rendered).await.map_err(|e| e.to_string())?;
    server.write_all(&early).await.map_err(|e| e.to_string())?;
    pipe(client, server).await
}

/// `http://host:port/path?q` → (`host:port`, `/path?q`).
fn split_absolute(target: &str) -> Option<(&str, &str)> {
    let rest = target.strip_prefix("http://").or_else(|| target.strip_prefix("HTTP://"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, "/"),
    };
    (!authority.is_empty() && !authority.contains('@')).then_some((authority, path))
}

async fn connect(address: impl tokio::net::ToSocketAddrs) -> Result<TcpStream, String> {
    match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(address)).await {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {CONNECT_TIMEOUT:?}")),
    }
}

/// Copies both ways until both sides are done.
async fn pipe(mut client: TcpStream, mut server: TcpStream) -> Result<(), String> {
    tokio::io::copy_bidirectional(&mut client, &mut server).await.map(drop).map_err(|e| e.to_string())
}

/// Reads up to the blank line ending a head; returns the head (without it) and what followed.
async fn read_head<S: AsyncRead + Unpin>(stream: &mut S) -> Result<(Vec<u8>, Vec<u8>), String> {
    let mut buffer = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = buffer.split_off(end + 4);
            buffer.truncate(end);
            return Ok((buffer, rest));
        }
        if buffer.len() > MAX_HEAD_BYTES {
            return Err(format!("head larger than {MAX_HEAD_BYTES} bytes"));
        }
        let read = stream.read(&mut chunk).await.map_err(|e| e.to_string())?;
        if read == 0 {
            return Err("the connection closed before the head ended".into());
        }
        buffer.extend_from_slice(&chunk[..read]);
    }
}

/// Answers the client with a short plain-text error and ends the connection; `Err(reason)`
/// so the caller's log says why.
async fn reply_error<S: AsyncWrite + Unpin>(client: &mut S, status: u16, reason: &str) -> Result<(), String> {
    let phrase = match status {
        400 => "Bad Request",
        _ => "Bad Gateway",
    };
    let body = format!("armada local proxy: {reason}\n");
    let response = format!(
        "HTTP/1.1 {status} {phrase}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = client.write_all(response.as_bytes()).await;
    let _ = client.shutdown().await;
    Err(reason.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstreams_carry_basic_credentials_and_never_show_the_password() {
        let upstream = Upstream::parse("http://us%40er:p%3Ass@127.0.0.1:3128").expect("valid");
        assert_eq!((upstream.host.as_str(), upstream.port), ("127.0.0.1", 3128));
        let expected = base64::engine::general_purpose::STANDARD.encode("us@er:p:ss");
        assert_eq!(upstream.authorization, Some(format!("Basic {expected}")));
        assert_eq!(format!("{upstream:?}"), "Upstream(http://us%40er:***@127.0.0.1:3128)");
        let plain = Upstream::parse("http://proxy.example").expect("valid");
        assert_eq!((plain.port, plain.authorization), (80, None));
        let error = Upstream::parse("socks5://u:secret@h:1080").unwrap_err().to_string();
        assert!(error.contains("socks5 scheme is not supported") && !error.contains("secret"), "{error}");
        assert!(Upstream::parse("http://u:secret@h:port").unwrap_err().to_string().contains("u:***@h:port"));
    }

    #[test]
    fn heads_are_rewritten_without_client_proxy_headers() {
        let head = Head::parse(
            b"GET http://target.test/a?b=1 HTTP/1.1\r\nHost: target.test\r\nProxy-Authorization: Basic Y2xpZW50\r\n\
              Proxy-Connection: keep-alive\r\nAccept: */*",
        )
        .expect("valid");
        let forwarded = String::from_utf8(head.render(&head.target, Some("Basic b3Vycw=="), None)).expect("utf8");
        assert_eq!(
            forwarded,
            "GET http://target.test/a?b=1 HTTP/1.1\r\nHost: target.test\r\nAccept: */*\r\n\
             Proxy-Authorization: Basic b3Vycw==\r\nConnection: close\r\n\r\n"
        );
        let bare = Head::parse(b"GET http://t.test:81/ HTTP/1.1").expect("valid");
        let direct = String::from_utf8(bare.render("/", None, Some("t.test:81"))).expect("utf8");
        assert_eq!(direct, "GET / HTTP/1.1\r\nHost: t.test:81\r\nConnection: close\r\n\r\n");
        assert!(Head::parse(b"GARBAGE").is_err());
    }

    #[test]
    fn absolute_targets_split_into_authority_and_path() {
        assert_eq!(split_absolute("http://h:8080/p?q=1"), Some(("h:8080", "/p?q=1")));
        assert_eq!(split_absolute("http://h"), Some(("h", "/")));
        assert_eq!(split_absolute("/relative"), None);
        assert_eq!(split_absolute("https://h/"), None);
    }

    #[tokio::test]
    async fn the_next_free_port_is_taken_when_the_first_is_busy() {
        let busy = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = busy.local_addr().expect("addr").port();
        let settings = ForwardProxySettings { port, ports_to_try: 50, upstream_check_timeout: Duration::from_secs(1) };
        let proxy = ForwardProxy::start(&settings, None).await.expect("start");
        assert!(proxy.addr().port() > port && proxy.addr().port() < port + 50, "{:?}", proxy.addr());
        let settings = ForwardProxySettings { ports_to_try: 1, ..settings };
        let error = ForwardProxy::start(&settings, None).await.unwrap_err();
        assert!(error.to_string().contains("no free port"), "{error}");
    }
}
