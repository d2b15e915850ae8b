//! `GET /get-fingerprint`: filters, date rules, the three request forms, desired_ua, 404s.

use std::collections::BTreeSet;

use armada::roles::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{detail, fingerprint, seed_fingerprints};
use crate::support::TestApp;

async fn seeded() -> TestApp {
    let app = TestApp::builder().roles([Role::FingerprintProvider]).spawn().await;
    seed_fingerprints(
        &app,
        &[
            fingerprint("datadome", "https://shop.example", json!({"id": "dd-jan"}), "2026-01-15"),
            fingerprint("datadome", "https://shop.example", json!({"id": "dd-feb"}), "2026-02-24 10:30:00"),
            fingerprint("datadome", "https://news.example", json!({"id": "dd-news"}), "2026-03-01"),
            fingerprint("akamai", "https://shop.example", json!({"id": "ak", "user_agent": "Old UA"}), "2026-02-01"),
            fingerprint(
                "none",
                "https://plain.example",
                json!({"navigator": {"userAgent": "Old UA", "platform": "Win32"}, "userAgent": "Old UA"}),
                "2026-02-01",
            ),
        ],
    )
    .await;
    app
}

/// GET with a JSON body, as the original agents call it.
async fn get_with_body(app: &TestApp, body: &Value) -> (StatusCode, Value) {
    app.send(app.client.get(app.url("/get-fingerprint")).json(body)).await
}

/// Every `id` a request returns over 60 calls.
async fn ids(app: &TestApp, body: &Value) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    for _ in 0..60 {
        let (status, data) = get_with_body(app, body).await;
        assert_eq!(status, StatusCode::OK, "{body}: {data}");
        seen.insert(data["id"].as_str().unwrap_or("(plain)").to_string());
    }
    seen
}

fn set(ids: &[&str]) -> BTreeSet<String> {
    ids.iter().map(|id| id.to_string()).collect()
}

#[tokio::test]
async fn vendor_and_website_filter_ignoring_case() {
    let app = seeded().await;
    assert_eq!(ids(&app, &json!({"antibot_vendor": "DataDome"})).await, set(&["dd-feb", "dd-jan", "dd-news"]));
    assert_eq!(ids(&app, &json!({"website": "https://shop.example"})).await, set(&["ak", "dd-feb", "dd-jan"]));
    assert_eq!(
        ids(&app, &json!({"antibot_vendor": "datadome", "website": "https://NEWS.example"})).await,
        set(&["dd-news"])
    );
    assert_eq!(ids(&app, &json!({})).await.len(), 5, "no filter: any of the five");
}

#[tokio::test]
async fn a_date_keeps_fingerprints_collected_on_or_after_it() {
    let app = seeded().await;
    let since = |day: &str, month: Value, year: Value| {
        json!({"antibot_vendor": "datadome", "collection_date_day": day, "collection_date_month": month,
               "collection_date_year": year})
    };
    assert_eq!(
        ids(&app, &since("24", json!("02"), json!(2026))).await,
        set(&["dd-feb", "dd-news"]),
        "on the day counts"
    );
    assert_eq!(ids(&app, &since("25", json!(2), json!("2026"))).await, set(&["dd-news"]));
    assert_eq!(ids(&app, &since("01", json!(1), json!(2026))).await, set(&["dd-feb", "dd-jan", "dd-news"]));
    let (status, body) = get_with_body(&app, &since("02", json!(3), json!(2026))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(detail(&body), "no fingerprint matches antibot_vendor=datadome, collected on or after 2026-03-02");
}

#[tokio::test]
async fn partial_or_impossible_dates_are_400s() {
    let app = seeded().await;
    for (body, expected) in [
        (
            json!({"collection_date_day": "01", "collection_date_year": "2026"}),
            "collection_date_day, collection_date_month and collection_date_year go together; missing collection_date_month",
        ),
        (
            json!({"collection_date_day": 31, "collection_date_month": 4, "collection_date_year": 2026}),
            "2026-04-31 is not a date",
        ),
        (
            json!({"collection_date_day": "xx", "collection_date_month": 4, "collection_date_year": 2026}),
            "collection_date_day=\"xx\" is not a whole number",
        ),
    ] {
        let (status, answer) = get_with_body(&app, &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(detail(&answer).starts_with(expected), "{body}: {answer}");
    }
    let (status, answer) = app.get("/get-fingerprint?collection_date_month=02").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "the query form too: {answer}");
    let (status, _) = app.send(app.client.get(app.url("/get-fingerprint")).body("{not json")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_request_may_be_a_get_body_a_query_or_a_post() {
    let app = seeded().await;
    let body = json!({"antibot_vendor": "datadome", "website": "https://news.example",
                      "collection_date_day": "01", "collection_date_month": "03", "collection_date_year": "2026"});
    let expected = json!({"id": "dd-news"});
    assert_eq!(get_with_body(&app, &body).await, (StatusCode::OK, expected.clone()));
    let query = "/get-fingerprint?antibot_vendor=datadome&website=https%3A%2F%2Fnews.example\
                 &collection_date_day=1&collection_date_month=3&collection_date_year=2026";
    assert_eq!(app.get(query).await, (StatusCode::OK, expected.clone()));
    assert_eq!(app.post("/get-fingerprint", &body).await, (StatusCode::OK, expected.clone()));
    // A body without a content type, as some clients send a GET body.
    let raw = app.client.get(app.url("/get-fingerprint")).body(body.to_string());
    assert_eq!(app.send(raw).await, (StatusCode::OK, expected));
}

#[tokio::test]
async fn desired_ua_sets_the_user_agent_of_a_plain_profile_only() {
    let app = seeded().await;
    let ask =
        |vendor: &str| json!({"antibot_vendor": vendor, "additional_data": {"desired_ua": "Mozilla/5.0 (X11) New"}});
    let response = app.client.get(app.url("/get-fingerprint")).json(&ask("none")).send().await.expect("request");
    assert_eq!(response.headers()["x-armada-desired-ua"], "applied");
    let profile: Value = response.json().await.expect("json");
    assert_eq!(
        profile,
        json!({"navigator": {"userAgent": "Mozilla/5.0 (X11) New", "platform": "Win32"}, "userAgent": "Mozilla/5.0 (X11) New"})
    );
    let (_, akamai) = get_with_body(&app, &ask("akamai")).await;
    assert_eq!(akamai, json!({"id": "ak", "user_agent": "Mozilla/5.0 (X11) New"}));

    let response = app.client.get(app.url("/get-fingerprint")).json(&ask("datadome")).send().await.expect("request");
    assert_eq!(response.headers()["x-armada-desired-ua"], "ignored: not a plain profile");
    let payload: Value = response.json().await.expect("json");
    assert!(payload.get("user_agent").is_none() && payload["id"].as_str().is_some_and(|id| id.starts_with("dd-")));
    let (_, unchanged) = get_with_body(&app, &json!({"antibot_vendor": "none"})).await;
    assert_eq!(unchanged["userAgent"], "Old UA", "stored data is never changed");
}

#[tokio::test]
async fn nothing_matching_is_a_404() {
    let app = seeded().await;
    let (status, body) = get_with_body(&app, &json!({"antibot_vendor": "perimeterx"})).await;
    assert_eq!((status, detail(&body)), (StatusCode::NOT_FOUND, "no fingerprint matches antibot_vendor=perimeterx"));
    let empty = TestApp::builder().roles([Role::FingerprintProvider]).spawn().await;
    let (status, body) = empty.get("/get-fingerprint").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(detail(&body).contains("armada import fingerprints"), "{body}");
}
