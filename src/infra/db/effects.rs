//! What a mutation leaves, whatever the engine: the record a create stores, the record an update
//! produces from the current one, and the newest bytes of a job's log. Each store does the IO;
//! these rules are written once so the stores cannot disagree on them.

use super::{JobUpdate, NewEvent, NewJob, NewOutput, NewRun};
use crate::model::{Event, Job, Output, Run, RunStatus, Timestamp};

impl NewRun {
    /// The run as stored by this create.
    pub fn to_run(&self) -> Run {
        Run {
            run_uuid: self.run_uuid,
            run_datetime: self.run_datetime,
            run_status: self.run_status,
            number_of_agents: self.number_of_agents,
            number_of_jobs: self.number_of_jobs,
            run_detail: None,
            run_finished: None,
        }
    }
}

impl NewJob {
    pub fn to_job(&self) -> Job {
        Job {
            job_uuid: self.job_uuid,
            run_uuid: self.run_uuid,
            job_datetime: self.job_datetime,
            job_associated_agent: self.job_associated_agent.clone(),
            job_status: self.job_status.clone(),
            job_index: self.job_index,
            job_attempts: None,
            job_detail: None,
            job_finished: None,
        }
    }
}

impl NewEvent {
    pub fn to_event(&self) -> Event {
        Event {
            event_uuid: self.event_uuid,
            event_content: self.event_content.clone(),
            job_uuid: self.job_uuid,
            event_datetime: self.event_datetime,
            event_status: self.event_status.clone(),
        }
    }
}

impl NewOutput {
    pub fn to_output(&self) -> Output {
        Output {
            output_uuid: self.output_uuid,
            run_uuid: self.run_uuid,
            job_uuid: self.job_uuid,
            data: self.data.clone(),
            timestamp: self.timestamp,
        }
    }
}

impl JobUpdate {
    /// `current` with the fields this update names; the others as they are.
    pub fn applied_to(&self, current: &Job) -> Job {
        let mut next = current.clone();
        if let Some(value) = &self.job_status {
            next.job_status = value.clone();
        }
        if let Some(value) = &self.job_associated_agent {
            next.job_associated_agent = value.clone();
        }
        if let Some(value) = self.job_attempts {
            next.job_attempts = Some(value);
        }
        if let Some(value) = &self.job_detail {
            next.job_detail = Some(value.clone());
        }
        if let Some(value) = self.job_finished {
            next.job_finished = Some(value);
        }
        next
    }
}

/// `current` with its new status (and detail, when given). Reaching a final status stamps
/// `run_finished` once, so a repeated identical update changes nothing.
pub fn updated_run(current: &Run, run_status: RunStatus, run_detail: Option<&str>) -> Run {
    let mut next = current.clone();
    next.run_status = Some(run_status);
    if let Some(detail) = run_detail {
        next.run_detail = Some(detail.to_string());
    }
    if run_status.is_final() && next.run_finished.is_none() {
        next.run_finished = Some(Timestamp::now());
    }
    next
}

/// Gathers a job's log from its chunks read newest first, keeping at most `max_bytes` (the newest).
pub struct LogTail {
    budget: usize,
    newest_first: Vec<String>,
}

impl LogTail {
    pub fn new(max_bytes: usize) -> Self {
        Self { budget: max_bytes, newest_first: Vec::new() }
    }

    /// False once the budget is spent: stop reading.
    pub fn wants_more(&self) -> bool {
        self.budget > 0
    }

    /// Takes the next older chunk (or the end of it that still fits).
    pub fn push(&mut self, text: String) {
        if text.len() <= self.budget {
            self.budget -= text.len();
            self.newest_first.push(text);
        } else {
            self.newest_first.push(tail(&text, self.budget).to_string());
            self.budget = 0;
        }
    }

    /// The gathered log, oldest first.
    pub fn finish(mut self) -> String {
        self.newest_first.reverse();
        self.newest_first.concat()
    }
}

/// The last `max_bytes` (or fewer, to stay on a character boundary) of `text`.
fn tail(text: &str, max_bytes: usize) -> &str {
    let mut start = text.len().saturating_sub(max_bytes);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_the_end_on_a_char_boundary() {
        assert_eq!(tail("hello", 3), "llo");
        assert_eq!(tail("hello", 10), "hello");
        assert_eq!(tail("héllo", 4), "llo");
        assert_eq!(tail("hé", 1), "");
    }

    #[test]
    fn a_log_tail_keeps_the_newest_bytes_in_order() {
        let mut log = LogTail::new(10);
        for chunk in ["third\n", "second line\n", "first line\n"] {
            if !log.wants_more() {
                break;
            }
            log.push(chunk.to_string());
        }
        assert!(!log.wants_more());
        assert_eq!(log.finish(), "ine\nthird\n");
        assert_eq!(LogTail::new(0).finish(), "");
    }

    #[test]
    fn a_final_run_status_stamps_finished_once() {
        let run = NewRun {
            run_uuid: uuid::Uuid::new_v4(),
            run_datetime: Timestamp::now(),
            run_status: Some(RunStatus::Running),
            number_of_agents: None,
            number_of_jobs: None,
        }
        .to_run();
        let failed = updated_run(&run, RunStatus::Failed, Some("why"));
        assert!(failed.run_finished.is_some());
        assert_eq!(updated_run(&failed, RunStatus::Failed, None), failed, "a repeat changes nothing");
        assert_eq!(updated_run(&run, RunStatus::Running, None), run);
    }
}
