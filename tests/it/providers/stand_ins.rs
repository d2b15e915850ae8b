//! Local stand-ins for everything a proxy check or a forwarding proxy talks to, all on
//! loopback: real upstream HTTP proxies (open, credentialed, refusing), an IP-echo service, an
//! IPQualityScore service, a geo-IP service, and a target web server.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::get;
use base64::Engine;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// The header the test proxies add so the IP echo can tell them apart (all run on 127.0.0.1).
pub const EXIT_IP_HEADER: &str = "x-test-exit-ip";

/// What an upstream proxy saw of one request.
#[derive(Debug, Clone, PartialEq)]
pub struct Seen {
    pub method: String,
    pub target: String,
    pub proxy_authorization: Option<String>,
}

/// A real HTTP proxy on loopback: absolute-form requests and CONNECT tunnels; optionally
/// requires Basic credentials (407 otherwise). Requests it forwards carry its exit IP header.
pub struct TestUpstream {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    task: JoinHandle<()>,
}

impl Drop for TestUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestUpstream {
    pub async fn start(credentials: Option<(&str, &str)>, exit_ip: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let expected = credentials.map(|(user, password)| basic(user, password));
        let (recorder, exit_ip) = (seen.clone(), exit_ip.to_string());
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (recorder, expected, exit_ip) = (recorder.clone(), expected.clone(), exit_ip.clone());
                tokio::spawn(async move {
                    let _ = proxy_one(client, &recorder, expected.as_deref(), &exit_ip).await;
                });
            }
        });
        Self { addr, seen, task }
    }

    /// `http://[user:password@]127.0.0.1:PORT`
    pub fn url(&self, credentials: Option<(&str, &str)>) -> String {
        match credentials {
            Some((user, password)) => format!("http://{user}:{password}@{}", self.addr),
            None => format!("http://{}", self.addr),
        }
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("lock").clone()
    }
}

/// `Basic base64(user:password)`
pub fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")))
}

/// A loopback URL nothing listens on: a proxy that refuses connections.
pub fn refusing_url(credentials: &str) -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("bind").port();
    format!("http://{credentials}127.0.0.1:{port}")
}

async fn read_head(stream: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = buffer.split_off(end + 4);
            return Some((String::from_utf8_lossy(&buffer[..end]).into_owned(), rest));
        }
        let read = stream.read(&mut chunk).await.ok()?;
        if read == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..read]);
    }
}

