// The operator's console, as an operator uses it on a laptop and a phone: find a customer, read
// their page, credit them (a confirmation above the threshold; the customer sees their line,
// never the note), suspend and reinstate them, and stop their machine from the list of all
// machines, saying why.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { launch, hydrated, BASE, ARTIFACTS, fundedCustomer, signIn, api, untilRunning } from './browser.mjs';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

test('an operator finds a customer, credits, suspends and reinstates them, and stops their machine', async () => {
  const customer = await fundedCustomer('patron', 5);
  const username = customer.email.split('@')[0];
  const vps = await api('/api/vps', customer.token, { name: 'patron-box', plan_id: 'nano' });
  assert.equal(vps.status, 201);
  await untilRunning(vps.body.id, customer.token);

  const context = await browser.newContext({ viewport: { width: 1366, height: 900 } });
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await signIn(page, process.env.HANGAR_E2E_ADMIN_EMAIL, process.env.HANGAR_E2E_ADMIN_PASSWORD);
  await page.goto(`${BASE}/operator/customers`);
  await hydrated(page);
  await page.fill('[data-test=customer-search] input[name=q]', username.toUpperCase());
  await page.click('[data-test=customer-search] button');
  await page.waitForURL(/\/operator\/customers\?q=/);
  await page.locator('[data-test=customer-row]', { hasText: username }).waitFor();
  assert.equal(await page.locator('[data-test=customer-row]').count(), 1, 'the search finds exactly them');
  await page.screenshot({ path: `${ARTIFACTS}operator-customers-1366.png`, fullPage: true });
  // On a phone each customer is a card that fits: its balance and machines are on the screen.
  await page.setViewportSize({ width: 390, height: 844 });
  const card = await page.locator('[data-test=customer-row]').boundingBox();
  assert.ok(card.x >= 0 && card.x + card.width <= 390, `the customer card fits a phone (${JSON.stringify(card)})`);
  await page.screenshot({ path: `${ARTIFACTS}operator-customers-390.png`, fullPage: true });
  await page.setViewportSize({ width: 1366, height: 900 });
  await page.locator('[data-test=customer-row] a').click();
  await page.waitForURL(/\/operator\/customers\/[0-9a-f]{24}$/);
  await hydrated(page);
  assert.equal(await page.locator('[data-test=customer-machine]').count(), 1);
  assert.match(await page.textContent('[data-test=customer-balance]'), /\$5\.0000/);

  // A large credit asks for a confirmation first.
  await page.fill('[data-test=credit-form] input[name=amount]', '150');
  await page.fill('[data-test=credit-form] input[name=description]', 'Sorry for the outage');
  await page.fill('[data-test=credit-form] input[name=note]', 'ticket 4711, internal');
  await page.locator('[data-test=credit-confirm]').waitFor();
  await page.click('[data-test=credit-form] button[type=submit]');
  await page.locator('[data-test=credit-form] ~ .alert-error, [data-test=credit-form] .alert-error').first().waitFor();
  await page.fill('[data-test=credit-form] input[name=amount]', '150');
  await page.fill('[data-test=credit-form] input[name=description]', 'Sorry for the outage');
  await page.fill('[data-test=credit-form] input[name=note]', 'ticket 4711, internal');
  await page.check('[data-test=credit-confirm] input');
  await page.click('[data-test=credit-form] button[type=submit]');
  await page.locator('[data-test=credit-done]').waitFor();
  await page.locator('[data-test=customer-balance]', { hasText: '$155.0000' }).waitFor();
  const history = await api('/api/billing/history', customer.token);
  const text = JSON.stringify(history.body);
  assert.ok(text.includes('Sorry for the outage') && !text.includes('ticket 4711'), 'the customer reads their line, not the note');

  // Suspended: their API stops with the reason, their machine stops.
  await page.fill('[data-test=suspend-form] input[name=reason]', 'unpaid invoice 2026-11');
  await page.click('[data-test=suspend-form] button[type=submit]');
  await page.locator('[data-test=customer-suspended]', { hasText: 'unpaid invoice 2026-11' }).waitFor();
  const refused = await api('/api/auth/login', null, { email: customer.email, password: customer.password });
  assert.equal(refused.status, 403);
  assert.match(refused.body.error, /suspended: unpaid invoice 2026-11/);
  await page.locator('[data-test=customer-machine-state]', { hasText: 'stopped' }).waitFor({ timeout: 20_000 }).catch(async () => {
    await page.reload();
    await page.locator('[data-test=customer-machine-state]', { hasText: 'stopped' }).waitFor({ timeout: 20_000 });
  });
  await page.screenshot({ path: `${ARTIFACTS}operator-customer-1366.png`, fullPage: true });
  await page.setViewportSize({ width: 390, height: 844 });
  await page.screenshot({ path: `${ARTIFACTS}operator-customer-390.png`, fullPage: true });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `the customer page fits a phone (${overflow}px too wide)`);
  await page.setViewportSize({ width: 1366, height: 900 });
  await page.click('[data-test=reinstate-form] button[type=submit]');
  await page.locator('[data-test=suspend-form]').waitFor();
  assert.equal((await api('/api/auth/login', null, { email: customer.email, password: customer.password })).status, 200);

  // Every machine, with its owner; started again and stopped from the list, saying why.
  const again = (await api('/api/auth/login', null, { email: customer.email, password: customer.password })).body.token;
  assert.equal((await api(`/api/vps/${vps.body.id}/start`, again, {})).status, 202);
  await untilRunning(vps.body.id, again);
  await page.goto(`${BASE}/operator/machines?q=${username}`);
  await hydrated(page);
  const row = page.locator('[data-test=all-machine]', { hasText: 'patron-box' });
  assert.equal((await row.locator('[data-test=all-machine-state]').textContent()).trim(), 'running');
  await row.locator('[data-test=machine-act] summary').click();
  await row.locator('[data-test=op-action]').selectOption('stop');
  await row.locator('input[name=why]').fill('abuse report #12');
  await row.locator('button[type=submit]').click();
  await page.locator('[data-test=op-machine-done]').waitFor();
  const mine = await api(`/api/vps/${vps.body.id}`, again);
  assert.match(mine.body.reason ?? '', /operators: abuse report #12/);
  await page.screenshot({ path: `${ARTIFACTS}operator-machines-1366.png`, fullPage: true });

  // The tasks view traces what ran on it: the operator's stop, with machine, owner and node.
  await page.goto(`${BASE}/operator/tasks?q=patron-box`);
  await hydrated(page);
  const stopRow = page.locator('[data-test=task-row]', { hasText: 'stop' }).first();
  await stopRow.waitFor();
  const stopText = await stopRow.innerText();
  assert.ok(stopText.includes('patron-box') && stopText.includes(username), stopText);
  await page.screenshot({ path: `${ARTIFACTS}operator-tasks-1366.png`, fullPage: true });
  assert.deepEqual(errors, [], 'no page errors');
  await context.close();
});

