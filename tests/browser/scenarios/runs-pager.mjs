// The runs list past its first page: 23 runs recorded through POST /api/runs/ (10 a page, so
// three pages), paged with the keyboard only — Tab from the last run reaches "Older", Enter
// and Space page, the focus stays in the pager when a button gets disabled — each page the
// same runs, in the same order, as GET /api/runs/?page=N. A run that arrives while page 2 is
// shown shifts page 2 at once; a run picked on page 2 opens.

import { client, eventually, assert, assertEqual, uuid } from '../lib.mjs';

const PAGE = 10;

export async function runsPager(env) {
  const { page } = env;
  const server = await env.server();
  const api = client(server.url);
  const base = Date.parse('2026-03-01T10:00:00Z');
  const created = [];
  for (let i = 0; i < 23; i++) {
    created.push(await api.post('/api/runs/', {
      run_uuid: uuid(),
      run_datetime: new Date(base + i * 60000).toISOString(),
      run_status: 'completed',
      number_of_jobs: i,
    }));
  }

  await page.goto(server.url);
  await page.waitForSelector('#conn[data-state="connected"]');
  const pager = page.locator('#runs-pager');
  const older = pager.locator('button[data-page="next"]');
  const newer = pager.locator('button[data-page="prev"]');
  const label = pager.locator('[data-label]');

  /** The runs shown, top to bottom, once they are page `n` of the API's list. */
  const expectPage = async (n, total) => {
    const answer = await api.get(`/api/runs/?page=${n}&page_size=${PAGE}`);
    const expected = answer.runs.map((r) => r.run_uuid);
    await eventually(`page ${n} of the runs`, async () => {
      const shown = await page.locator('#runs-list button[data-run]').evaluateAll((bs) => bs.map((b) => b.dataset.run));
      return JSON.stringify(shown) === JSON.stringify(expected);
    });
    const pages = Math.ceil(total / PAGE);
    assertEqual(await label.textContent(), `Page ${n} of ${pages}`, 'pager label');
    assertEqual(await page.locator('#runs-total').textContent(), `${total} in all`, 'total');
    assertEqual([await newer.isDisabled(), await older.isDisabled()], [n === 1, n === pages], `page ${n}: which way the pager can go`);
    return expected;
  };
  const focusedPage = () => page.evaluate(() => document.activeElement && document.activeElement.dataset.page);

  const first = await expectPage(1, 23);
  assertEqual(first, created.slice(13).reverse().map((r) => r.run_uuid), 'page 1: the ten newest runs, newest first');
  assert(await pager.isVisible(), 'the pager shows with more than one page');

  // Tab from the last run of the page skips the disabled "Newer" and lands on "Older".
  await page.locator(`button[data-run="${first.at(-1)}"]`).focus();
  await page.keyboard.press('Tab');
  assertEqual(await focusedPage(), 'next', 'Tab reaches the Older button');
  await page.keyboard.press('Enter');
  const second = await expectPage(2, 23);
  assertEqual(second, created.slice(3, 13).reverse().map((r) => r.run_uuid), 'page 2: the next ten');
  await page.keyboard.press('Space');
  const third = await expectPage(3, 23);
  assertEqual(third, created.slice(0, 3).reverse().map((r) => r.run_uuid), 'page 3: the three oldest');
  assertEqual(await focusedPage(), 'prev', 'Older got disabled: the focus moved to Newer');
  await env.screenshot('runs-pager-page-3');
  await page.keyboard.press('Enter');
  await expectPage(2, 23);

  // A new run while page 2 shows: the total grows and page 2 now starts one run older.
  const late = await api.post('/api/runs/', { run_uuid: uuid(), run_datetime: new Date(base + 30 * 60000).toISOString(), run_status: 'running' });
  const shifted = await expectPage(2, 24);
  assertEqual(shifted[0], created[13].run_uuid, 'the run pushed off page 1 now opens page 2');
  assert(!shifted.includes(late.run_uuid), 'the new run is not on page 2');

  // Picking a run on page 2 opens it.
  const picked = shifted[4];
  await page.locator(`button[data-run="${picked}"]`).focus();
  await page.keyboard.press('Enter');
  await page.locator('#run-id', { hasText: picked }).waitFor();
  assertEqual(await page.locator(`button[data-run="${picked}"]`).getAttribute('aria-current'), 'true', 'the picked run is marked current');

  // Back to page 1 with the keyboard: the new run is on top.
  await newer.focus();
  await page.keyboard.press('Enter');
  const top = await expectPage(1, 24);
  assertEqual(top[0], late.run_uuid, 'the new run heads page 1');
}
