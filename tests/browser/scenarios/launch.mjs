// (a) Launch examples/hello through the Launch panel's folder upload and follow it live: final
// statuses, the backend's counts, the agents table against GET /bot/runs/{id}, a job's events
// and logs, the outputs CSV row by row, no sideways scrolling at 1280×800 and 1920×1080;
// the distant tune picked in the panel reaches the server (its SCREEN_VISIBLE in the outputs);
// (b) a project whose data_job.csv has a row with the wrong number of cells is refused with
// the server's error naming the file and the exact row, and no run appears.
// They need the orchestrator (and (a) the agent runtime and examples/hello): they are skipped
// while /health says the orchestrator is not built.

import { existsSync, mkdtempSync, mkdirSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { client, eventually, assert, assertEqual, csvRecords, assertNoHorizontalOverflow, launchFolder } from '../lib.mjs';

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
  await page.locator('#launch-files tr[data-path="config/data_job.csv"]', { hasText: 'found, 20 rows' }).waitFor();
  await page.locator('#launch-files tr[data-path="config/data_agent.csv"]', { hasText: 'found, 2 rows' }).waitFor();
  assertEqual(await page.locator('#launch-tune input[name="tune"]:checked').getAttribute('value'), 'local', 'the local tune is the default');
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
  await eventually('every count shown is the backend\'s (0 where it has none)', async () => {
    const shown = await page.locator('#run-counts div[data-status]').evaluateAll((divs) =>
      Object.fromEntries(divs.map((d) => [d.dataset.status, Number(d.querySelector('dd').textContent)])));
    const expected = Object.fromEntries(Object.keys(shown).map((s) => [s, summary.counts[s] || 0]));
    assertEqual(shown, expected, 'counts');
    return true;
  });
  const badges = await page.locator('#jobs-table tbody .badge').allTextContents();
  assert(badges.length > 0 && badges.every((b) => FINAL.includes(b)), `every job shown is final: ${badges}`);
  // The chart is live and reconciles itself with the backend's counts.
  await eventually('the chart counts 20 jobs', async () =>
    (await page.locator('#run-chart').getAttribute('data-finished')) === '20', 15000);
  await eventually('the run is completed on the screen', async () => (await page.locator('#run-status').textContent()) === 'completed', 30000);
  assert(await page.locator('#run-queue').isHidden(), 'no queue shown for a completed run');

  // The agents table: what the orchestrator says about each agent, phases included, once the
  // agents are down.
  await page.locator('#tab-agents').click();
  const bot = await expectAgentsAsOrchestrator(page, api, runId, { settled: true });
  assertEqual(bot.agents.map((a) => a.agent), ['agent-0', 'agent-1', 'agent-2'], 'the orchestrator\'s agents');
  assertEqual(bot.agents.reduce((n, a) => n + a.jobs_taken, 0), 20, 'the agents took the 20 jobs between them');
  assert(bot.agents.every((a) => a.last_seen && !a.current_job), 'every agent was seen and is idle');

  // A job's events and logs.
  await page.locator('#tab-jobs').click();
  await page.locator('#jobs-table tbody button[data-job]').first().click();
  await page.locator('#events-list li').first().waitFor();
  await eventually('logs shown', async () => ((await page.locator('#job-logs').textContent()) || '').length > 0);
  await env.screenshot('launch-hello-done');

  // The outputs CSV, row by row: one agent_init row per agent with its merged message, one
  // row per successful job with its data_job.csv row, the local tune's SCREEN_VISIBLE (1).
  await page.locator('#tab-outputs').click();
  const outputs = await api.get(`/api/outputs?run_uuid=${runId}&page_size=100`);
  assertEqual(outputs.total, 22, 'hello stores 3 agent_init and 19 job outputs');
  const [download] = await Promise.all([page.waitForEvent('download'), page.locator('#outputs-csv').click()]);
  const { header, records } = csvRecords(readFileSync(await download.path(), 'utf8'));
  assertEqual([...header].sort(), ['agent', 'details', 'greeting', 'job_uuid', 'kind', 'name', 'output_uuid', 'proxy_location', 'screen_visible', 'timestamp'], 'CSV columns');
  assertEqual(records.map((r) => r.output_uuid).sort(), outputs.outputs.map((o) => o.output_uuid).sort(), 'one CSV row per stored output');
  const times = records.map((r) => r.timestamp);
  assertEqual(times, [...times].sort(), 'rows oldest first');
  const inits = records.filter((r) => r.kind === 'agent_init').sort((a, b) => Number(a.agent) - Number(b.agent));
  assertEqual(inits.map((r) => [r.agent, r.greeting, r.proxy_location, r.screen_visible, r.job_uuid, r.name]), [
    ['0', 'bonjour', 'FR', '1', '', ''],
    ['1', 'hola', 'ES', '1', '', ''],
    ['2', 'hello', '', '1', '', ''],
  ], 'agent_init rows (agent, greeting, proxy location, screen_visible, no job, no name)');
  const greetings = Object.fromEntries(inits.map((r) => [r.agent, r.greeting]));
  const expectedJobs = helloJobs(hello);
  const jobRows = records.filter((r) => r.kind === 'job');
  assertEqual(records.length, inits.length + jobRows.length, 'every row is agent_init or job');
  assertEqual(jobRows.map((r) => r.name).sort(), expectedJobs.filter((j) => !j.fail).map((j) => j.name).sort(), 'one job row per successful data_job.csv row');
  const jobList = await api.get(`/api/jobs?run_uuid=${runId}&page_size=100`);
  const statusOf = new Map(jobList.jobs.map((j) => [j.job_uuid, j]));
  for (const row of jobRows) {
    const source = expectedJobs.find((j) => j.name === row.name);
    assertEqual(JSON.parse(row.details), source.details, `${row.name}: details from its data_job.csv row`);
    assertEqual([row.screen_visible, row.greeting], ['1', greetings[row.agent]], `${row.name}: the tune and its agent's greeting`);
    const job = statusOf.get(row.job_uuid);
    assert(job && job.job_status === 'Success', `${row.name}: its job_uuid is a Success job of the run (${row.job_uuid})`);
    assertEqual(job.job_associated_agent, `agent-${row.agent}`, `${row.name}: the agent that ran it`);
  }
  assert(!jobRows.some((r) => r.name === expectedJobs.find((j) => j.fail).name), 'no output for the failing row');

  // Layout: nothing scrolls sideways at a laptop's and a large screen's size, on the run view
  // (outputs and jobs tabs) and the runs view.
  for (const size of [{ width: 1280, height: 800 }, { width: 1920, height: 1080 }]) {
    await page.setViewportSize(size);
    await assertNoHorizontalOverflow(page, 'run view, outputs tab');
    await page.locator('#tab-jobs').click();
    await assertNoHorizontalOverflow(page, 'run view, jobs tab');
    await page.locator('#tab-agents').click();
    await assertNoHorizontalOverflow(page, 'run view, agents tab');
    await env.screenshot(`launch-hello-run-${size.width}x${size.height}`);
    await page.evaluate(() => { location.hash = '#/'; });
    await page.locator('#run-empty').waitFor();
    await assertNoHorizontalOverflow(page, 'runs view');
    await env.screenshot(`launch-hello-runs-${size.width}x${size.height}`);
    await page.locator(`button[data-run="${runId}"]`).click();
    await page.locator('#run-id', { hasText: runId }).waitFor();
    await page.locator('#tab-outputs').click();
    await page.locator('#outputs-table tbody tr').first().waitFor();
  }
  await page.setViewportSize({ width: 1280, height: 800 });
  assert(await page.evaluate(() => window.__notReloaded === true), 'the page was never reloaded');
}

