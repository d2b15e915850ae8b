// The split layout: the dashboard served by `--roles frontend`, the backend in another process
// (`--roles backend`) reached through BACKEND_URL. Everything the dashboard does goes through
// the frontend's forwarding: REST calls, the bridged WebSocket, and the restart of the backend.

import { client, eventually } from '../lib.mjs';

export async function splitLayout(env) {
  const { page } = env;
  const backend = await env.server({}, { roles: 'backend' });
  const frontend = await env.server({ BACKEND_URL: backend.url, ORCHESTRATOR_URL: backend.url }, { roles: 'frontend' });
  const api = client(backend.url);

  await page.goto(frontend.url);
  await page.waitForSelector('#conn[data-state="connected"]');
  const run = await api.createRun({ run_status: 'running', number_of_jobs: 2 });
  await page.locator(`button[data-run="${run.run_uuid}"]`).click();
  await page.locator('#run-id', { hasText: run.run_uuid }).waitFor();
  const job = await api.createJob(run.run_uuid, { job_status: 'Running', job_index: 0 });
  const badge = page.locator(`#jobs-table tr[data-job="${job.job_uuid}"] .badge`);
  await eventually('the job arrives through the bridge', async () => (await badge.textContent()) === 'Running');
  await api.setJob(job.job_uuid, 'Success');
  await eventually('its status too', async () => (await badge.textContent()) === 'Success');

  // The backend restarts behind the frontend: the bridge closes, the dashboard reconnects.
  await backend.stop();
  await page.waitForSelector('#conn[data-state="disconnected"]');
  await backend.start();
  await page.waitForSelector('#conn[data-state="connected"]', { timeout: 20000 });
  const later = await api.createRun();
  await page.locator(`button[data-run="${later.run_uuid}"]`).waitFor();
  await env.screenshot('split-layout');
}
