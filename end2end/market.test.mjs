// The marketplace as customers use it: filter → rent into a team pool → see the rental; invite a
// teammate → they accept from their inbox → they see the pool's server.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { launch, hydrated, uniqueName, api, signIn, fundedCustomer, BASE, ARTIFACTS } from './browser.mjs';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

async function newUser(prefix) {
  const username = uniqueName(prefix);
  const password = 'market-password-1';
  const email = `${username}@example.com`;
  const reg = await api('/api/auth/register', null, { email, username, password });
  assert.equal(reg.status, 201, JSON.stringify(reg.body));
  return { id: reg.body.id, username, email, password };
}

/** A new page of `context`, signed in as `user`. */
async function signedIn(context, user) {
  const page = await context.newPage();
  await signIn(page, user.email, user.password);
  return page;
}

test('filter, rent into a pool, invite a teammate who then sees the server', async () => {
  const adminEmail = process.env.HANGAR_E2E_ADMIN_EMAIL;
  const adminPassword = process.env.HANGAR_E2E_ADMIN_PASSWORD;
  assert.ok(adminEmail && adminPassword, 'the test script creates an operator');
  const login = await api('/api/auth/login', null, { email: adminEmail, password: adminPassword });
  assert.equal(login.status, 200);
  const alice = await newUser('alice');
  const bob = await newUser('bob');
  const credit = await api(`/api/admin/users/${alice.id}/credit`, login.body.token, { amount: 5000, confirm: true });
  assert.equal(credit.status, 200);
  // Alice has an SSH key: the checkout offers it, and the server is set up with it.
  const aliceLogin = await api('/api/auth/login', null, { email: alice.email, password: alice.password });
  const key = await api('/api/keys', aliceLogin.body.token, { name: 'alice-laptop', public_key: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOpGf6s4Zz2qR1b3l7M9m8xH0d7lq1fK2Z8v2wG4bY1c alice@laptop' });
  assert.equal(key.status, 201, JSON.stringify(key.body));

  const ctxA = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await signedIn(ctxA, alice);
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));

  // A team pool first.
  await page.click('nav >> text=Pools');
  await page.waitForURL(`${BASE}/pools`);
  await page.fill('[data-test=create-pool-form] input[name=name]', 'E2E Team');
  await page.fill('[data-test=create-pool-form] input[name=description]', 'Shared test servers');
  await page.click('[data-test=create-pool-form] button[type=submit]');
  await page.waitForURL(/\/pools\/[0-9a-f]{24}$/);
  const poolUrl = page.url();
  assert.equal(await page.textContent('[data-test=my-role]'), 'owner');

  // Filter the marketplace: the state lands in the URL and the results obey it.
  await page.click('nav >> text=Marketplace');
  await page.waitForURL(`${BASE}/marketplace`);
  assert.equal(await page.isVisible('[data-test=filters-toggle]'), false, "a laptop shows the filters, not the phone's Filters button");
  await page.selectOption('[data-test=filters] select[name=category]', 'compute');
  await page.fill('[data-test=filters] input[name=max_price_per_day]', '60');
  await page.check('[data-test=filters] input[name=available_durations][value="7"]');
  await page.click('[data-test=filters] button[type=submit]');
  await page.waitForURL(/category=compute/);
  assert.match(page.url(), /max_price_per_day=60/);
  assert.match(page.url(), /available_durations=7/);
  const search = new URL(page.url()).search;
  assert.doesNotMatch(search, /=(&|$)|&=|[?&]sort=popularity/, `only the fields that are set: ${search}`);
  await page.locator('[data-test=server-card]').first().waitFor();
  const tags = await page.locator('[data-test=server-card] .tag-compute').count();
  const cards = await page.locator('[data-test=server-card]').count();
  assert.ok(cards > 0, 'some compute servers under $60/day');
  assert.equal(tags, cards, 'every card is a compute server');
  // The card leads with the figure the filter used (the lowest per-day rate, with its term), and
  // adds the shortest rental's rate when that costs more per day.
  for (const price of await page.locator('[data-test=price-per-day]').all()) {
    const lead = parseFloat((await price.innerText()).match(/^\$(\d+\.\d{2})/)[1]);
    assert.ok(lead <= 60, `the card's price ${lead} is within the $60 cap`);
    assert.equal(lead, parseFloat(await price.getAttribute('data-price')), 'the lead price is the filtered one');
  }
  assert.ok(await page.locator('[data-test=price-short]').count() > 0, 'some card costs more for a shorter rental');
  assert.match(await page.locator('[data-test=price-short]').first().textContent(), /^\$\d+\.\d{2}\/day for \d+ days?$/);
  await page.screenshot({ path: `${ARTIFACTS}marketplace.png`, fullPage: false });
  // "Price: low to high" reads sorted: the cards' lead prices never go down.
  const sorted = await ctxA.newPage();
  await sorted.goto(`${BASE}/marketplace?sort=price_asc`);
  const leads = [];
  for (const text of await sorted.locator('[data-test=price-per-day]').allInnerTexts()) {
    leads.push(parseFloat(text.match(/^\$(\d+\.\d{2})/)[1]));
  }
  assert.ok(leads.length > 5, 'a page of servers');
  assert.deepEqual(leads, [...leads].sort((a, b) => a - b), `cards in price order: ${leads.join(', ')}`);
  await sorted.close();
  // The same link reproduces the view.
  const link = page.url();
  const again = await ctxA.newPage();
  await again.goto(link);
  assert.equal(await again.locator('[data-test=server-card]').count(), cards);
  assert.equal(await again.inputValue('[data-test=filters] input[name=max_price_per_day]'), '60');
  await again.close();

  // Rent the first one for 7 days into the team pool.
  const first = page.locator('[data-test=server-card] h3 a').first();
  const serverName = (await first.textContent()).trim();
  await first.click();
  await page.waitForURL(/\/marketplace\/[0-9a-f]{24}$/);
  await page.check('[data-test=rent-form] input[name=rental_days][value="7"]');
  await page.selectOption('[data-test=rent-form] select[name=pool_id]', { label: 'E2E Team' });
  assert.ok(await page.locator('[data-test=rent-keys] input[type=checkbox]').isChecked(), 'her key is chosen to start with');
  assert.match(await page.textContent('[data-test=rent-keys]'), /alice-laptop \(SHA256:/);
  await page.screenshot({ path: `${ARTIFACTS}checkout.png`, fullPage: true });
  await page.click('[data-test=rent-form] button[type=submit]');
  await page.waitForURL(/\/rentals\/[0-9a-f]{24}\?rented=1$/);
  assert.equal(await page.textContent('[data-test=rental-status]'), 'active');
  assert.equal(await page.textContent('[data-test=remaining-days]'), '7');
  assert.match(await page.textContent('[data-test=rented]'), new RegExp(`^You rented ${serverName.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} for 7 days; \\$\\d+\\.\\d{2} was taken from your balance\\.`));
  // How to reach it: setup status, the operator's address and the SSH command to copy.
  assert.match(await page.textContent('[data-test=access-status]'), /^(Setting up|Ready)$/);
  assert.match(await page.textContent('[data-test=access-command]'), /^ssh root@(192\.0\.2|198\.51\.100|203\.0\.113)\.\d+$/);
  assert.equal(await page.locator('[data-test=copy-ssh]').count(), 1);
  assert.match(await page.textContent('[data-test=access-keys]'), /alice-laptop \(SHA256:.*\)\s*alice_\w+, the renter/);
  // The header's balance is the one after paying, as on the page.
  await hydrated(page);
  const paid = (await page.textContent('[data-test=extend-form] p.muted')).replace('Your balance: ', '').trim();
  await page.waitForFunction((b) => document.querySelector('[data-test=nav-balance]').textContent.trim() === b, paid, { timeout: 10_000 });
  await page.screenshot({ path: `${ARTIFACTS}rental.png`, fullPage: true });
  // Extending says what it did, and the header's balance follows at once.
  await hydrated(page);
  const before = (await page.textContent('[data-test=nav-balance]')).trim();
  await page.click('[data-test=extend-form] button[type=submit]');
  await page.locator('[data-test=extended]').waitFor();
  assert.match(await page.textContent('[data-test=extended]'), /^Extended by \d+ days?; \$\d+\.\d{2} was taken from your balance\.$/);
  await page.waitForFunction((old) => document.querySelector('[data-test=nav-balance]').textContent.trim() !== old, before, { timeout: 10_000 });
  assert.ok(parseFloat((await page.textContent('[data-test=nav-balance]')).replace('$', '')) < parseFloat(before.replace('$', '')), 'the header shows the lower balance');
  // The rental moves to another of her pools and back, from its page.
  const otherPool = await page.locator('[data-test=move-form] select[name=pool_id] option').first().textContent();
  await page.click('[data-test=move-form] button[type=submit]');
  await page.locator('[data-test=rental-moved]', { hasText: `Moved to ${otherPool}` }).waitFor();
  await page.selectOption('[data-test=move-form] select[name=pool_id]', { label: 'E2E Team' });
  await page.click('[data-test=move-form] button[type=submit]');
  await page.locator('[data-test=rental-moved]', { hasText: 'Moved to E2E Team' }).waitFor();

  // Her activity lists what she did, newest first, and filters by kind.
  await page.goto(`${BASE}/activity`);
  await hydrated(page);
  const actions = await page.locator('[data-test=activity-row]').evaluateAll((rows) => rows.map((r) => r.dataset.action));
  for (const a of ['rental.create', 'rental.extend', 'rental.move', 'pool.create']) {
    assert.ok(actions.includes(a), `activity shows ${a}: ${actions.join(', ')}`);
  }
  assert.ok(actions.indexOf('rental.move') < actions.indexOf('rental.create'), 'newest first');
  // In words, with the server's name and the price, and her sign-in from the portal.
  const sentences = await page.locator('[data-test=activity-what]').allTextContents();
  assert.ok(sentences.some((t) => /^Rented \S+ for \d+ days? \(\$\d+\.\d{2}\)$/.test(t)), sentences.join(' | '));
  assert.ok(sentences.some((t) => /^Signed in \(portal, from 127\.0\.0\.1\)$/.test(t)), sentences.join(' | '));
  assert.ok(!sentences.some((t) => /price_micros|[0-9a-f]{24}/.test(t)), `no codes or ids: ${sentences.join(' | ')}`);
  await page.screenshot({ path: `${ARTIFACTS}activity.png`, fullPage: true });
  await page.selectOption('[data-test=activity-filter] select[name=action]', 'rental.');
  await page.click('[data-test=activity-filter] button[type=submit]');
  await page.waitForURL(/action=rental\./);
  await page.locator('[data-test=activity-row]').first().waitFor();
  const rentalOnly = await page.locator('[data-test=activity-row]').evaluateAll((rows) => rows.map((r) => r.dataset.action));
  assert.ok(rentalOnly.length >= 3 && rentalOnly.every((a) => a.startsWith('rental.')), rentalOnly.join(', '));

  // The billing page charts what was spent, per day.
  await page.goto(`${BASE}/billing`);
  await hydrated(page);
  assert.match(await page.textContent('[data-test=spend-total]'), /^\$\d+\.\d{2} in all: machines \$0\.00 · rentals \$\d+\.\d{2}$/);
  assert.equal(await page.locator('[data-test=spend-chart] rect.rentals').count(), 1, "one day's bar: today");
  await page.locator('[data-test=spend-chart]').screenshot({ path: `${ARTIFACTS}billing-chart.png` });
  await page.screenshot({ path: `${ARTIFACTS}billing.png`, fullPage: true });
  await page.setViewportSize({ width: 390, height: 844 });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `billing fits a phone (overflow ${overflow}px)`);
  await page.screenshot({ path: `${ARTIFACTS}billing-phone.png`, fullPage: true });
  await page.setViewportSize({ width: 1280, height: 900 });
  await page.goBack();
  // It is gone from the marketplace and listed under Rentals.
  await page.click('nav >> text=Rentals');
  await page.waitForURL(`${BASE}/rentals`);
  assert.match(await page.textContent('[data-test=rental-table]'), new RegExp(serverName));

  // Invite Bob as a user.
  await page.goto(poolUrl);
  await hydrated(page);
  await page.fill('[data-test=invite-form] input[name=username]', bob.username);
  await page.click('[data-test=invite-form] button[type=submit]');
  await page.locator('[data-test=invite-sent]').waitFor();
  await page.locator(`[data-test=member-row][data-username="${bob.username}"]`).waitFor();
  // Every member's key goes on the pool's servers from now on; the owner says so here.
  await page.selectOption('[data-test=member-keys]', 'members');
  await page.click('[data-test=member-keys-form] button[type=submit]');
  await page.locator('[data-test=member-keys-saved]').waitFor();

  // Bob sees the badge, accepts, and then sees the server.
  const ctxB = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const bobPage = await signedIn(ctxB, bob);
  assert.equal((await bobPage.textContent('[data-test=invitation-badge]')).trim(), '1');
  await bobPage.click('nav >> text=Invitations');
  await bobPage.waitForURL(`${BASE}/invitations`);
  await bobPage.locator('[data-test=invitation]').waitFor();
  await bobPage.click('[data-test=accept-invitation]');
  await bobPage.locator('[data-test=no-invitations]').waitFor();
  await bobPage.locator('[data-test=invitation-badge]').waitFor({ state: 'detached' });
  // Accepting says so and leads to the pool.
  assert.match(await bobPage.textContent('[data-test=invitation-accepted]'), /You joined E2E Team/);
  await bobPage.click('[data-test=invitation-accepted] a');
  await bobPage.waitForURL(poolUrl);
  await bobPage.locator('[data-test=pool-server-row]').waitFor();
  assert.match(await bobPage.textContent('[data-test=pool-servers]'), new RegExp(serverName));
  assert.equal(await bobPage.textContent('[data-test=my-role]'), 'user');
  assert.equal(await bobPage.locator('[data-test=invite-form]').count(), 0, 'users cannot invite');
  assert.equal(await bobPage.locator('[data-test=member-keys-form]').count(), 0, 'nor choose whose keys go on servers');
  await bobPage.screenshot({ path: `${ARTIFACTS}pool-as-member.png`, fullPage: true });
  assert.deepEqual(errors, []);
  await ctxA.close();
  await ctxB.close();
});

