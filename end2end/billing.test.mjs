// Adding funds as a customer does: billing page → (fake) Stripe Checkout → back to the portal with
// the money there once; and cancelling, which changes nothing.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { launch, hydrated, uniqueName, signIn, BASE, ARTIFACTS } from './browser.mjs';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

test('top up with a card, and cancel a top-up', async () => {
  const username = uniqueName('payer');
  const email = `${username}@example.com`;
  const reg = await fetch(`${BASE}/api/auth/register`, { method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ email, username, password: 'billing-password-1' }) });
  assert.equal(reg.status, 201);
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  await signIn(page, email, 'billing-password-1');

  await page.click('nav >> text=Billing');
  await page.waitForURL(`${BASE}/billing`);
  assert.equal(await page.textContent('[data-test=billing-balance]'), '$0.0000');
  await page.fill('[data-test=add-funds-form] input[name=amount]', '12.50');
  await page.click('[data-test=add-funds-form] button[type=submit]');
  await page.waitForURL(/\/pay\/cs_test_/);
  assert.match(await page.textContent('[data-test=fake-amount]'), /\$12\.50 USD/);
  await page.click('[data-test=fake-pay]');
  await page.waitForURL(/\/billing\/success\?session_id=cs_test_/);
  assert.match(await page.textContent('[data-test=topup-paid]'), /\$12\.50 was added to your balance\. New balance: \$12\.5000\./);
  await hydrated(page);
  assert.equal((await page.textContent('[data-test=nav-balance]')).trim(), '$12.5000');
  await page.screenshot({ path: `${ARTIFACTS}topup-success.png` });

  // Reloading the success page does not add the money again.
  await page.reload();
  // Clicked once hydrated, like every other step here: a nav click *during* hydration has twice
  // failed to navigate in CI (here and market.test, session 17) — open, see the session-18 note.
  await hydrated(page);
  await page.click('nav >> text=Billing');
  await page.waitForURL(`${BASE}/billing`);
  assert.equal(await page.textContent('[data-test=billing-balance]'), '$12.5000');
  assert.equal(await page.locator('[data-test=movement]').count(), 1);

  // The top-up has a receipt: the seller, the customer, the amount; printable.
  await page.click('[data-test=receipt-link]');
  await page.waitForURL(/\/billing\/receipts\/[0-9a-f]{24}$/);
  await page.locator('[data-test=receipt]').waitFor();
  assert.equal(await page.textContent('[data-test=receipt-amount]'), '$12.50');
  assert.match(await page.textContent('[data-test=seller]'), /Hangar/);
  assert.match(await page.textContent('[data-test=customer]'), new RegExp(username));
  await page.screenshot({ path: `${ARTIFACTS}receipt.png`, fullPage: true });

  // This month's statement: opening balance, the top-up, the closing balance, at laptop and
  // phone width.
  await page.goto(`${BASE}/billing`);
  await hydrated(page);
  await page.click('[data-test=statement-link] >> nth=0');
  await page.waitForURL(/\/billing\/statements\/\d{4}-\d{2}$/);
  await page.locator('[data-test=statement]').waitFor();
  assert.equal(await page.textContent('[data-test=opening]'), '$0.00');
  assert.equal(await page.textContent('[data-test=closing]'), '$12.50');
  assert.match(await page.textContent('[data-test=statement-credits]'), /Card top-up \$12\.50.*\+\$12\.50/s);
  await page.setViewportSize({ width: 1366, height: 900 });
  await page.screenshot({ path: `${ARTIFACTS}statement-1366.png`, fullPage: true });
  await page.setViewportSize({ width: 390, height: 844 });
  await page.screenshot({ path: `${ARTIFACTS}statement-390.png`, fullPage: true });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `the statement fits a phone (${overflow}px too wide)`);
  await page.setViewportSize({ width: 1280, height: 900 });
  await page.goto(`${BASE}/billing`);
  await hydrated(page);

  // Cancel: back to the portal, nothing charged.
  await page.fill('[data-test=add-funds-form] input[name=amount]', '5');
  await page.click('[data-test=add-funds-form] button[type=submit]');
  await page.waitForURL(/\/pay\/cs_test_/);
  await page.click('[data-test=fake-cancel]');
  await page.waitForURL(`${BASE}/billing/cancel`);
  await page.locator('[data-test=topup-cancelled]').waitFor();
  await page.goto(`${BASE}/billing`);
  assert.equal(await page.textContent('[data-test=billing-balance]'), '$12.5000');
  await context.close();
});
