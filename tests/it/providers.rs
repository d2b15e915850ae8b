//! The proxy and fingerprint providers over real loopback HTTP against a seeded SQLite store;
//! their checks against local stand-ins and real upstream proxies; `armada import` as a real
//! process; the dashboard's inventory lists; the agent's `prepare_network`. No traffic leaves
//! the machine.

mod checks;
mod fingerprint_provider;
mod import;
mod inventory_api;
mod network;
mod proxy_provider;
pub mod stand_ins;

use armada::infra::db::{NewFingerprint, NewProxy};
use armada::model::Timestamp;
use armada::roles::Role;
use serde_json::Value;

use crate::support::{TestApp, TestAppBuilder};

pub fn proxy(url: &str, provider: &str, kind: &str, rotation: &str, location: &str) -> NewProxy {
    let text = |v: &str| (!v.is_empty()).then(|| v.to_string());
    NewProxy {
        proxy_url: url.into(),
        proxy_provider_name: text(provider),
        proxy_type: text(kind),
        proxy_rotation_strategy: text(rotation),
        proxy_location: text(location),
    }
}

pub fn fingerprint(vendor: &str, website: &str, data: Value, date: &str) -> NewFingerprint {
    NewFingerprint {
        antibot_vendor: Some(vendor.into()),
        website: Some(website.into()),
        data,
        collecting_date: Some(Timestamp::parse(date).expect("test date")),
    }
}

/// A proxy provider alone, its checks pointed at `checks` (ip echo, IPQS, geo-IP) when given,
/// else at loopback ports nobody listens on: no test ever reaches the public services.
pub fn proxy_provider(
    checks: Option<(&stand_ins::Service, &stand_ins::Service, &stand_ins::Service)>,
) -> TestAppBuilder {
    let (echo, ipqs, geo) = match checks {
        Some((echo, ipqs, geo)) => (echo.url("/ip"), ipqs.url("/ipqs"), geo.url("/geo")),
        None => (stand_ins::refusing_url(""), stand_ins::refusing_url(""), stand_ins::refusing_url("")),
    };
    TestApp::builder()
        .roles([Role::ProxyProvider])
        .var("ARMADA_PROVIDER_CHECK_TIMEOUT_SECS", "5")
        .var("ARMADA_IP_ECHO_URL", echo)
        .var("ARMADA_IPQS_URL", ipqs)
        .var("ARMADA_GEOIP_URL", geo)
}

pub async fn seed_proxies(app: &TestApp, proxies: &[NewProxy]) {
    let outcome = app.state.store().import_proxies(proxies).await.expect("seed proxies");
    assert_eq!(outcome.imported as usize, proxies.len(), "seeded proxies are distinct");
}

pub async fn seed_fingerprints(app: &TestApp, fingerprints: &[NewFingerprint]) {
    app.state.store().import_fingerprints(fingerprints).await.expect("seed fingerprints");
}

pub fn detail(body: &Value) -> &str {
    body["detail"].as_str().unwrap_or_else(|| panic!("no detail in {body}"))
}
