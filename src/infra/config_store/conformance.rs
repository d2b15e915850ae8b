//! The one test body every `ConfigStore` implementation passes.
//!
//! Instantiate it next to an implementation with an async constructor expression giving
//! `Option<Arc<dyn ConfigStore>>` (`None` = the engine is not available here; the constructor
//! says why and how to enable it, and every test prints a SKIPPED line):
//!
//! ```text
//! crate::infra::config_store::conformance::config_store_suite!(memory_config_store, async {
//!     Some(Arc::new(MemoryConfigStore::new()) as Arc<dyn ConfigStore>)
//! });
//! ```
//!
//! Every test uses fresh random run ids, so all of them can share one server.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{Value, json};
use uuid::Uuid;

use super::{AgentHeartbeat, ConfigStore};

/// Expands to a module `$suite` with one `#[tokio::test]` per behaviour below.
macro_rules! config_store_suite {
    ($suite:ident, $make:expr) => {
        mod $suite {
            #[allow(unused_imports)]
            use super::*;
            $crate::infra::config_store::conformance::config_store_suite!(@tests $suite, $make;
                connectivity_is_checked_and_described,
                every_agent_message_is_read_back_by_index,
                missing_agent_message_is_none,
                putting_again_replaces_the_messages,
                bundle_round_trips_binary_content,
                missing_bundle_is_none,
                expire_run_makes_the_keys_vanish_after_the_ttl,
                delete_run_removes_messages_and_bundle,
                two_runs_do_not_interfere,
                a_heartbeat_is_read_back_until_it_lapses,
                a_heartbeat_renewed_in_time_never_lapses,
                delete_run_removes_heartbeats,
            );
        }
    };
    (@tests $suite:ident, $make:expr; $($test:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $test() {
                let store: ::std::option::Option<::std::sync::Arc<dyn $crate::infra::config_store::ConfigStore>> =
                    $make.await;
                $crate::infra::testing::run_conformance(
                    "config store",
                    stringify!($suite),
                    stringify!($test),
                    store.map($crate::infra::config_store::conformance::$test),
                )
                .await;
            }
        )+
    };
}
pub(crate) use config_store_suite;

/// Agent messages as the pipeline makes them: nested, typed, with the run id and index.
fn messages(run_id: Uuid, n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| {
            json!({
                "run_id": run_id.to_string(),
                "pod_index": i,
                "config_proxy": {"upstream_proxy_enabled": 2, "proxy_location": "US", "verify_ip": i % 2},
                "accounts": ["a", "b", i],
                "note": "héllo ✓",
                "ratio": 0.5,
                "nothing": null,
            })
        })
        .collect()
}

pub async fn connectivity_is_checked_and_described(store: Arc<dyn ConfigStore>) {
    store.check_connectivity().await.expect("check_connectivity");
    assert!(!store.describe().is_empty());
}

pub async fn every_agent_message_is_read_back_by_index(store: Arc<dyn ConfigStore>) {
    // 12 agents: keys `{R}1` and `{R}10`, `{R}11` must not be confused.
    let run_id = Uuid::new_v4();
    let written = messages(run_id, 12);
    store.put_agent_messages(run_id, &written).await.unwrap();
    for (i, expected) in written.iter().enumerate() {
        let read = store.get_agent_message(run_id, i).await.unwrap();
        assert_eq!(read.as_ref(), Some(expected), "agent {i}");
    }
    store.delete_run(run_id, 12).await.unwrap();
}

pub async fn missing_agent_message_is_none(store: Arc<dyn ConfigStore>) {
    let run_id = Uuid::new_v4();
    assert_eq!(store.get_agent_message(run_id, 0).await.unwrap(), None, "unknown run");
    store.put_agent_messages(run_id, &messages(run_id, 2)).await.unwrap();
    assert_eq!(store.get_agent_message(run_id, 2).await.unwrap(), None, "index past the last agent");
    store.delete_run(run_id, 2).await.unwrap();
}

pub async fn putting_again_replaces_the_messages(store: Arc<dyn ConfigStore>) {
    let run_id = Uuid::new_v4();
    store.put_agent_messages(run_id, &[json!({"v": 1}), json!({"v": 1})]).await.unwrap();
    store.put_agent_messages(run_id, &[json!({"v": 2}), json!({"v": 2})]).await.unwrap();
    assert_eq!(store.get_agent_message(run_id, 1).await.unwrap(), Some(json!({"v": 2})));
    store.delete_run(run_id, 2).await.unwrap();
}

pub async fn bundle_round_trips_binary_content(store: Arc<dyn ConfigStore>) {
    let run_id = Uuid::new_v4();
    // Every byte value, including invalid UTF-8, over 256 KiB.
    let bundle: Bytes = (0..256 * 1024).map(|i| (i % 256) as u8).collect::<Vec<u8>>().into();
    store.put_bundle(run_id, bundle.clone()).await.unwrap();
    assert_eq!(store.get_bundle(run_id).await.unwrap(), Some(bundle));
    assert_eq!(store.get_agent_message(run_id, 0).await.unwrap(), None, "a bundle is not an agent message");
    store.delete_run(run_id, 0).await.unwrap();
}

pub async fn missing_bundle_is_none(store: Arc<dyn ConfigStore>) {
    assert_eq!(store.get_bundle(Uuid::new_v4()).await.unwrap(), None);
}

