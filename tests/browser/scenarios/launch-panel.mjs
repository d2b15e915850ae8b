// The Launch panel before anything is sent: a folder pick (setInputFiles on the directory
// input), a .zip and a .tar.gz each list the files found; a folder without the template says
// so and cannot be launched; the server's answer to a launch is shown in the panel (here the
// orchestrator is not built, so the answer is its 404, shown as an error, and no run appears).

import { mkdtempSync, mkdirSync, writeFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { client, assert, assertEqual } from '../lib.mjs';

const FILES = {
  'demo/config/config_template.json': '{"run_message": {"number_of_agents": 1, "number_of_jobs": 2}}',
  'demo/config/config_local.json': '{}',
  'demo/config/data_job.csv': 'word\n"two\nlines"\nplain\n',
  'demo/requirements.txt': 'requests\n',
  'demo/main.py': 'print(1)\n',
  'demo/lib/util.py': 'x = 1\n',
  'demo/README.md': '# demo\n',
};

/** A .zip with stored (uncompressed) entries. */
function zip(files) {
  const locals = [];
  const centrals = [];
  let offset = 0;
  for (const [name, text] of Object.entries(files)) {
    const nameBytes = Buffer.from(name);
    const data = Buffer.from(text);
    const crc = zlib.crc32(data);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0); local.writeUInt16LE(20, 4); local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(data.length, 18); local.writeUInt32LE(data.length, 22); local.writeUInt16LE(nameBytes.length, 26);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0); central.writeUInt16LE(20, 4); central.writeUInt16LE(20, 6); central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(data.length, 20); central.writeUInt32LE(data.length, 24); central.writeUInt16LE(nameBytes.length, 28);
    central.writeUInt32LE(offset, 42);
    locals.push(local, nameBytes, data);
    centrals.push(central, nameBytes);
    offset += 30 + nameBytes.length + data.length;
  }
  const dir = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0); end.writeUInt16LE(Object.keys(files).length, 8); end.writeUInt16LE(Object.keys(files).length, 10);
  end.writeUInt32LE(dir.length, 12); end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, dir, end]);
}

/** A .tar.gz of regular files (ustar headers). */
function tarGz(files) {
  const blocks = [];
  for (const [name, text] of Object.entries(files)) {
    const data = Buffer.from(text);
    const header = Buffer.alloc(512);
    header.write(name, 0, 100);
    header.write('0000644\0', 100); header.write('0000000\0', 108); header.write('0000000\0', 116);
    header.write(`${data.length.toString(8).padStart(11, '0')}\0`, 124);
    header.write('00000000000\0', 136);
    header.write('        ', 148);
    header.write('0', 156);
    header.write('ustar\0', 257); header.write('00', 263);
    let sum = 0;
    for (const byte of header) sum += byte;
    header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
    blocks.push(header, data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return zlib.gzipSync(Buffer.concat(blocks));
}

async function expectListing(page, label) {
  const table = page.locator('#launch-files');
  await table.locator('tr[data-path="config/config_template.json"] .found').waitFor();
  await table.locator('tr[data-path="config/config_local.json"] .found').waitFor();
  assertEqual(await table.locator('tr[data-path="config/config_distant.json"] td').nth(2).textContent(), '— none', `${label}: no distant tune`);
  await table.locator('tr[data-path="requirements.txt"] .found').waitFor();
  assertEqual(await table.locator('[data-code-files]').textContent(), '2', `${label}: two code files`);
  assert(await page.locator('#launch-submit').isEnabled(), `${label}: Launch is enabled`);
  // Only the tune whose file is there can be picked.
  assert(await page.locator('#launch-tune input[value="distant"]').isDisabled(), `${label}: no distant tune to pick`);
  assert(await page.locator('#launch-tune input[value="local"]').isChecked(), `${label}: the local tune is picked`);
  assert(await page.locator('#launch-tune-none').isHidden(), `${label}: a tune is available`);
}

export async function launchPanel(env) {
  const { page } = env;
  const server = await env.server();
  const api = client(server.url);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'armada-launch-panel-'));
  try {
    for (const [name, text] of Object.entries(FILES)) {
      mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
      writeFileSync(path.join(dir, name), text);
    }
    writeFileSync(path.join(dir, 'demo.zip'), zip(FILES));
    writeFileSync(path.join(dir, 'demo.tar.gz'), tarGz(FILES));
    mkdirSync(path.join(dir, 'empty/src'), { recursive: true });
    writeFileSync(path.join(dir, 'empty/src/a.py'), '');

    await page.goto(server.url);
    await page.waitForSelector('#conn[data-state="connected"]');
    await page.keyboard.press('Tab');
    await page.keyboard.press('Tab');
    await page.locator('#launch-open').focus();
    await page.keyboard.press('Enter');
    await page.locator('#launch-dialog[open]').waitFor();

    await page.locator('#launch-folder').setInputFiles(path.join(dir, 'demo'));
    await expectListing(page, 'folder');
    await page.locator('#launch-files tr[data-path="config/data_job.csv"]', { hasText: '2 rows' }).waitFor();
    await env.screenshot('launch-panel-folder');

    await page.locator('#launch-archive').setInputFiles(path.join(dir, 'demo.zip'));
    await expectListing(page, 'zip');
    await page.locator('#launch-archive').setInputFiles(path.join(dir, 'demo.tar.gz'));
    await expectListing(page, 'tar.gz');

    await page.locator('#launch-folder').setInputFiles(path.join(dir, 'empty'));
    await page.locator('#launch-error', { hasText: 'config/config_template.json is missing' }).waitFor();
    assert(await page.locator('#launch-submit').isDisabled(), 'no launch without a template');

    await page.locator('#launch-folder').setInputFiles(path.join(dir, 'demo'));
    await expectListing(page, 'folder again');
    if (!(await server.serves('orchestrator'))) {
      // With no orchestrator the server's 404 is what comes back: it is shown, nothing runs.
      await page.locator('#launch-submit').click();
      const error = page.locator('#launch-error');
      await error.waitFor({ state: 'visible' });
      const text = await error.textContent();
      assert(/bot\/start/.test(text), `the server's answer is shown: ${text}`);
      assert(await page.locator('#launch-dialog[open]').count(), 'the panel stays open with the error');
      assertEqual((await api.get('/api/runs')).total, 0, 'no run recorded');
    }
    await page.keyboard.press('Escape');
    await page.locator('#launch-dialog[open]').waitFor({ state: 'detached' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
