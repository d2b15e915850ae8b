// (c) With ARMADA_TOKEN set: the API refuses calls without it, the dashboard asks for it
// (and says when a wrong one is given), then works — REST and the live WebSocket.

import { client, assert, assertEqual } from '../lib.mjs';

const TOKEN = 'browser-test-token-3f9a';

export async function tokenRequired(env) {
  const { page } = env;
  const server = await env.server({ ARMADA_TOKEN: TOKEN });
  for (const route of ['/api/runs', '/tracking/api/runs/', '/api/jobs?run_uuid=']) {
    const response = await fetch(`${server.url}${route}`);
    assertEqual(response.status, 401, `${route} without the token`);
    const body = await response.json();
    assert(/token/.test(body.detail), `the 401 says a token is needed: ${body.detail}`);
  }
  const wrong = await fetch(`${server.url}/api/runs`, { headers: { Authorization: 'Bearer nope' } });
  assertEqual(wrong.status, 401, 'a wrong token');
  const page1 = await fetch(`${server.url}/`);
  assertEqual(page1.status, 200, 'the dashboard itself stays open');

  const api = client(server.url, TOKEN);
  const before = await api.createRun({ run_status: 'running' });

  await page.goto(server.url);
  await page.locator('#token-dialog[open]').waitFor();
  await env.screenshot('token-prompt');
  await page.locator('#token-input').fill('not-the-token');
  await page.keyboard.press('Enter');
  await page.locator('#token-error', { hasText: 'refused' }).waitFor();
  await page.locator('#token-input').fill(TOKEN);
  await page.keyboard.press('Enter');
  await page.locator('#token-dialog[open]').waitFor({ state: 'detached' });
  await page.locator(`button[data-run="${before.run_uuid}"]`).waitFor();
  await page.waitForSelector('#conn[data-state="connected"]');

  // The live stream works with the token (it travels as ?token=).
  const after = await api.createRun({ run_status: 'dispatching' });
  await page.locator(`button[data-run="${after.run_uuid}"]`).waitFor();
  await page.locator(`button[data-run="${after.run_uuid}"]`).click();
  await page.locator('#run-id', { hasText: after.run_uuid }).waitFor();
  const stored = await page.evaluate(() => sessionStorage.getItem('armada.token'));
  assertEqual(stored, TOKEN, 'the token is kept in sessionStorage');
  await page.locator('#token-forget').waitFor();

  // A reload in the same tab does not ask again.
  await page.reload();
  await page.locator(`button[data-run="${after.run_uuid}"]`).waitFor();
  assert(!(await page.locator('#token-dialog[open]').count()), 'no prompt after a reload in the same tab');
}
