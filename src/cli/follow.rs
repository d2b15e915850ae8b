//! Following a run to its end (`armada launch --follow`, `armada runs follow`): a progress bar
//! on a terminal, plain lines at most every 2 s otherwise, then the summary and the exit code.
//!
//! The counts shown are always the server's (`GET /bot/runs/{id}`), so nothing is counted twice:
//! the backend's live stream (`WS /ws/events`) says *when* to re-read — within 250 ms of any
//! change to this run — and the run is re-read every 2 s anyway, so a lost message or a stream
//! that cannot connect only makes the display slower. Failed jobs' reasons are taken from the
//! stream as they come, and looked up at the end for those it did not show.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

use futures::StreamExt;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::time::Instant;
use uuid::Uuid;

use super::client::{ApiClient, ServerError, ServerUnreachable};
use super::display::{between, duration, jobs_line, plural};
use crate::clients::{BackendClient, LiveItem};
use crate::model::{Job, RunStatus, status};
use crate::records::hub::kind;
use crate::roles::orchestrator::RunView;

/// The run is re-read at least this often.
const RESYNC: Duration = Duration::from_secs(2);
/// And at most this often, however busy the live stream is.
const MIN_FETCH_GAP: Duration = Duration::from_millis(250);
/// Plain progress lines are printed at most this often.
const LINE_EVERY: Duration = Duration::from_secs(2);
/// How long the server may stay unreachable while following before giving up (exit code 3).
const LOST_SERVER_LIMIT: Duration = Duration::from_secs(30);
/// Failed jobs whose reasons the summary shows.
const FAILURES_SHOWN: usize = 5;
/// Pages of jobs read at the end to find failures the stream did not show.
const FAILURE_PAGES: u32 = 20;