test('an operator adds a plan, reprices it without retyping it, retires it, and reads the inventory', async () => {
  const context = await browser.newContext({ viewport: { width: 1366, height: 900 } });
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await signIn(page, process.env.HANGAR_E2E_ADMIN_EMAIL, process.env.HANGAR_E2E_ADMIN_PASSWORD);
  await page.goto(`${BASE}/operator/catalog`);
  await hydrated(page);
  const slug = `e2e-${Date.now().toString(36)}`;
  await page.click('[data-test=plan-form] summary');
  const form = page.locator('[data-test=plan-form] form');
  await form.locator('input[name="plan[slug]"]').fill(slug);
  await form.locator('input[name="plan[name]"]').fill('Browser plan');
  await form.locator('select[name="plan[kind]"]').selectOption('container');
  await form.locator('input[name="plan[vcpu]"]').fill('1');
  await form.locator('input[name="plan[memory_mb]"]').fill('256');
  await form.locator('input[name="plan[disk_gb]"]').fill('2');
  await form.locator('input[name="plan[price_hourly]"]').fill('0.01');
  await form.locator('button[type=submit]').click();
  const row = page.locator(`[data-test=plan-row][data-slug="${slug}"]`);
  await row.waitFor();
  assert.match(await row.textContent(), /Browser plan/);
  assert.match(await row.textContent(), /\$0\.0100/);

  // Only the price, the rest kept.
  await form.locator('input[name="plan[slug]"]').fill(slug);
  await form.locator('input[name="plan[price_hourly]"]').fill('0.02');
  await form.locator('button[type=submit]').click();
  await page.locator(`[data-test=plan-row][data-slug="${slug}"]`, { hasText: '$0.0200' }).waitFor();
  assert.match(await row.textContent(), /Browser plan/, 'the name stayed');
  assert.match(await row.textContent(), /1 vCPU/, 'the size stayed');

  // Retired: off the price list, still in the operator's, with a way back.
  await row.locator('[data-test=plan-retire]').click();
  await row.locator('[data-test=retired]').waitFor();
  const pricing = await api('/api/pricing', null);
  assert.ok(!pricing.body.some((p) => p.slug === slug), 'customers no longer see it');
  await row.locator('[data-test=plan-restore]').waitFor();
  // The default images are held by the nodes that run them.
  assert.ok(await page.locator('[data-test=image-row] [data-test=image-nodes]').count() > 0);
  await page.screenshot({ path: `${ARTIFACTS}operator-catalog-1366.png`, fullPage: true });
  await page.setViewportSize({ width: 390, height: 844 });
  await page.screenshot({ path: `${ARTIFACTS}operator-catalog-390.png`, fullPage: true });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `the catalog fits a phone (${overflow}px too wide)`);

  // The inventory: the demo servers, found by status.
  await page.setViewportSize({ width: 1366, height: 900 });
  await page.goto(`${BASE}/operator/inventory?status=available`);
  await hydrated(page);
  assert.match(await page.textContent('[data-test=inventory-count]'), /servers match/);
  const statuses = await page.locator('[data-test=inventory-status]').allTextContents();
  assert.ok(statuses.length > 0 && statuses.every((s) => s === 'available'), statuses.join(','));
  await page.screenshot({ path: `${ARTIFACTS}operator-inventory-1366.png`, fullPage: true });
  assert.deepEqual(errors, []);
  await context.close();
});

