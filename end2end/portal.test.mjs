// A new user in a real browser: sign up → sign in → create a token → see it listed → revoke →
// sign out. Screenshots go to end2end/artifacts/.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { launch, hydrated, uniqueName, BASE, ARTIFACTS, signIn } from './browser.mjs';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

test('sign up, sign in, create a token, list it, revoke it, sign out', async () => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, permissions: ['clipboard-read', 'clipboard-write'] });
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  const username = uniqueName('e2e');
  const email = `${username}@example.com`;
  const password = 'browser-password-1';

  // The front page says what is offered and at what prices before anyone signs up.
  await page.goto(`${BASE}/`);
  await hydrated(page);
  assert.match(await page.textContent('[data-test=offer-servers]'), /^\d+ servers? ready to rent now, from \$\d+\.\d{2} a day\./);
  assert.match(await page.innerText('[data-test=offer-plans]'), /Nano \(VM\)\s+1 vCPU · 512 MiB · 10 GiB\s+\$0\.0042\s+\$3\.07/);
  await page.screenshot({ path: `${ARTIFACTS}landing-1366.png`, fullPage: true });
  await page.setViewportSize({ width: 390, height: 844 });
  await page.screenshot({ path: `${ARTIFACTS}landing-390.png`, fullPage: true });
  assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), 'the front page fits a phone');
  await page.setViewportSize({ width: 1280, height: 800 });

  await page.goto(`${BASE}/signup`);
  await hydrated(page);
  await page.fill('input[name=email]', email);
  await page.fill('input[name=username]', username);
  await page.fill('input[name=password]', password);
  await page.click('[data-test=sign-up-form] button[type=submit]');
  await page.waitForURL(`${BASE}/`);
  await page.getByText(`Welcome, ${username}`).waitFor();
  assert.equal(await page.textContent('[data-test=dashboard-balance]'), '$0.0000');
  // A new user's dashboard says what to do next.
  assert.match(await page.innerText('[data-test=dashboard-machines]'), /None yet[\s\S]*Create your first machine/);
  assert.match(await page.innerText('[data-test=dashboard-rentals]'), /None active[\s\S]*Browse the marketplace/);
  assert.match(await page.innerText('[data-test=dashboard-balance-card]'), /Add funds/);
  await page.screenshot({ path: `${ARTIFACTS}dashboard.png`, fullPage: true });

  // Sign out, then sign in again with the same credentials.
  await page.click('[data-test=sign-out]');
  await page.waitForURL(`${BASE}/signin`);
  await page.getByRole('link', { name: 'Sign up' }).waitFor();
  await hydrated(page);
  await page.fill('input[name=email]', email);
  await page.fill('input[name=password]', 'wrong-password');
  await page.click('[data-test=sign-in-form] button[type=submit]');
  await page.getByText('Invalid email or password').waitFor();
  await page.fill('input[name=password]', password);
  await page.click('[data-test=sign-in-form] button[type=submit]');
  await page.waitForURL(`${BASE}/`);

  // Client-side navigation: the hydrated router swaps the page without reloading the document.
  await page.evaluate(() => { window.__sameDocument = true; });
  await page.hover('[data-test=nav-account]'); // settings open under Account
  await page.click('nav >> text=API tokens');
  await page.waitForURL(`${BASE}/tokens`);
  await page.getByText('No tokens yet').waitFor();
  assert.equal(await page.evaluate(() => window.__sameDocument), true, 'navigation stayed in the app');

  await page.fill('[data-test=create-token-form] input[name=name]', 'ci-deploy');
  await page.fill('[data-test=create-token-form] input[name=spend_limit]', '15');
  await page.click('[data-test=create-token-form] button[type=submit]');
  const value = (await page.textContent('[data-test=new-token-value]')).trim();
  assert.match(value, /^vtk_[A-Za-z0-9]{40}$/);
  assert.equal(await page.inputValue('[data-test=create-token-form] input[name=name]'), '', 'the form is cleared once the token exists');
  await page.click('[data-test=copy-token]');
  await page.locator('[data-test=copy-token]', { hasText: 'Copied' }).waitFor();
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), value, 'the copy button copies the token');
  const row = page.locator('[data-test=token-row]');
  await row.first().waitFor();
  assert.equal(await row.count(), 1);
  assert.match(await row.first().textContent(), /ci-deploy.*\$15\.0000/);
  await page.screenshot({ path: `${ARTIFACTS}tokens.png`, fullPage: true });

  // The token works on the API.
  const me = await fetch(`${BASE}/api/me`, { headers: { Authorization: `Bearer ${value}` } });
  assert.equal(me.status, 200);
  assert.equal((await me.json()).username, username);

  // Revoking asks first.
  await page.click('[data-test=revoke-token]');
  assert.equal((await fetch(`${BASE}/api/me`, { headers: { Authorization: `Bearer ${value}` } })).status, 200, 'not revoked before the confirmation');
  await page.click('[data-test=confirm-revoke]');
  await page.getByText('No tokens yet').waitFor();
  const revoked = await fetch(`${BASE}/api/me`, { headers: { Authorization: `Bearer ${value}` } });
  assert.equal(revoked.status, 401);

  await page.click('[data-test=sign-out]');
  await page.waitForURL(`${BASE}/signin`);
  // A page behind sign-in sends the visitor to sign in, with the way back.
  await page.goto(`${BASE}/account`);
  await page.waitForURL(`${BASE}/signin?next=/account`);
  assert.deepEqual(errors, [], 'no errors in the page');
  await context.close();
});

