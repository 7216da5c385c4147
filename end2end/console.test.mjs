// A container's console from its page, as a customer would: open it, type a command and read
// its output, resize the window and see the terminal follow (the shell's TTY too), and watch the
// same console from a second browser tab, on a laptop and on a phone.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { launch, hydrated, uniqueName, BASE, ARTIFACTS, api, signIn, untilRunning } from './browser.mjs';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

// The terminal's visible text (xterm.js renders rows into the DOM).
async function screenText(page) {
  return page.locator('[data-terminal] .xterm-rows').innerText();
}

async function waitForText(page, needle, timeout = 20_000) {
  const deadline = Date.now() + timeout;
  let text = '';
  while (Date.now() < deadline) {
    text = await screenText(page).catch(() => '');
    if (text.includes(needle)) return text;
    await page.waitForTimeout(200);
  }
  assert.fail(`the terminal never showed ${JSON.stringify(needle)}; it shows:\n${text}`);
}

// Waits for the console to say it is connected; says what the page shows when it does not.
async function connected(page) {
  try {
    await page.locator('[data-console-root][data-console-state=running]').waitFor({ timeout: 30_000 });
  } catch (e) {
    const status = await page.textContent('[data-console-status]').catch(() => '?');
    await page.screenshot({ path: `${ARTIFACTS}machine-console-failed.png`, fullPage: true });
    assert.fail(`the console did not connect; its status line says: ${status}`);
  }
}

test('a container console: type, read, resize, and a second viewer', async () => {
  const username = uniqueName('console');
  const email = `${username}@example.com`;
  const password = 'console-password-1';
  const reg = await api('/api/auth/register', null, { email, username, password });
  assert.equal(reg.status, 201);
  const op = await api('/api/auth/login', null, {
    email: process.env.HANGAR_E2E_ADMIN_EMAIL, password: process.env.HANGAR_E2E_ADMIN_PASSWORD,
  });
  assert.equal((await api(`/api/admin/users/${reg.body.id}/credit`, op.body.token, { amount: 5 })).status, 200);
  const login = await api('/api/auth/login', null, { email, password });
  const vps = await api('/api/vps', login.body.token, { name: 'shell-e2e', plan_id: 'c-micro' });
  assert.equal(vps.status, 201);

  const context = await browser.newContext({ viewport: { width: 1366, height: 900 } });
  const page = await context.newPage();
  await signIn(page, email, password);

  await untilRunning(vps.body.id, login.body.token);
  await page.goto(`${BASE}/machines/${vps.body.id}`);
  await hydrated(page);
  await page.locator('[data-test=machine-state][data-state=running]').first().waitFor({ timeout: 30_000 });
  assert.equal(await page.locator('[data-test=tab-screen]').count(), 0, 'a container has no screen tab');
  await page.waitForFunction(() => window.hangarConsoleReady);
  await page.click('[data-test=open-console]');
  await connected(page);
  await page.locator('[data-terminal] .xterm-helper-textarea').focus();
  await page.keyboard.type("echo from-the-brow''ser\n");
  await waitForText(page, 'from-the-browser');

  // The terminal follows the window, and the shell's TTY follows the terminal.
  const colsBefore = await page.evaluate(() => document.querySelector('[data-terminal] .xterm-rows').parentElement.clientWidth);
  await page.setViewportSize({ width: 900, height: 800 });
  await page.waitForTimeout(500);
  const colsAfter = await page.evaluate(() => document.querySelector('[data-terminal] .xterm-rows').parentElement.clientWidth);
  assert.ok(colsAfter < colsBefore, `the terminal narrowed with the window (${colsBefore} → ${colsAfter} px)`);
  await page.locator('[data-terminal] .xterm-helper-textarea').focus();
  await page.keyboard.type('stty size\n');
  const sized = await waitForText(page, 'stty size');
  await page.waitForTimeout(500);
  const size = (await screenText(page)).split('\n').map((l) => l.trim()).find((l) => /^\d+ \d+$/.test(l));
  assert.ok(size, `stty answered a size: ${sized}`);
  const cols = Number(size.split(' ')[1]);
  assert.ok(cols > 20 && cols < 120, `the TTY is as wide as the narrowed terminal (${cols} columns)`);
  await page.screenshot({ path: `${ARTIFACTS}machine-console.png`, fullPage: true });

  // A second viewer (a phone) sees the same session, history included, and can type into it.
  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  const second = await phone.newPage();
  await signIn(second, email, password);
  await second.goto(`${BASE}/machines/${vps.body.id}`);
  await hydrated(second);
  await second.waitForFunction(() => window.hangarConsoleReady);
  await second.click('[data-test=open-console]');
  await connected(second);
  await waitForText(second, 'from-the-browser');
  await second.locator('[data-terminal] .xterm-helper-textarea').focus();
  await second.keyboard.type("echo from-the-ph''one\n");
  await waitForText(second, 'from-the-phone');
  await waitForText(page, 'from-the-phone');
  await second.screenshot({ path: `${ARTIFACTS}machine-console-phone.png`, fullPage: true });
  await phone.close();
  await context.close();
});
