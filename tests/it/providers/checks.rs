//! `GET /fetch_proxy`'s checks through real upstream proxies on loopback (one open, one that
//! requires credentials, ones that refuse connections) against local IP-echo, IPQualityScore
//! and geo-IP stand-ins.

use std::collections::BTreeSet;

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::stand_ins::{self, Hits, Service, TestUpstream, basic, refusing_url};
use super::{detail, proxy, proxy_provider, seed_proxies};
use crate::support::TestApp;

/// Exit IPs of the two working proxies, and what the stand-ins say about them.
const OPEN_IP: &str = "10.0.0.1";
const AUTH_IP: &str = "10.0.0.2";
const CREDENTIALS: (&str, &str) = ("agent", "s3cret-pw");

struct Rig {
    open: TestUpstream,
    auth: TestUpstream,
    ipqs_hits: Hits,
    services: (Service, Service, Service),
}

async fn rig() -> Rig {
    let echo = stand_ins::ip_echo().await;
    // Inverted scores: the open proxy 90, the credentialed one 50.
    let (ipqs, ipqs_hits) = stand_ins::ipqs(&[(OPEN_IP, 10), (AUTH_IP, 50)]).await;
    let geo = stand_ins::geoip(&[(OPEN_IP, "Europe/Paris"), (AUTH_IP, "America/New_York")]).await;
    Rig {
        open: TestUpstream::start(None, OPEN_IP).await,
        auth: TestUpstream::start(Some(CREDENTIALS), AUTH_IP).await,
        ipqs_hits,
        services: (echo, ipqs, geo),
    }
}

impl Rig {
    async fn app(&self, ipqs_key: Option<&str>) -> TestApp {
        let (echo, ipqs, geo) = &self.services;
        let builder = proxy_provider(Some((echo, ipqs, geo)));
        match ipqs_key {
            Some(key) => builder.var("IPQS_KEY", key).spawn().await,
            None => builder.spawn().await,
        }
    }

    fn open_url(&self) -> String {
        self.open.url(None)
    }

    fn auth_url(&self) -> String {
        self.auth.url(Some(CREDENTIALS))
    }
}

async fn fetch(app: &TestApp, query: &str) -> (StatusCode, Value) {
    app.get(&format!("/fetch_proxy?{query}")).await
}

#[tokio::test]
async fn verify_ip_reports_the_exit_ip_seen_through_the_proxy() {
    let rig = rig().await;
    let app = rig.app(None).await;
    seed_proxies(&app, &[proxy(&rig.open_url(), "p", "", "", "")]).await;
    let (status, body) = fetch(&app, "verify_ip=1").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"proxy_url": rig.open_url(), "attempt": 1, "verify_ip": {"ip": OPEN_IP}}));
    let seen = rig.open.seen();
    assert_eq!(seen.len(), 1, "the IP echo was fetched through the proxy: {seen:?}");
    assert!(seen[0].target.ends_with("/ip") && seen[0].target.starts_with("http://127.0.0.1:"), "{seen:?}");
}

#[tokio::test]
async fn credentials_in_the_proxy_url_reach_the_upstream_and_never_an_error() {
    let rig = rig().await;
    let app = rig.app(None).await;
    seed_proxies(&app, &[proxy(&rig.auth_url(), "good-creds", "", "", "")]).await;
    let (status, body) = fetch(&app, "verify_ip=true&proxy_provider_name=good-creds").await;
    assert_eq!((status, body["verify_ip"]["ip"].clone()), (StatusCode::OK, json!(AUTH_IP)), "{body}");
    assert_eq!(body["proxy_url"], rig.auth_url(), "the chosen proxy_url is whole, credentials included");
    let seen = rig.auth.seen();
    assert_eq!(seen[0].proxy_authorization.as_deref(), Some(basic(CREDENTIALS.0, CREDENTIALS.1).as_str()));

    let wrong = rig.auth.url(Some(("agent", "wrong-pw")));
    seed_proxies(&app, &[proxy(&wrong, "bad-creds", "", "", "")]).await;
    let (status, body) = fetch(&app, "verify_ip=1&proxy_provider_name=bad-creds").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let reason = detail(&body);
    let masked = format!("http://agent:***@{}", rig.auth.addr);
    assert!(
        reason
            .starts_with(&format!("no proxy passed the checks in 1 attempt: attempt 1 ({masked}): verify_ip failed: ")),
        "{reason}"
    );
    assert!(reason.ends_with("; no other proxy matches the filters"), "{reason}");
    assert!(!reason.contains("wrong-pw") && !body.to_string().contains("wrong-pw"), "{reason}");
}

