// A customer runs a machine from the portal: add an SSH key, create a VM, watch it reach running
// without reloading (Server-Sent Events), stop it, snapshot it, delete it.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { launch, hydrated, uniqueName, fundedCustomer, signIn, api, BASE, ARTIFACTS } from './browser.mjs';

const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOpGf6s4Zz2qR1b3l7M9m8xH0d7lq1fK2Z8v2wG4bY1c e2e@laptop';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

test('create, watch, stop, snapshot and delete a machine', async () => {
  const username = uniqueName('runner');
  const email = `${username}@example.com`;
  const reg = await api('/api/auth/register', null, { email, username, password: 'machine-password-1' });
  assert.equal(reg.status, 201);
  const op = await api('/api/auth/login', null, { email: process.env.HANGAR_E2E_ADMIN_EMAIL, password: process.env.HANGAR_E2E_ADMIN_PASSWORD });
  assert.equal(op.status, 200);
  assert.equal((await api(`/api/admin/users/${reg.body.id}/credit`, op.body.token, { amount: 5 })).status, 200);

  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  await signIn(page, email, 'machine-password-1');

  await page.hover('[data-test=nav-account]');
  await page.click('nav >> text=SSH keys');
  await page.waitForURL(`${BASE}/keys`);
  await hydrated(page);
  await page.fill('[data-test=add-key-form] input[name=name]', 'laptop');
  await page.fill('[data-test=add-key-form] textarea[name=public_key]', KEY);
  await page.click('[data-test=add-key-form] button[type=submit]');
  await page.locator('[data-test=key-row]').waitFor();
  assert.match(await page.textContent('[data-test=key-table]'), /SHA256:4uf\+6DwhZDUQsZzPNJ\+Gr41UFGn2qW2UKXd4wUVjUwE/);

  await page.click('nav >> text=Machines');
  await page.waitForURL(`${BASE}/machines`);
  await hydrated(page);
  await page.locator('[data-test=no-machines]').waitFor();
  // A marker that a reload would wipe: the state below must arrive without one.
  await page.evaluate(() => { window.__noReload = true; });
  await page.fill('[data-test=create-machine-form] input[name=name]', 'web-01');
  // Plans and apps are cards apart, each with its hourly and monthly price and what it pays
  // stopped (its disk and address).
  const apps = page.locator('[data-test=machine-apps] [data-test=source-card]');
  assert.ok(await apps.count() >= 1, 'apps are offered apart from plans');
  for (const card of [...await apps.all(), ...await page.locator('[data-test=machine-source] [data-test=source-card]').all()]) {
    assert.match(await card.locator('[data-test=source-price]').innerText(), /^\$\d+\.\d{4}\/h · about \$\d+\.\d{2}\/mo$/);
    assert.match(await card.locator('[data-test=source-stopped]').innerText(), /^\$\d+\.\d{4,6}\/h stopped$/);
  }
  await page.locator('[data-test=source-card][data-name=Nano]').click();
  assert.equal(await page.locator('[data-test=source-card][data-name=Nano] input').isChecked(), true);
  // The estimate follows the choice: Nano's hourly price and about a month of it.
  await page.locator('[data-test=machine-estimate]', { hasText: '$0.0042/hour while it runs, about $3.07 a month (730 hours)' }).waitFor();
  // Images and regions of the plan's kind, by name; the default needs no choice.
  const images = await page.locator('[data-test=machine-image] option').allTextContents();
  assert.ok(images.includes('Debian 12') && !images.some((i) => /busybox/i.test(i)), `VM images only: ${images}`);
  assert.deepEqual(await page.locator('[data-test=machine-region] option').allTextContents(), ['Any region with room', 'local']);
  await page.selectOption('[data-test=machine-image]', { label: 'Debian 12' });
  await page.check('[data-test=create-machine-form] fieldset input[type=checkbox]');
  await page.click('[data-test=create-machine-form] button[type=submit]');
  await page.locator('[data-test=machine-created]').waitFor();
  const row = page.locator('[data-test=machine-row]', { hasText: 'web-01' });
  await row.locator('[data-test=machine-state][data-state=running]').waitFor({ timeout: 20_000 });
  assert.equal(await page.evaluate(() => window.__noReload), true, 'the state arrived without a reload');
  assert.match((await row.locator('[data-test=machine-ip]').textContent()).trim(), /^\d+\.\d+\.\d+\.\d+$/,
    'the address the node gave it is shown with the state');
  await page.screenshot({ path: `${ARTIFACTS}machines-list.png` });
  // The dashboard counts it, with what it costs now.
  const dash = await context.newPage();
  await dash.goto(`${BASE}/`);
  await dash.locator('[data-test=dashboard-machines]').waitFor();
  assert.match(await dash.innerText('[data-test=dashboard-machines]'), /1 running[\s\S]*1 machine in all · \$0\.\d{4}\/hour now/);
  await dash.screenshot({ path: `${ARTIFACTS}dashboard.png`, fullPage: true });
  await dash.close();

  await row.locator('a').click();
  await page.waitForURL(/\/machines\/[0-9a-f]{24}$/);
  await hydrated(page);
  assert.equal(await page.textContent('[data-test=machine-name]'), 'web-01');
  // Its address, but no `ssh root@…` line: nothing listens at a simulated machine's address.
  assert.match(await page.textContent('[data-test=machine-address]'), /^\d+\.\d+\.\d+\.\d+$/);
  assert.equal(await page.locator('[data-test=ssh-line]').count(), 0);
  assert.equal(await page.isDisabled('[data-test=power-start]'), true, 'a running machine cannot be started');
  assert.match(await page.textContent('[data-test=machine-simulated]'), /Simulated machine/,
    "a VM on libvirt's test driver says plainly that it does not really run");
  await page.click('[data-test=power-stop]');
  await page.locator('[data-test=machine-state][data-state=stopped][data-transition=""]').waitFor({ timeout: 20_000 });
  assert.equal(await page.isDisabled('[data-test=power-stop]'), true);
  assert.equal(await page.isDisabled('[data-test=power-start]'), false);

  await page.fill('[data-test=snapshot-form] input[name=name]', 'before-upgrade');
  await page.click('[data-test=snapshot-form] button[type=submit]');
  await page.locator('[data-test=snapshot-row][data-state=ready]').waitFor({ timeout: 20_000 });
  assert.match(await page.textContent('[data-test=snapshot-done]'), /Taking snapshot “before-upgrade”/);
  await page.screenshot({ path: `${ARTIFACTS}machine-detail.png`, fullPage: true });

  // Restoring asks first: the first click only shows what it would do.
  const restore = page.locator('[data-test=snapshot-row]').first().locator('[data-test=restore-confirm]');
  assert.equal(await restore.locator('[data-test=restore-snapshot]').isVisible(), false, 'nothing is restored on the first click');
  await restore.locator('summary').click();
  assert.match(await restore.innerText(), /Replace this machine's disk with “before-upgrade”\? What was written since is lost\./);
  await restore.locator('[data-test=restore-snapshot]').click();
  await page.locator('[data-test=snapshot-done]', { hasText: 'Restoring “before-upgrade”' }).waitFor();
  await page.locator('[data-test=machine-state][data-state=stopped][data-transition=""]').waitFor({ timeout: 20_000 });

  assert.equal(await page.isDisabled('[data-test=power-delete]'), true, 'delete needs the confirmation');
  await page.check('[data-test=confirm-delete]');
  await page.click('[data-test=power-delete]');
  await page.locator('[data-test=machine-deleting], [data-test=machine-deleted]').first().waitFor();
  // Once the node has removed it, the page confirms the deletion rather than calling it missing.
  await page.locator('[data-test=machine-deleted]').waitFor({ timeout: 20_000 });
  assert.equal(await page.locator('[data-test=machine-missing]').count(), 0);
  await page.goto(`${BASE}/machines`);
  await hydrated(page);
  await page.locator('[data-test=no-machines]').waitFor({ timeout: 20_000 });

  // The same account through the API sees nothing left.
  const login = await api('/api/auth/login', null, { email, password: 'machine-password-1' });
  const list = await fetch(`${BASE}/api/vps`, { headers: { Authorization: `Bearer ${login.body.token}` } });
  assert.deepEqual(await list.json(), []);

  // On a phone the list stays readable.
  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true });
  const p2 = await phone.newPage();
  await signIn(p2, email, 'machine-password-1');
  await p2.goto(`${BASE}/machines`);
  await hydrated(p2);
  // Nothing sticks out to the right (an element inside an overflow-hidden box would not widen the
  // document, so every element is measured), the navigation's own scroller excepted.
  const overflow = await p2.evaluate(() => Math.max(0, ...[...document.querySelectorAll('main *')]
    .map((e) => e.getBoundingClientRect().right - window.innerWidth)));
  assert.ok(overflow <= 1, `no sideways scrolling on a phone (overflow ${overflow}px)`);
  await p2.screenshot({ path: `${ARTIFACTS}machines-phone.png`, fullPage: true });
  await phone.close();
  await context.close();
});

