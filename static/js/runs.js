// The runs panel: a page of runs, newest first (pager below), kept current by new_run,
// update_run_status and delete_run messages.

import { api, paths } from './api.js';
import { $, h, badge, shortId, formatTime, settle, renderPager, bindPager, liveLoader } from './dom.js';

const PAGE_SIZE = 10;

export class RunsPanel {
  constructor({ onSelect }) {
    this.list = $('#runs-list');
    this.empty = $('#runs-empty');
    this.pager = $('#runs-pager');
    this.totalLabel = $('#runs-total');
    this.onSelect = onSelect;
    this.page = 1;
    this.runs = [];
    this.total = 0;
    this.selected = null;
    this.loader = liveLoader(() => this.fetchPage());
    bindPager(this.pager, (delta) => { this.page += delta; this.load(); });
    this.list.addEventListener('click', (e) => {
      const button = e.target.closest('button[data-run]');
      if (button) this.onSelect(button.dataset.run);
    });
  }

  load() {
    return this.loader.load();
  }

  async fetchPage() {
    let answer = await api(paths.runs(this.page, PAGE_SIZE));
    if (!(answer.runs || []).length && this.page > 1) {
      this.page = Math.max(1, Math.ceil((answer.total || 0) / PAGE_SIZE));
      answer = await api(paths.runs(this.page, PAGE_SIZE));
    }
    this.runs = answer.runs || [];
    this.total = answer.total || 0;
    this.render();
  }

  render(fresh) {
    this.totalLabel.textContent = `${this.total} in all`;
    this.list.replaceChildren(...this.runs.map((run) => this.item(run, run.run_uuid === fresh)));
    if (fresh) settle(this.list);
    this.empty.hidden = this.runs.length > 0;
    renderPager(this.pager, this.page, PAGE_SIZE, this.total);
  }

  item(run, fresh) {
    const plural = (n, word) => `${n} ${word}${n === 1 ? '' : 's'}`;
    const jobs = [
      run.number_of_jobs != null ? plural(run.number_of_jobs, 'job') : '',
      run.number_of_agents != null ? plural(run.number_of_agents, 'agent') : '',
    ].filter(Boolean).join(' · ');
    return h('li', {},
      h('button', {
        type: 'button',
        class: fresh ? 'run-item fresh' : 'run-item',
        dataset: { run: run.run_uuid },
        'aria-current': run.run_uuid === this.selected ? 'true' : 'false',
        'aria-label': `Run ${run.run_uuid}, ${run.run_status || 'no status'}, ${formatTime(run.run_datetime)}`,
      },
      h('span', { class: 'rid' }, shortId(run.run_uuid)),
      badge(run.run_status || ''),
      h('span', { class: 'when' }, formatTime(run.run_datetime)),
      h('span', { class: 'jobs' }, jobs)));
  }

  select(runId) {
    this.selected = runId;
    for (const button of this.list.querySelectorAll('button[data-run]')) {
      button.setAttribute('aria-current', button.dataset.run === runId ? 'true' : 'false');
    }
  }

  added(run) {
    this.loader.touch();
    if (this.runs.some((r) => r.run_uuid === run.run_uuid)) return;
    this.total += 1;
    if (this.page === 1) {
      this.runs = [run, ...this.runs].slice(0, PAGE_SIZE);
      this.render(run.run_uuid);
      return;
    }
    // On a later page every run slid one place towards the older end: re-read the page
    // rather than show one that no longer matches its number.
    this.render();
    this.load().catch(() => {});
  }

  updated(run) {
    this.loader.touch();
    const i = this.runs.findIndex((r) => r.run_uuid === run.run_uuid);
    if (i < 0) return;
    this.runs[i] = run;
    this.render();
  }

  /** A run left: refill the page from the server rather than guess what slid in. */
  deleted(runId) {
    this.runs = this.runs.filter((r) => r.run_uuid !== runId);
    this.render();
    this.load().catch(() => {});
  }
}