async fn proxy_one(
    mut client: TcpStream,
    recorder: &Mutex<Vec<Seen>>,
    expected: Option<&str>,
    exit_ip: &str,
) -> Option<()> {
    let (head, rest) = read_head(&mut client).await?;
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next()?.split(' ');
    let (method, target, version) = (request_line.next()?, request_line.next()?, request_line.next()?);
    let headers: Vec<(String, String)> =
        lines.filter_map(|l| l.split_once(':').map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))).collect();
    let header = |name: &str| headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone());
    let authorization = header("proxy-authorization");
    recorder.lock().ok()?.push(Seen {
        method: method.to_string(),
        target: target.to_string(),
        proxy_authorization: authorization.clone(),
    });
    if expected.is_some() && authorization.as_deref() != expected {
        let answer = "HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"test\"\r\n\
                      Content-Length: 0\r\nConnection: close\r\n\r\n";
        client.write_all(answer.as_bytes()).await.ok()?;
        return Some(());
    }
    if method == "CONNECT" {
        let mut server = TcpStream::connect(target).await.ok()?;
        client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n").await.ok()?;
        server.write_all(&rest).await.ok()?;
        tokio::io::copy_bidirectional(&mut client, &mut server).await.ok()?;
        return Some(());
    }
    let after_scheme = target.strip_prefix("http://")?;
    let (authority, path) = after_scheme.split_at(after_scheme.find('/').unwrap_or(after_scheme.len()));
    let path = if path.is_empty() { "/" } else { path };
    let mut server = TcpStream::connect(authority).await.ok()?;
    let mut forwarded = format!("{method} {path} {version}\r\n");
    for (name, value) in &headers {
        let lower = name.to_ascii_lowercase();
        if !lower.starts_with("proxy-") && lower != "connection" {
            forwarded.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    forwarded.push_str(&format!("{EXIT_IP_HEADER}: {exit_ip}\r\nConnection: close\r\n\r\n"));
    server.write_all(forwarded.as_bytes()).await.ok()?;
    server.write_all(&rest).await.ok()?;
    tokio::io::copy_bidirectional(&mut client, &mut server).await.ok()?;
    Some(())
}

/// A small axum server on loopback, stopped on drop.
pub struct Service {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for Service {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Service {
    pub async fn start(router: Router) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Self { addr, task }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

/// Requests a stand-in received, as `path` or `path + header` strings.
pub type Hits = Arc<Mutex<Vec<String>>>;

/// `GET /ip` → `{"ip": <the exit IP header, or 127.0.0.1 when reached directly>}`.
pub async fn ip_echo() -> Service {
    Service::start(Router::new().route(
        "/ip",
        get(|headers: HeaderMap| async move {
            let ip = headers.get(EXIT_IP_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("127.0.0.1").to_string();
            axum::Json(json!({"ip": ip}))
        }),
    ))
    .await
}

/// IPQualityScore in its URL shape: `GET /ipqs/{key}/{ip}`; key `test-key` only; fraud scores
/// by IP (0 for unknown ones). Records each IP scored.
pub async fn ipqs(scores: &[(&str, i64)]) -> (Service, Hits) {
    let scores: HashMap<String, i64> = scores.iter().map(|(ip, s)| (ip.to_string(), *s)).collect();
    let hits: Hits = Arc::default();
    let router = Router::new()
        .route(
            "/ipqs/{key}/{ip}",
            get(
                |State((scores, hits)): State<(Arc<HashMap<String, i64>>, Hits)>,
                 Path((key, ip)): Path<(String, String)>| async move {
                    hits.lock().expect("lock").push(ip.clone());
                    if key != "test-key" {
                        return axum::Json(json!({"success": false, "message": "Invalid or unauthorized key."}));
                    }
                    axum::Json(
                        json!({"success": true, "fraud_score": scores.get(&ip).copied().unwrap_or(0), "proxy": true}),
                    )
                },
            ),
        )
        .with_state((Arc::new(scores), hits.clone()));
    (Service::start(router).await, hits)
}

/// ip-api.com's shape: `GET /geo/{ip}` → `{"status": "success", "timezone": …}`, or
/// `{"status": "fail", "message": "private range"}` for unknown IPs.
pub async fn geoip(zones: &[(&str, &str)]) -> Service {
    let zones: HashMap<String, String> = zones.iter().map(|(ip, z)| (ip.to_string(), z.to_string())).collect();
    let router = Router::new()
        .route(
            "/geo/{ip}",
            get(|State(zones): State<Arc<HashMap<String, String>>>, Path(ip): Path<String>| async move {
                let answer: Value = match zones.get(&ip) {
                    Some(zone) => json!({"status": "success", "query": ip, "timezone": zone}),
                    None => json!({"status": "fail", "message": "private range", "query": ip}),
                };
                axum::Json(answer)
            }),
        )
        .with_state(Arc::new(zones));
    Service::start(router).await
}

/// A web server the forwarding tests reach: `GET /hello` → `hello from the target`; records
/// each request's path and headers (`path|name: value|…`).
pub async fn target() -> (Service, Hits) {
    let hits: Hits = Arc::default();
    let router = Router::new()
        .route(
            "/hello",
            get(|State(hits): State<Hits>, headers: HeaderMap| async move {
                let mut line = String::from("/hello");
                for (name, value) in &headers {
                    line.push_str(&format!("|{name}: {}", value.to_str().unwrap_or_default()));
                }
                hits.lock().expect("lock").push(line);
                "hello from the target"
            }),
        )
        .with_state(hits.clone());
    (Service::start(router).await, hits)
}
