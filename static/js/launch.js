// The Launch panel: pick a project folder (every file goes up as a `files` part named by its
// path in the project) or one .zip/.tar.gz (`project` part), see what was found, pick the
// tune among the tune files present (none is sent when there is none), and
// `POST /api/bot/start`. The server's errors are shown as they come (they name the file, row
// and field), and the file they name is marked in the list.

import { $, h, formatBytes } from './dom.js';
import { api, paths } from './api.js';

const TEMPLATE = 'config/config_template.json';
const KNOWN = [
  [TEMPLATE, 'template (required)'],
  ['config/config_local.json', 'tune: local'],
  ['config/config_distant.json', 'tune: distant'],
  ['config/data_agent.csv', 'per-agent rows'],
  ['config/data_job.csv', 'per-job rows'],
  ['requirements.txt', 'Python packages'],
];
// Mirrors the server's summary (src/project/summary.rs).
const CODE_EXTENSIONS = new Set(['py', 'js', 'mjs', 'cjs', 'ts', 'sh', 'bash', 'rb', 'go', 'rs', 'java', 'php', 'pl', 'lua', 'ps1', 'bat']);
// Never worth uploading; the server skips them too.
const JUNK = /(^|\/)(\.git|node_modules|__pycache__|\.venv|venv|\.mypy_cache|\.pytest_cache)(\/|$)|(^|\/)\.DS_Store$/;

/** Files of a folder pick, with paths relative to the project folder (the top folder dropped). */
export function projectFiles(fileList) {
  const files = [...fileList].map((file) => ({ file, path: file.webkitRelativePath || file.name }));
  const tops = new Set(files.map((f) => (f.path.includes('/') ? f.path.split('/')[0] : '')));
  const strip = tops.size === 1 && !tops.has('') && !files.some((f) => f.path === TEMPLATE);
  const kept = [];
  const skipped = [];
  for (const f of files) {
    const path = strip ? f.path.slice(f.path.indexOf('/') + 1) : f.path;
    (JUNK.test(path) ? skipped : kept).push({ file: f.file, path });
  }
  return { files: kept, skipped };
}

/** Data rows of a CSV text (records after the header; quoted newlines respected). */
export function csvRows(text) {
  let records = 0;
  let quoted = false;
  let content = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') quoted = !quoted;
    if (!quoted && (c === '\n' || c === '\r')) {
      if (content) records++;
      content = false;
      if (c === '\r' && text[i + 1] === '\n') i++;
    } else if (c.trim() !== '' || quoted) {
      content = true;
    }
  }
  if (content) records++;
  return Math.max(0, records - 1);
}

/** Paths inside a .zip, from its central directory (nothing is decompressed). */
export async function zipEntries(blob) {
  const tailSize = Math.min(blob.size, 65557);
  const tail = new DataView(await blob.slice(blob.size - tailSize).arrayBuffer());
  let eocd = -1;
  for (let i = tail.byteLength - 22; i >= 0; i--) {
    if (tail.getUint32(i, true) === 0x06054b50) { eocd = i; break; }
  }
  if (eocd < 0) throw new Error('not a zip file (no central directory)');
  const entries = tail.getUint16(eocd + 10, true);
  const dirSize = tail.getUint32(eocd + 12, true);
  const dirOffset = tail.getUint32(eocd + 16, true);
  const dir = new DataView(await blob.slice(dirOffset, dirOffset + dirSize).arrayBuffer());
  const decoder = new TextDecoder();
  const names = [];
  let p = 0;
  for (let n = 0; n < entries && p + 46 <= dir.byteLength; n++) {
    if (dir.getUint32(p, true) !== 0x02014b50) break;
    const nameLen = dir.getUint16(p + 28, true);
    const extraLen = dir.getUint16(p + 30, true);
    const commentLen = dir.getUint16(p + 32, true);
    const size = dir.getUint32(p + 24, true);
    const name = decoder.decode(new Uint8Array(dir.buffer, dir.byteOffset + p + 46, nameLen));
    if (!name.endsWith('/')) names.push({ path: name, size });
    p += 46 + nameLen + extraLen + commentLen;
  }
  return names;
}

