// The run view's buttons on a real run: tests/fixtures/sleepy (2 agents, 6 jobs that each
// sleep two minutes) launched from the Launch panel. While it runs, the agents table shows each
// agent's current job as GET /bot/runs/{id} does. Cancel asks first (keeping the run leaves it
// running), then cancels: the run shows `cancelled`, its jobs `Cancelled`, and the orchestrator
// agrees. Delete asks first too, then the run leaves the list and the API answers 404.

import { existsSync } from 'node:fs';
import path from 'node:path';
import { client, eventually, assert, assertEqual, launchFolder } from '../lib.mjs';
import { expectAgentsAsOrchestrator } from './launch.mjs';

/** GET with the status kept (the client throws on errors). */
async function status(url) {
  const response = await fetch(url);
  return response.status;
}

export async function cancelAndDelete(env) {
  const { page } = env;
  const sleepy = path.join(env.root, 'tests/fixtures/sleepy');
  const server = await env.server();
  await env.needsOrchestrator(server);
  if (!existsSync(path.join(sleepy, 'config/config_template.json'))) env.skip('needs tests/fixtures/sleepy');
  const api = client(server.url);

  await page.goto(server.url);
  await page.waitForSelector('#conn[data-state="connected"]');
  // sleepy has no tune file: neither tune can be picked, and none is sent.
  const runId = await launchFolder(page, sleepy, {
    inspect: async () => {
      assertEqual(await page.locator('#launch-tune input[name="tune"]:disabled').count(), 2, 'both tunes disabled');
      await page.locator('#launch-tune-none').waitFor();
    },
  });
  await page.locator('#run-status', { hasText: 'running' }).waitFor({ timeout: 30000 });

  // Both agents are in their first job: the agents table shows who runs what.
  const busy = await eventually('both agents working on a job', async () => {
    const bot = await api.get(`/bot/runs/${runId}`);
    return bot.agents.length === 2 && bot.agents.every((a) => a.current_job) ? bot : null;
  }, 60000);
  await page.locator('#tab-agents').click();
  const shown = await expectAgentsAsOrchestrator(page, api, runId);
  for (const a of shown.agents) {
    assertEqual([a.phase, a.jobs_taken, Boolean(a.current_job), Boolean(a.last_seen)], ['running', 1, true, true], `${a.agent}: running its one job`);
  }
  assertEqual(shown.agents.map((a) => a.current_job).sort(), busy.agents.map((a) => a.current_job).sort(), 'the same jobs still running');
  // The current job is a link to it.
  const current = shown.agents[0].current_job;
  await page.locator(`#agents-table button[data-job="${current}"]`).click();
  await page.locator('#job-id', { hasText: current }).waitFor();
  await page.locator('#job-status', { hasText: 'Running' }).waitFor();
  await page.locator('#events-list li', { hasText: 'going to sleep' }).waitFor();
  await env.screenshot('run-actions-running');

  // Cancel, with the keyboard: Enter opens the confirmation, whose focused button keeps the run.
  const cancel = page.locator('#run-cancel');
  await cancel.focus();
  await page.keyboard.press('Enter');
  await page.locator('#confirm-dialog[open]').waitFor();
  assertEqual(await page.locator('#confirm-title').textContent(), 'Cancel this run?', 'the confirmation asks');
  assertEqual(await page.evaluate(() => document.activeElement.id), 'confirm-no', 'the safe answer has the focus');
  await env.screenshot('confirm-cancel');
  await page.keyboard.press('Enter');
  await page.locator('#confirm-dialog[open]').waitFor({ state: 'detached' });
  assertEqual((await api.get(`/bot/runs/${runId}`)).status, 'running', 'kept: the run still runs');
  assertEqual(await page.locator('#run-status').textContent(), 'running', 'kept: the page says running');

  await cancel.click();
  await page.locator('#confirm-dialog[open]').waitFor();
  await page.locator('#confirm-yes').click();
  await page.locator('#run-status', { hasText: 'cancelled' }).waitFor({ timeout: 30000 });
  await page.locator(`button[data-run="${runId}"] .badge`, { hasText: 'cancelled' }).waitFor();
  assert(await cancel.isHidden(), 'no Cancel button on a cancelled run');
  const cancelled = await eventually('the orchestrator says cancelled', async () => {
    const bot = await api.get(`/bot/runs/${runId}`);
    return bot.status === 'cancelled' ? bot : null;
  });
  assertEqual(cancelled.counts, { Cancelled: 6 }, 'every job cancelled, none ran to its end');
  await page.locator('#tab-jobs').click();
  await eventually('six Cancelled jobs on the page', async () => {
    const badges = await page.locator('#jobs-table tbody .badge').allTextContents();
    return badges.length === 6 && badges.every((b) => b === 'Cancelled');
  });
  await eventually('the counts show 6 cancelled', async () =>
    (await page.locator('#run-counts div[data-status="Cancelled"] dd').textContent()) === '6');
  await page.locator('#tab-agents').click();
  const stopped = await expectAgentsAsOrchestrator(page, api, runId, { settled: true });
  assert(stopped.agents.length === 2 && stopped.agents.every((a) => !a.current_job), 'no agent has a current job any more');
  await env.screenshot('run-actions-cancelled');

  // Delete: Escape keeps it, confirming deletes it.
  const del = page.locator('#run-delete');
  await del.click();
  await page.locator('#confirm-dialog[open]').waitFor();
  assertEqual(await page.locator('#confirm-title').textContent(), 'Delete this run?', 'the confirmation asks');
  await page.keyboard.press('Escape');
  await page.locator('#confirm-dialog[open]').waitFor({ state: 'detached' });
  assertEqual((await api.get(`/api/runs/${runId}`)).run_uuid, runId, 'kept: the run is still there');
  await del.click();
  await page.locator('#confirm-dialog[open]').waitFor();
  await page.locator('#confirm-yes').click();
  await page.locator(`button[data-run="${runId}"]`).waitFor({ state: 'detached' });
  await page.locator('#run-empty').waitFor();
  assertEqual(await page.evaluate(() => location.hash), '#/', 'the selection is cleared');
  assertEqual(await status(`${server.url}/api/runs/${runId}`), 404, 'GET /api/runs/{id} after the delete');
  assertEqual(await status(`${server.url}/tracking/api/runs/${runId}`), 404, 'GET /tracking/api/runs/{id} after the delete');
  assertEqual(await status(`${server.url}/bot/runs/${runId}`), 404, 'GET /bot/runs/{id} after the delete');
  assertEqual((await api.get(`/api/jobs?run_uuid=${runId}`)).total, 0, 'its jobs are gone');
  assertEqual((await api.get('/api/runs')).total, 0, 'no run left');
}
