// The job panel: the job's fields, its events (newest first, live) and its captured logs
// (`/api/jobs/{id}/logs`; not streamed, so re-read every 2 s while the job runs and once
// when it ends).

import { api, getOrNull, paths } from './api.js';
import { $, h, badge, setBadge, formatTime, settle, liveLoader } from './dom.js';

const FINAL = new Set(['Success', 'Failed', 'Cancelled']);
const LOG_POLL_MS = 2000;

export class JobView {
  constructor() {
    this.view = $('#job-view');
    this.emptyNote = $('#job-empty');
    this.emptyText = this.emptyNote.textContent;
    this.list = $('#events-list');
    this.logs = $('#job-logs');
    this.jobId = null;
    this.job = null;
    this.events = [];
    this.loader = liveLoader(() => this.fetchAll());
    $('#logs-refresh').addEventListener('click', () => this.loadLogs());
    setInterval(() => {
      if (this.job && !FINAL.has(this.job.job_status)) this.loadLogs().catch(() => {});
    }, LOG_POLL_MS);
  }

  async show(jobId) {
    if (jobId !== this.jobId) {
      this.jobId = jobId;
      this.job = null;
      this.events = [];
      this.logs.textContent = '';
    }
    this.emptyNote.textContent = this.emptyText;
    this.view.hidden = !jobId;
    this.emptyNote.hidden = Boolean(jobId);
    if (jobId) await this.reload();
  }

  reload() {
    return this.loader.load();
  }

  async fetchAll() {
    const jobId = this.jobId;
    if (!jobId) return;
    const job = await getOrNull(paths.job(jobId));
    if (jobId !== this.jobId) return;
    if (!job) {
      this.emptyNote.textContent = `Job ${jobId} does not exist (any more).`;
      this.view.hidden = true;
      this.emptyNote.hidden = false;
      return;
    }
    this.job = job;
    this.renderJob();
    const [events] = await Promise.all([api(paths.events(jobId)), this.loadLogs()]);
    if (jobId !== this.jobId) return;
    this.events = Array.isArray(events) ? events : events.events || [];
    this.renderEvents();
  }

  async loadLogs() {
    const jobId = this.jobId;
    if (!jobId) return;
    const answer = await api(paths.logs(jobId));
    if (jobId !== this.jobId) return;
    const atBottom = this.logs.scrollTop + this.logs.clientHeight >= this.logs.scrollHeight - 4;
    this.logs.textContent = answer.logs || '(no output captured)';
    if (atBottom) this.logs.scrollTop = this.logs.scrollHeight;
  }

  renderJob() {
    const job = this.job;
    $('#job-id').textContent = job.job_uuid;
    setBadge($('#job-status'), job.job_status);
    const rows = [
      ['Run', job.run_uuid],
      ['Index', job.job_index],
      ['Agent', job.job_associated_agent],
      ['Started', formatTime(job.job_datetime)],
      ['Finished', formatTime(job.job_finished)],
      ['Attempts', job.job_attempts],
    ].filter(([, v]) => v !== null && v !== undefined && v !== '');
    $('#job-meta').replaceChildren(...rows.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, String(v))]));
    $('#job-detail').textContent = job.job_detail || '';
    $('#job-detail').hidden = !job.job_detail;
  }

  renderEvents(fresh) {
    $('#events-total').textContent = this.events.length ? `(${this.events.length})` : '';
    this.list.replaceChildren(...this.events.map((e) => h('li', { dataset: { event: e.event_uuid }, class: e.event_uuid === fresh ? 'fresh' : '' },
      h('div', { class: 'event-head' }, badge(e.event_status), h('time', { datetime: e.event_datetime }, formatTime(e.event_datetime))),
      h('div', { class: 'event-text' }, e.event_content))));
    $('#events-empty').hidden = this.events.length > 0;
    if (fresh) settle(this.list);
  }

  // ---- live messages -------------------------------------------------------------------

  jobUpdated(job) {
    if (job.job_uuid !== this.jobId) return;
    this.loader.touch();
    const ended = this.job && !FINAL.has(this.job.job_status) && FINAL.has(job.job_status);
    this.job = job;
    this.renderJob();
    if (ended) this.loadLogs().catch(() => {});
  }

  eventAdded(event) {
    if (event.job_uuid !== this.jobId) return;
    this.loader.touch();
    if (this.events.some((e) => e.event_uuid === event.event_uuid)) return;
    this.events = [event, ...this.events];
    this.renderEvents(event.event_uuid);
  }

  eventUpdated(event) {
    if (event.job_uuid !== this.jobId) return;
    this.loader.touch();
    const i = this.events.findIndex((e) => e.event_uuid === event.event_uuid);
    if (i < 0) return this.eventAdded(event);
    this.events[i] = event;
    this.renderEvents();
  }
}