test('a team shares a machine through a pool: the owner creates it there, a pool user sees and uses it but cannot power it', async () => {
  const owner = await fundedCustomer('teamlead', 5);
  const mate = await fundedCustomer('teammate', 1);
  const pool = await api('/api/v1/pools', owner.token, { name: 'Ops Team' });
  assert.equal(pool.status, 201);
  const poolId = pool.body.data.id;
  const invite = await api(`/api/v1/pools/${poolId}/members`, owner.token, { username: mate.email.split('@')[0], role: 'user' });
  assert.equal(invite.status, 201);
  const pending = await api('/api/v1/pools/invitations/pending', mate.token);
  assert.equal((await api(`/api/v1/pools/${pending.body.data[0].id}/accept`, mate.token, {})).status, 200);

  // The owner creates it into the pool from the form.
  const laptop = await browser.newContext({ viewport: { width: 1366, height: 900 } });
  const page = await laptop.newPage();
  await signIn(page, owner.email, owner.password);
  await page.goto(`${BASE}/machines`);
  await hydrated(page);
  await page.fill('[data-test=create-machine-form] input[name=name]', 'team-box');
  await page.selectOption('[data-test=machine-pool-choice]', { label: 'Ops Team' });
  // No SSH key yet: the form asks for one in place, and the key is saved and installed.
  assert.match(await page.textContent('[data-test=no-keys-yet]'), /paste your public key below/);
  assert.equal(await page.locator('[data-test=new-key]').getAttribute('open'), '', 'the key fields are open');
  await page.fill('[data-test=new-key] input[name="new_key[name]"]', 'laptop');
  await page.fill('[data-test=new-key] textarea', KEY);
  await page.locator('[data-test=create-machine-form]').screenshot({ path: `${ARTIFACTS}machine-new-1366.png` });
  await page.setViewportSize({ width: 390, height: 844 });
  await page.locator('[data-test=create-machine-form]').screenshot({ path: `${ARTIFACTS}machine-new-390.png` });
  const formOverflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(formOverflow <= 0, `the new-machine form fits a phone (${formOverflow}px too wide)`);
  await page.setViewportSize({ width: 1366, height: 900 });
  await page.click('[data-test=create-machine-form] button[type=submit]');
  await page.locator('[data-test=machine-created]').waitFor();
  const keys = await api('/api/keys', owner.token);
  assert.deepEqual(keys.body.map((k) => k.name), ['laptop']);
  const made = (await api('/api/vps', owner.token)).body.find((v) => v.name === 'team-box');
  assert.deepEqual(made.ssh_key_ids, [keys.body[0].id], 'the pasted key is installed on the new machine');
  assert.equal(made.pool_id, poolId);
  const row = page.locator('[data-test=machine-row]', { hasText: 'team-box' });
  assert.equal((await row.locator('[data-test=machine-pool]').textContent()).trim(), 'Ops Team');
  await row.locator('[data-test=machine-state][data-state=running]').waitFor({ timeout: 20_000 });
  await row.locator('a').click();
  await page.waitForURL(/\/machines\/[0-9a-f]{24}$/);
  await hydrated(page);
  assert.match(await page.textContent('[data-test=machine-shared]'), /Shared with the pool Ops Team: .* You pay for it\./);
  assert.equal(await page.inputValue('[data-test=share-pool]'), poolId, 'the form shows where it is shared');
  await page.locator('[data-test=sharing-card]').screenshot({ path: `${ARTIFACTS}machine-sharing-1366.png` });
  await laptop.close();

  // The pool's user, on a phone: listed with its pool, usable, not powerable, not deletable.
  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true });
  const p2 = await phone.newPage();
  await signIn(p2, mate.email, mate.password);
  await p2.goto(`${BASE}/machines`);
  await hydrated(p2);
  const shared = p2.locator('[data-test=machine-row]', { hasText: 'team-box' });
  assert.equal((await shared.locator('[data-test=machine-pool]').textContent()).trim(), 'Ops Team');
  await shared.locator('a').click();
  await p2.waitForURL(/\/machines\/[0-9a-f]{24}$/);
  await hydrated(p2);
  assert.equal(await p2.isDisabled('[data-test=power-stop]'), true, 'a pool user cannot stop it');
  assert.match(await p2.textContent('[data-test=power-not-allowed]'), /lets you use it .* not power it/);
  assert.equal(await p2.locator('[data-test=power-delete]').count(), 0, 'nor delete it');
  assert.equal(await p2.locator('[data-test=snapshot-form]').count(), 0, 'nor take snapshots');
  assert.match(await p2.textContent('[data-test=machine-shared]'), new RegExp(`Shared with the pool Ops Team\\. ${owner.email.split('@')[0]} created it and pays for it\\.`));
  await p2.screenshot({ path: `${ARTIFACTS}machine-shared-phone.png`, fullPage: true });
  await phone.close();
});

