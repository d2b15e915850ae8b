// Helpers of the browser tests: a real `armada serve` process on a free loopback port with its
// own working folder and SQLite file, a small API client, and polling.

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export async function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/**
 * Polls `check` (async, truthy = done) every 100 ms until it holds or `ms` pass. An error it
 * throws is retried like a falsy answer (and reported on timeout), unless it has `final` set.
 */
export async function eventually(what, check, ms = 10000) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    try {
      last = await check();
      if (last) return last;
    } catch (error) {
      if (error.final) throw error;
      last = error;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${ms} ms waiting for ${what}${last instanceof Error ? `: ${last.message}` : ''}`);
    }
    await sleep(100);
  }
}

export function assert(condition, message) {
  if (!condition) throw new Error(`assertion failed: ${message}`);
}

export function assertEqual(actual, expected, message) {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  if (a !== e) throw new Error(`${message}: expected ${e}, got ${a}`);
}

/** One `armada serve` process. Its folder (and database) can outlive a stop, for restarts. */
export class Server {
  constructor({ bin, env = {}, port, dir, roles }) {
    this.bin = bin;
    this.roles = roles;
    this.env = env;
    this.port = port;
    this.dir = dir || mkdtempSync(path.join(os.tmpdir(), 'armada-browser-'));
    this.ownsDir = !dir;
    this.child = null;
    this.log = [];
  }

  get url() {
    return `http://127.0.0.1:${this.port}`;
  }

  async start() {
    if (!existsSync(this.bin)) {
      throw new Error(`no armada binary at ${this.bin}: run \`cargo build\` first or set ARMADA_BIN`);
    }
    if (!this.port) this.port = await freePort();
    this.log = [];
    const args = ['serve', '--listen', `127.0.0.1:${this.port}`, ...(this.roles ? ['--roles', this.roles] : [])];
    const child = spawn(this.bin, args, {
      cwd: this.dir,
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        RUST_LOG: process.env.RUST_LOG || 'warn',
        ARMADA_DATABASE_URL: `sqlite:${path.join(this.dir, 'armada.db')}`,
        ARMADA_WS_HEARTBEAT_SECS: '5',
        ...this.env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    const keep = (chunk) => { this.log.push(chunk.toString()); if (this.log.length > 400) this.log.shift(); };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    this.exited = exited;
    const deadline = Date.now() + 20000;
    for (;;) {
      const early = await Promise.race([exited, sleep(100).then(() => null)]);
      if (early) throw new Error(`armada serve exited (${early.code ?? early.signal}) before listening:\n${this.log.join('')}`);
      try {
        const response = await fetch(`${this.url}/health`);
        if (response.status === 200 || response.status === 503) return this;
      } catch { /* not listening yet */ }
      if (Date.now() > deadline) throw new Error(`armada serve did not answer /health within 20 s:\n${this.log.join('')}`);
    }
  }

  async stop() {
    if (!this.child) return;
    const child = this.child;
    this.child = null;
    child.kill('SIGTERM');
    const done = await Promise.race([this.exited, sleep(5000).then(() => null)]);
    if (!done) {
      child.kill('SIGKILL');
      await this.exited;
    }
  }

  async dispose() {
    await this.stop();
    if (this.ownsDir) rmSync(this.dir, { recursive: true, force: true });
  }

  async health() {
    const response = await fetch(`${this.url}/health`);
    return response.json();
  }

  /** Whether a role is built and served (`/health` lists it as "serving"). */
  async serves(role) {
    const health = await this.health();
    return (health.roles || []).some((r) => r.name === role && r.state === 'serving');
  }
}

/** A JSON client of the API, with an optional token. */
export function client(baseUrl, token) {
  const call = async (method, route, body) => {
    const headers = {};
    if (token) headers.Authorization = `Bearer ${token}`;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const response = await fetch(`${baseUrl}${route}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await response.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch { data = text; }
    if (!response.ok) throw new Error(`${method} ${route} answered ${response.status}: ${text}`);
    return data;
  };
  return {
    get: (route) => call('GET', route),
    post: (route, body) => call('POST', route, body),
    patch: (route, body) => call('PATCH', route, body),
    del: (route) => call('DELETE', route),
    async createRun(fields = {}) {
      return call('POST', '/api/runs', { run_uuid: randomUUID(), run_datetime: new Date().toISOString(), ...fields });
    },
    async createJob(run, fields = {}) {
      return call('POST', '/api/jobs', { run_uuid: run, job_datetime: new Date().toISOString(), ...fields });
    },
    async setJob(job, status) {
      return call('PATCH', '/api/jobs/status', { job_uuid: job, job_status: status });
    },
    async records(ops) {
      return call('POST', '/api/records', ops);
    },
  };
}

export const uuid = randomUUID;

/** Rows of a CSV text (RFC 4180: quoted cells, doubled quotes, CRLF or LF), header included. */
export function parseCsv(text) {
  const rows = [];
  let row = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { cell += '"'; i++; } else if (c === '"') quoted = false;
      else cell += c;
    } else if (c === '"') {
      quoted = true;
    } else if (c === ',') {
      row.push(cell); cell = '';
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      row.push(cell); rows.push(row); row = []; cell = '';
    } else {
      cell += c;
    }
  }
  if (cell !== '' || row.length) { row.push(cell); rows.push(row); }
  return rows;
}

/** CSV rows as objects keyed by the header. */
export function csvRecords(text) {
  const [header, ...rows] = parseCsv(text);
  for (const [i, row] of rows.entries()) {
    if (row.length !== header.length) throw new Error(`CSV line ${i + 2} has ${row.length} cells, the header ${header.length}`);
  }
  return { header, records: rows.map((row) => Object.fromEntries(header.map((name, i) => [name, row[i]]))) };
}

/**
 * Fails when the page scrolls sideways at the current viewport (the document is wider than
 * the window), or when one of the panels does (its content does not fit its column).
 */
export async function assertNoHorizontalOverflow(page, label) {
  const widths = await page.evaluate(() => {
    const el = document.documentElement;
    const panels = {};
    for (const panel of document.querySelectorAll('.panel')) {
      if (panel.offsetParent !== null) panels[panel.id] = [panel.scrollWidth, panel.clientWidth];
    }
    return { page: [el.scrollWidth, el.clientWidth], panels, viewport: [window.innerWidth, window.innerHeight] };
  });
  const [scroll, client] = widths.page;
  assert(scroll <= client, `${label} at ${widths.viewport.join('×')}: the page scrolls sideways (scrollWidth ${scroll} > clientWidth ${client})`);
  for (const [id, [panelScroll, panelClient]] of Object.entries(widths.panels)) {
    assert(panelScroll <= panelClient, `${label} at ${widths.viewport.join('×')}: #${id} scrolls sideways (${panelScroll} > ${panelClient})`);
  }
}

/**
 * Opens the Launch panel, picks a project folder, optionally the tune (with the keyboard:
 * arrow keys within the radio group), runs `inspect` on the filled panel, launches (failing at
 * once with the panel's error if the server refuses), and returns the run id the dashboard
 * selects.
 */
export async function launchFolder(page, folder, { tune, inspect } = {}) {
  await page.locator('#launch-open').click();
  await page.locator('#launch-dialog[open]').waitFor();
  await page.locator('#launch-folder').setInputFiles(folder);
  await page.locator('#launch-files tr[data-path="config/config_template.json"] .found').waitFor();
  if (tune) {
    const local = page.locator('#launch-tune input[value="local"]');
    await local.focus();
    if (tune === 'distant') await page.keyboard.press('ArrowRight');
    const checked = await page.locator('#launch-tune input[name="tune"]:checked').getAttribute('value');
    assertEqual(checked, tune, 'the tune picked with the keyboard');
  }
  if (inspect) await inspect();
  await page.locator('#launch-submit').click();
  await eventually('the Launch panel to close (or say why not)', async () => {
    if (await page.locator('#launch-error').isVisible()) {
      throw Object.assign(new Error(`the launch was refused: ${await page.locator('#launch-error').textContent()}`), { final: true });
    }
    return (await page.locator('#launch-dialog[open]').count()) === 0;
  }, 30000);
  const runId = await eventually('the launched run is selected', async () => {
    const id = (await page.locator('#run-id').textContent()) || '';
    return /^[0-9a-f-]{36}$/.test(id) ? id : null;
  });
  await page.locator(`button[data-run="${runId}"]`).waitFor();
  return runId;
}

/** Every message the page receives on its WebSockets, with the socket's URL. */
export function recordSocketFrames(page) {
  const frames = [];
  const urls = [];
  page.on('websocket', (socket) => {
    urls.push(socket.url());
    socket.on('framereceived', ({ payload }) => {
      try { frames.push({ url: socket.url(), message: JSON.parse(String(payload)) }); } catch { /* not JSON */ }
    });
  });
  return { frames, urls };
}
