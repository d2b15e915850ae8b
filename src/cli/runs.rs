//! `armada runs list | show ID | follow ID | cancel ID | delete ID`: runs on a running server.
//! Exit code 1 when the server refuses (unknown run, deleting an active run), 2 for a missing
//! token, 3 when the server cannot be reached.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use futures::StreamExt;
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use uuid::Uuid;

use super::client::{ApiClient, ServerArgs, ServerError, is_status};
use super::display::{between, duration, jobs_line, plural, table, utc};
use crate::infra::launcher::AgentPhase;
use crate::model::{Run, RunSummary};
use crate::roles::orchestrator::{AgentView, RunView};
use crate::settings::LogFormat;

#[derive(Debug, Args)]
pub struct RunsArgs {
    #[command(subcommand)]
    command: RunsCommand,
}

#[derive(Debug, Subcommand)]
enum RunsCommand {
    /// Runs, newest first: id, start, status, jobs done / total, failed jobs.
    List {
        #[command(flatten)]
        server: ServerArgs,
        /// Which page (from 1).
        #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
        page: u32,
        /// Runs per page (1 to 100).
        #[arg(long, value_name = "N", default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=100))]
        page_size: u32,
    },
    /// One run: status, job counts, queue, and each agent (phase, jobs taken, current job, last seen).
    Show {
        run_id: Uuid,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Follow a run live until it ends, as `armada launch --follow` does.
    Follow {
        run_id: Uuid,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Cancel a run: its agents stop, its queue is deleted, its open jobs become Cancelled.
    Cancel {
        run_id: Uuid,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Delete a run that has ended, with its jobs, events, logs and outputs.
    Delete {
        run_id: Uuid,
        #[command(flatten)]
        server: ServerArgs,
    },
}

pub async fn run(args: RunsArgs, log_format: Option<LogFormat>) -> anyhow::Result<ExitCode> {
    crate::observability::init_logging_at(log_format.unwrap_or_default(), "warn");
    match args.command {
        RunsCommand::List { server, page, page_size } => list(&ApiClient::from_args(&server)?, page, page_size).await,
        RunsCommand::Show { run_id, server } => show(&ApiClient::from_args(&server)?, run_id).await,
        RunsCommand::Follow { run_id, server } => super::follow::follow(&ApiClient::from_args(&server)?, run_id).await,
        RunsCommand::Cancel { run_id, server } => cancel(&ApiClient::from_args(&server)?, run_id).await,
        RunsCommand::Delete { run_id, server } => delete(&ApiClient::from_args(&server)?, run_id).await,
    }
}

#[derive(Deserialize)]
struct RunsPage {
    runs: Vec<Run>,
    total: u64,
}

async fn list(client: &ApiClient, page: u32, page_size: u32) -> anyhow::Result<ExitCode> {
    let answer: RunsPage = client.get(&format!("/api/runs?page={page}&page_size={page_size}")).await?;
    // Each run's counts; a few at a time, in the list's order.
    let summaries: Vec<Option<RunSummary>> =
        futures::stream::iter(&answer.runs)
            .map(|run| async move {
                client.get_optional::<RunSummary>(&format!("/api/runs/{}/summary", run.run_uuid)).await
            })
            .buffered(8)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<anyhow::Result<_>>()?;
    let rows: Vec<Vec<String>> = answer
        .runs
        .iter()
        .zip(&summaries)
        .map(|(run, summary)| {
            let total = summary.as_ref().map_or(0, |s| s.total_jobs.max(run.number_of_jobs.unwrap_or(0).max(0) as u64));
            let finished = summary.as_ref().map_or(0, RunSummary::finished);
            let failed = summary.as_ref().map_or(0, |s| s.count(crate::model::status::FAILED));
            vec![
                run.run_uuid.to_string(),
                utc(run.run_datetime),
                run.run_status.map_or("-", |s| s.as_str()).to_owned(),
                format!("{finished}/{total}"),
                failed.to_string(),
            ]
        })
        .collect();
    if rows.is_empty() {
        println!(
            "{}",
            if answer.total == 0 { "no runs yet".to_owned() } else { format!("page {page} is past the last run") }
        );
    } else {
        println!("{}", table(&["RUN", "STARTED (UTC)", "STATUS", "JOBS DONE", "FAILED"], &rows));
    }
    let pages = answer.total.div_ceil(u64::from(page_size)).max(1);
    let mut footer = format!("page {page} of {pages} ({})", plural(answer.total, "run"));
    if u64::from(page) < pages {
        footer.push_str(&format!("; next: armada runs list --page {}{}", page + 1, client.server_flag()));
    }
    println!("{footer}");
    Ok(ExitCode::SUCCESS)
}

/// The orchestrator's view of the run; from the backend's summary when this server has no
/// orchestrator (its agents' phases and queue are then unknown).
async fn run_view(client: &ApiClient, run_id: Uuid) -> anyhow::Result<RunView> {
    if let Some(view) = client.get_optional::<RunView>(&format!("/bot/runs/{run_id}")).await? {
        return Ok(view);
    }
    match client.get_optional::<RunSummary>(&format!("/api/runs/{run_id}/summary")).await? {
        Some(summary) => Ok(view_from_summary(summary)),
        None => Err(ServerError { status: StatusCode::NOT_FOUND, detail: format!("run {run_id} not found") }.into()),
    }
}

fn view_from_summary(summary: RunSummary) -> RunView {
    let finished_jobs = summary.finished();
    let run = summary.run;
    RunView {
        run_uuid: run.run_uuid,
        status: run.run_status,
        detail: run.run_detail,
        number_of_agents: run.number_of_agents,
        number_of_jobs: run.number_of_jobs.or(Some(summary.total_jobs as i64)),
        counts: summary.counts,
        finished_jobs,
        started: run.run_datetime,
        finished: run.run_finished,
        queue: None,
        agents: summary
            .agents
            .into_iter()
            .filter(|agent| agent.agent != "Unknown")
            .map(|agent| AgentView {
                pod_index: None,
                agent: agent.agent,
                phase: None,
                detail: None,
                pid: None,
                started_at: None,
                finished_at: None,
                jobs_taken: agent.jobs_taken,
                succeeded: agent.succeeded,
                failed: agent.failed,
                current_job: agent.current_job,
                last_seen: agent.last_seen,
            })
            .collect(),
    }
}

async fn show(client: &ApiClient, run_id: Uuid) -> anyhow::Result<ExitCode> {
    print!("{}", render_view(&run_view(client, run_id).await?));
    Ok(ExitCode::SUCCESS)
}

fn phase_name(phase: Option<AgentPhase>) -> &'static str {
    match phase {
        None => "-",
        Some(AgentPhase::Pending) => "pending",
        Some(AgentPhase::Running) => "running",
        Some(AgentPhase::Succeeded) => "succeeded",
        Some(AgentPhase::Failed) => "failed",
        Some(AgentPhase::Stopped) => "stopped",
    }
}

/// `armada runs show`'s text.
fn render_view(view: &RunView) -> String {
    let total = view.number_of_jobs.map_or_else(|| view.counts.values().sum(), |n| n.max(0) as u64);
    let mut text = format!("run       {}\n", view.run_uuid);
    text.push_str(&format!(
        "status    {}\n",
        view.status.map_or("- (no lifecycle: recorded through the API)", |s| s.as_str())
    ));
    if let Some(detail) = &view.detail {
        text.push_str(&format!("detail    {detail}\n"));
    }
    let finished = match view.finished {
        Some(end) => format!(", finished {} UTC (took {})", utc(end), duration(between(view.started, end))),
        None => String::new(),
    };
    text.push_str(&format!("started   {} UTC{finished}\n", utc(view.started)));
    text.push_str(&format!("jobs      {}\n", jobs_line(&view.counts, total)));
    let by_status: Vec<String> = view.counts.iter().map(|(status, n)| format!("{status} {n}")).collect();
    if !by_status.is_empty() {
        text.push_str(&format!("          by status: {}\n", by_status.join(", ")));
    }
    if let Some(queue) = view.queue {
        let unacked = queue.unacked.map(|n| format!(", {n} delivered")).unwrap_or_default();
        text.push_str(&format!(
            "queue     {} waiting{unacked}, {}\n",
            queue.ready,
            plural(queue.consumers.into(), "consumer")
        ));
    }
    let agents = view.number_of_agents.map_or(view.agents.len() as u64, |n| n.max(0) as u64);
    text.push_str(&format!("agents    {agents}\n"));
    if !view.agents.is_empty() {
        let rows: Vec<Vec<String>> = view
            .agents
            .iter()
            .map(|agent| {
                vec![
                    agent.agent.clone(),
                    phase_name(agent.phase).to_owned(),
                    agent.jobs_taken.to_string(),
                    agent.succeeded.to_string(),
                    agent.failed.to_string(),
                    agent.current_job.map_or("-".to_owned(), |job| job.to_string()),
                    agent.last_seen.map_or("-".to_owned(), utc),
                ]
            })
            .collect();
        let header = ["AGENT", "PHASE", "JOBS TAKEN", "SUCCEEDED", "FAILED", "CURRENT JOB", "LAST SEEN (UTC)"];
        for line in table(&header, &rows).lines() {
            text.push_str(&format!("  {line}\n"));
        }
        for agent in view.agents.iter().filter(|a| a.detail.is_some()) {
            text.push_str(&format!("  {}: {}\n", agent.agent, agent.detail.as_deref().unwrap_or_default()));
        }
    }
    text
}

async fn cancel(client: &ApiClient, run_id: Uuid) -> anyhow::Result<ExitCode> {
    let view: RunView = match client.call(Method::POST, &format!("/bot/runs/{run_id}/cancel")).await {
        Ok(view) => view,
        Err(error) if is_status(&error, StatusCode::CONFLICT) => {
            return Err(error.context(format!("cannot cancel run {run_id}")));
        }
        Err(error) => return Err(error),
    };
    let total = view.number_of_jobs.map_or_else(|| view.counts.values().sum(), |n| n.max(0) as u64);
    let stopped = view.agents.iter().filter(|a| a.phase.is_some_and(AgentPhase::is_final)).count();
    println!("run {run_id} cancelled: {}", jobs_line(&view.counts, total));
    println!("  agents ended: {stopped} of {}; its queue is deleted", view.agents.len());
    Ok(ExitCode::SUCCESS)
}

async fn delete(client: &ApiClient, run_id: Uuid) -> anyhow::Result<ExitCode> {
    match client.call::<serde_json::Value>(Method::DELETE, &format!("/api/runs/{run_id}")).await {
        Ok(_) => {
            println!("run {run_id} deleted, with its jobs, events, logs and outputs");
            Ok(ExitCode::SUCCESS)
        }
        Err(error) if is_status(&error, StatusCode::CONFLICT) => Err(error.context(format!(
            "cannot delete run {run_id} while it is active; cancel it first: armada runs cancel {run_id}{}",
            client.server_flag()
        ))),
        Err(error) => Err(error),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::model::{AgentSummary, RunStatus, Timestamp};

    #[test]
    fn a_summary_shows_like_a_run_view() {
        let started = Timestamp::parse("2026-02-24T10:30:00Z").expect("time");
        let summary = RunSummary {
            run: Run {
                run_uuid: Uuid::nil(),
                run_datetime: started,
                run_status: Some(RunStatus::Completed),
                number_of_agents: Some(1),
                number_of_jobs: Some(3),
                run_detail: Some("3 jobs: 2 succeeded, 1 failed".into()),
                run_finished: Timestamp::parse("2026-02-24T10:30:14Z").ok(),
            },
            counts: BTreeMap::from([("Success".into(), 2), ("Failed".into(), 1)]),
            total_jobs: 3,
            agents: vec![AgentSummary {
                agent: "agent-0".into(),
                jobs_taken: 3,
                succeeded: 2,
                failed: 1,
                current_job: None,
                last_seen: Some(started),
            }],
        };
        let text = render_view(&view_from_summary(summary));
        assert!(text.contains("status    completed\n"), "{text}");
        assert!(
            text.contains("started   2026-02-24 10:30:00 UTC, finished 2026-02-24 10:30:14 UTC (took 14.0s)"),
            "{text}"
        );
        assert!(text.contains("jobs      3 jobs: 2 succeeded, 1 failed\n"), "{text}");
        assert!(
            text.contains("  agent-0  -      3           2          1       -            2026-02-24 10:30:00"),
            "{text}"
        );
    }
}