test('an operator adds a node, sees why it is unreachable, renames it, and reads a host load chart', async () => {
  const context = await browser.newContext({ viewport: { width: 1366, height: 900 } });
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await signIn(page, process.env.HANGAR_E2E_ADMIN_EMAIL, process.env.HANGAR_E2E_ADMIN_PASSWORD);
  await page.goto(`${BASE}/operator`);
  await hydrated(page);
  const name = `gone-${Date.now().toString(36)}`;
  await page.click('[data-test=add-node] summary');
  const add = page.locator('[data-test=add-node] form');
  await add.locator('input[name="node[name]"]').fill(name);
  await add.locator('select[name="node[kind]"]').selectOption('container');
  await add.locator('input[name="node[region]"]').fill('nowhere');
  await add.locator('input[name="node[uri]"]').fill(`unix:///nonexistent/${name}.sock`);
  await add.locator('input[name="node[vcpu]"]').fill('2');
  await add.locator('input[name="node[memory_mb]"]').fill('2048');
  await add.locator('input[name="node[disk_gb]"]').fill('20');
  await add.locator('button[type=submit]').click();
  const card = page.locator(`[data-test=node][data-name="${name}"]`);
  await card.waitFor();
  const op = await api('/api/auth/login', null, {
    email: process.env.HANGAR_E2E_ADMIN_EMAIL, password: process.env.HANGAR_E2E_ADMIN_PASSWORD,
  });
  const nodeId = (await api('/api/admin/nodes', op.body.token)).body.find((n) => n.name === name).id;
  try {
    // Nothing answers there: after a pass its card says since when and why.
    await page.locator('button', { hasText: 'Reconcile now' }).click();
    await page.locator('[data-test=reconcile-result]').waitFor();
    await card.locator('[data-test=node-unreachable-why]').waitFor();
    assert.match(await card.locator('[data-test=node-unreachable-why]').textContent(), /^Since .+: .+/);

    // Renamed through its Edit form; what was left empty stays.
    await card.locator('[data-test=node-edit] summary').click();
    await card.locator('input[name="node[name]"]').fill(`${name}-x`);
    await card.locator('[data-test=node-edit] button[type=submit]').click();
    const renamed = page.locator(`[data-test=node][data-name="${name}-x"]`);
    await renamed.waitFor();
    assert.match(await renamed.textContent(), /nowhere/, 'its region stayed');

    // The embedded node daemon reports its host: its chart over the last hour has host figures.
    const daemon = page.locator('[data-test=node][data-name=local-node]');
    await daemon.locator('[data-test=node-range-1h]').click();
    await daemon.locator('[data-test=node-history]').waitFor();
    assert.match(await daemon.locator('[data-test=node-cpu] figcaption').textContent(), /host \d+ %/);
    assert.match(await daemon.locator('[data-test=node-memory] figcaption').textContent(), /host \d+ %/);
    assert.match(await daemon.locator('[data-test=node-version]').textContent(), /hangar-node \d+\.\d+/);
    await page.screenshot({ path: `${ARTIFACTS}operator-nodes-1366.png`, fullPage: true });
    await page.setViewportSize({ width: 390, height: 844 });
    await page.screenshot({ path: `${ARTIFACTS}operator-nodes-390.png`, fullPage: true });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `the operator page fits a phone (${overflow}px too wide)`);
    assert.deepEqual(errors, []);
  } finally {
    // The lost node must not take later tests' machines.
    await api(`/api/admin/nodes/${nodeId}`, op.body.token, undefined, 'DELETE');
    await context.close();
  }
});
