// The run view: status, cancel and delete, counts by status and progress (from the backend's
// `/api/runs/{id}/summary`, re-read shortly after each job change so the numbers are the
// backend's), the chart, and three tabs: jobs (a page, live), agents, outputs.
// The orchestrator's `/api/bot/runs/{id}` adds the queue and agent phases when it answers.

import { api, getOrNull, paths } from './api.js';
import { $, h, badge, setBadge, shortId, formatTime, formatShort, settle, ago, formatDuration, renderPager, bindPager, throttle, toast, liveLoader } from './dom.js';
import { RunChart, fineBucketSecs } from './chart.js';
import { OutputsPane } from './outputs.js';
import { confirmAction } from './dialogs.js';

const JOBS_PAGE = 20;
const STATUSES = ['Queued', 'Running', 'Success', 'Failed', 'Cancelled'];
const FINAL = new Set(['Success', 'Failed', 'Cancelled']);
const LIVE_RUN = new Set(['dispatching', 'running']);
const ORCHESTRATOR_POLL_MS = 3000;
const NO_AGENT = 'Unknown';
const LIVE_AGENT = new Set(['pending', 'running']);

export class RunView {
  constructor({ onSelectJob, onDeleted }) {
    this.onSelectJob = onSelectJob;
    this.onDeleted = onDeleted;
    this.view = $('#run-view');
    this.emptyNote = $('#run-empty');
    this.emptyText = this.emptyNote.textContent;
    this.jobsBody = $('#jobs-table tbody');
    this.jobsPager = $('#jobs-pager');
    this.agentsBody = $('#agents-table tbody');
    this.chart = new RunChart($('#run-chart'), $('#chart-text'));
    this.outputs = new OutputsPane();
    this.runId = null;
    this.run = null;
    this.summary = null;
    this.bot = null;
    this.botAvailable = true;
    this.botSettled = false;
    this.jobs = [];
    this.jobsTotal = 0;
    this.jobsPage = 1;
    this.selectedJob = null;
    this.tab = 'jobs';
    this.jobsLoader = liveLoader(() => this.fetchJobs());
    this.summaryLoader = liveLoader(() => this.fetchSummary());
    this.timelineLoader = liveLoader(() => this.fetchTimeline());
    this.refreshSummary = throttle(() => this.loadSummary().catch(() => {}), 250);
    this.refreshTimeline = throttle(() => this.loadTimeline().catch(() => {}), 5000);
    bindPager(this.jobsPager, (delta) => { this.jobsPage += delta; this.loadJobs(); });
    this.jobsBody.addEventListener('click', (e) => {
      const button = e.target.closest('button[data-job]');
      if (button) this.onSelectJob(this.runId, button.dataset.job);
    });
    this.agentsBody.addEventListener('click', (e) => {
      const button = e.target.closest('button[data-job]');
      if (button) this.onSelectJob(this.runId, button.dataset.job);
    });
    $('#run-cancel').addEventListener('click', () => this.cancel());
    $('#run-delete').addEventListener('click', () => this.remove());
    this.bindTabs();
    // Relative times ("5 s ago") and the live chart's right edge move with the clock.
    setInterval(() => { if (this.runId) { this.renderAgents(); this.chart.draw(); } }, 5000);
    setInterval(() => this.pollOrchestrator(), ORCHESTRATOR_POLL_MS);
  }

  bindTabs() {
    const tabs = [...document.querySelectorAll('.tabs [role="tab"]')];
    const choose = (tab) => {
      for (const t of tabs) {
        const on = t === tab;
        t.setAttribute('aria-selected', String(on));
        t.tabIndex = on ? 0 : -1;
        $(`#${t.getAttribute('aria-controls')}`).hidden = !on;
      }
      this.tab = tab.id.replace('tab-', '');
      if (this.tab === 'outputs' && this.runId) this.outputs.show(this.runId).catch(() => {});
    };
    for (const tab of tabs) {
      tab.addEventListener('click', () => choose(tab));
      tab.addEventListener('keydown', (e) => {
        const i = tabs.indexOf(tab);
        const next = e.key === 'ArrowRight' ? tabs[(i + 1) % tabs.length] : e.key === 'ArrowLeft' ? tabs[(i + tabs.length - 1) % tabs.length] : null;
        if (next) { e.preventDefault(); next.focus(); choose(next); }
      });
    }
  }

  /** Shows a run (null hides the view). */
  async show(runId) {
    if (runId !== this.runId) {
      this.runId = runId;
      this.run = null;
      this.summary = null;
      this.bot = null;
      this.botAvailable = true;
      this.botSettled = false;
      this.jobs = [];
      this.jobsPage = 1;
      this.jobsTotal = 0;
      this.chart.reset(null);
      this.outputs.clear();
      if (runId) {
        this.renderJobs();
        this.renderProgress();
        this.renderAgents();
        this.chart.draw();
      }
    }
    this.emptyNote.textContent = this.emptyText;
    this.view.hidden = !runId;
    this.emptyNote.hidden = Boolean(runId);
    if (!runId) return;
    await this.reload();
  }