test('on a phone the marketplace shows servers first, filters behind a button', async () => {
  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  const page = await phone.newPage();
  await page.goto(`${BASE}/marketplace?category=compute`);
  await hydrated(page);
  const first = await page.locator('[data-test=server-card]').first().boundingBox();
  assert.ok(first.y < 844, `the first server starts on the first screen (at ${first.y}px)`);
  assert.equal(await page.isVisible('[data-test=filters] select[name=country]'), false, 'filters folded');
  assert.match(await page.textContent('[data-test=filters-toggle]'), /Filters \(1 set\)/);
  await page.click('[data-test=filters-toggle]');
  assert.equal(await page.isVisible('[data-test=filters] select[name=country]'), true, 'and open on a tap');
  await page.screenshot({ path: `${ARTIFACTS}marketplace-phone.png` });
  await phone.close();
});

test('too little balance says how much is missing, leads to the top-up, and cannot pay', async () => {
  const { email, password } = await fundedCustomer('short', 1);
  const context = await browser.newContext({ viewport: { width: 1366, height: 900 } });
  const page = await context.newPage();
  await signIn(page, email, password);
  await page.goto(`${BASE}/marketplace?sort=price_desc`);
  await page.locator('[data-test=server-card] h3 a').first().click();
  await page.waitForURL(/\/marketplace\/[0-9a-f]{24}$/);
  await hydrated(page);
  const short = page.locator('[data-test=short-balance]');
  await short.waitFor();
  assert.match(await short.innerText(), /Your balance is \$\d+\.\d{2} short for this term\. Add \$\d+\.\d{2} or more/);
  assert.equal(await page.locator('[data-test=rent-form] button[type=submit]').isDisabled(), true, 'cannot pay what the balance cannot cover');
  await page.screenshot({ path: `${ARTIFACTS}checkout-short.png`, fullPage: true });
  const href = await page.locator('[data-test=short-balance-topup]').getAttribute('href');
  const needed = parseFloat(new URL(href, BASE).searchParams.get('amount'));
  assert.ok(needed > 0, href);
  await page.locator('[data-test=short-balance-topup]').click();
  await page.waitForURL(/\/billing\?amount=/);
  await hydrated(page);
  assert.equal(await page.inputValue('[data-test=add-funds-form] input[name=amount]'), Math.min(50, Math.max(5, needed)).toFixed(2),
    'the top-up asks for what is missing (within its bounds)');
  await context.close();
});
