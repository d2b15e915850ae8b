// A run's jobs and outputs past their first page: 45 jobs (20 a page, so three pages) and 130
// outputs (20 a page, seven pages), recorded through POST /api/records. Each page shows the
// same jobs and outputs, in the same order, as the API's page; a job picked on page 3 opens;
// the CSV download holds all 130 outputs (two export reads of 100), oldest first.

import { readFileSync } from 'node:fs';
import { client, eventually, assert, assertEqual, uuid, csvRecords } from '../lib.mjs';

const PAGE = 20;

export async function jobsOutputsPager(env) {
  const { page } = env;
  const server = await env.server();
  const api = client(server.url);
  const run = await api.createRun({ run_status: 'completed', number_of_agents: 1, number_of_jobs: 45 });
  const base = Date.parse('2026-03-01T10:00:00Z');
  const jobs = [];
  for (let i = 0; i < 45; i++) {
    jobs.push({ op: 'create_job', job_uuid: uuid(), run_uuid: run.run_uuid, job_index: i, job_status: 'Success',
      job_datetime: new Date(base + i * 1000).toISOString() });
  }
  await api.records(jobs);
  const outputs = [];
  for (let i = 0; i < 130; i++) {
    outputs.push({ op: 'create_output', run_uuid: run.run_uuid, job_uuid: jobs[i % 45].job_uuid, data: { n: i },
      timestamp: new Date(base + i * 1000).toISOString() });
  }
  await api.records(outputs);

  await page.goto(`${server.url}/#/runs/${run.run_uuid}`);
  await page.waitForSelector('#conn[data-state="connected"]');
  await page.locator('#run-id', { hasText: run.run_uuid }).waitFor();

  // Jobs, page by page, as the API pages them.
  const jobsPager = page.locator('#jobs-pager');
  const jobsShown = () => page.locator('#jobs-table tbody tr[data-job]').evaluateAll((rows) => rows.map((r) => r.dataset.job));
  const expectJobs = async (n) => {
    const answer = await api.get(`/api/jobs/?run_uuid=${run.run_uuid}&page=${n}&page_size=${PAGE}`);
    const expected = answer.jobs.map((j) => j.job_uuid);
    await eventually(`jobs page ${n}`, async () => JSON.stringify(await jobsShown()) === JSON.stringify(expected));
    assertEqual(await jobsPager.locator('[data-label]').textContent(), `Page ${n} of 3`, 'jobs pager label');
    return expected;
  };
  const firstJobs = await expectJobs(1);
  assertEqual(firstJobs.length, PAGE, 'a full first page of jobs');
  await jobsPager.locator('button[data-page="next"]').click();
  const secondJobs = await expectJobs(2);
  assert(!secondJobs.some((j) => firstJobs.includes(j)), 'page 2 holds other jobs than page 1');
  await jobsPager.locator('button[data-page="next"]').click();
  const thirdJobs = await expectJobs(3);
  assertEqual(thirdJobs.length, 5, 'the last five jobs on page 3');
  assert(await jobsPager.locator('button[data-page="next"]').isDisabled(), 'no page after the last');
  assertEqual(new Set([...firstJobs, ...secondJobs, ...thirdJobs]).size, 45, 'every job on exactly one page');
  await page.locator(`#jobs-table button[data-job="${thirdJobs[2]}"]`).click();
  await page.locator('#job-id', { hasText: thirdJobs[2] }).waitFor();

  // Outputs, past page 1 to the last, as the API pages them.
  await page.locator('#tab-outputs').click();
  const outputsPager = page.locator('#outputs-pager');
  const outputsShown = () => page.locator('#outputs-table tbody td.data').evaluateAll((cells) => cells.map((c) => JSON.parse(c.textContent).n));
  const expectOutputs = async (n) => {
    const answer = await api.get(`/api/outputs/?run_uuid=${run.run_uuid}&page=${n}&page_size=${PAGE}`);
    const expected = answer.outputs.map((o) => o.data.n);
    await eventually(`outputs page ${n}`, async () => JSON.stringify(await outputsShown()) === JSON.stringify(expected));
    assertEqual(await outputsPager.locator('[data-label]').textContent(), `Page ${n} of 7`, 'outputs pager label');
    return expected;
  };
  assertEqual(await expectOutputs(1), [...Array(20).keys()].map((i) => 129 - i), 'outputs page 1: the newest twenty');
  for (let n = 2; n <= 7; n++) {
    await outputsPager.locator('button[data-page="next"]').click();
    const shown = await expectOutputs(n);
    if (n === 7) assertEqual(shown, [...Array(10).keys()].map((i) => 9 - i), 'outputs page 7: the oldest ten');
  }
  await env.screenshot('outputs-pager-page-7');

  // The download holds every output, not just the pages seen.
  const [download] = await Promise.all([page.waitForEvent('download'), page.locator('#outputs-csv').click()]);
  const { header, records } = csvRecords(readFileSync(await download.path(), 'utf8'));
  assertEqual(header.slice(0, 2), ['n', 'job_uuid'], 'CSV columns');
  assertEqual(records.map((r) => Number(r.n)), [...Array(130).keys()], 'all 130 outputs, oldest first');
}
