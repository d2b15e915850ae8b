//! The dashboard's inventory lists, served by the backend: `/api/proxies` (credentials masked)
//! and `/api/fingerprints` (no data), paged and token-guarded.

use armada::roles::Role;
use reqwest::StatusCode;
use serde_json::json;

use super::{fingerprint, proxy, seed_fingerprints, seed_proxies};
use crate::support::TestApp;

#[tokio::test]
async fn proxies_are_listed_with_their_credentials_masked() {
    let app = TestApp::builder().roles([Role::Backend]).token(Some("tok")).spawn().await;
    seed_proxies(
        &app,
        &[
            proxy("http://alice:very-secret@10.0.0.1:8000", "iproyal", "residential", "sticky", "Europe/Paris"),
            proxy("http://10.0.0.2:3128", "", "", "", ""),
        ],
    )
    .await;
    let (status, page) = app.get("/api/proxies/").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(!page.to_string().contains("very-secret"), "{page}");
    assert_eq!(
        (page["total"].clone(), page["page"].clone(), page["page_size"].clone()),
        (json!(2), json!(1), json!(50))
    );
    let first = &page["proxies"][1];
    assert_eq!(first["proxy_url"], "http://alice:***@10.0.0.1:8000");
    assert_eq!(
        (first["proxy_provider_name"].clone(), first["proxy_type"].clone(), first["proxy_location"].clone()),
        (json!("iproyal"), json!("residential"), json!("Europe/Paris"))
    );
    assert_eq!(page["proxies"][0]["proxy_url"], "http://10.0.0.2:3128", "last imported first");
    let (status, page) = app.get("/tracking/api/proxies?page=2&page_size=1").await;
    assert_eq!((status, page["proxies"].as_array().map(Vec::len)), (StatusCode::OK, Some(1)));
    let bare = app.client.get(app.url("/api/proxies")).send().await.expect("request");
    assert_eq!(bare.status(), StatusCode::UNAUTHORIZED, "token-guarded like every /api route");
}

#[tokio::test]
async fn fingerprints_are_listed_without_their_data() {
    let app = TestApp::backend().await;
    seed_fingerprints(
        &app,
        &[fingerprint("datadome", "https://shop.example", json!({"secret_payload": "x"}), "2026-02-24")],
    )
    .await;
    let (status, page) = app.get("/api/fingerprints").await;
    assert_eq!(status, StatusCode::OK);
    let row = &page["fingerprints"][0];
    assert!(row.get("data").is_none() && !page.to_string().contains("secret_payload"), "{page}");
    assert_eq!(row["antibot_vendor"], "datadome");
    assert_eq!(row["website"], "https://shop.example");
    assert_eq!(row["collecting_date"], "2026-02-24T00:00:00Z");
    assert!(row["fingerprint_id"].is_i64());
    let (status, _) = app.get("/api/fingerprints?page_size=101").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "paging bounds as every list");
}
