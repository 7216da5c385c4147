// Inside a container machine from its page, as a customer would: run a command and read its
// output, get a destructive command refused, start a background command and cancel it while
// watching its status change without a reload, upload a file and download it again.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { launch, hydrated, uniqueName, BASE, ARTIFACTS, api, signIn } from './browser.mjs';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

test('run commands and move files inside a container from its page', async () => {
  const username = uniqueName('inside');
  const email = `${username}@example.com`;
  const password = 'inside-password-1';
  const reg = await api('/api/auth/register', null, { email, username, password });
  assert.equal(reg.status, 201);
  const op = await api('/api/auth/login', null, {
    email: process.env.HANGAR_E2E_ADMIN_EMAIL, password: process.env.HANGAR_E2E_ADMIN_PASSWORD,
  });
  assert.equal((await api(`/api/admin/users/${reg.body.id}/credit`, op.body.token, { amount: 5 })).status, 200);

  const context = await browser.newContext({ viewport: { width: 1366, height: 900 }, acceptDownloads: true });
  const page = await context.newPage();
  await signIn(page, email, password);

  await page.goto(`${BASE}/machines`);
  await hydrated(page);
  await page.fill('[data-test=create-machine-form] input[name=name]', 'box-e2e');
  await page.locator('[data-test=source-card][data-name="Container Micro"]').click();
  await page.click('[data-test=create-machine-form] button[type=submit]');
  const row = page.locator('[data-test=machine-row]', { hasText: 'box-e2e' });
  await row.locator('[data-test=machine-state][data-state=running]').waitFor({ timeout: 30_000 });
  const fetched = [];
  page.on('request', (r) => fetched.push(r.url()));
  await row.locator('a').click();
  await page.waitForURL(/\/machines\/[0-9a-f]{24}$/);
  await hydrated(page);
  assert.equal(await page.locator('[data-test=machine-simulated]').count(), 0, 'a container really runs');
  // The command, files and usage cards are drawn once the page has hydrated, each group's code
  // fetched then (a full load checks below that they are not preloaded with the page).
  await page.locator('[data-test=command-form]').waitFor();
  await page.locator('[data-test=usage-card]').waitFor();
  for (const group of ['machine', 'inside', 'usage']) {
    assert.ok(fetched.some((u) => u.endsWith(`/pack_${group}.bin`)), `${group}'s pack was fetched`);
  }

  // Before the first sample (here: none comes, the stream is refused) the card says it waits,
  // and shows no empty charts.
  const probe = await context.newPage();
  await probe.route('**/events/machines/*/stats', (route) => route.abort());
  await probe.goto(page.url());
  await hydrated(probe);
  await probe.locator('[data-test=usage-waiting]').waitFor();
  assert.equal(await probe.locator('[data-test=usage-card] .charts').isVisible(), false, 'no charts before a sample');
  await probe.close();
  // Without JavaScript the cards say why they stay empty.
  const noJs = await browser.newContext({ javaScriptEnabled: false });
  await noJs.addCookies(await context.cookies());
  const still = await noJs.newPage();
  await still.goto(page.url());
  assert.match(await still.locator('[data-test=command-loading]').innerText(), /needs JavaScript/);
  assert.equal(await still.locator('[data-test=command-form]').count(), 0);
  await noJs.close();

  // A command and its output.
  await page.fill('[data-test=command-form] textarea[name=command]', 'echo "hello from $(hostname)"; echo warn >&2');
  await page.click('[data-test=command-form] button[type=submit]');
  await page.locator('[data-test=command-stdout]', { hasText: 'hello from' }).waitFor();
  assert.equal((await page.textContent('[data-test=command-stderr]')).trim(), 'warn');
  assert.equal(await page.textContent('[data-test=command-exit]'), 'exit code 0');

  // A destructive one is refused, with what was refused.
  await page.fill('[data-test=command-form] textarea[name=command]', 'rm -rf /');
  await page.click('[data-test=command-form] button[type=submit]');
  await page.locator('.alert-error', { hasText: 'Refused `rm -rf /`' }).waitFor();

  // A background command shows up running, live, and stops when cancelled.
  await page.fill('[data-test=command-form] textarea[name=command]', 'sleep 45; echo late');
  await page.check('[data-test=command-form] input[name=background]');
  await page.click('[data-test=command-form] button[type=submit]');
  await page.locator('[data-test=command-started]').waitFor();
  await page.locator('[data-test=command-job][data-status=running]').waitFor({ timeout: 15_000 });
  // Opened afresh it is still there.
  await page.reload();
  await hydrated(page);
  const preloaded = await page.$$eval('link[rel=preload]', (links) => links.map((l) => l.href));
  assert.ok(preloaded.some((h) => h.endsWith('/pack_machine.bin')), 'the machine page preloads its own pack');
  for (const group of ['inside', 'usage']) {
    assert.ok(!preloaded.some((h) => h.endsWith(`/pack_${group}.bin`)), `${group} is not preloaded`);
  }
  await page.locator('[data-test=command-job][data-status=running]').waitFor();
  await page.screenshot({ path: `${ARTIFACTS}machine-inside.png`, fullPage: true });
  await page.click('[data-test=cancel-command]');
  await page.locator('[data-test=command-job][data-status=cancelled]').waitFor({ timeout: 15_000 });

  // The live charts show what the machine does: a busy loop lifts the CPU line, from the
  // engine's own stats.
  await page.fill('[data-test=command-form] textarea[name=command]', 'while :; do :; done');
  await page.check('[data-test=command-form] input[name=background]');
  await page.click('[data-test=command-form] button[type=submit]');
  await page.locator('[data-test=command-job][data-status=running]').waitFor({ timeout: 15_000 });
  await page.waitForFunction(() => {
    const cpu = /CPU ([\d.]+) %/.exec(document.querySelector('[data-test=chart-cpu] figcaption')?.innerText ?? '');
    const samples = Number(document.querySelector('[data-test=usage-live]')?.dataset.samples);
    return cpu && Number(cpu[1]) >= 20 && samples >= 4;
  }, null, { timeout: 30_000 });
  assert.match(await page.locator('[data-test=chart-memory] figcaption').innerText(), /Memory [\d.]+ (?:[KMG]i)?B of [\d.]+ [KMG]iB/);
  // Centred first: the sticky header would cover a card scrolled just into view.
  await page.locator('[data-test=usage-card]').evaluate((el) => el.scrollIntoView({ block: 'center' }));
  await page.locator('[data-test=usage-card]').screenshot({ path: `${ARTIFACTS}machine-usage.png` });
  await page.click('[data-test=cancel-command]');
  await page.locator('[data-test=command-job][data-status=running]').waitFor({ state: 'detached', timeout: 15_000 });

  // Upload a file, read it from inside, download it again.
  const content = `uploaded by ${username}\n`;
  await page.fill('[data-test=upload-form] input[name=path]', '/root/e2e.txt');
  await page.setInputFiles('[data-test=upload-form] input[type=file]', {
    name: 'e2e.txt', mimeType: 'text/plain', buffer: Buffer.from(content),
  });
  await page.click('[data-test=upload-form] button[type=submit]');
  await page.locator('[data-test=upload-status]', { hasText: 'Uploaded /root/e2e.txt' }).waitFor();
  await page.uncheck('[data-test=command-form] input[name=background]');
  await page.fill('[data-test=command-form] textarea[name=command]', 'cat /root/e2e.txt');
  await page.click('[data-test=command-form] button[type=submit]');
  await page.locator('[data-test=command-stdout]', { hasText: `uploaded by ${username}` }).waitFor();
  await page.fill('[data-test=download-form] input[name=path]', '/root/e2e.txt');
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.click('[data-test=download-form] button[type=submit]'),
  ]);
  assert.equal(download.suggestedFilename(), 'e2e.txt');
  const chunks = [];
  for await (const c of await download.createReadStream()) chunks.push(c);
  assert.equal(Buffer.concat(chunks).toString(), content);
  // A file that is not there is said on the page, which stays where it is.
  const here = page.url();
  await page.fill('[data-test=download-form] input[name=path]', '/root/no-such-file.txt');
  await page.click('[data-test=download-form] button[type=submit]');
  assert.match(await page.locator('[data-test=download-status]').innerText(), /not found/i);
  assert.equal(page.url(), here, 'still on the machine page');
  await page.locator('[data-test=command-form]').waitFor();
  await context.close();
});
