// (a) Launch examples/hello through the Launch panel's folder upload and follow it live;
// (b) a project whose data_job.csv has a row with the wrong number of cells is refused with
// the server's error naming the row, and no run appears.
// Both need the orchestrator (and (a) the agent runtime and examples/hello): they are skipped
// while /health says the orchestrator is not built.

import { existsSync, mkdtempSync, mkdirSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { client, eventually, assert, assertEqual, sleep } from '../lib.mjs';

const FINAL = ['Success', 'Failed', 'Cancelled'];

export async function launchHello(env) {
  const { page } = env;
  const hello = path.join(env.root, 'examples/hello');
  const server = await env.server();
  await env.needsOrchestrator(server);
  if (!existsSync(path.join(hello, 'config/config_template.json'))) env.skip('needs examples/hello (3 agents, 20 jobs, one fails)');
  const api = client(server.url);

  await page.goto(server.url);
  await page.evaluate(() => { window.__notReloaded = true; });
  await page.waitForSelector('#conn[data-state="connected"]');
  await page.locator('#launch-open').click();
  await page.locator('#launch-folder').setInputFiles(hello);
  await page.locator('#launch-files tr[data-path="config/config_template.json"] .found').waitFor();
  await page.locator('#launch-files tr[data-path="config/data_job.csv"]', { hasText: 'found' }).waitFor();
  await env.screenshot('launch-hello-files');
  await page.locator('#launch-submit').click();
  await page.locator('#launch-dialog[open]').waitFor({ state: 'detached' });

  // The run is selected and listed without a reload.
  const runId = await eventually('the launched run is selected', async () => {
    const id = (await page.locator('#run-id').textContent()) || '';
    return id.length === 36 ? id : null;
  });
  await page.locator(`button[data-run="${runId}"]`).waitFor();

  // Jobs reach their final statuses live.
  await eventually('20 jobs finished', async () =>
    (await page.locator('#run-progress-text').getAttribute('data-finished')) === '20', 180000);
  const summary = await api.get(`/api/runs/${runId}/summary`);
  assertEqual(summary.total_jobs, 20, 'jobs of the run');
  assertEqual(summary.counts.Failed, 1, 'one job fails');
  for (const [status, n] of Object.entries(summary.counts)) {
    const shown = await page.locator(`#run-counts div[data-status="${status}"] dd`).textContent();
    assertEqual(Number(shown), n, `${status} count matches the backend`);
  }
  const badges = await page.locator('#jobs-table tbody .badge').allTextContents();
  assert(badges.length > 0 && badges.every((b) => FINAL.includes(b)), `every job shown is final: ${badges}`);
  // The chart is live and reconciles itself with the backend's counts.
  await eventually('the chart counts 20 jobs', async () =>
    (await page.locator('#run-chart').getAttribute('data-finished')) === '20', 15000);

  // A job's events and logs.
  await page.locator('#jobs-table tbody button[data-job]').first().click();
  await page.locator('#events-list li').first().waitFor();
  await eventually('logs shown', async () => ((await page.locator('#job-logs').textContent()) || '').length > 0);
  await env.screenshot('launch-hello-done');

  // The outputs CSV.
  await page.locator('#tab-outputs').click();
  const outputs = await api.get(`/api/outputs?run_uuid=${runId}&page_size=100`);
  const [download] = await Promise.all([page.waitForEvent('download'), page.locator('#outputs-csv').click()]);
  const lines = readFileSync(await download.path(), 'utf8').trim().split('\r\n');
  assertEqual(lines.length - 1, outputs.total, 'one CSV row per output');
  assert(outputs.total > 0, 'hello produces outputs');
  assert(await page.evaluate(() => window.__notReloaded === true), 'the page was never reloaded');
}

export async function badProject(env) {
  const { page } = env;
  const server = await env.server();
  await env.needsOrchestrator(server);
  const api = client(server.url);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'armada-bad-project-'));
  try {
    const project = path.join(dir, 'bad');
    mkdirSync(path.join(project, 'config'), { recursive: true });
    writeFileSync(path.join(project, 'config/config_template.json'), JSON.stringify({
      run_message: { number_of_agents: 1, number_of_jobs: 3 },
      default_agent_message: {},
      default_job_message: { account: '', message: '', payload: '' },
    }));
    writeFileSync(path.join(project, 'config/config_local.json'), '{}');
    writeFileSync(path.join(project, 'config/data_job.csv'), 'account,message,payload\na,b,c\nd,e,f,g\nh,i,j\n');
    writeFileSync(path.join(project, 'worker.py'), 'print("never runs")\n');

    await page.goto(server.url);
    await page.waitForSelector('#conn[data-state="connected"]');
    const before = (await api.get('/api/runs')).total;
    await page.locator('#launch-open').click();
    await page.locator('#launch-folder').setInputFiles(project);
    await page.locator('#launch-files tr[data-path="config/data_job.csv"]', { hasText: '3 rows' }).waitFor();
    await page.locator('#launch-submit').click();
    const error = page.locator('#launch-error');
    await error.waitFor({ state: 'visible' });
    const text = await error.textContent();
    assert(/data_job\.csv/.test(text) && /row/.test(text), `the error names the file and the row: ${text}`);
    await page.locator('#launch-files tr.error[data-path="config/data_job.csv"]').waitFor();
    await env.screenshot('launch-bad-project');
    await sleep(1000);
    assertEqual((await api.get('/api/runs')).total, before, 'no run was recorded');
    assertEqual(await page.locator('#runs-list li').count(), before, 'no run appeared in the list');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
