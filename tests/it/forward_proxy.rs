//! The agent's local forwarding proxy against real upstream proxies and a target server on
//! loopback: plain HTTP and CONNECT through an authenticated upstream, direct without one,
//! the upstream switched at runtime, and upstream failures.

use std::time::Duration;

use armada::agent::forward_proxy::ForwardProxy;
use armada::settings::ForwardProxySettings;
use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::providers::stand_ins::{self, EXIT_IP_HEADER, TestUpstream, basic, refusing_url};

const CREDENTIALS: (&str, &str) = ("agent-7", "p@ss:word");

fn any_port() -> ForwardProxySettings {
    ForwardProxySettings { port: 0, ports_to_try: 1, upstream_check_timeout: Duration::from_secs(5) }
}

/// A client that sends everything to the local proxy, as a browser would.
fn client_through(proxy: &ForwardProxy) -> reqwest::Client {
    reqwest::Client::builder()
        .proxy(reqwest::Proxy::all(proxy.url()).expect("proxy url"))
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client")
}

async fn get_hello(proxy: &ForwardProxy, target: &stand_ins::Service) -> (StatusCode, String) {
    let response = client_through(proxy).get(target.url("/hello")).send().await.expect("request through the proxy");
    (response.status(), response.text().await.expect("body"))
}