  /** Re-reads everything shown (after a selection or a gap in the live stream). */
  async reload() {
    const runId = this.runId;
    if (!runId) return;
    const run = await getOrNull(paths.run(runId));
    if (runId !== this.runId) return;
    if (!run) {
      this.emptyNote.textContent = `Run ${runId} does not exist (any more).`;
      this.view.hidden = true;
      this.emptyNote.hidden = false;
      return;
    }
    this.run = run;
    this.chart.setRun(run);
    this.renderHeader();
    await Promise.all([
      this.loadSummary(),
      this.loadJobs(),
      this.loadTimeline(),
      this.outputs.show(runId),
    ]);
    this.pollOrchestrator();
  }

  loadSummary() {
    return this.summaryLoader.load();
  }

  async fetchSummary() {
    const runId = this.runId;
    if (!runId) return;
    const summary = await api(paths.summary(runId));
    if (runId !== this.runId) return;
    this.summary = summary;
    if (summary.run) { this.run = summary.run; this.chart.setRun(summary.run); this.renderHeader(); }
    this.renderProgress();
    this.renderAgents();
    this.reconcileChart(summary.counts || {});
  }

  /**
   * The backend's counts are the truth. A job's final status can reach the chart twice (the
   * script's final event, then the agent's recorded outcome) across a timeline load that
   * already counted it; when the chart's total drifts from the counts, it is fetched again.
   */
  reconcileChart(counts) {
    const t = this.chart.totals();
    const counted = t.success + t.failed + t.cancelled;
    const finished = (counts.Success || 0) + (counts.Failed || 0) + (counts.Cancelled || 0);
    if (counted !== finished) this.refreshTimeline();
  }

  loadJobs() {
    return this.jobsLoader.load();
  }

  async fetchJobs() {
    const runId = this.runId;
    if (!runId) return;
    const page = await api(paths.jobs(runId, this.jobsPage, JOBS_PAGE));
    if (runId !== this.runId) return;
    this.jobs = page.jobs || [];
    this.jobsTotal = page.total || 0;
    this.renderJobs();
  }

  loadTimeline() {
    return this.timelineLoader.load();
  }

  /** The chart's history; replaces what live messages added, so it is re-read when one
   * arrives while it is in flight (its answer may predate that message). */
  async fetchTimeline() {
    const runId = this.runId;
    if (!runId || !this.run) return;
    const startMs = new Date(this.run.run_datetime).getTime();
    const endMs = this.run.run_finished ? new Date(this.run.run_finished).getTime() : Date.now();
    const timeline = await api(paths.timeline(runId, fineBucketSecs((endMs - startMs) / 1000)));
    if (runId !== this.runId) return;
    this.chart.load(timeline);
    this.chart.draw();
  }

  async pollOrchestrator() {
    const runId = this.runId;
    if (!runId || !this.botAvailable || !this.run || !this.run.run_status) return;
    // Polled while the run or one of its agents is live; once the orchestrator itself says the
    // run ended and its agents are down, its answer no longer changes.
    if (this.bot && this.botSettled) return;
    try {
      const bot = await api(paths.botRun(runId));
      if (runId !== this.runId) return;
      this.bot = bot;
      this.botSettled = !LIVE_RUN.has(bot.status) && !(bot.agents || []).some((a) => LIVE_AGENT.has(a.phase));
    } catch {
      // No orchestrator here (or it forgot the run): the backend's view is enough.
      this.botAvailable = false;
      this.bot = null;
    }
    this.renderProgress();
    this.renderAgents();
    this.renderHeader();
  }

  status() {
    return (this.bot && this.bot.status) || (this.run && this.run.run_status) || '';
  }

  renderHeader() {
    const run = this.run;
    if (!run) return;
    $('#run-id').textContent = run.run_uuid;
    const status = this.status();
    setBadge($('#run-status'), status);
    const meta = [`started ${formatTime(run.run_datetime)}`];
    if (run.run_finished) meta.push(`finished ${formatTime(run.run_finished)}`);
    if (run.number_of_agents != null) meta.push(`${run.number_of_agents} agents`);
    if (run.number_of_jobs != null) meta.push(`${run.number_of_jobs} jobs`);
    $('#run-meta').textContent = meta.join(' · ');
    const detail = (this.bot && this.bot.detail) || run.run_detail;
    $('#run-detail').textContent = detail || '';
    $('#run-detail').hidden = !detail;
    $('#run-cancel').hidden = !LIVE_RUN.has(status);
  }

