// (d) The live stream drops and comes back: the server stops (the dashboard shows it is
// disconnected), a run is created and a job finishes while the dashboard cannot hear about it
// (through a second server on the same database), then the server restarts on the same port
// with the same database: the dashboard reconnects by itself and catches up without a reload.

import { Server, client, eventually, assert } from '../lib.mjs';

export async function reconnects(env) {
  const { page } = env;
  const server = await env.server();
  const api = client(server.url);
  const run = await api.createRun({ run_status: 'running', number_of_jobs: 1 });
  const job = await api.createJob(run.run_uuid, { job_status: 'Running', job_index: 0 });

  await page.goto(`${server.url}/#/runs/${run.run_uuid}`);
  await page.evaluate(() => { window.__notReloaded = true; });
  await page.waitForSelector('#conn[data-state="connected"]');
  const badge = page.locator(`#jobs-table tr[data-job="${job.job_uuid}"] .badge`);
  await eventually('the job is Running', async () => (await badge.textContent()) === 'Running');

  await server.stop();
  await page.waitForSelector('#conn[data-state="disconnected"], #conn[data-state="reconnecting"]');
  await page.waitForSelector('#conn[data-state="disconnected"]');
  await env.screenshot('reconnect-disconnected');
  const text = await page.locator('#conn-text').textContent();
  assert(/Disconnected/.test(text), `the state is written out: ${text}`);

  // Changes made while the dashboard is cut off.
  const side = env.track(new Server({ bin: server.bin, dir: server.dir }));
  await side.start();
  const sideApi = client(side.url);
  const missed = await sideApi.createRun({ run_status: 'running' });
  await sideApi.setJob(job.job_uuid, 'Success');
  await side.stop();

  await server.start();
  await page.waitForSelector('#conn[data-state="connected"]', { timeout: 20000 });
  await page.locator(`button[data-run="${missed.run_uuid}"]`).waitFor();
  await eventually('the job caught up to Success', async () => (await badge.textContent()) === 'Success');
  await eventually('counts caught up', async () =>
    (await page.locator('#run-counts div[data-status="Success"] dd').textContent()) === '1');

  // And it is live again.
  const later = await api.createRun();
  await page.locator(`button[data-run="${later.run_uuid}"]`).waitFor();
  assert(await page.evaluate(() => window.__notReloaded === true), 'the page was never reloaded');
  await env.screenshot('reconnect-caught-up');
}