test('forms work with JavaScript off, and the layout fits a phone', async () => {
  const context = await browser.newContext({ javaScriptEnabled: false, viewport: { width: 390, height: 844 }, isMobile: true });
  const page = await context.newPage();
  const username = uniqueName('nojs');
  await page.goto(`${BASE}/signup`);
  await page.fill('input[name=email]', `${username}@example.com`);
  await page.fill('input[name=username]', username);
  await page.fill('input[name=password]', 'no-script-password');
  await page.click('[data-test=sign-up-form] button[type=submit]');
  await page.waitForURL(`${BASE}/`);
  await page.getByText(`Welcome, ${username}`).waitFor();
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `no horizontal scrolling on a phone (overflow ${overflow}px)`);
  await page.screenshot({ path: `${ARTIFACTS}phone-dashboard.png`, fullPage: true });
  // The menu opens without JavaScript too.
  assert.equal(await page.isVisible('nav >> text=API tokens'), false, 'the phone menu starts folded');
  await page.click('[data-test=nav-menu]');
  await page.click('nav >> text=API tokens');
  await page.waitForURL(`${BASE}/tokens`);
  await context.close();
});

test('the navigation: one line on a laptop, a menu on a phone; and a status page', async () => {
  // An operator has the most links; at 1366 px they still fit one line.
  const laptop = await browser.newContext({ viewport: { width: 1366, height: 900 } });
  const page = await laptop.newPage();
  await signIn(page, process.env.HANGAR_E2E_ADMIN_EMAIL, process.env.HANGAR_E2E_ADMIN_PASSWORD);
  await page.locator('nav >> text=Operator').waitFor();
  const tops = await page.$$eval('[data-test=nav] > a, [data-test=nav] > .nav-group > a', (links) => links.map((a) => Math.round(a.getBoundingClientRect().top)));
  assert.ok(Math.max(...tops) - Math.min(...tops) < 10, `every top-level link on one line: ${tops}`);
  await page.hover('[data-test=nav-account]');
  await page.click('nav >> text=SSH keys');
  await page.waitForURL(`${BASE}/keys`);

  // The footer's Status link is a page for people.
  await page.click('footer >> text=Status');
  await page.waitForURL(`${BASE}/status`);
  assert.match(await page.locator('[data-test=status-headline]').innerText(), /All systems normal|Some machines cannot be reached/);
  await laptop.close();

  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  const small = await phone.newPage();
  await signIn(small, process.env.HANGAR_E2E_ADMIN_EMAIL, process.env.HANGAR_E2E_ADMIN_PASSWORD);
  await hydrated(small);
  assert.equal(await small.isVisible('nav >> text=Billing'), false, 'folded behind the menu');
  await small.click('[data-test=nav-menu]');
  for (const name of ['Machines', 'Billing', 'SSH keys', 'API tokens', 'Account', 'Operator']) {
    assert.ok(await small.isVisible(`nav >> text=${name}`), `${name} is in the phone menu`);
  }
  await small.screenshot({ path: `${ARTIFACTS}phone-menu.png` });
  await small.click('nav >> text=SSH keys');
  await small.waitForURL(`${BASE}/keys`);
  await small.locator('nav >> text=Billing').waitFor({ state: 'hidden' });
  const overflow = await small.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `/keys fits a phone (overflow ${overflow}px)`);
  await phone.close();
});