const LIVE_PHASES = new Set(['pending', 'running']);

/** The agents table's cells, as text and attributes. */
export async function agentRows(page) {
  return page.locator('#agents-table tbody tr').evaluateAll((rows) => rows.map((tr) => {
    const cell = (col) => tr.querySelector(`td[data-col="${col}"]`);
    const job = cell('current-job').querySelector('button[data-job]');
    const seen = cell('last-seen').querySelector('time');
    return {
      agent: cell('agent').textContent,
      phase: cell('phase').textContent,
      jobs_taken: Number(cell('jobs-taken').textContent),
      succeeded: Number(cell('succeeded').textContent),
      failed: Number(cell('failed').textContent),
      current_job: job ? job.dataset.job : cell('current-job').textContent,
      last_seen: seen ? seen.getAttribute('datetime') : cell('last-seen').textContent,
    };
  }));
}

/** What agentRows should read for one agent of GET /bot/runs/{id}. */
function agentCells(a) {
  return {
    agent: a.agent,
    phase: a.phase || '—',
    jobs_taken: a.jobs_taken,
    succeeded: a.succeeded,
    failed: a.failed,
    current_job: a.current_job || '—',
    last_seen: a.last_seen || '—',
  };
}

/**
 * Waits until the agents table shows what GET /bot/runs/{id} says (read again on every try),
 * with `settled` once no agent is pending or running any more; returns that answer.
 */
