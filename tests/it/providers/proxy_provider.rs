//! `GET /fetch_proxy` without checks: filters, containment, booleans, defaults, 404s, 400s,
//! randomness, the token.

use std::collections::BTreeSet;

use reqwest::StatusCode;
use serde_json::json;

use super::{detail, proxy, proxy_provider, seed_proxies};
use crate::support::TestApp;

const A: &str = "http://alice:pw-a@a.example:8000";
const B: &str = "http://bob:pw-b@b.example:8000";
const C: &str = "http://carol:pw-c@c.example:8000";
const D: &str = "http://d.example:3128";

async fn seeded() -> TestApp {
    let app = proxy_provider(None).spawn().await;
    seed_proxies(
        &app,
        &[
            proxy(A, "iproyal", "residential", "sticky", "Europe/Paris"),
            proxy(B, "iproyal", "datacenter", "rotating", "Europe/Berlin"),
            proxy(C, "BrightData", "Residential", "rotating", "America/New_York"),
            proxy(D, "", "", "", ""),
        ],
    )
    .await;
    app
}

/// Every proxy_url `query` returns over enough calls to see each match (40 calls).
async fn urls(app: &TestApp, query: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    for _ in 0..40 {
        let (status, body) = app.get(&format!("/fetch_proxy?{query}")).await;
        assert_eq!(status, StatusCode::OK, "{query}: {body}");
        seen.insert(body["proxy_url"].as_str().expect("proxy_url").to_string());
    }
    seen
}

fn set(urls: &[&str]) -> BTreeSet<String> {
    urls.iter().map(|u| u.to_string()).collect()
}

#[tokio::test]
async fn each_filter_narrows_the_pick_ignoring_case() {
    let app = seeded().await;
    assert_eq!(urls(&app, "proxy_provider_name=IPROYAL").await, set(&[A, B]));
    assert_eq!(urls(&app, "proxy_type=residential").await, set(&[A, C]));
    assert_eq!(urls(&app, "proxy_rotation_strategy=Rotating").await, set(&[B, C]));
    assert_eq!(urls(&app, "proxy_provider_name=iproyal&proxy_type=datacenter").await, set(&[B]));
    assert_eq!(
        urls(&app, "proxy_type=residential&proxy_rotation_strategy=sticky&proxy_location=paris").await,
        set(&[A])
    );
}

#[tokio::test]
async fn location_matches_when_the_stored_location_contains_it() {
    let app = seeded().await;
    assert_eq!(urls(&app, "proxy_location=Europe").await, set(&[A, B]));
    assert_eq!(urls(&app, "proxy_location=europe%2Fparis").await, set(&[A]));
    assert_eq!(urls(&app, "proxy_location=York").await, set(&[C]));
    let (status, _) = app.get("/fetch_proxy?proxy_location=Asia").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn repeated_calls_spread_over_every_match() {
    let app = seeded().await;
    assert_eq!(urls(&app, "").await, set(&[A, B, C, D]), "40 calls reach all 4 proxies");
    assert_eq!(urls(&app, "proxy_location=&proxy_type=").await.len(), 4, "empty filters are no filter");
}

#[tokio::test]
async fn without_checks_the_answer_is_the_proxy_and_attempt_one() {
    let app = seeded().await;
    let (status, body) = app.get("/fetch_proxy?proxy_type=datacenter&verify_ip=0&verify_quality=false").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"proxy_url": B, "attempt": 1}), "only the checks asked are in the answer");
}

#[tokio::test]
async fn nothing_matching_is_a_404_naming_the_filters() {
    let app = seeded().await;
    let (status, body) = app.get("/fetch_proxy?proxy_type=mobile&proxy_location=Europe").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(detail(&body), "no proxy matches proxy_type=mobile, proxy_location=Europe");
    let empty = proxy_provider(None).spawn().await;
    let (status, body) = empty.get("/fetch_proxy").await;
    assert_eq!((status, detail(&body)), (StatusCode::NOT_FOUND, "no proxy matches no filter"));
}

#[tokio::test]
async fn bad_parameters_are_400s_naming_them() {
    let app = seeded().await;
    for (query, expected) in [
        ("verify_ip=yes", "verify_ip=\"yes\" is not a boolean; use 1, 0, true or false"),
        ("verify_location=2", "verify_location=\"2\" is not a boolean; use 1, 0, true or false"),
        ("quality_threshold=101", "quality_threshold=\"101\" must be a whole number from 0 to 100"),
        ("max_queries_number=0", "max_queries_number=\"0\" must be a whole number from 1 to 20"),
        ("max_queries_number=two", "max_queries_number=\"two\" must be a whole number from 1 to 20"),
    ] {
        let (status, body) = app.get(&format!("/fetch_proxy?{query}")).await;
        assert_eq!((status, detail(&body)), (StatusCode::BAD_REQUEST, expected), "{query}");
    }
}

#[tokio::test]
async fn booleans_take_one_zero_true_false_in_any_case() {
    // No IPQS_KEY: verify_quality is answered (skipped) exactly when it reads as true.
    let app = seeded().await;
    for (value, asked) in
        [("1", true), ("TRUE", true), ("True", true), ("0", false), ("FALSE", false), ("false", false)]
    {
        let (status, body) = app.get(&format!("/fetch_proxy?verify_quality={value}")).await;
        assert_eq!(status, StatusCode::OK, "{value}: {body}");
        assert_eq!(body.get("verify_quality").is_some(), asked, "verify_quality={value}: {body}");
    }
}

#[tokio::test]
async fn a_configured_token_guards_the_provider() {
    let app = proxy_provider(None).token(Some("tok")).spawn().await;
    let bare = app.client.get(app.url("/fetch_proxy")).send().await.expect("request");
    assert_eq!(bare.status(), StatusCode::UNAUTHORIZED);
    let (status, _) = app.get("/fetch_proxy").await; // TestApp sends its token
    assert_eq!(status, StatusCode::NOT_FOUND, "authorised: the empty inventory answers 404");
}

#[tokio::test]
async fn the_provider_alone_serves_only_its_route_and_documents_it() {
    let app = seeded().await;
    let (status, _) = app.get("/api/proxies").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "the dashboard list belongs to the backend");
    let (_, spec) = app.get("/openapi.json").await;
    assert!(spec["paths"]["/fetch_proxy"]["get"].is_object(), "{spec}");
    let (_, health) = app.get("/health").await;
    assert_eq!(health["roles"][0], json!({"name": "proxy-provider", "state": "serving"}));
}
