// A run's outputs: the newest page as a table (live), and CSV / JSON downloads built in the
// browser from every page of `GET /api/outputs?run_uuid=` (100 rows per request, rows seen
// twice while new ones arrive are dropped by output_uuid), oldest first.
//
// CSV columns: the keys of the rows' `data` objects in first-seen order (a `data` that is not
// an object is one `data` column), then job_uuid, timestamp, output_uuid. Values that are not
// strings are written as JSON. JSON: an array of the output records as the API returns them.

import { api, paths } from './api.js';
import { $, h, formatTime, formatShort, settle, shortId, renderPager, bindPager, liveLoader } from './dom.js';

const PAGE_SIZE = 20;
const EXPORT_PAGE = 100;
const META = ['job_uuid', 'timestamp', 'output_uuid'];

export function toCsv(outputs) {
  const keys = [];
  const seen = new Set();
  let plain = false;
  for (const o of outputs) {
    if (o.data && typeof o.data === 'object' && !Array.isArray(o.data)) {
      for (const key of Object.keys(o.data)) if (!seen.has(key)) { seen.add(key); keys.push(key); }
    } else {
      plain = true;
    }
  }
  if (plain && !seen.has('data')) keys.push('data');
  const columns = [...keys, ...META.filter((m) => !seen.has(m))];
  const cell = (value) => {
    if (value === undefined || value === null) return '';
    const text = typeof value === 'string' ? value : JSON.stringify(value);
    return /[",\r\n]|^\s|\s$/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
  };
  const lines = [columns.map(cell).join(',')];
  for (const o of outputs) {
    const isObject = o.data && typeof o.data === 'object' && !Array.isArray(o.data);
    lines.push(columns.map((c) => {
      if (META.includes(c) && !seen.has(c)) return cell(o[c]);
      if (isObject) return cell(o.data[c]);
      return c === 'data' ? cell(o.data) : '';
    }).join(','));
  }
  return `${lines.join('\r\n')}\r\n`;
}

export class OutputsPane {
  constructor() {
    this.table = $('#outputs-table tbody');
    this.empty = $('#outputs-empty');
    this.pager = $('#outputs-pager');
    this.status = $('#outputs-status');
    this.totalLabel = $('#outputs-total');
    this.runId = null;
    this.page = 1;
    this.total = 0;
    this.rows = [];
    this.loader = liveLoader(() => this.fetchPage());
    bindPager(this.pager, (delta) => { this.page += delta; this.load(); });
    $('#outputs-csv').addEventListener('click', () => this.download('csv'));
    $('#outputs-json').addEventListener('click', () => this.download('json'));
  }

  /** Forgets the previous run's rows (a new run is being shown). */
  clear() {
    this.runId = null;
    this.rows = [];
    this.total = 0;
    this.page = 1;
    this.status.textContent = '';
    this.render();
  }

  show(runId) {
    if (runId !== this.runId) { this.page = 1; this.status.textContent = ''; }
    this.runId = runId;
    return this.load();
  }

  load() {
    return this.loader.load();
  }

  async fetchPage() {
    const runId = this.runId;
    if (!runId) return;
    const page = await api(paths.outputs(runId, this.page, PAGE_SIZE));
    if (runId !== this.runId) return;
    this.rows = page.outputs || [];
    this.total = page.total || 0;
    this.render();
  }

  render(fresh) {
    this.totalLabel.textContent = this.total ? `(${this.total})` : '';
    this.table.replaceChildren(...this.rows.map((o) => h('tr', { class: o.output_uuid === fresh ? 'fresh' : '' },
      h('td', { title: formatTime(o.timestamp) }, formatShort(o.timestamp)),
      h('td', {}, h('code', { title: o.job_uuid || '' }, shortId(o.job_uuid) || '—')),
      h('td', { class: 'data' }, truncate(JSON.stringify(o.data), 300)))));
    this.empty.hidden = this.rows.length > 0;
    renderPager(this.pager, this.page, PAGE_SIZE, this.total);
    if (fresh) settle(this.table);
  }

  /** A `new_output` message. */
  added(output) {
    if (output.run_uuid !== this.runId) return;
    this.loader.touch();
    this.total += 1;
    if (this.page === 1 && !this.rows.some((o) => o.output_uuid === output.output_uuid)) {
      this.rows = [output, ...this.rows].slice(0, PAGE_SIZE);
    }
    this.render(output.output_uuid);
  }

  async fetchAll() {
    const runId = this.runId;
    const byId = new Map();
    for (let page = 1; ; page++) {
      const answer = await api(paths.outputs(runId, page, EXPORT_PAGE));
      for (const o of answer.outputs || []) byId.set(o.output_uuid, o);
      this.status.textContent = `Fetching outputs… ${byId.size} of ${answer.total}`;
      if (!answer.outputs || answer.outputs.length < EXPORT_PAGE || page * EXPORT_PAGE >= answer.total) break;
    }
    return [...byId.values()].sort((a, b) => (a.timestamp < b.timestamp ? -1 : a.timestamp > b.timestamp ? 1 : 0));
  }

  async download(format) {
    if (!this.runId) return;
    try {
      const outputs = await this.fetchAll();
      const text = format === 'csv' ? toCsv(outputs) : `${JSON.stringify(outputs, null, 2)}\n`;
      const type = format === 'csv' ? 'text/csv;charset=utf-8' : 'application/json';
      const url = URL.createObjectURL(new Blob([text], { type }));
      const link = h('a', { href: url, download: `armada-outputs-${this.runId}.${format}` });
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
      this.status.textContent = `Downloaded ${outputs.length} output${outputs.length === 1 ? '' : 's'} as ${format.toUpperCase()}.`;
    } catch (error) {
      this.status.textContent = `Download failed: ${error.detail || error.message}`;
    }
  }
}

function truncate(text, max) {
  return text && text.length > max ? `${text.slice(0, max)}…` : text;
}
