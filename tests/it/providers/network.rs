//! `prepare_network`, the agent's side of SPEC §8 and §9, against both providers served over
//! loopback HTTP, a real credentialed upstream proxy and a target server.

use std::time::Duration;

use armada::agent::network::prepare_network;
use armada::clients::ProviderClients;
use armada::roles::Role;
use armada::settings::{ForwardProxySettings, Settings, Vars};
use serde_json::{Value, json};

use super::stand_ins::{self, EXIT_IP_HEADER, Service, TestUpstream, basic, refusing_url};
use super::{fingerprint, proxy, proxy_provider, seed_fingerprints, seed_proxies};
use crate::support::TestApp;

const CREDENTIALS: (&str, &str) = ("agent", "net-secret");

fn agent_settings() -> ForwardProxySettings {
    let vars = Vars::from_pairs([("ARMADA_FORWARD_PROXY_PORT", "0")]);
    Settings::from_vars(vars, Vec::new(), None).expect("settings").forward_proxy
}

/// Both providers in one process (their checks on local stand-ins), and clients of them.
async fn providers() -> (TestApp, ProviderClients, Service) {
    let echo = stand_ins::ip_echo().await;
    let app = proxy_provider(None)
        .roles([Role::ProxyProvider, Role::FingerprintProvider])
        .var("ARMADA_IP_ECHO_URL", echo.url("/ip"))
        .spawn()
        .await;
    let clients = ProviderClients::new(Some(&app.base_url), Some(&app.base_url), None).expect("clients");
    (app, clients, echo)
}

async fn through(proxy_url: &str, url: &str) -> String {
    let client = reqwest::Client::builder()
        .proxy(reqwest::Proxy::all(proxy_url).expect("proxy"))
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client");
    client.get(url).send().await.expect("request").text().await.expect("body")
}

#[tokio::test]
async fn the_message_gets_its_upstream_from_the_provider_and_its_fingerprint() {
    let (app, clients, _echo) = providers().await;
    let upstream = TestUpstream::start(Some(CREDENTIALS), "10.0.0.5").await;
    seed_proxies(&app, &[proxy(&upstream.url(Some(CREDENTIALS)), "iproyal", "residential", "", "Europe/Paris")]).await;
    seed_proxies(&app, &[proxy(&refusing_url("x:y@"), "other", "residential", "", "Europe/Paris")]).await;
    seed_fingerprints(
        &app,
        &[fingerprint("datadome", "https://shop.example", json!({"user_agent": "Old"}), "2026-02-24")],
    )
    .await;
    let message = json!({
        "config_proxy": {"upstream_proxy_enabled": 1, "upstream_proxy_broker_type": "provider",
                         "proxy_provider_name": "iproyal", "proxy_location": "europe", "verify_ip": 1},
        "config_fingerprint": {"antibot_vendor": "datadome", "collection_date_day": "01",
                               "collection_date_month": "02", "collection_date_year": "2026",
                               "additional_data": {"desired_ua": "Agent UA"}},
    });
    let network = prepare_network(&message, &clients, &agent_settings()).await.expect("prepared");
    let local = network.proxy_url.clone().expect("a local proxy");
    assert!(local.starts_with("http://127.0.0.1:"), "{local}");
    assert_eq!(network.fingerprint, Some(json!({"user_agent": "Agent UA"})));
    let forward = network.forward_proxy.as_ref().expect("the proxy handle");
    assert_eq!(forward.upstream(), Some(format!("http://agent:***@{}", upstream.addr)));

    let (target, hits) = stand_ins::target().await;
    assert_eq!(through(&local, &target.url("/hello")).await, "hello from the target");
    let last = upstream.seen().last().cloned().expect("the upstream was used");
    assert_eq!(last.proxy_authorization, Some(basic(CREDENTIALS.0, CREDENTIALS.1)));
    assert!(hits.lock().unwrap()[0].contains(&format!("{EXIT_IP_HEADER}: 10.0.0.5")));
}