pub async fn expire_run_makes_the_keys_vanish_after_the_ttl(store: Arc<dyn ConfigStore>) {
    let run_id = Uuid::new_v4();
    let other = Uuid::new_v4();
    store.put_agent_messages(run_id, &messages(run_id, 3)).await.unwrap();
    store.put_bundle(run_id, Bytes::from_static(b"bundle")).await.unwrap();
    store.put_agent_messages(other, &messages(other, 1)).await.unwrap();
    store.expire_run(run_id, 3, Duration::from_secs(1)).await.unwrap();
    // Still readable right away: agents starting late in a run must find their message.
    assert!(store.get_agent_message(run_id, 2).await.unwrap().is_some(), "expired before its ttl");
    let started = Instant::now();
    loop {
        let mut left = 0;
        for i in 0..3 {
            left += usize::from(store.get_agent_message(run_id, i).await.unwrap().is_some());
        }
        left += usize::from(store.get_bundle(run_id).await.unwrap().is_some());
        if left == 0 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(15), "{left} keys still there 15 s after a 1 s ttl");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(store.get_agent_message(other, 0).await.unwrap().is_some(), "another run's key expired too");
    store.delete_run(other, 1).await.unwrap();
}

pub async fn delete_run_removes_messages_and_bundle(store: Arc<dyn ConfigStore>) {
    let run_id = Uuid::new_v4();
    store.put_agent_messages(run_id, &messages(run_id, 3)).await.unwrap();
    store.put_bundle(run_id, Bytes::from_static(b"bundle")).await.unwrap();
    store.delete_run(run_id, 3).await.unwrap();
    for i in 0..3 {
        assert_eq!(store.get_agent_message(run_id, i).await.unwrap(), None, "agent {i} after delete");
    }
    assert_eq!(store.get_bundle(run_id).await.unwrap(), None);
    store.delete_run(run_id, 3).await.expect("deleting a deleted run is fine");
}

pub async fn two_runs_do_not_interfere(store: Arc<dyn ConfigStore>) {
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    let (messages_a, messages_b) = (messages(a, 2), messages(b, 3));
    store.put_agent_messages(a, &messages_a).await.unwrap();
    store.put_agent_messages(b, &messages_b).await.unwrap();
    store.put_bundle(a, Bytes::from_static(b"bundle a")).await.unwrap();
    store.put_bundle(b, Bytes::from_static(b"bundle b")).await.unwrap();
    store.delete_run(a, 2).await.unwrap();
    for (i, expected) in messages_b.iter().enumerate() {
        assert_eq!(store.get_agent_message(b, i).await.unwrap().as_ref(), Some(expected), "run b agent {i}");
    }
    assert_eq!(store.get_bundle(b).await.unwrap(), Some(Bytes::from_static(b"bundle b")));
    assert_eq!(store.get_agent_message(a, 0).await.unwrap(), None);
    store.delete_run(b, 3).await.unwrap();
}

pub async fn a_heartbeat_is_read_back_until_it_lapses(store: Arc<dyn ConfigStore>) {
    let run_id = Uuid::new_v4();
    let job = Some(Uuid::new_v4());
    assert_eq!(store.get_heartbeat(run_id, "agent-0").await.unwrap(), None, "never beat");
    store.put_heartbeat(run_id, "agent-0", &AgentHeartbeat { job }, Duration::from_millis(800)).await.unwrap();
    store.put_heartbeat(run_id, "agent-1", &AgentHeartbeat { job: None }, Duration::from_secs(60)).await.unwrap();
    assert_eq!(store.get_heartbeat(run_id, "agent-0").await.unwrap(), Some(AgentHeartbeat { job }));
    let started = Instant::now();
    while store.get_heartbeat(run_id, "agent-0").await.unwrap().is_some() {
        assert!(started.elapsed() < Duration::from_secs(10), "a 0.8 s heartbeat still there after 10 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(started.elapsed() >= Duration::from_millis(500), "lapsed after {:?}", started.elapsed());
    assert_eq!(store.get_heartbeat(run_id, "agent-1").await.unwrap(), Some(AgentHeartbeat { job: None }));
    store.delete_run(run_id, 2).await.unwrap();
}

pub async fn a_heartbeat_renewed_in_time_never_lapses(store: Arc<dyn ConfigStore>) {
    let run_id = Uuid::new_v4();
    for round in 0..6 {
        let beat = AgentHeartbeat { job: Some(Uuid::from_u128(round)) };
        store.put_heartbeat(run_id, "agent-3", &beat, Duration::from_millis(600)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(store.get_heartbeat(run_id, "agent-3").await.unwrap(), Some(beat), "round {round}");
    }
    store.delete_run(run_id, 4).await.unwrap();
}

pub async fn delete_run_removes_heartbeats(store: Arc<dyn ConfigStore>) {
    let run_id = Uuid::new_v4();
    let beat = AgentHeartbeat { job: Some(Uuid::new_v4()) };
    store.put_heartbeat(run_id, "agent-1", &beat, Duration::from_secs(60)).await.unwrap();
    store.delete_run(run_id, 2).await.unwrap();
    assert_eq!(store.get_heartbeat(run_id, "agent-1").await.unwrap(), None);
}
