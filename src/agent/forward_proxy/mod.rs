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
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use self::connection::{connect, serve};

use crate::inventory::mask_proxy_url;
use crate::settings::ForwardProxySettings;

mod connection;

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

    /// Stops accepting connections (open ones finish on their own). Dropping it does too.
    pub fn stop(&self) {
        self.accept.abort();
    }
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
