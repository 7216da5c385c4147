// An app machine on the node daemon, from its page: the file manager (browse, edit and save a
// text file, make a folder, pack and unpack, delete) and the app's own console, on a laptop and
// on a phone.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { launch, hydrated, BASE, ARTIFACTS, api, fundedCustomer, signIn } from './browser.mjs';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

const row = (page, name) => page.locator(`[data-test=fm-row][data-name="${name}"]`);

test('the file manager and console of an app machine', async () => {
  const { email, password, token } = await fundedCustomer('files', 5);
  const context = await browser.newContext({ viewport: { width: 1366, height: 900 } });
  const page = await context.newPage();
  let id;
  try {
    // Made in the portal from the app template; it lands on the node daemon.
    await signIn(page, email, password);
    await page.goto(`${BASE}/machines`);
    await hydrated(page);
    await page.fill('[data-test=create-machine-form] input[name=name]', 'my-game');
    await page.locator('[data-test=source-card]', { hasText: 'Demo game server' }).click();
    await page.click('[data-test=create-machine-form] button[type=submit]');
    const listed = page.locator('[data-test=machine-row]', { hasText: 'my-game' });
    await listed.locator('[data-test=machine-state][data-state=running]').waitFor({ timeout: 60_000 });
    id = (await api('/api/vps', token)).body.find((v) => v.name === 'my-game').id;
    await laptop(page, id, token);
  } catch (e) {
    await page.screenshot({ path: `${ARTIFACTS}machine-files-failed.png`, fullPage: true }).catch(() => {});
    throw e;
  }

  // On a phone the file manager stays usable: rows stack, nothing overflows sideways.
  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  const small = await phone.newPage();
  await signIn(small, email, password);
  await small.goto(`${BASE}/machines/${id}`);
  await hydrated(small);
  await row(small, 'server.properties').waitFor({ timeout: 20_000 });
  const overflow = await small.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 1, `the page is ${overflow}px wider than the phone`);
  await small.screenshot({ path: `${ARTIFACTS}machine-files-phone.png`, fullPage: true });
  await context.close();
  await phone.close();
});