  renderProgress() {
    // The backend's summary is re-read after every job change; the orchestrator's counts (polled)
    // only stand in until it answers, never mixed with it (a stale `Queued` would linger).
    const counts = { ...((this.summary ? this.summary.counts : this.bot && this.bot.counts) || {}) };
    const recorded = this.summary ? this.summary.total_jobs : this.jobsTotal;
    const planned = (this.run && this.run.number_of_jobs) || 0;
    const total = Math.max(recorded || 0, planned);
    const n = (s) => counts[s] || 0;
    const statuses = [...STATUSES, ...Object.keys(counts).filter((s) => !STATUSES.includes(s))];
    $('#run-counts').replaceChildren(...statuses.map((s) => h('div', { dataset: { status: s } }, h('dt', {}, s), h('dd', {}, String(n(s))))));
    const finished = n('Success') + n('Failed') + n('Cancelled');
    const bar = $('#run-progress');
    const pct = (x) => (total ? `${(100 * x) / total}%` : '0%');
    bar.querySelector('.success').style.width = pct(n('Success'));
    bar.querySelector('.failed').style.width = pct(n('Failed'));
    bar.querySelector('.cancelled').style.width = pct(n('Cancelled'));
    bar.setAttribute('aria-valuemax', String(total));
    bar.setAttribute('aria-valuenow', String(finished));
    bar.setAttribute('aria-valuetext', `${finished} of ${total} jobs finished`);
    const parts = [`${finished} / ${total} finished`];
    if (finished) parts.push(`${n('Success')} succeeded`, `${n('Failed')} failed`);
    if (n('Success') + n('Failed')) parts.push(`${Math.round((100 * n('Success')) / (n('Success') + n('Failed')))}% success`);
    const started = this.run ? new Date(this.run.run_datetime).getTime() : NaN;
    const end = this.run && this.run.run_finished ? new Date(this.run.run_finished).getTime() : Date.now();
    const elapsed = (end - started) / 1000;
    if (LIVE_RUN.has(this.status()) && finished && total > finished && elapsed > 0) {
      parts.push(`about ${formatDuration(((total - finished) * elapsed) / finished)} left`);
    }
    const text = $('#run-progress-text');
    text.textContent = parts.join(' · ');
    text.dataset.finished = String(finished);
    text.dataset.total = String(total);
    const queue = LIVE_RUN.has(this.status()) && this.bot && this.bot.queue;
    $('#run-queue').hidden = !queue;
    if (queue) $('#run-queue').textContent = `Queue: ${queue.ready ?? '?'} ready · ${queue.consumers ?? '?'} consumers`;
  }

  renderJobs(fresh) {
    $('#jobs-total').textContent = this.jobsTotal ? `(${this.jobsTotal})` : '';
    this.jobsBody.replaceChildren(...this.jobs.map((job) => this.jobRow(job, job.job_uuid === fresh)));
    if (fresh) settle(this.jobsBody);
    $('#jobs-empty').hidden = this.jobs.length > 0;
    renderPager(this.jobsPager, this.jobsPage, JOBS_PAGE, this.jobsTotal);
  }

  jobRow(job, fresh) {
    return h('tr', { dataset: { job: job.job_uuid }, class: fresh ? 'fresh' : '', 'aria-selected': job.job_uuid === this.selectedJob ? 'true' : 'false' },
      h('td', {}, job.job_index ?? ''),
      h('td', {}, h('button', { type: 'button', class: 'link', dataset: { job: job.job_uuid }, 'aria-label': `Job ${job.job_uuid}, ${job.job_status}` },
        h('code', {}, shortId(job.job_uuid)))),
      h('td', {}, job.job_associated_agent || ''),
      h('td', {}, badge(job.job_status)),
      h('td', { title: formatTime(job.job_datetime) }, formatShort(job.job_datetime)),
      h('td', { title: formatTime(job.job_finished) }, formatShort(job.job_finished)),
      h('td', {}, job.job_attempts ?? ''));
  }

  selectJob(jobId) {
    this.selectedJob = jobId;
    for (const row of this.jobsBody.querySelectorAll('tr[data-job]')) {
      row.setAttribute('aria-selected', row.dataset.job === jobId ? 'true' : 'false');
    }
  }

