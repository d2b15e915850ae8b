//! What an agent does with a redelivered job.
//!
//! A job comes back to the queue when the agent holding it died (its connection or in-process
//! consumer went away), when the broker took it back from a live agent (RabbitMQ's consumer
//! timeout closed the agent's channel; a broker restart), or when an ack was lost after the
//! outcome was recorded. Only the first must run it again. The rule, on each look at the job:
//!
//! - **It has an outcome** (`Success`, `Failed`, `Cancelled`): acknowledge it, do not run it.
//! - **It is `Running` under an agent whose heartbeat is fresh and names this job**: that agent
//!   is alive and still running it. *Hold* the delivery — neither acknowledge nor run it — and
//!   look again every `hold_poll` until one of the other cases holds. The holder stays counted
//!   as the job's consumer, so nothing is lost if it is itself stopped or killed (the delivery
//!   goes back to the queue) or if the broker takes the held delivery back too (whoever gets
//!   it next applies the same rule).
//! - **Otherwise** — never started, or `Running` under an agent whose heartbeat lapsed (it
//!   died) or names another job or none (its instance is gone: a restarted pod beats anew) —
//!   run it, as attempt `job_attempts + 1`.
//!
//! What cannot be read changes the answer as little as possible: a backend that cannot be read
//! at the first look runs the job, as before this rule (an outage must not stall a run); a
//! heartbeat that cannot be read (the config store is down) holds, and so does an unreadable
//! backend once holding, since an agent was running the job a moment ago: the hold ends when
//! they answer again.
//!
//! The agent running the job meanwhile records its outcome as usual; its ack on the closed
//! channel fails (only logged) or is ignored by the broker: the copy the broker redelivered is
//! the one acknowledged, by whichever agent holds it once the outcome is there.

use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::JobLoop;
use crate::model::{Job, status};

/// What the rule decided for a redelivered job.
pub(super) enum Redelivered {
    /// Run it; the job's record as read, if any.
    Run(Option<Job>),
    /// It has an outcome: acknowledge, do not run.
    Done(Job),
    /// This agent was told to stop while holding it: hand it back.
    Stopped,
}

/// How a look at the job ended.
enum Look {
    Decided(Redelivered),
    /// Still running under `agent`, alive: hold on.
    Hold {
        agent: String,
    },
    /// Something could not be read while holding: hold on.
    Unreadable(String),
}

impl JobLoop<'_> {
    /// Applies the rule (module doc) to a redelivered job, holding it as long as it says.
    pub(super) async fn redelivered(&self, job_uuid: Uuid, cancel: &CancellationToken) -> Redelivered {
        let mut held_for: Option<String> = None;
        let mut unreadable_said = false;
        loop {
            match self.look(job_uuid, held_for.is_some()).await {
                Look::Decided(decision) => {
                    if let (Some(agent), Redelivered::Run(_)) = (&held_for, &decision) {
                        tracing::warn!(%job_uuid, %agent, "the agent running the held job is gone; running it here");
                        self.observer.note(&format!("job {job_uuid}: {agent} is gone; running the job here"));
                    }
                    return decision;
                }
                Look::Hold { agent } => {
                    if held_for.as_deref() != Some(agent.as_str()) {
                        tracing::info!(
                            %job_uuid, %agent,
                            "redelivered job is still running on another agent; holding it until that agent records \
                             its outcome or stops beating"
                        );
                        self.observer.note(&format!("job {job_uuid} is still running on {agent}; holding it"));
                        held_for = Some(agent);
                    }
                }
                Look::Unreadable(error) => {
                    if !unreadable_said {
                        tracing::warn!(%job_uuid, %error, "cannot look at the held job; still holding it");
                        unreadable_said = true;
                    }
                }
            }
            tokio::select! {
                biased;
                _ = cancel.cancelled() => return Redelivered::Stopped,
                () = tokio::time::sleep(self.options.hold_poll) => {}
            }
        }
    }

    async fn look(&self, job_uuid: Uuid, holding: bool) -> Look {
        let job = match self.backend.get_job(job_uuid).await {
            Ok(job) => job,
            Err(error) if holding => return Look::Unreadable(format!("the backend: {error}")),
            Err(error) => {
                tracing::warn!(%job_uuid, %error, "cannot read the redelivered job; running it");
                return Look::Decided(Redelivered::Run(None));
            }
        };
        let Some(job) = job else { return Look::Decided(Redelivered::Run(None)) };
        if status::is_final(&job.job_status) {
            return Look::Decided(Redelivered::Done(job));
        }
        if job.job_status != status::RUNNING {
            return Look::Decided(Redelivered::Run(Some(job)));
        }
        let agent = job.job_associated_agent.clone();
        match self.heartbeat.of(&agent).await {
            Ok(Some(beat)) if beat.job == Some(job_uuid) => Look::Hold { agent },
            Ok(_) => Look::Decided(Redelivered::Run(Some(job))),
            Err(error) => Look::Unreadable(format!("the heartbeat of {agent}: {error}")),
        }
    }
}
