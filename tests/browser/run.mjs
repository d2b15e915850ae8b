// Browser tests of the dashboard: a real `armada serve` (the binary from ARMADA_BIN, default
// $CARGO_TARGET_DIR/debug/armada; nothing is built here) driven through Debian's headless
// Chromium with playwright-core. Screenshots go to test-artifacts/browser/ at the repository
// root (git-ignored). Exits non-zero when any scenario fails.
//
// Scenarios that need the orchestrator (and the agent runtime, and examples/hello) are
// skipped, loudly, while `/health` says the orchestrator is not built; set
// ARMADA_BROWSER_REQUIRE_ALL=1 to count such skips as failures.
//
//   node run.mjs                 every scenario
//   node run.mjs live token      only those whose name contains one of the words

import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { Server } from './lib.mjs';
import { launchHello, badProject, distantTune } from './scenarios/launch.mjs';
import { cancelAndDelete } from './scenarios/run-actions.mjs';
import { runsPager } from './scenarios/runs-pager.mjs';
import { jobsOutputsPager } from './scenarios/jobs-outputs-pager.mjs';
import { tokenRequired } from './scenarios/token.mjs';
import { reconnects } from './scenarios/reconnect.mjs';
import { liveUpdates } from './scenarios/live.mjs';
import { launchPanel } from './scenarios/launch-panel.mjs';
import { splitLayout } from './scenarios/split.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const targetDir = process.env.CARGO_TARGET_DIR || path.join(process.env.HOME || '', '.cache/armada-target');
const bin = process.env.ARMADA_BIN || path.join(targetDir, 'debug/armada');
const artifacts = path.join(root, 'test-artifacts', 'browser');
const requireAll = process.env.ARMADA_BROWSER_REQUIRE_ALL === '1';
mkdirSync(artifacts, { recursive: true });

const scenarios = [
  { name: 'launch-hello (a)', run: launchHello, needs: 'orchestrator' },
  { name: 'bad-project (b)', run: badProject, needs: 'orchestrator' },
  { name: 'distant-tune', run: distantTune, needs: 'orchestrator' },
  { name: 'cancel-delete', run: cancelAndDelete, needs: 'orchestrator' },
  { name: 'token (c)', run: tokenRequired },
  { name: 'reconnect (d)', run: reconnects },
  { name: 'live-updates (e)', run: liveUpdates },
  { name: 'launch-panel', run: launchPanel },
  { name: 'runs-pager', run: runsPager },
  { name: 'jobs-outputs-pager', run: jobsOutputsPager },
  { name: 'split-layout', run: splitLayout, needs: 'orchestrator' },
];

const filters = process.argv.slice(2);
const chosen = scenarios.filter((s) => !filters.length || filters.some((f) => s.name.includes(f)));

const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
let browser;
try {
  browser = await chromium.launch({
    executablePath,
    headless: true,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run',
    ],
  });
} catch (error) {
  console.error(`cannot start Chromium at ${executablePath} (apt-get install chromium, or set CHROMIUM): ${error.message}`);
  process.exit(1);
}

const results = [];
for (const scenario of chosen) {
  const started = Date.now();
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, acceptDownloads: true });
  const page = await context.newPage();
  const consoleErrors = [];
  page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
  page.on('pageerror', (e) => consoleErrors.push(`uncaught: ${e.message}`));
  const failedRequests = [];
  page.on('response', (r) => { if (r.status() >= 400) failedRequests.push(`${r.status()} ${r.request().method()} ${r.url()}`); });
  const servers = [];
  const env = {
    bin,
    root,
    page,
    context,
    consoleErrors,
    /** Starts `armada serve` with extra variables; stopped after the scenario. */
    async server(vars = {}, options = {}) {
      const server = new Server({ bin, env: vars, ...options });
      servers.push(server);
      return server.start();
    },
    track(server) { servers.push(server); return server; },
    async screenshot(name) {
      const file = path.join(artifacts, `${name}.png`);
      await page.screenshot({ path: file });
      return file;
    },
    skip(reason) {
      const error = new Error(reason);
      error.skip = true;
      throw error;
    },
    async needsOrchestrator(server) {
      if (!(await server.serves('orchestrator'))) {
        env.skip('needs the orchestrator role (POST /bot/start); /health says it is not built yet');
      }
    },
  };
  let outcome = 'passed';
  let detail = '';
  try {
    await scenario.run(env);
    const unexpected = consoleErrors.filter((text) => !/WebSocket|ERR_CONNECTION_REFUSED|Failed to load resource/.test(text));
    if (unexpected.length) throw new Error(`the page logged errors:\n  ${unexpected.join('\n  ')}`);
  } catch (error) {
    if (error.skip) {
      outcome = requireAll ? 'failed' : 'skipped';
      detail = error.message;
    } else {
      outcome = 'failed';
      detail = error.stack || String(error);
      if (failedRequests.length) detail += `\n--- HTTP errors seen by the page ---\n${failedRequests.join('\n')}`;
      if (consoleErrors.length) detail += `\n--- page console errors ---\n${consoleErrors.join('\n')}`;
      try { await env.screenshot(`FAILED-${scenario.name.replace(/\W+/g, '-')}`); } catch { /* page gone */ }
      for (const server of servers) {
        if (server.log.length) detail += `\n--- server log (${server.url}) ---\n${server.log.join('').slice(-4000)}`;
      }
    }
  } finally {
    await context.close();
    for (const server of servers) await server.dispose();
  }
  const secs = ((Date.now() - started) / 1000).toFixed(1);
  results.push({ name: scenario.name, outcome, detail });
  const mark = { passed: 'PASS', failed: 'FAIL', skipped: 'SKIPPED' }[outcome];
  console.log(`${mark} ${scenario.name} (${secs} s)${detail ? `\n    ${detail.replace(/\n/g, '\n    ')}` : ''}`);
}
await browser.close();

const count = (o) => results.filter((r) => r.outcome === o).length;
console.log(`\nscreenshots: ${artifacts}`);
console.log(`browser: ${count('passed')} passed, ${count('failed')} failed, ${count('skipped')} skipped`);
process.exit(count('failed') ? 1 : 0);