export async function expectAgentsAsOrchestrator(page, api, runId, { settled = false, timeout = 30000 } = {}) {
  return eventually(`the agents table to match GET /bot/runs/${runId}${settled ? ' with every agent down' : ''}`, async () => {
    const bot = await api.get(`/bot/runs/${runId}`);
    if (settled && bot.agents.some((a) => LIVE_PHASES.has(a.phase))) throw new Error(`agents still up: ${JSON.stringify(bot.agents.map((a) => a.phase))}`);
    assertEqual(await agentRows(page), bot.agents.map(agentCells), 'the agents table');
    return bot;
  }, timeout);
}

/** examples/hello's data_job.csv rows: name, whether it fails, its details. */
function helloJobs(hello) {
  const { records } = csvRecords(readFileSync(path.join(hello, 'config/data_job.csv'), 'utf8'));
  return records.map((r) => ({ name: r.name, fail: r.should_fail === 'true', details: JSON.parse(r.details) }));
}

/**
 * The Launch panel's tune choice reaches the server: examples/hello launched with the distant
 * tune (picked with the keyboard) stores SCREEN_VISIBLE 0 in every output, where the local
 * tune gives 1 (launch-hello checks that one).
 */
export async function distantTune(env) {
  const { page } = env;
  const hello = path.join(env.root, 'examples/hello');
  const server = await env.server();
  await env.needsOrchestrator(server);
  if (!existsSync(path.join(hello, 'config/config_distant.json'))) env.skip('needs examples/hello');
  const api = client(server.url);
  const tunes = ['local', 'distant'].map((t) => JSON.parse(readFileSync(path.join(hello, `config/config_${t}.json`), 'utf8')).SCREEN_VISIBLE);
  assert(tunes[0] !== tunes[1], `the two tunes differ: ${tunes}`);

  await page.goto(server.url);
  await page.waitForSelector('#conn[data-state="connected"]');
  const runId = await launchFolder(page, hello, { tune: 'distant' });
  await eventually('20 jobs finished', async () =>
    (await page.locator('#run-progress-text').getAttribute('data-finished')) === '20', 180000);
  const outputs = await api.get(`/api/outputs?run_uuid=${runId}&page_size=100`);
  assertEqual(outputs.total, 22, 'outputs of the run');
  const visible = [...new Set(outputs.outputs.map((o) => o.data.screen_visible))];
  assertEqual(visible, [tunes[1]], 'screen_visible in every stored output: the distant tune\'s value');
  // And on the screen.
  await page.locator('#tab-outputs').click();
  await page.locator('#outputs-table tbody tr', { hasText: `"screen_visible":${tunes[1]}` }).first().waitFor();
  assertEqual(await page.locator('#outputs-table tbody tr', { hasText: `"screen_visible":${tunes[0]}` }).count(), 0, 'no output with the local value');
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
    // Line 3 of the file (the header is line 1) has 4 cells.
    assert(text.includes('config/data_job.csv row 3'), `the error names the file and the exact row: ${text}`);
    assert(/4 cells, header has 3/.test(text), `the error says what is wrong with the row: ${text}`);
    await page.locator('#launch-files tr.error[data-path="config/data_job.csv"]').waitFor();
    await env.screenshot('launch-bad-project');
    assertEqual((await api.get('/api/runs')).total, before, 'no run was recorded');
    // A run recorded now arrives on the live stream after anything the launch could have
    // sent: once it is listed, the list shows whatever the failed launch left (nothing).
    const marker = await api.createRun();
    await page.locator(`button[data-run="${marker.run_uuid}"]`).waitFor();
    assertEqual(await page.locator('#runs-list li').count(), before + 1, 'no run appeared in the list but the marker');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