#[tokio::test]
async fn a_direct_upstream_is_used_as_given_and_a_dead_one_is_a_clear_error() {
    let (_app, clients, _echo) = providers().await;
    let upstream = TestUpstream::start(None, "10.0.0.6").await;
    let message = json!({"config_proxy": {"upstream_proxy_enabled": "1", "upstream_proxy_broker_type": "direct",
                                          "upstream_proxy_url": upstream.url(None)}});
    let network = prepare_network(&message, &clients, &agent_settings()).await.expect("prepared");
    let (target, _) = stand_ins::target().await;
    assert_eq!(
        through(network.proxy_url.as_deref().expect("local"), &target.url("/hello")).await,
        "hello from the target"
    );
    assert_eq!(upstream.seen().len(), 1);
    assert_eq!(network.fingerprint, None, "no config_fingerprint, no fingerprint");

    let dead = refusing_url("user:dead-pw@");
    let message = json!({"config_proxy": {"upstream_proxy_enabled": 1, "upstream_proxy_broker_type": "direct",
                                          "upstream_proxy_url": dead}});
    let error = prepare_network(&message, &clients, &agent_settings()).await.unwrap_err();
    assert!(error.starts_with("the local proxy cannot start: upstream proxy http://user:***@127.0.0.1:"), "{error}");
    assert!(error.contains("is unreachable") && !error.contains("dead-pw"), "{error}");
}

#[tokio::test]
async fn disabled_or_absent_means_no_proxy_and_two_means_a_direct_local_proxy() {
    let (_app, clients, _echo) = providers().await;
    for message in [json!({}), json!({"config_proxy": {"upstream_proxy_enabled": 0, "proxy_location": "US"}})] {
        let network = prepare_network(&message, &clients, &agent_settings()).await.expect("prepared");
        assert!(network.proxy_url.is_none() && network.forward_proxy.is_none(), "{message}");
    }
    let message = json!({"config_proxy": {"upstream_proxy_enabled": 2}});
    let network = prepare_network(&message, &clients, &agent_settings()).await.expect("prepared");
    assert_eq!(network.forward_proxy.as_ref().and_then(|p| p.upstream()), None);
    let (target, _) = stand_ins::target().await;
    assert_eq!(
        through(network.proxy_url.as_deref().expect("local"), &target.url("/hello")).await,
        "hello from the target"
    );
}

#[tokio::test]
async fn what_the_providers_cannot_give_is_a_clear_error() {
    let (_app, clients, _echo) = providers().await;
    let message = json!({"config_proxy": {"upstream_proxy_enabled": 1, "proxy_type": "mobile"}});
    let error = prepare_network(&message, &clients, &agent_settings()).await.unwrap_err();
    assert!(error.starts_with("no upstream proxy: the proxy provider at http://127.0.0.1:"), "{error}");
    assert!(error.ends_with("found nothing: no proxy matches proxy_type=mobile"), "{error}");

    let message = json!({"config_fingerprint": {"antibot_vendor": "akamai"}});
    let error = prepare_network(&message, &clients, &agent_settings()).await.unwrap_err();
    assert!(error.ends_with("found nothing: no fingerprint matches antibot_vendor=akamai"), "{error}");

    let unconfigured = ProviderClients::new(None, None, None).expect("clients");
    let message = json!({"config_proxy": {"upstream_proxy_enabled": 1}});
    let error = prepare_network(&message, &unconfigured, &agent_settings()).await.unwrap_err();
    assert!(error.contains("PROXY_PROVIDER_URL is not set"), "{error}");
    let bad: Value = json!({"config_proxy": {"upstream_proxy_enabled": 7}});
    assert!(prepare_network(&bad, &clients, &agent_settings()).await.unwrap_err().contains("must be 0, 1 or 2"));
}

#[tokio::test]
async fn switching_asks_the_provider_for_another_upstream_with_the_same_filters() {
    let (app, clients, _echo) = providers().await;
    let first = TestUpstream::start(None, "10.0.0.7").await;
    seed_proxies(
        &app,
        &[proxy(&first.url(None), "pool", "", "", ""), proxy(&refusing_url(""), "elsewhere", "", "", "")],
    )
    .await;
    let message = json!({"config_proxy": {"upstream_proxy_enabled": 1, "proxy_provider_name": "pool"}});
    let network = prepare_network(&message, &clients, &agent_settings()).await.expect("prepared");
    let alone = network.switch_upstream_proxy(&clients).await.unwrap_err();
    assert!(alone.ends_with("offered only the current one in 20 tries"), "the same filters only: {alone}");

    let second = TestUpstream::start(Some(CREDENTIALS), "10.0.0.8").await;
    seed_proxies(&app, &[proxy(&second.url(Some(CREDENTIALS)), "pool", "", "", "")]).await;
    let switched = network.switch_upstream_proxy(&clients).await.expect("switched");
    assert_eq!(switched, format!("http://agent:***@{}", second.addr));
    let (target, _) = stand_ins::target().await;
    through(network.proxy_url.as_deref().expect("local"), &target.url("/hello")).await;
    assert_eq!((first.seen().len(), second.seen().len()), (0, 1), "new connections go to the new upstream");
}
