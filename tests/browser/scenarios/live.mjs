// (e) Backend-driven live updates: runs, jobs, events, outputs and statuses created through
// the API appear without a reload, with the right badges, the backend's counts and the chart;
// outputs download as CSV and JSON; a run is deleted through its button.

import { readFileSync } from 'node:fs';
import { client, eventually, assert, assertEqual, uuid, assertNoHorizontalOverflow } from '../lib.mjs';

/** How many of the run chart's pixels are success green, failure red and success-rate purple. */
function chartColours(page) {
  return page.evaluate(() => {
    const canvas = document.getElementById('run-chart');
    const { data } = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height);
    const counts = { green: 0, red: 0, purple: 0 };
    for (let i = 0; i < data.length; i += 4) {
      const [r, g, b] = [data[i], data[i + 1], data[i + 2]];
      if (g > 100 && r < 60 && b < 90) counts.green++;
      if (r > 190 && g < 70 && b < 70) counts.red++;
      if (r > 90 && r < 170 && g < 110 && b > 190) counts.purple++;
    }
    return counts;
  });
}

export async function liveUpdates(env) {
  const { page } = env;
  const server = await env.server();
  const api = client(server.url);
  await page.goto(server.url);
  await page.evaluate(() => { window.__notReloaded = true; });
  await page.waitForSelector('#conn[data-state="connected"]');

  // A run appears in the list.
  const run = await api.createRun({ run_status: 'running', number_of_agents: 2, number_of_jobs: 6 });
  const runButton = page.locator(`button[data-run="${run.run_uuid}"]`);
  await runButton.waitFor();
  assertEqual(await runButton.locator('.badge').textContent(), 'running', 'run badge');

  // The chart's first history read is answered by the server now but reaches the page only
  // after the jobs below have finished live: an old answer must not erase newer changes.
  let releaseTimeline;
  const timelineHeld = new Promise((resolve) => { releaseTimeline = resolve; });
  let timelineReads = 0;
  const isTimeline = (url) => url.pathname.endsWith('/timeline');
  await page.route(isTimeline, async (route) => {
    timelineReads += 1;
    if (timelineReads > 1) return route.continue();
    const response = await route.fetch();
    await timelineHeld;
    return route.fulfill({ response });
  });
  await runButton.click();
  await page.locator('#run-id', { hasText: run.run_uuid }).waitFor();

  // Jobs appear with their badges, then change status live.
  const jobs = [];
  for (let i = 0; i < 6; i++) {
    jobs.push(await api.createJob(run.run_uuid, { job_status: 'Queued', job_index: i }));
  }
  await eventually('six queued jobs in the table', async () =>
    (await page.locator('#jobs-table tbody tr .badge', { hasText: 'Queued' }).count()) === 6);
  const outcomes = ['Success', 'Success', 'Failed', 'Success', 'Running', 'Queued'];
  for (const [i, status] of outcomes.entries()) {
    if (status === 'Queued') continue;
    const finished = status === 'Running' ? undefined : new Date(Date.now() - (5 - i) * 1000).toISOString();
    await api.records([{ op: 'update_job', job_uuid: jobs[i].job_uuid, job_status: status, job_associated_agent: `agent-${i % 2}`, job_finished: finished }]);
  }
  for (const [i, status] of outcomes.entries()) {
    const badge = page.locator(`#jobs-table tr[data-job="${jobs[i].job_uuid}"] .badge`);
    await eventually(`job ${i} badge ${status}`, async () => (await badge.textContent()) === status);
  }
  assertEqual(timelineReads, 1, 'the first timeline read is still held');
  releaseTimeline();

  // The counts are the backend's.
  const summary = await api.get(`/api/runs/${run.run_uuid}/summary`);
  await eventually('counts equal to the summary', async () => {
    for (const [status, n] of Object.entries(summary.counts)) {
      const shown = await page.locator(`#run-counts div[data-status="${status}"] dd`).textContent();
      if (Number(shown) !== n) return false;
    }
    return true;
  });
  const progress = page.locator('#run-progress-text');
  await eventually('progress 4 / 6', async () => (await progress.getAttribute('data-finished')) === '4' && (await progress.getAttribute('data-total')) === '6');

  // The chart counts the finished jobs and draws them.
  const chart = page.locator('#run-chart');
  await eventually('chart with 4 finished jobs', async () => (await chart.getAttribute('data-finished')) === '4');
  assert(timelineReads >= 2, 'the held timeline answer was followed by a fresh read');
  await page.unroute(isTimeline);
  const colored = await chartColours(page);
  assert(colored.green > 50 && colored.red > 10, `the chart draws success and failure bars: ${JSON.stringify(colored)}`);

  // Agents from the jobs.
  await page.locator('#tab-agents').click();
  await eventually('two agents', async () => (await page.locator('#agents-table tbody tr').count()) === 2);
  await page.locator('#tab-jobs').click();

  // A job's events and logs, live.
  const job = jobs[4];
  await page.locator(`#jobs-table button[data-job="${job.job_uuid}"]`).click();
  await page.locator('#job-id', { hasText: job.job_uuid }).waitFor();
  const event = await api.post('/api/events', { job_uuid: job.job_uuid, event_content: 'opened the login page', event_datetime: new Date().toISOString() });
  await page.locator('#events-list li', { hasText: 'opened the login page' }).waitFor();
  await api.patch('/api/events/status', { event_uuid: event.event_uuid, event_status: 'Success' });
  await eventually('event badge Success', async () =>
    (await page.locator(`#events-list li[data-event="${event.event_uuid}"] .badge`).textContent()) === 'Success');
  await api.records([{ op: 'append_log', chunk_uuid: uuid(), job_uuid: job.job_uuid, text: 'worker: hello from stdout\n' }]);
  await page.locator('#job-logs', { hasText: 'hello from stdout' }).waitFor({ timeout: 8000 });
  await api.records([{ op: 'update_job', job_uuid: job.job_uuid, job_status: 'Failed', job_detail: 'exit code 3', job_finished: new Date().toISOString() }]);
  await page.locator('#job-status', { hasText: 'Failed' }).waitFor();
  await page.locator('#job-detail', { hasText: 'exit code 3' }).waitFor();
  await eventually('chart with 5 finished jobs', async () => (await chart.getAttribute('data-finished')) === '5');

  // Outputs, live, and their downloads.
  await page.locator('#tab-outputs').click();
  const rows = [
    { account: 'alice', price: 12.5, note: 'comma, inside' },
    { account: 'bob', price: 7, note: 'a "quote"' },
    { account: 'carol', price: 3, tags: ['x', 'y'] },
  ];
  for (const [i, data] of rows.entries()) {
    await api.post('/api/outputs', { run_uuid: run.run_uuid, job_uuid: jobs[i].job_uuid, data, timestamp: new Date(Date.now() + i).toISOString() });
  }
  await eventually('three output rows', async () => (await page.locator('#outputs-table tbody tr').count()) === 3);
  const [csvDownload] = await Promise.all([page.waitForEvent('download'), page.locator('#outputs-csv').click()]);
  const csv = readFileSync(await csvDownload.path(), 'utf8').trim().split('\r\n');
  assertEqual(csv[0], 'account,price,note,tags,job_uuid,timestamp,output_uuid', 'CSV header');
  assertEqual(csv.length, 4, 'CSV lines (header + 3 rows)');
  assert(csv[1].startsWith('alice,12.5,"comma, inside",,'), `CSV row 1: ${csv[1]}`);
  assert(csv[2].startsWith('bob,7,"a ""quote""",,'), `CSV row 2: ${csv[2]}`);
  assert(csv[3].startsWith('carol,3,,"[""x"",""y""]",'), `CSV row 3: ${csv[3]}`);
  assert(csvDownload.suggestedFilename().endsWith('.csv'), 'a .csv file name');
  const [jsonDownload] = await Promise.all([page.waitForEvent('download'), page.locator('#outputs-json').click()]);
  const json = JSON.parse(readFileSync(await jsonDownload.path(), 'utf8'));
  assertEqual(json.map((o) => o.data.account), ['alice', 'bob', 'carol'], 'JSON rows, oldest first');

  // The run's status changes live, in the list and the header.
  await api.records([{ op: 'update_run', run_uuid: run.run_uuid, run_status: 'completed' }]);
  await eventually('run completed in the list', async () => (await runButton.locator('.badge').textContent()) === 'completed');
  await page.locator('#run-status', { hasText: 'completed' }).waitFor();
  await page.locator('#tab-jobs').click();
  await eventually('progress 5 / 6', async () => (await progress.getAttribute('data-finished')) === '5');
  await page.locator(`#jobs-table button[data-job="${job.job_uuid}"]`).focus();

  await assertNoHorizontalOverflow(page, 'live run view');
  await env.screenshot('live-run-1280x800');
  await page.setViewportSize({ width: 1920, height: 1080 });
  await assertNoHorizontalOverflow(page, 'live run view');
  await env.screenshot('live-run-1920x1080');
  await page.setViewportSize({ width: 1280, height: 800 });

  // Keyboard: the run buttons and the job links are reachable and show focus.
  await page.locator(`button[data-run="${run.run_uuid}"]`).focus();
  await page.keyboard.press('Tab');
  const focused = await page.evaluate(() => document.activeElement && document.activeElement.tagName);
  assertEqual(focused, 'BUTTON', 'Tab moves to the next button');

  // A run whose jobs all finished in one bucket: its success rate is one point, still drawn.
  const doomed = await api.createRun();
  const only = await api.createJob(doomed.run_uuid, { job_status: 'Queued', job_index: 0 });
  await api.records([{ op: 'update_job', job_uuid: only.job_uuid, job_status: 'Success', job_finished: new Date().toISOString() }]);
  await page.locator(`button[data-run="${doomed.run_uuid}"]`).click();
  await page.locator('#run-id', { hasText: doomed.run_uuid }).waitFor();
  await eventually('chart with 1 finished job', async () => (await chart.getAttribute('data-finished')) === '1');
  const rateMark = (await chartColours(page)).purple;
  assert(rateMark > 10, `the chart marks a one-point success rate: ${rateMark} purple pixels`);

  // Delete through the button, with its confirmation.
  await page.locator('#run-delete').click();
  await page.locator('#confirm-dialog[open]').waitFor();
  await env.screenshot('confirm-delete');
  await page.locator('#confirm-yes').click();
  await page.locator(`button[data-run="${doomed.run_uuid}"]`).waitFor({ state: 'detached' });
  await page.locator('#run-empty').waitFor();
  const remaining = await api.get('/api/runs');
  assertEqual(remaining.total, 1, 'one run left on the server');
  assertEqual((await fetch(`${server.url}/api/runs/${doomed.run_uuid}`)).status, 404, 'the deleted run answers 404');

  // A run deleted through the API leaves the list too.
  await api.del(`/api/runs/${run.run_uuid}`);
  await runButton.waitFor({ state: 'detached' });

  assert(await page.evaluate(() => window.__notReloaded === true), 'the page was never reloaded');
}