test('an operator sees node load and address ranges, and runs the reconciler', async () => {
  const op = await api('/api/auth/login', null, { email: process.env.HANGAR_E2E_ADMIN_EMAIL, password: process.env.HANGAR_E2E_ADMIN_PASSWORD });
  assert.equal(op.status, 200);
  const range = await api('/api/admin/ip-pools', op.body.token, { region: 'e2e', first: '198.51.100.10', last: '198.51.100.29', prefix_len: 24 });
  assert.ok(range.status === 201 || range.status === 409, `range: ${range.status}`);
  // A customer's machine, so the node carries some load.
  const username = uniqueName('tenant');
  const reg = await api('/api/auth/register', null, { email: `${username}@example.com`, username, password: 'tenant-password-1' });
  assert.equal((await api(`/api/admin/users/${reg.body.id}/credit`, op.body.token, { amount: 5 })).status, 200);
  const tenant = await api('/api/auth/login', null, { email: `${username}@example.com`, password: 'tenant-password-1' });
  const vps = await api('/api/vps', tenant.body.token, { name: 'load-1', plan_id: 'medium' });
  assert.equal(vps.status, 201);

  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  await signIn(page, process.env.HANGAR_E2E_ADMIN_EMAIL, process.env.HANGAR_E2E_ADMIN_PASSWORD);
  await page.click('nav >> text=Operator');
  await page.waitForURL(`${BASE}/operator`);
  await hydrated(page);

  const node = page.locator('[data-test=node][data-name=local-vm]');
  const vcpu = node.locator('[data-test=gauge][data-label=vCPU]');
  const limit = Number(await vcpu.getAttribute('data-limit'));
  assert.ok(limit > 0, 'the vCPU limit is capacity × over-commit');
  const fill = await vcpu.locator('.meter-fill').evaluate((el) => el.style.width);
  const used = Number(await vcpu.getAttribute('data-used'));
  assert.ok(used >= vps.body.vcpu, `the tenant's machine counts (${used} vCPU in use)`);
  assert.equal(fill, `${Math.floor((used * 100) / limit)}%`, 'the bar is as long as the share in use');
  assert.ok(await page.locator('[data-test=machine-states] [data-test=gauge]').count() >= 1, 'machines by state');
  assert.ok(await page.locator('[data-test=range]', { hasText: '198.51.100.10 – 198.51.100.29' }).isVisible());

  // Drain the node and put it back: the buttons and the badge follow without a reload.
  await node.locator('[data-test=drain]').click();
  await node.locator('[data-test=activate]').waitFor();
  assert.equal((await node.locator('.status').textContent()).trim(), 'draining');
  await node.locator('[data-test=activate]').click();
  await node.locator('[data-test=drain]').waitFor();

  await page.click('text=Reconcile now');
  await page.locator('[data-test=reconcile-result]').waitFor();
  assert.match(await page.textContent('[data-test=reconcile-result]'), /Everything agrees|destroyed|failed|stopped|started|recorded|unreachable/);
  await page.screenshot({ path: `${ARTIFACTS}operator.png`, fullPage: true });
  await context.close();
  assert.equal((await api(`/api/vps/${vps.body.id}`, tenant.body.token, undefined, 'DELETE')).status, 202);
});
