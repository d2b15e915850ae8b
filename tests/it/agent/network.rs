//! An agent's network end to end: the agent asks a real proxy provider and fingerprint
//! provider (served in-process, behind a token) for what its message's `config_proxy` and
//! `config_fingerprint` say, starts its local proxy on a real credentialed upstream, and its
//! Python worker browses a target through it, gets a fresh fingerprint and switches upstream;
//! an agent whose upstream is dead fails with the reason. Everything on loopback.

use std::collections::BTreeSet;

use armada::infra::launcher::AgentPhase;
use armada::model::status;
use armada::roles::Role;
use serde_json::json;

use crate::providers::stand_ins::{self, EXIT_IP_HEADER, TestUpstream, basic, refusing_url};
use crate::providers::{fingerprint, proxy, proxy_provider, seed_fingerprints, seed_proxies};
use crate::support::agents::{AgentHarness, Engines, write_template};

const TOKEN: &str = "network-test-token";
const FIRST: (&str, &str) = ("agent-a", "first-secret");
const SECOND: (&str, &str) = ("agent-b", "second-secret");
const DEAD_PASSWORD: &str = "dead-secret";
const SCRIPT: &str = include_str!("fixtures/network/ctx_script.py");

/// Agent 0 takes its upstream from the `pool` proxies, agent 1 from the `dead` one.
fn network_project(target: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ctx_script.py"), SCRIPT).unwrap();
    write_template(
        dir.path(),
        &json!({
            "run_message": {"number_of_agents": 2, "number_of_jobs": 1, "job_timeout_secs": 120, "max_attempts": 1},
            "default_agent_message": {
                "config_proxy": {"upstream_proxy_enabled": 1, "upstream_proxy_broker_type": "provider",
                                 "proxy_provider_name": "pool", "proxy_type": "residential",
                                 "proxy_location": "europe", "verify_ip": 0},
                "config_fingerprint": {"antibot_vendor": "datadome", "website": "https://shop.example",
                                       "additional_data": {"desired_ua": "Init UA"}},
            },
            "default_job_message": {"target": target},
        }),
    );
    let rows = "config_proxy\n\"{\"\"proxy_provider_name\"\": \"\"pool\"\"}\"\n\"{\"\"proxy_provider_name\"\": \"\"dead\"\"}\"\n";
    std::fs::write(dir.path().join("config/data_agent.csv"), rows).unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_browses_through_the_local_proxy_gets_a_fingerprint_and_switches_upstream() {
    let providers =
        proxy_provider(None).roles([Role::ProxyProvider, Role::FingerprintProvider]).token(Some(TOKEN)).spawn().await;
    let first = TestUpstream::start(Some(FIRST), "10.0.1.1").await;
    let second = TestUpstream::start(Some(SECOND), "10.0.1.2").await;
    let dead = refusing_url(&format!("dead:{DEAD_PASSWORD}@"));
    seed_proxies(
        &providers,
        &[
            proxy(&first.url(Some(FIRST)), "pool", "residential", "sticky", "Europe/Paris"),
            proxy(&second.url(Some(SECOND)), "pool", "residential", "sticky", "Europe/Berlin"),
            proxy(&refusing_url("x:y@"), "elsewhere", "residential", "sticky", "Europe/Paris"),
            proxy(&dead, "dead", "residential", "", "Europe/Rome"),
        ],
    )
    .await;
    let stored = json!({"user_agent": "Stored UA", "screen": [1920, 1080]});
    seed_fingerprints(&providers, &[fingerprint("datadome", "https://shop.example", stored, "2026-02-24")]).await;
    let (target, hits) = stand_ins::target().await;

    // The agents' side: a backend, the providers' URLs and the token, any free port for the local proxy.
    // Embedded only: its subject is the agent's network (providers, local proxy, fingerprints),
    // which is the same code whichever config store, broker and launcher the agent has.
    let harness = AgentHarness::builder(Engines::Embedded)
        .app(|app| {
            app.token(Some(TOKEN))
                .var("PROXY_PROVIDER_URL", &providers.base_url)
                .var("FINGERPRINT_PROVIDER_URL", &providers.base_url)
                .var("ARMADA_FORWARD_PROXY_PORT", "0")
        })
        .spawn()
        .await;
    let project = network_project(&target.url("/hello"));
    let staged = harness.start(project.path()).await;
    let summary = harness.finish(&staged).await;
    assert_eq!(summary.count(status::SUCCESS), 1, "{:?}", summary.counts);

    // Agent 1's upstream refuses connections: it failed before starting its worker, saying why.
    let agents = harness.agents(staged.run_id).await;
    assert_eq!(agents[0].phase, AgentPhase::Succeeded, "{agents:#?}");
    assert_eq!(agents[1].phase, AgentPhase::Failed, "{agents:#?}");
    let detail = agents[1].detail.clone().unwrap_or_default();
    assert!(
        detail.starts_with("the agent's network could not be prepared: the local proxy cannot start: upstream proxy http://dead:***@127.0.0.1:"),
        "{detail}"
    );
    assert!(detail.contains("is unreachable") && !detail.contains(DEAD_PASSWORD), "{detail}");

    // Agent 0's worker: the local proxy, the fingerprints, the switch.
    let outputs = harness.outputs(staged.run_id).await;
    assert_eq!(outputs.len(), 1, "{outputs:#?}");
    let report = &outputs[0].data;
    let local = report["proxy_url"].as_str().expect("a local proxy URL");
    assert!(local.starts_with("http://127.0.0.1:"), "{report}");
    assert_eq!(report["before"], json!([200, "hello from the target"]), "{report}");
    assert_eq!(report["after"], json!([200, "hello from the target"]), "{report}");
    assert_eq!(report["switched_to"], local, "the local proxy's URL does not change");
    assert_eq!(report["init_fingerprint"], json!({"user_agent": "Init UA", "screen": [1920, 1080]}));
    assert_eq!(report["fresh_fingerprint"], json!({"user_agent": "Job UA", "screen": [1920, 1080]}));
    assert_eq!(report["has_token"], true, "ARMADA_TOKEN reaches the worker");
    let local_addr = local.trim_start_matches("http://");
    assert!(tokio::net::TcpStream::connect(local_addr).await.is_err(), "the local proxy stopped with its agent");

    // Each upstream carried one of the two requests, with its own credentials; the target saw
    // the first through one and the second through the other.
    for (upstream, credentials) in [(&first, FIRST), (&second, SECOND)] {
        let seen = upstream.seen();
        assert_eq!(seen.len(), 1, "{seen:?}");
        assert_eq!((seen[0].method.as_str(), seen[0].target.clone()), ("GET", target.url("/hello")));
        assert_eq!(seen[0].proxy_authorization, Some(basic(credentials.0, credentials.1)));
    }
    let exit_ips: Vec<String> = hits
        .lock()
        .unwrap()
        .iter()
        .map(|hit| {
            let header = hit.split('|').find(|h| h.starts_with(EXIT_IP_HEADER)).unwrap_or_default();
            header.rsplit(' ').next().unwrap_or_default().to_string()
        })
        .collect();
    assert_eq!(
        exit_ips.iter().cloned().collect::<BTreeSet<_>>(),
        BTreeSet::from(["10.0.1.1".into(), "10.0.1.2".into()])
    );
    let switched_to = if exit_ips[1] == "10.0.1.1" { (&first, FIRST.0) } else { (&second, SECOND.0) };
    assert_eq!(report["upstream"], json!(format!("http://{}:***@{}", switched_to.1, switched_to.0.addr)));

    // No password anywhere a person reads.
    let job = harness.job(staged.jobs[0].0).await;
    let logs = harness.logs(job.job_uuid).await;
    let shown = format!("{report} {logs} {:?} {detail}", job.job_detail);
    for secret in [FIRST.1, SECOND.1, DEAD_PASSWORD, TOKEN] {
        assert!(!shown.contains(secret), "{secret} shown: {shown}");
    }
}