#[tokio::test]
async fn a_failing_proxy_is_replaced_and_the_attempt_counted() {
    let rig = rig().await;
    let app = rig.app(None).await;
    let dead = refusing_url("u:dead-pw@");
    seed_proxies(&app, &[proxy(&dead, "mixed", "", "", ""), proxy(&rig.open_url(), "mixed", "", "", "")]).await;
    let mut attempts = BTreeSet::new();
    for _ in 0..30 {
        let (status, body) = fetch(&app, "proxy_provider_name=mixed&verify_ip=1").await;
        assert_eq!(status, StatusCode::OK, "max_queries_number defaults to 2: the good one is always found: {body}");
        assert_eq!(body["proxy_url"], rig.open_url());
        assert_eq!(body["verify_ip"]["ip"], OPEN_IP);
        attempts.insert(body["attempt"].as_u64().expect("attempt"));
    }
    assert_eq!(attempts, BTreeSet::from([1, 2]), "the dead proxy came first in some calls and was replaced");
}

#[tokio::test]
async fn max_queries_number_bounds_the_attempts_and_no_proxy_is_tried_twice() {
    let rig = rig().await;
    let app = rig.app(None).await;
    let dead: Vec<String> = (0..3).map(|i| refusing_url(&format!("u{i}:pw-{i}@"))).collect();
    let rows: Vec<_> = dead.iter().map(|url| proxy(url, "dead", "", "", "")).collect();
    seed_proxies(&app, &rows).await;
    for (query, tries) in [("", 2), ("&max_queries_number=1", 1), ("&max_queries_number=3", 3)] {
        let (status, body) = fetch(&app, &format!("proxy_provider_name=dead&verify_ip=1{query}")).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        let reason = detail(&body);
        let plural = if tries == 1 { "" } else { "s" };
        assert!(reason.starts_with(&format!("no proxy passed the checks in {tries} attempt{plural}: ")), "{reason}");
        let tried: BTreeSet<&str> =
            reason.split("; ").filter_map(|part| part.split(" (").nth(1)?.split(')').next()).collect();
        assert_eq!(tried.len(), tries, "each attempt a different proxy: {reason}");
        assert!(
            reason.contains(&format!("attempt {tries} (")) && !reason.contains(&format!("attempt {} (", tries + 1))
        );
        assert!(reason.contains("verify_ip failed: the IP echo"), "{reason}");
        assert!(!reason.contains("pw-"), "no password in the reason: {reason}");
    }
    let (_, body) = fetch(&app, "proxy_provider_name=dead&verify_ip=1&max_queries_number=5").await;
    assert!(detail(&body).ends_with("; no other proxy matches the filters"), "3 proxies, 5 allowed: {body}");
}

#[tokio::test]
async fn quality_is_scored_on_the_exit_ip_against_the_threshold() {
    let rig = rig().await;
    let app = rig.app(Some("test-key")).await;
    seed_proxies(&app, &[proxy(&rig.open_url(), "open", "", "", ""), proxy(&rig.auth_url(), "auth", "", "", "")]).await;
    let (status, body) = fetch(&app, "proxy_provider_name=open&verify_quality=1").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["verify_quality"],
        json!({"fraud_score_inverted": 90, "quality_threshold": 70, "quality_pass": true})
    );
    assert!(body.get("verify_ip").is_none() && body.get("verify_location").is_none(), "only what was asked: {body}");
    assert_eq!(rig.ipqs_hits.lock().unwrap().as_slice(), [OPEN_IP], "IPQS scored the proxy's exit IP");

    let (status, body) = fetch(&app, "proxy_provider_name=auth&verify_quality=1").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        detail(&body)
            .contains("verify_quality failed: fraud_score_inverted 50 of 10.0.0.2 is not above quality_threshold 70"),
        "{body}"
    );
    let (status, body) = fetch(&app, "proxy_provider_name=auth&verify_quality=1&quality_threshold=40").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["verify_quality"]["quality_pass"], true);
    let (status, body) = fetch(&app, "proxy_provider_name=auth&verify_quality=1&quality_threshold=50").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "the score must exceed the threshold, not equal it: {body}");
}