async function laptop(page, id, token) {
  const fetched = [];
  page.on('request', (r) => fetched.push(r.url()));
  await page.goto(`${BASE}/machines/${id}`);
  await hydrated(page);
  // The file manager's code is not part of the page's first load: not preloaded, fetched once
  // the card shows.
  const preloaded = await page.$$eval('link[rel=preload]', (links) => links.map((l) => l.href));
  assert.ok(preloaded.some((h) => h.endsWith('/pack_machine.bin')), 'the machine page preloads its own pack');
  assert.ok(!preloaded.some((h) => h.endsWith('/pack_files.bin')), 'the file manager is not preloaded');
  await row(page, 'server.properties').waitFor({ timeout: 20_000 });
  assert.ok(fetched.some((u) => u.endsWith('/pack_files.bin')), 'the file manager\'s pack was fetched when it showed');
  await page.locator('[data-test=machine-state][data-state=running]').first().waitFor({ timeout: 60_000 });
  assert.equal(await page.locator('[data-test=command-card]').count(), 0, 'no command card: the daemon runs no commands');
  assert.match(await page.locator('[data-test=machine-ports]').innerText(), /127\.0\.0\.1:255\d\d\/tcp/, 'the app got a port from the pool');
  // Live charts fill from the daemon's stats events while the page is open.
  const usage = page.locator('[data-test=usage-card]');
  await page.waitForFunction(() => Number(document.querySelector('[data-test=usage-live]')?.dataset.samples) >= 3, null, { timeout: 20_000 });
  assert.match(await usage.locator('[data-test=chart-cpu] figcaption').innerText(), /CPU \d+\.\d %/);
  assert.match(await usage.locator('[data-test=chart-memory] figcaption').innerText(), /Memory [\d.]+ (?:[KMG]i)?B of [\d.]+ [KMG]iB/, 'memory against the plan\'s limit');
  assert.match(await usage.locator('[data-test=chart-network] figcaption').innerText(), /↓ .+\/s ↑ .+\/s/);
  assert.ok((await usage.locator('[data-test=chart-cpu] polyline').getAttribute('points')).split(' ').length >= 3, 'the CPU line has a point per sample');
  // The recorded history: a point a minute from the node, read when its span is chosen (the
  // server samples running machines every 15 s, one row a minute).
  let points = 0;
  for (let i = 0; i < 15 && points === 0; i++) {
    await usage.locator('[data-test=usage-range-Live]').click();
    await usage.locator('[data-test=usage-range-1h]').click();
    await usage.locator('[data-test=usage-history], [data-test=usage-history-empty]').first().waitFor();
    points = Number(await usage.locator('[data-test=usage-history]').getAttribute('data-points', { timeout: 1000 }).catch(() => 0));
    if (points === 0) await page.waitForTimeout(2000);
  }
  assert.ok(points >= 1, 'the last hour has the minute the machine ran');
  assert.match(await usage.locator('[data-test=history-memory] figcaption').innerText(), /Memory [\d.]+ (?:[KMG]i)?B on average/);
  assert.match(await usage.locator('[data-test=history-disk] figcaption').innerText(), /Disk read .+\/s write .+\/s/);
  await usage.evaluate((el) => el.scrollIntoView({ block: 'center' }));
  await usage.screenshot({ path: `${ARTIFACTS}machine-history.png` });
  const laptop = page.viewportSize();
  await page.setViewportSize({ width: 390, height: 844 });
  await usage.evaluate((el) => el.scrollIntoView({ block: 'center' }));
  await usage.screenshot({ path: `${ARTIFACTS}machine-history-390.png` });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `the charts fit a phone (${overflow}px too wide)`);
  await page.setViewportSize(laptop);
  await usage.locator('[data-test=usage-range-Live]').click();

  // What the install script left: server.properties and world/.
  const fm = page.locator('[data-test=file-manager]');
  await row(page, 'server.properties').waitFor({ timeout: 20_000 });
  await row(page, 'world').waitFor();
  assert.match(await fm.locator('[data-test=fm-usage]').innerText(), /used/);

  // Edit and save a text file; reading it back through the API shows the change.
  await row(page, 'server.properties').locator('[data-test=fm-edit]').click();
  const editor = page.locator('[data-test=fm-editor-text]');
  await editor.waitFor();
  assert.equal((await editor.inputValue()).trim(), 'motd=Welcome');
  await editor.fill('motd=Hello from the browser\n');
  await page.click('[data-test=fm-save-form] button[type=submit]');
  await page.locator('[data-test=fm-saved]').waitFor();
  const read = await fetch(`${BASE}/api/vps/${id}/volume/content?path=server.properties`, { headers: { Authorization: `Bearer ${token}` } });
  assert.equal(await read.text(), 'motd=Hello from the browser\n');

  // A folder, a pack and an unpack, then a delete.
  await page.fill('[data-test=fm-folder-name]', 'plugins');
  await page.click('[data-test=fm-folder-form] button[type=submit]');
  await row(page, 'plugins').waitFor();
  await row(page, 'world').locator('[data-test=fm-pack]').click();
  await page.fill('[data-test=fm-target]', 'world-backup');
  await page.click('[data-test=fm-pending-form] button[type=submit]');
  await row(page, 'world-backup.tar.gz').waitFor();
  await row(page, 'world-backup.tar.gz').locator('[data-test=fm-unpack]').click();
  await page.fill('[data-test=fm-target]', 'restored');
  await page.click('[data-test=fm-pending-form] button[type=submit]');
  await row(page, 'restored').waitFor();
  await row(page, 'restored').locator('[data-test=fm-open]').click();
  await row(page, 'world').waitFor(); // the folder itself was packed, and came back whole
  await page.click('[data-test=fm-crumbs] button >> nth=0');
  await row(page, 'plugins').locator('[data-test=fm-delete]').click();
  await row(page, 'plugins').waitFor({ state: 'detached' });
  await page.screenshot({ path: `${ARTIFACTS}machine-files.png`, fullPage: true });

  // The console is the app's own: what it printed at start, and it answers a line.
  await page.waitForFunction(() => window.hangarConsoleReady);
  await page.click('[data-test=open-console]');
  await page.locator('[data-console-root][data-console-state=running]').waitFor({ timeout: 30_000 });
  const terminal = page.locator('[data-terminal] .xterm-rows');
  await page.waitForFunction(() => document.querySelector('[data-terminal] .xterm-rows')?.innerText.includes('Done!'), null, { timeout: 20_000 });
  await page.locator('[data-terminal] .xterm-helper-textarea').focus();
  await page.keyboard.type('say hi\n');
  await page.waitForFunction(() => document.querySelector('[data-terminal] .xterm-rows')?.innerText.includes('[server] say hi'), null, { timeout: 20_000 });
  assert.match(await terminal.innerText(), /\[server\] say hi/);

}
