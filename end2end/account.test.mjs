// The Account page's basics, as a customer uses them: asking to change the sign-in email (which
// waits for the link), a link that is not valid any more, and deleting the account — first told
// what must go, then told about the balance, then gone, signed out, and unable to sign in.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { launch, hydrated, uniqueName, BASE, ARTIFACTS, fundedCustomer, signIn, api } from './browser.mjs';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

test('change the sign-in email, then delete the account', async () => {
  const { email, password, token } = await fundedCustomer('closer', 1);
  const context = await browser.newContext({ viewport: { width: 1366, height: 900 } });
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await signIn(page, email, password);

  // A machine in the way.
  const vps = await api('/api/vps', token, { name: 'last-one', plan_id: 'nano' });
  assert.equal(vps.status, 201);
  await page.goto(`${BASE}/account`);
  await hydrated(page);
  assert.match(await page.textContent('[data-test=delete-blockers]'), /Delete your 1 machine first\./);
  assert.match(await page.textContent('[data-test=delete-balance]'), /\$1\.00 is not paid out/);

  // The email: asked for, waiting for the link; the page says where it went. A wrong password
  // first: the error shows, and goes as soon as the form is edited again.
  const newEmail = `${uniqueName('moved')}@example.com`;
  await page.fill('[data-test=change-email] input[name=email]', newEmail);
  await page.fill('[data-test=change-email] input[name=password]', 'not-my-password');
  await page.click('[data-test=change-email] button[type=submit]');
  const stale = page.locator('[data-test=change-email] .alert-error, [data-test=change-email] ~ .alert-error');
  await stale.first().waitFor();
  await page.fill('[data-test=change-email] input[name=password]', password);
  await stale.first().waitFor({ state: 'detached' });
  await page.click('[data-test=change-email] button[type=submit]');
  await page.locator('[data-test=email-pending]', { hasText: newEmail }).waitFor();
  assert.equal((await page.textContent('[data-test=account-email]')).trim(), email, 'not changed yet');
  await page.screenshot({ path: `${ARTIFACTS}account-1366.png`, fullPage: true });
  await page.setViewportSize({ width: 390, height: 844 });
  await page.screenshot({ path: `${ARTIFACTS}account-390.png`, fullPage: true });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `the account page fits a phone (${overflow}px too wide)`);
  await page.setViewportSize({ width: 1366, height: 900 });

  // A link that is not (or no longer) valid says so.
  await page.goto(`${BASE}/account/email?token=ffffffffffffffffffffffffffffffff`);
  await hydrated(page);
  await page.click('[data-test=confirm-email] button[type=submit]');
  await page.locator('[data-test=confirm-email] .alert', { hasText: 'not valid any more' }).waitFor();

  // The machine goes; now the account can.
  assert.equal((await api(`/api/vps/${vps.body.id}`, token, undefined, 'DELETE')).status, 202);
  for (let i = 0; i < 100; i++) {
    const now = await api(`/api/vps/${vps.body.id}`, token);
    if (now.status === 404 || now.body?.state === 'deleted') break;
    await new Promise((r) => setTimeout(r, 200));
  }
  await page.goto(`${BASE}/account`);
  await hydrated(page);
  await page.click('[data-test=delete-account]');
  await page.fill('[data-test=delete-account-form] input[name=password]', password);
  await page.check('[data-test=delete-account-form] input[name=understood]');
  await page.click('[data-test=delete-account-form] button[type=submit]');
  await page.waitForURL(`${BASE}/?account=deleted`);
  await page.locator('[data-test=account-deleted]').waitFor();
  assert.equal((await api('/api/auth/login', null, { email, password })).status, 401);
  assert.equal((await api('/api/me', token)).status, 401, 'its JWT ended too');
  assert.deepEqual(errors, []);
  await context.close();
});

test('a forgotten password: the sign-in page leads to asking for a link, and a stale link says so', async () => {
  const context = await browser.newContext({ viewport: { width: 390, height: 844 } });
  const page = await context.newPage();
  await page.goto(`${BASE}/signin`);
  await hydrated(page);
  await page.click('[data-test=forgot-password]');
  await page.waitForURL(`${BASE}/reset`);
  await hydrated(page);
  await page.fill('[data-test=reset-ask] input[name=email]', 'someone@example.com');
  await page.click('[data-test=reset-ask] button[type=submit]');
  assert.match(await page.locator('[data-test=reset-asked]').textContent(), /If an account uses that address/);
  await page.goto(`${BASE}/reset?token=ffffffffffffffffffffffffffffffff`);
  await hydrated(page);
  await page.fill('[data-test=reset-form] input[name=password]', 'a-Perfectly-good-Puffin-8');
  await page.click('[data-test=reset-form] button[type=submit]');
  await page.locator('[data-test=reset-form] .alert', { hasText: 'not valid any more' }).waitFor();
  await page.screenshot({ path: `${ARTIFACTS}reset-390.png`, fullPage: true });
  await context.close();
});