  renderAgents() {
    // Jobs no agent took (queued, or closed by a cancel) are recorded under `Unknown`: not an
    // agent, so not a row (the orchestrator's view leaves it out too).
    const fromBackend = ((this.summary && this.summary.agents) || []).filter((a) => a.agent !== NO_AGENT);
    const fromBot = (this.bot && this.bot.agents) || [];
    const byName = new Map();
    for (const a of fromBot) {
      const name = a.agent || (a.pod_index != null ? `agent-${a.pod_index}` : '?');
      byName.set(name, { agent: name, phase: a.phase, jobs_taken: a.jobs_taken, succeeded: a.succeeded, failed: a.failed, current_job: a.current_job, last_seen: a.last_seen });
    }
    for (const a of fromBackend) {
      byName.set(a.agent, { ...(byName.get(a.agent) || {}), ...a, phase: byName.get(a.agent)?.phase });
    }
    const agents = [...byName.values()].sort((a, b) => a.agent.localeCompare(b.agent, undefined, { numeric: true }));
    $('#agents-total').textContent = agents.length ? `(${agents.length})` : '';
    this.agentsBody.replaceChildren(...agents.map((a) => h('tr', { dataset: { agent: a.agent } },
      h('td', { dataset: { col: 'agent' } }, a.agent),
      h('td', { dataset: { col: 'phase' } }, a.phase || (a.current_job ? 'working' : '—')),
      h('td', { dataset: { col: 'jobs-taken' } }, a.jobs_taken ?? 0),
      h('td', { dataset: { col: 'succeeded' } }, a.succeeded ?? 0),
      h('td', { dataset: { col: 'failed' } }, a.failed ?? 0),
      h('td', { dataset: { col: 'current-job' } }, a.current_job
        ? h('button', { type: 'button', class: 'link', dataset: { job: a.current_job }, 'aria-label': `Job ${a.current_job}` }, h('code', {}, shortId(a.current_job)))
        : '—'),
      h('td', { dataset: { col: 'last-seen' } }, a.last_seen
        ? h('time', { datetime: a.last_seen, title: formatTime(a.last_seen) }, ago(a.last_seen))
        : '—'))));
    $('#agents-empty').hidden = agents.length > 0;
  }

  // ---- live messages -------------------------------------------------------------------

  runUpdated(run) {
    if (run.run_uuid !== this.runId) return;
    const wasLive = LIVE_RUN.has(this.status());
    this.run = run;
    this.chart.setRun(run);
    if (this.bot && run.run_status) this.bot.status = run.run_status;
    this.renderHeader();
    this.renderProgress();
    this.refreshSummary();
    if (wasLive && !LIVE_RUN.has(run.run_status)) {
      this.refreshTimeline.now();
      // Read the orchestrator's final word (agent phases, detail) once more.
      this.botSettled = false;
      this.pollOrchestrator();
    }
  }

  jobAdded(job) {
    if (job.run_uuid !== this.runId) return;
    this.jobsLoader.touch();
    this.summaryLoader.touch();
    if (!this.jobs.some((j) => j.job_uuid === job.job_uuid)) {
      this.jobsTotal += 1;
      if (this.jobsPage === 1) this.jobs = [job, ...this.jobs].slice(0, JOBS_PAGE);
      this.renderJobs(job.job_uuid);
    }
    if (FINAL.has(job.job_status)) this.countFinished(job);
    this.refreshSummary();
  }

  jobUpdated(job) {
    if (job.run_uuid !== this.runId) return;
    this.jobsLoader.touch();
    this.summaryLoader.touch();
    const i = this.jobs.findIndex((j) => j.job_uuid === job.job_uuid);
    if (i >= 0) {
      this.jobs[i] = job;
      const row = this.jobsBody.querySelector(`tr[data-job="${CSS.escape(job.job_uuid)}"]`);
      if (row) row.replaceWith(this.jobRow(job, false));
    }
    if (FINAL.has(job.job_status)) this.countFinished(job);
    this.refreshSummary();
  }

  countFinished(job) {
    this.timelineLoader.touch();
    const at = job.job_finished ? new Date(job.job_finished).getTime() : Date.now();
    this.chart.addFinished(job.job_uuid, job.job_status, at);
    this.chart.draw();
  }

  async cancel() {
    const runId = this.runId;
    const ok = await confirmAction({
      title: 'Cancel this run?',
      text: `Run ${runId}: queued jobs will not start, running jobs are stopped and marked Cancelled.`,
      confirm: 'Cancel run',
    });
    if (!ok) return;
    try {
      await api(paths.cancel(runId), { method: 'POST' });
      toast(`Run ${shortId(runId)} is being cancelled.`);
      this.refreshSummary();
    } catch (error) {
      toast(`Cancel failed: ${error.detail || error.message}`, { error: true });
    }
  }

  async remove() {
    const runId = this.runId;
    const ok = await confirmAction({
      title: 'Delete this run?',
      text: `Run ${runId} and all its jobs, events, logs and outputs will be deleted. This cannot be undone.`,
      confirm: 'Delete run',
    });
    if (!ok) return;
    try {
      await api(paths.run(runId), { method: 'DELETE' });
      toast(`Run ${shortId(runId)} deleted.`);
      this.onDeleted(runId);
    } catch (error) {
      toast(`Delete failed: ${error.detail || error.message}`, { error: true });
    }
  }
}