/// Follows `run_id` until it ends and prints its summary. Exit code 0 when every job
/// succeeded, 1 when one `Failed` or the run failed or was cancelled, 130 on Ctrl-C (the run
/// goes on).
pub async fn follow(client: &ApiClient, run_id: Uuid) -> anyhow::Result<ExitCode> {
    let mut live = match client.backend()?.live().await {
        Ok(stream) => stream,
        Err(error) => {
            eprintln!("armada: the live stream is unavailable ({error}); re-reading the run every 2 s instead");
            futures::stream::pending().boxed()
        }
    };
    let mut view = fetch_view(client, run_id).await?;
    if view.status.is_none() {
        anyhow::bail!(
            "run {run_id} has no lifecycle to follow (it was recorded through the monitoring API); see it with \
             `armada runs show {run_id}`"
        );
    }
    let total = view.number_of_jobs.map_or_else(|| view.counts.values().sum(), |n| n.max(0) as u64);
    let mut progress = Progress::new(total, view.finished_jobs);
    let mut failures: BTreeMap<Uuid, Job> = BTreeMap::new();
    let mut interrupt = std::pin::pin!(tokio::signal::ctrl_c());
    let mut live_open = true;
    let mut last_fetch = Instant::now();
    let mut next_fetch = last_fetch + RESYNC;
    let run_key = run_id.to_string();

    progress.show(&view, false);
    while !view.status.is_some_and(RunStatus::is_final) {
        tokio::select! {
            _ = &mut interrupt => {
                progress.abandon();
                let flag = client.server_flag();
                println!(
                    "stopped following run {run_id}; it goes on.\n  follow it again: armada runs follow {run_id}{flag}\n  \
                     cancel it:       armada runs cancel {run_id}{flag}"
                );
                return Ok(ExitCode::from(130));
            }
            item = live.next(), if live_open => match item {
                Some(LiveItem::Message { kind: message, data }) => {
                    if data.get("run_uuid").and_then(|v| v.as_str()) != Some(run_key.as_str()) {
                        continue;
                    }
                    if message == kind::UPDATE_JOB_STATUS
                        && let Ok(job) = serde_json::from_value::<Job>(data)
                        && job.job_status == status::FAILED
                    {
                        failures.insert(job.job_uuid, job);
                    }
                    next_fetch = next_fetch.min(last_fetch + MIN_FETCH_GAP);
                }
                Some(LiveItem::Gap) => next_fetch = Instant::now(),
                None => live_open = false,
            },
            _ = tokio::time::sleep_until(next_fetch) => {
                view = refetch(client, run_id, &mut progress).await?;
                last_fetch = Instant::now();
                next_fetch = last_fetch + RESYNC;
                progress.show(&view, false);
            }
        }
    }
    progress.finish(&view);
    let failed = view.counts.get(status::FAILED).copied().unwrap_or_default();
    if (failures.len() as u64) < failed && failures.len() < FAILURES_SHOWN {
        find_failures(client, run_id, failed, &mut failures).await;
    }
    print_summary(client, &view, total, failures.into_values().collect());
    let clean = view.status == Some(RunStatus::Completed)
        && failed == 0
        && view.counts.get(status::CANCELLED).copied().unwrap_or_default() == 0;
    Ok(if clean { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// `GET /bot/runs/{id}`; a run that is not there is an error naming it.
pub async fn fetch_view(client: &ApiClient, run_id: Uuid) -> anyhow::Result<RunView> {
    match client.get_optional::<RunView>(&format!("/bot/runs/{run_id}")).await? {
        Some(view) => Ok(view),
        None => anyhow::bail!("run {run_id} not found on {} (deleted, or another server's?)", client.base_url()),
    }
}

/// Re-reads the run, riding out a server that is briefly away (restarting, overloaded) for up
/// to [`LOST_SERVER_LIMIT`].
async fn refetch(client: &ApiClient, run_id: Uuid, progress: &mut Progress) -> anyhow::Result<RunView> {
    let lost = Instant::now();
    let mut said = false;
    loop {
        let error = match fetch_view(client, run_id).await {
            Ok(view) => return Ok(view),
            Err(error) => error,
        };
        let transient = error.is::<ServerUnreachable>()
            || error.downcast_ref::<ServerError>().is_some_and(|e| e.status.is_server_error());
        if !transient || lost.elapsed() >= LOST_SERVER_LIMIT {
            progress.abandon();
            return Err(error.context(format!("lost run {run_id} while following it")));
        }
        if !said {
            said = true;
            progress.note(&format!("the server does not answer ({error:#}); trying again for 30 s"));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Pages through the run's jobs (newest first) for failed ones until enough are known.
async fn find_failures(client: &ApiClient, run_id: Uuid, failed: u64, failures: &mut BTreeMap<Uuid, Job>) {
    #[derive(serde::Deserialize)]
    struct JobsPage {
        jobs: Vec<Job>,
    }
    for page in 1..=FAILURE_PAGES {
        let path = format!("/api/jobs?run_uuid={run_id}&page={page}&page_size=100");
        let Ok(answer) = client.get::<JobsPage>(&path).await else { return };
        let last_page = answer.jobs.len() < 100;
        failures.extend(answer.jobs.into_iter().filter(|j| j.job_status == status::FAILED).map(|j| (j.job_uuid, j)));
        if last_page || failures.len() >= FAILURES_SHOWN || failures.len() as u64 >= failed {
            return;
        }
    }
}

fn print_summary(client: &ApiClient, view: &RunView, total: u64, mut failures: Vec<Job>) {
    let run_id = view.run_uuid;
    let took = view.finished.map(|end| duration(between(view.started, end))).unwrap_or_else(|| "?".into());
    let status = view.status.map_or("ended", RunStatus::as_str);
    println!("run {run_id} {status} after {took}");
    if view.status != Some(RunStatus::Completed)
        && let Some(detail) = &view.detail
    {
        println!("  reason: {detail}");
    }
    println!("{}", jobs_line(&view.counts, total));
    let failed = view.counts.get(status::FAILED).copied().unwrap_or_default();
    if failed > 0 {
        failures.sort_by_key(|job| job.job_index);
        println!("failed jobs ({failed}):");
        for job in failures.iter().take(FAILURES_SHOWN) {
            let which = match job.job_index {
                Some(index) => format!("job {}/{total}", index + 1),
                None => format!("job {}", job.job_uuid),
            };
            let reason = job.job_detail.as_deref().unwrap_or("no reason recorded");
            println!("  {which} on {} ({}): {reason}", job.job_associated_agent, job.job_uuid);
        }
        let shown = failures.len().min(FAILURES_SHOWN) as u64;
        if failed > shown {
            println!("  … and {} more", plural(failed - shown, "failed job"));
        }
    }
    let flag = client.server_flag();
    println!("details:   armada runs show {run_id}{flag}");
    println!("outputs:   armada outputs {run_id}{flag} --format csv");
    println!("dashboard: {}/#/runs/{run_id}", client.base_url());
}

/// Jobs per second since following began, and the time left at that rate.
struct Meter {
    since: Instant,
    finished_then: u64,
}

impl Meter {
    fn rate(&self, finished: u64) -> Option<f64> {
        let elapsed = self.since.elapsed().as_secs_f64();
        let done = finished.saturating_sub(self.finished_then);
        (elapsed >= 0.5 && done > 0).then(|| done as f64 / elapsed)
    }
}

/// What is drawn: a bar on a terminal, plain lines otherwise.
struct Progress {
    total: u64,
    meter: Meter,
    bar: Option<ProgressBar>,
    last_line: Option<(Instant, String)>,
}

impl Progress {
    fn new(total: u64, finished: u64) -> Self {
        let meter = Meter { since: Instant::now(), finished_then: finished };
        let bar = std::io::stdout().is_terminal().then(|| {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stdout());
            let style =
                ProgressStyle::with_template("{spinner:.green} [{bar:20.cyan/blue}] {pos}/{len} jobs  {wide_msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> ");
            bar.set_style(style);
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Self { total, meter, bar, last_line: None }
    }

    /// Draws the run's state; a plain line only when it changed and, unless `force`, at most
    /// every [`LINE_EVERY`].
    fn show(&mut self, view: &RunView, force: bool) {
        let count = |s: &str| view.counts.get(s).copied().unwrap_or_default();
        let finished = view.finished_jobs;
        let rate = self.meter.rate(finished);
        let pace = match rate {
            Some(rate) if finished >= self.total => format!("{rate:.1} jobs/s"),
            Some(rate) => {
                let left = self.total.saturating_sub(finished) as f64 / rate;
                // Whole seconds, rounded up: an estimate, not a stopwatch.
                let secs = left.min(1e7).ceil() as u64;
                let eta = if secs < 60 { format!("{secs}s") } else { duration(Duration::from_secs(secs)) };
                format!("{rate:.1} jobs/s · ETA {eta}")
            }
            None => "– jobs/s · ETA –".to_owned(),
        };
        let mut outcomes = format!("{} succeeded, {} failed", count(status::SUCCESS), count(status::FAILED));
        if count(status::CANCELLED) > 0 {
            outcomes.push_str(&format!(", {} cancelled", count(status::CANCELLED)));
        }
        let running = count(status::RUNNING);
        match &self.bar {
            Some(bar) => {
                bar.set_position(finished);
                // Short enough for 80 columns: what a glance needs.
                let (ok, failed) = (count(status::SUCCESS), count(status::FAILED));
                bar.set_message(format!("{ok} ok · {failed} failed · {pace}"));
            }
            None => {
                let text = format!("{finished}/{} jobs done ({outcomes}) · {running} running · {pace}", self.total);
                let due = match &self.last_line {
                    None => true,
                    Some((at, last)) => *last != text && (force || at.elapsed() >= LINE_EVERY),
                };
                if due {
                    println!("progress: {text}");
                    let _ = std::io::stdout().flush();
                    self.last_line = Some((Instant::now(), text));
                }
            }
        }
    }

    /// The last state, whatever the rate limit, then the bar leaves the screen to the summary.
    fn finish(&mut self, view: &RunView) {
        match self.bar.take() {
            Some(bar) => {
                bar.set_position(view.finished_jobs);
                bar.finish();
                // The bar leaves the cursor at the end of its line.
                println!();
            }
            None => self.show(view, true),
        }
    }

    fn note(&self, text: &str) {
        match &self.bar {
            Some(bar) => bar.println(format!("armada: {text}")),
            None => eprintln!("armada: {text}"),
        }
    }

    fn abandon(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.abandon();
        }
    }
}