#[tokio::test]
async fn without_ipqs_key_the_quality_check_is_skipped_and_says_so() {
    let rig = rig().await;
    let app = rig.app(None).await;
    seed_proxies(&app, &[proxy(&rig.auth_url(), "auth", "", "", "")]).await;
    let (status, body) = fetch(&app, "verify_quality=1&verify_ip=1").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["verify_quality"], json!({"skipped": "IPQS_KEY is not set"}));
    assert_eq!(body["verify_ip"], json!({"ip": AUTH_IP}));
    assert!(rig.ipqs_hits.lock().unwrap().is_empty(), "IPQS is not asked without a key");
}

#[tokio::test]
async fn a_wrong_ipqs_key_fails_the_check_with_the_services_reason() {
    let rig = rig().await;
    let app = rig.app(Some("not-the-key")).await;
    seed_proxies(&app, &[proxy(&rig.open_url(), "open", "", "", "")]).await;
    let (status, body) = fetch(&app, "verify_quality=1").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(detail(&body).contains("IPQualityScore refused to score 10.0.0.1: Invalid or unauthorized key."), "{body}");
    assert!(!body.to_string().contains("not-the-key"), "the key never shows: {body}");
}

#[tokio::test]
async fn location_is_checked_against_the_exit_ips_timezone() {
    let rig = rig().await;
    let app = rig.app(None).await;
    // Both stored as European: only the open proxy's exit really is.
    seed_proxies(
        &app,
        &[proxy(&rig.open_url(), "", "", "", "Europe/Paris"), proxy(&rig.auth_url(), "", "", "", "Europe/Madrid")],
    )
    .await;
    let mut attempts = BTreeSet::new();
    for _ in 0..20 {
        let (status, body) = fetch(&app, "proxy_location=europe&verify_location=1").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(
            body["verify_location"],
            json!({"actual_timezone": "Europe/Paris", "expected_location": "europe", "location_match": true})
        );
        assert_eq!(body["proxy_url"], rig.open_url());
        attempts.insert(body["attempt"].as_u64().expect("attempt"));
    }
    assert_eq!(attempts, BTreeSet::from([1, 2]), "the New York exit was replaced when picked first");

    let (status, body) = fetch(&app, "proxy_location=madrid&verify_location=1").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(detail(&body).contains("verify_location failed: 10.0.0.2 is in America/New_York, not in madrid"), "{body}");
    let (status, body) = fetch(&app, "proxy_location=paris&verify_location=1&verify_ip=1").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body.as_object().map(|o| o.len()), Some(4), "proxy_url, attempt, verify_ip, verify_location: {body}");
}

#[tokio::test]
async fn without_a_location_asked_the_stored_one_is_expected() {
    let rig = rig().await;
    let app = rig.app(None).await;
    seed_proxies(&app, &[proxy(&rig.auth_url(), "", "", "", "America")]).await;
    let (status, body) = fetch(&app, "verify_location=1").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["verify_location"]["expected_location"], "America");
}

#[tokio::test]
async fn a_quality_service_that_cannot_be_reached_is_a_503() {
    let rig = rig().await;
    let (echo, _, geo) = &rig.services;
    let app = proxy_provider(None)
        .var("ARMADA_IP_ECHO_URL", echo.url("/ip"))
        .var("ARMADA_GEOIP_URL", geo.url("/geo"))
        .var("ARMADA_IPQS_URL", refusing_url(""))
        .var("IPQS_KEY", "test-key")
        .spawn()
        .await;
    seed_proxies(&app, &[proxy(&rig.open_url(), "", "", "", "")]).await;
    let (status, body) = fetch(&app, "verify_quality=1").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(detail(&body).starts_with("cannot check proxies now: IPQualityScore could not be reached"), "{body}");
    assert!(!body.to_string().contains("test-key"), "{body}");
}