/// `CONNECT target` through the proxy by hand, then one HTTP request inside the tunnel.
async fn tunnel_hello(proxy: &ForwardProxy, target: &stand_ins::Service) -> String {
    let mut stream = TcpStream::connect(proxy.addr()).await.expect("connect to the local proxy");
    let authority = target.addr.to_string();
    stream
        .write_all(format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n").as_bytes())
        .await
        .expect("send CONNECT");
    let mut answer = Vec::new();
    let mut byte = [0u8; 1];
    while !answer.ends_with(b"\r\n\r\n") {
        assert_eq!(stream.read(&mut byte).await.expect("read the CONNECT answer"), 1, "closed: {answer:?}");
        answer.push(byte[0]);
    }
    let answer = String::from_utf8_lossy(&answer).into_owned();
    if !answer.starts_with("HTTP/1.1 200") {
        let mut rest = String::new();
        let _ = stream.read_to_string(&mut rest).await;
        return format!("{answer}{rest}");
    }
    stream
        .write_all(format!("GET /hello HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .expect("send the tunnelled request");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("read the tunnelled response");
    response
}

#[tokio::test]
async fn plain_http_goes_through_the_upstream_with_its_credentials() {
    let upstream = TestUpstream::start(Some(CREDENTIALS), "10.0.0.9").await;
    let (target, hits) = stand_ins::target().await;
    let proxy = ForwardProxy::start(&any_port(), Some(&upstream.url(Some(CREDENTIALS)))).await.expect("start");
    assert_eq!(get_hello(&proxy, &target).await, (StatusCode::OK, "hello from the target".into()));
    let seen = upstream.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!((seen[0].method.as_str(), seen[0].target.clone()), ("GET", target.url("/hello")));
    assert_eq!(
        seen[0].proxy_authorization,
        Some(basic(CREDENTIALS.0, CREDENTIALS.1)),
        "the upstream got our credentials"
    );
    let hits = hits.lock().unwrap().clone();
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert!(
        hits[0].contains(&format!("{EXIT_IP_HEADER}: 10.0.0.9")),
        "the target was reached via the upstream: {hits:?}"
    );
    assert!(
        !hits[0].to_ascii_lowercase().contains("proxy-authorization"),
        "credentials stop at the upstream: {hits:?}"
    );
}

#[tokio::test]
async fn connect_tunnels_go_through_the_upstream_with_its_credentials() {
    let upstream = TestUpstream::start(Some(CREDENTIALS), "10.0.0.9").await;
    let (target, hits) = stand_ins::target().await;
    let proxy = ForwardProxy::start(&any_port(), Some(&upstream.url(Some(CREDENTIALS)))).await.expect("start");
    let response = tunnel_hello(&proxy, &target).await;
    assert!(response.starts_with("HTTP/1.1 200") && response.ends_with("hello from the target"), "{response}");
    let seen = upstream.seen();
    assert_eq!((seen[0].method.as_str(), seen[0].target.clone()), ("CONNECT", target.addr.to_string()));
    assert_eq!(seen[0].proxy_authorization, Some(basic(CREDENTIALS.0, CREDENTIALS.1)));
    assert_eq!(hits.lock().unwrap().len(), 1, "the target saw the tunnelled request");
}

#[tokio::test]
async fn without_an_upstream_requests_go_directly() {
    let (target, hits) = stand_ins::target().await;
    let proxy = ForwardProxy::start(&any_port(), None).await.expect("start");
    assert_eq!(proxy.upstream(), None);
    assert!(proxy.url().starts_with("http://127.0.0.1:"), "{}", proxy.url());
    assert_eq!(get_hello(&proxy, &target).await, (StatusCode::OK, "hello from the target".into()));
    let tunnelled = tunnel_hello(&proxy, &target).await;
    assert!(tunnelled.ends_with("hello from the target"), "{tunnelled}");
    let mut stream = TcpStream::connect(proxy.addr()).await.expect("connect");
    stream.write_all(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n").await.expect("send");
    let mut refused = String::new();
    stream.read_to_string(&mut refused).await.expect("read");
    assert!(refused.starts_with("HTTP/1.1 400") && refused.contains("absolute form"), "{refused}");
    let hits = hits.lock().unwrap().clone();
    assert_eq!(hits.len(), 2, "{hits:?}");
    assert!(hits[0].starts_with("/hello|"), "origin-form request reached the target: {hits:?}");
    assert!(hits.iter().all(|h| !h.contains(EXIT_IP_HEADER)), "no upstream on the way: {hits:?}");
}

#[tokio::test]
async fn the_upstream_can_be_switched_at_runtime() {
    let first = TestUpstream::start(None, "10.0.0.1").await;
    let second = TestUpstream::start(Some(CREDENTIALS), "10.0.0.2").await;
    let (target, hits) = stand_ins::target().await;
    let proxy = ForwardProxy::start(&any_port(), Some(&first.url(None))).await.expect("start");
    assert_eq!(get_hello(&proxy, &target).await.0, StatusCode::OK);

    proxy.switch_upstream(Some(&second.url(Some(CREDENTIALS)))).expect("switch");
    assert_eq!(proxy.upstream(), Some(format!("http://agent-7:***@{}", second.addr)), "shown masked");
    assert_eq!(get_hello(&proxy, &target).await.0, StatusCode::OK);
    assert!(tunnel_hello(&proxy, &target).await.ends_with("hello from the target"));
    assert_eq!((first.seen().len(), second.seen().len()), (1, 2), "new connections use the new upstream");
    assert!(second.seen().iter().all(|s| s.proxy_authorization == Some(basic(CREDENTIALS.0, CREDENTIALS.1))));

    proxy.switch_upstream(None).expect("switch to direct");
    assert_eq!(get_hello(&proxy, &target).await.0, StatusCode::OK);
    assert_eq!((first.seen().len(), second.seen().len()), (1, 2), "direct again");
    let hits = hits.lock().unwrap().clone();
    let exits: Vec<Option<&str>> =
        hits.iter().map(|h| h.split('|').find_map(|part| part.strip_prefix(&format!("{EXIT_IP_HEADER}: ")))).collect();
    // The test upstreams mark the plain requests they forward; tunnels and direct requests are unmarked.
    assert_eq!(exits, vec![Some("10.0.0.1"), Some("10.0.0.2"), None, None], "{hits:?}");

    let refused = proxy.switch_upstream(Some("socks5://u:secret@127.0.0.1:1080")).unwrap_err().to_string();
    assert!(refused.contains("not supported") && !refused.contains("secret"), "{refused}");
    assert_eq!(proxy.upstream(), None, "a refused switch changes nothing");
}

#[tokio::test]
async fn upstream_failures_are_502s_and_a_dead_upstream_is_detected() {
    let (target, _) = stand_ins::target().await;
    let dead = refusing_url("u:dead-secret@");
    let proxy = ForwardProxy::start(&any_port(), Some(&dead)).await.expect("starts: the check is separate");
    let error = proxy.check_upstream(Duration::from_secs(5)).await.unwrap_err().to_string();
    assert!(error.starts_with("upstream proxy http://u:***@127.0.0.1:") && error.contains("unreachable"), "{error}");
    assert!(!error.contains("dead-secret"), "{error}");
    let (status, body) = get_hello(&proxy, &target).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert!(body.contains("is unreachable") && !body.contains("dead-secret"), "{body}");

    let strict = TestUpstream::start(Some(CREDENTIALS), "10.0.0.3").await;
    proxy.switch_upstream(Some(&strict.url(Some(("agent-7", "wrong-secret"))))).expect("switch");
    proxy.check_upstream(Duration::from_secs(5)).await.expect("it accepts connections");
    let tunnelled = tunnel_hello(&proxy, &target).await;
    assert!(tunnelled.starts_with("HTTP/1.1 502"), "{tunnelled}");
    assert!(tunnelled.contains("refused the tunnel") && tunnelled.contains("407"), "{tunnelled}");
    assert!(!tunnelled.contains("wrong-secret"), "{tunnelled}");
}
