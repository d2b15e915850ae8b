//! One client connection of the local proxy: read the request head, then tunnel (`CONNECT`)
//! or forward (absolute form) to the upstream or the target, and copy bytes both ways.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use super::Upstream;

/// Longest request or response head read (request line and headers).
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// How long a client may take to send its request head, and a server to answer one.
const HEAD_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

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

pub(super) async fn serve(mut client: TcpStream, upstream: Option<&Upstream>) -> Result<(), String> {
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
    let Some((authority, path)) = split_absolute(&head.target) else {
        let message = "this is a proxy: send requests in absolute form (GET http://host/path) or CONNECT";
        return reply_error(&mut client, 400, message).await;
    };
    let (mut server, rendered) = match upstream {
        Some(upstream) => match upstream.connect().await {
            Ok(server) => (server, head.render(&head.target, upstream.authorization.as_deref(), None)),
            Err(reason) => {
                let message = format!("upstream proxy {} is unreachable: {reason}", upstream.masked);
                return reply_error(&mut client, 502, &message).await;
            }
        },
        None => {
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

pub(super) async fn connect(address: impl tokio::net::ToSocketAddrs) -> Result<TcpStream, String> {
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
}
