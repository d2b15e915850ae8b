//! [`AgentCalls`]: the worker's calls — `event`, `job_status`, `create_job`, `output` turned
//! into records of the run, answered only once stored or spooled; `switch_proxy` and
//! `fingerprint` answered from the agent's network.

use std::sync::Arc;

use serde_json::{Value, json};
use uuid::Uuid;

use super::network::PreparedNetwork;
use super::observer::AgentObserver;
use super::worker::{NetworkCall, WorkerCall, WorkerCalls};
use crate::clients::{BackendClient, ProviderClients};
use crate::infra::db::{JobUpdate, Mutation, NewEvent, NewJob, NewOutput};
use crate::model::{Timestamp, status};

pub struct AgentCalls {
    pub backend: Arc<dyn BackendClient>,
    pub run_id: Uuid,
    /// `agent-{i}`: recorded on jobs the worker's code registers.
    pub agent: String,
    pub observer: Arc<dyn AgentObserver>,
    /// The local proxy and fingerprint prepared for this agent.
    pub network: Arc<PreparedNetwork>,
    /// The providers `switch_proxy` and `fingerprint` ask.
    pub providers: ProviderClients,
}

impl AgentCalls {
    /// The records one call makes (none for a network call). Uuids are made here, once, so a
    /// replay is idempotent.
    pub fn mutations(&self, call: &WorkerCall) -> Vec<Mutation> {
        let now = Timestamp::now();
        match call {
            WorkerCall::Event { job_uuid, content, status, final_status } => {
                let mut batch = vec![Mutation::CreateEvent(NewEvent {
                    event_uuid: Uuid::new_v4(),
                    event_content: content.clone(),
                    job_uuid: *job_uuid,
                    event_datetime: now,
                    event_status: status.as_str().to_string(),
                })];
                if *final_status {
                    batch.push(job_status(*job_uuid, status.as_str()));
                }
                batch
            }
            WorkerCall::JobStatus { job_uuid, status } => vec![job_status(*job_uuid, status.as_str())],
            WorkerCall::CreateJob { job_uuid } => vec![Mutation::CreateJob(NewJob {
                job_uuid: *job_uuid,
                run_uuid: self.run_id,
                job_datetime: now,
                job_associated_agent: self.agent.clone(),
                job_status: status::RUNNING.to_string(),
                job_index: None,
            })],
            WorkerCall::Output { job_uuid, data } => vec![Mutation::CreateOutput(NewOutput {
                output_uuid: Uuid::new_v4(),
                run_uuid: self.run_id,
                job_uuid: *job_uuid,
                data: Value::Object(data.clone()),
                timestamp: now,
            })],
            WorkerCall::Network(_) => Vec::new(),
        }
    }

    /// `switch_proxy` → `{"proxy_url", "upstream"}` (the local proxy's URL, which does not
    /// change, and the new upstream, masked); `fingerprint` → the provider's data.
    async fn network_call(&self, call: &NetworkCall) -> Result<Value, String> {
        match call {
            NetworkCall::SwitchProxy => {
                let upstream = self.network.switch_upstream_proxy(&self.providers).await?;
                tracing::info!(run_id = %self.run_id, agent = %self.agent, %upstream, "upstream proxy switched");
                self.observer.note(&format!("upstream proxy switched to {upstream}"));
                Ok(json!({"proxy_url": self.network.proxy_url, "upstream": upstream}))
            }
            NetworkCall::Fingerprint { config, additional_data } => {
                let fingerprint =
                    self.network.fresh_fingerprint(&self.providers, config.clone(), additional_data.clone()).await?;
                self.observer.note("fresh fingerprint fetched");
                Ok(fingerprint)
            }
        }
    }
}

fn job_status(job_uuid: Uuid, value: &str) -> Mutation {
    Mutation::UpdateJob(JobUpdate { job_uuid, job_status: Some(value.to_string()), ..JobUpdate::default() })
}

#[async_trait::async_trait]
impl WorkerCalls for AgentCalls {
    async fn call(&self, job_uuid: Option<Uuid>, method: &str, params: Value) -> Result<Value, String> {
        let call = WorkerCall::parse(method, &params, job_uuid)?;
        if let WorkerCall::Network(request) = &call {
            return self.network_call(request).await;
        }
        let outcomes = self.backend.apply(self.mutations(&call)).await.map_err(|e| e.to_string())?;
        if let Some(Err(error)) = outcomes.into_iter().find(Result::is_err) {
            return Err(error.to_string());
        }
        self.observer.recorded(&call);
        Ok(json!({"stored": true}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::observer::Unobserved;
    use crate::agent::worker::protocol::CallStatus;

    fn calls() -> AgentCalls {
        let backend = Arc::new(crate::agent::test_support::FlakyBackend::default());
        AgentCalls {
            backend,
            run_id: Uuid::nil(),
            agent: "agent-2".into(),
            observer: Arc::new(Unobserved),
            network: Arc::default(),
            providers: ProviderClients::default(),
        }
    }

    #[test]
    fn a_final_event_also_sets_the_job_status() {
        let job = Uuid::new_v4();
        let call = WorkerCall::Event {
            job_uuid: job,
            content: "done".into(),
            status: CallStatus::Success,
            final_status: true,
        };
        let batch = calls().mutations(&call);
        assert!(matches!(&batch[0], Mutation::CreateEvent(e) if e.job_uuid == job && e.event_status == "Success"));
        assert!(matches!(&batch[1], Mutation::UpdateJob(u) if u.job_status.as_deref() == Some("Success")));
        assert_eq!(batch.len(), 2);
    }

    #[tokio::test]
    async fn network_calls_record_nothing_and_say_what_is_missing() {
        let calls = calls();
        assert!(calls.mutations(&WorkerCall::Network(NetworkCall::SwitchProxy)).is_empty());
        let error = calls.call(None, "switch_proxy", json!({})).await.unwrap_err();
        assert!(error.contains("runs without a proxy"), "{error}");
        let error = calls.call(None, "fingerprint", json!({"additional_data": {"desired_ua": "x"}})).await.unwrap_err();
        assert!(error.starts_with("no fingerprint:") && error.contains("FINGERPRINT_PROVIDER_URL"), "{error}");
    }

    #[test]
    fn a_job_created_by_user_code_belongs_to_this_run_and_agent() {
        let job = Uuid::new_v4();
        let batch = calls().mutations(&WorkerCall::CreateJob { job_uuid: job });
        let [Mutation::CreateJob(new)] = batch.as_slice() else { panic!("{batch:?}") };
        assert_eq!((new.job_uuid, new.run_uuid, new.job_associated_agent.as_str()), (job, Uuid::nil(), "agent-2"));
        assert_eq!(new.job_status, "Running");
    }
}