/** Paths inside a .tar.gz (decompressed in the browser, file names only kept). */
export async function tarGzEntries(blob) {
  const stream = blob.stream().pipeThrough(new DecompressionStream('gzip'));
  const bytes = new Uint8Array(await new Response(stream).arrayBuffer());
  const decoder = new TextDecoder();
  const field = (start, len) => decoder.decode(bytes.subarray(start, start + len)).replace(/\0.*$/s, '');
  const names = [];
  let longName = null;
  for (let p = 0; p + 512 <= bytes.length;) {
    const name = field(p, 100);
    if (!name) break;
    const size = parseInt(field(p + 124, 12).trim() || '0', 8) || 0;
    const type = String.fromCharCode(bytes[p + 156] || 48);
    const prefix = field(p + 345, 155);
    const body = p + 512;
    if (type === 'L') {
      longName = field(body, size);
    } else if (type === '0' || type === '\0' || type === '7') {
      const path = longName || (prefix ? `${prefix}/${name}` : name);
      names.push({ path: path.replace(/^\.\//, ''), size });
      longName = null;
    } else {
      longName = null;
    }
    p = body + Math.ceil(size / 512) * 512;
  }
  return names;
}

/** What the list shows: known files, code files, totals. `entries` are {path, size, file?}. */
export function summarise(entries) {
  let paths = entries.map((e) => e.path);
  const tops = new Set(paths.map((p) => (p.includes('/') ? p.split('/')[0] : '')));
  let prefix = '';
  if (tops.size === 1 && !tops.has('') && !paths.includes(TEMPLATE)) prefix = `${[...tops][0]}/`;
  const byPath = new Map(entries.map((e) => [e.path.slice(prefix.length), e]));
  paths = [...byPath.keys()];
  const code = paths.filter((p) => CODE_EXTENSIONS.has(p.split('.').pop()) && p.includes('.')).length;
  const total = entries.reduce((n, e) => n + (e.size || 0), 0);
  return { byPath, code, count: paths.length, total };
}

export class LaunchPanel {
  constructor({ onLaunched }) {
    this.dialog = $('#launch-dialog');
    this.form = $('#launch-form');
    this.folder = $('#launch-folder');
    this.archive = $('#launch-archive');
    this.summaryBox = $('#launch-summary');
    this.errorBox = $('#launch-error');
    this.submit = $('#launch-submit');
    this.onLaunched = onLaunched;
    this.selection = null;
    $('#launch-open').addEventListener('click', () => this.open());
    $('#launch-cancel').addEventListener('click', () => this.dialog.close());
    this.folder.addEventListener('change', () => this.pickFolder());
    this.archive.addEventListener('change', () => this.pickArchive());
    this.form.addEventListener('submit', (e) => { e.preventDefault(); this.launch(); });
  }

  open() {
    this.showError('');
    this.dialog.showModal();
    this.folder.focus();
  }

  async pickFolder() {
    if (!this.folder.files.length) return;
    this.archive.value = '';
    const { files, skipped } = projectFiles(this.folder.files);
    const entries = files.map((f) => ({ path: f.path, size: f.file.size, file: f.file }));
    this.selection = { kind: 'folder', files, skipped };
    await this.render(entries, skipped.length);
  }

  async pickArchive() {
    const file = this.archive.files[0];
    if (!file) return;
    this.folder.value = '';
    this.selection = { kind: 'archive', file };
    let entries = [];
    try {
      entries = /\.zip$/i.test(file.name) ? await zipEntries(file) : await tarGzEntries(file);
    } catch (error) {
      this.selection = null;
      this.summaryBox.replaceChildren();
      this.submit.disabled = true;
      this.showError(`${file.name}: cannot be read as a .zip or .tar.gz (${error.message})`);
      return;
    }
    await this.render(entries, 0);
  }

  async render(entries, skipped) {
    this.showError('');
    const summary = summarise(entries);
    const rows = [];
    for (const [path, role] of KNOWN) {
      const entry = summary.byPath.get(path);
      let found = entry ? 'found' : 'missing';
      if (entry && entry.file && path.endsWith('.csv')) {
        const rowCount = csvRows(await entry.file.text());
        found = `found, ${rowCount} row${rowCount === 1 ? '' : 's'}`;
      }
      rows.push(h('tr', { class: entry ? '' : 'missing', dataset: { path } },
        h('td', {}, h('code', {}, path)), h('td', {}, role),
        h('td', { class: entry ? 'found' : '' }, entry ? `✔ ${found}` : '— none')));
    }
    rows.push(h('tr', {}, h('td', {}, 'code files'), h('td', {}, [...CODE_EXTENSIONS].slice(0, 4).map((e) => `.${e}`).join(' ') + ' …'),
      h('td', { class: 'found', dataset: { codeFiles: summary.code } }, String(summary.code))));
    rows.push(h('tr', {}, h('td', {}, 'all files'), h('td', {}, skipped ? `${skipped} skipped (.git, caches, node_modules…)` : ''),
      h('td', {}, `${summary.count} · ${formatBytes(summary.total)}`)));
    this.summaryBox.replaceChildren(h('table', { class: 'grid', id: 'launch-files' },
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'File'), h('th', { scope: 'col' }, 'Role'), h('th', { scope: 'col' }, 'Found'))),
      h('tbody', {}, rows)));
    const hasTemplate = summary.byPath.has(TEMPLATE);
    // A tune can only be picked when its file is in the project (the server refuses a tune
    // it cannot find); a project with neither file is launched without one.
    const tunes = [...this.form.querySelectorAll('input[name="tune"]')];
    for (const input of tunes) {
      const present = summary.byPath.has(`config/config_${input.value}.json`);
      input.disabled = !present;
      input.closest('label').querySelector('.muted').textContent = `config/config_${input.value}.json${present ? '' : ' (missing)'}`;
    }
    const available = tunes.filter((input) => !input.disabled);
    if (available.length && !available.some((input) => input.checked)) available[0].checked = true;
    $('#launch-tune-none').hidden = available.length > 0;
    this.submit.disabled = !hasTemplate;
    if (!hasTemplate) {
      this.showError(`${TEMPLATE} is missing: choose the project folder itself (the one that holds config/), or an archive of it.`);
    }
  }

  showError(message) {
    this.errorBox.textContent = message;
    this.errorBox.hidden = !message;
    for (const row of this.summaryBox.querySelectorAll('tr.error')) row.classList.remove('error');
    if (!message) return;
    const path = message.split(/[\s:]/)[0];
    const row = [...this.summaryBox.querySelectorAll('tr[data-path]')].find((r) => r.dataset.path === path);
    if (row) row.classList.add('error');
  }

  async launch() {
    if (!this.selection) return;
    const tune = this.form.querySelector('input[name="tune"]:checked:not(:disabled)')?.value;
    const form = new FormData();
    if (this.selection.kind === 'folder') {
      for (const { file, path } of this.selection.files) form.append('files', file, path);
    } else {
      form.append('project', this.selection.file, this.selection.file.name);
    }
    if (tune) form.append('tune', tune);
    this.submit.disabled = true;
    const label = this.submit.textContent;
    this.submit.textContent = 'Launching…';
    this.showError('');
    try {
      const answer = await api(paths.start, { method: 'POST', body: form });
      this.dialog.close();
      this.folder.value = '';
      this.archive.value = '';
      this.selection = null;
      this.summaryBox.replaceChildren();
      this.onLaunched(answer && answer.run_uuid);
    } catch (error) {
      this.showError(error.status === 404
        ? `The orchestrator is not reachable here (${error.detail}).`
        : error.detail || String(error));
      this.submit.disabled = false;
    } finally {
      this.submit.textContent = label;
    }
  }
}
