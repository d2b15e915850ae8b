// The split deployment: `armada serve --roles backend,orchestrator` in one process and
// `armada serve --roles frontend` in another, with BACKEND_URL and ORCHESTRATOR_URL pointing
// at the first. The browser only ever talks to the frontend: examples/hello is launched from
// its Launch panel (POST /api/bot/start, forwarded), the jobs reach their final statuses on
// the screen through the forwarded WebSocket (/tracking/ws/events/), and the original nginx
// prefixes (/tracking/api/..., /api/bot/...) answer through it. Then the backend process
// restarts behind the frontend: forwarded calls fail with a 502 naming the backend meanwhile,
// the dashboard shows it is disconnected, reconnects by itself and is live again.

import { existsSync } from 'node:fs';
import path from 'node:path';
import { client, eventually, assert, assertEqual, launchFolder, recordSocketFrames } from '../lib.mjs';

const FINAL = new Set(['Success', 'Failed', 'Cancelled']);

export async function splitLayout(env) {
  const { page } = env;
  const hello = path.join(env.root, 'examples/hello');
  if (!existsSync(path.join(hello, 'config/config_template.json'))) env.skip('needs examples/hello');
  const core = await env.server({}, { roles: 'backend,orchestrator' });
  await env.needsOrchestrator(core);
  const frontend = await env.server({ BACKEND_URL: core.url, ORCHESTRATOR_URL: core.url }, { roles: 'frontend' });

  // The frontend process serves neither role itself: whatever works below is forwarded.
  const roles = Object.fromEntries(((await frontend.health()).roles || []).map((r) => [r.name, r.state]));
  assertEqual(roles.frontend, 'serving', 'the frontend role runs in the frontend process');
  assert(roles.backend !== 'serving' && roles.orchestrator !== 'serving', `the frontend process runs no backend or orchestrator: ${JSON.stringify(roles)}`);

  const requests = [];
  page.on('request', (r) => requests.push(r.url()));
  const sockets = recordSocketFrames(page);

  await page.goto(frontend.url);
  await page.evaluate(() => { window.__notReloaded = true; });
  await page.waitForSelector('#conn[data-state="connected"]');
  assertEqual(sockets.urls, [`ws://127.0.0.1:${frontend.port}/tracking/ws/events/`], 'the live stream is opened on the frontend, with the original prefix');

  // Launch examples/hello from the frontend's Launch panel.
  const runId = await launchFolder(page, hello);
  await eventually('20 jobs finished on the screen', async () =>
    (await page.locator('#run-progress-text').getAttribute('data-finished')) === '20', 180000);

  // The jobs' final statuses reached the page as live messages through the bridged socket,
  // and the jobs table shows them (it changes only on those messages or a re-read).
  const finals = new Map();
  for (const { message } of sockets.frames) {
    if (message.type === 'update_job_status' && message.data && message.data.run_uuid === runId && FINAL.has(message.data.job_status)) {
      finals.set(message.data.job_uuid, message.data.job_status);
    }
  }
  assertEqual(finals.size, 20, 'final job statuses received over the forwarded WebSocket');
  assertEqual([...finals.values()].filter((s) => s === 'Failed').length, 1, 'one of them Failed');
  const rows = page.locator('#jobs-table tbody tr[data-job]');
  await eventually('every job on the page shows its final status', async () => {
    const shown = await rows.evaluateAll((trs) => trs.map((tr) => [tr.dataset.job, tr.querySelector('.badge').textContent]));
    return shown.length > 0 && shown.every(([job, status]) => finals.get(job) === status);
  });
  await eventually('the run is completed on the screen', async () => (await page.locator('#run-status').textContent()) === 'completed', 30000);

  // The original nginx prefixes, through the frontend alone.
  const viaFrontend = client(frontend.url);
  const tracked = await viaFrontend.get('/tracking/api/runs/?page=1&page_size=5');
  assert(tracked.runs.some((r) => r.run_uuid === runId), '/tracking/api/runs/ lists the run');
  const jobs = await viaFrontend.get(`/tracking/api/jobs/?run_uuid=${runId}&page_size=100`);
  assertEqual(jobs.total, 20, '/tracking/api/jobs/ has the run\'s jobs');
  const bot = await viaFrontend.get(`/api/bot/runs/${runId}`);
  assertEqual(bot.status, 'completed', '/api/bot/runs/{id} status');
  assertEqual([bot.counts.Success, bot.counts.Failed], [19, 1], '/api/bot/runs/{id} counts');
  const direct = await client(core.url).get(`/bot/runs/${runId}`);
  assertEqual(bot, direct, 'the forwarded answer is the orchestrator\'s own');
  const own = await viaFrontend.get(`/api/runs/${runId}`);
  assertEqual(own.run_uuid, runId, 'the backend\'s own /api/runs/{id} path through the frontend');

  // Every call the page made went to the frontend.
  const elsewhere = requests.filter((url) => !url.startsWith(`${frontend.url}/`));
  assertEqual(elsewhere, [], 'requests the page sent anywhere but the frontend');
  assert(requests.some((url) => url.endsWith('/api/bot/start')), 'the launch went through /api/bot/start');
  await env.screenshot('split-layout-run');

  // The backend and orchestrator restart behind the frontend: the bridge closes, forwarded
  // calls fail with a 502 that says which target is down, the dashboard reconnects by itself.
  await core.stop();
  await page.waitForSelector('#conn[data-state="disconnected"]');
  const down = await fetch(`${frontend.url}/tracking/api/runs/`);
  assertEqual(down.status, 502, 'a forwarded call while the backend is down');
  const detail = (await down.json()).detail;
  assert(/backend/.test(detail), `the 502 names the backend: ${detail}`);
  await core.start();
  await page.waitForSelector('#conn[data-state="connected"]', { timeout: 20000 });
  const later = await viaFrontend.post('/tracking/api/runs/', { run_uuid: crypto.randomUUID(), run_datetime: new Date().toISOString() });
  await page.locator(`button[data-run="${later.run_uuid}"]`).waitFor();
  assertEqual(sockets.urls.length >= 2 && new Set(sockets.urls).size, 1, 'every reconnect goes to the frontend too');
  assert(await page.evaluate(() => window.__notReloaded === true), 'the page was never reloaded');
  await env.screenshot('split-layout');
}
