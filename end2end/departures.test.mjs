// Leaving a page that follows live state ends what it started: a machine's page (its usage
// stream, its command list's timer, its snapshot polling), the machines list (its state stream).
// A person leaving by any link lands on a page without errors, and a deleted machine's page
// asks nothing more about it.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { launch, hydrated, BASE, api, fundedCustomer, signIn, untilRunning } from './browser.mjs';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

/** Every page error and console error `page` shows from now on. */
function watchErrors(page) {
  const seen = [];
  page.on('pageerror', (e) => seen.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    // A refused stream or fetch is the browser's own line, not the app failing.
    if (m.type() === 'error' && !/Failed to load resource|EventSource/.test(m.text())) seen.push(`console: ${m.text()}`);
  });
  return seen;
}

const settle = (ms) => new Promise((r) => setTimeout(r, ms));

test('leaving a machine page by any link leaves no error and no stream behind', async () => {
  const { email, password, token } = await fundedCustomer('leaver', 5);
  const created = await api('/api/vps', token, { name: 'leaver-01', plan_id: 'c-micro' });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const id = created.body.id;
  await untilRunning(id, token);

  const context = await browser.newContext({ viewport: { width: 1366, height: 900 } });
  const page = await context.newPage();
  await signIn(page, email, password);
  const errors = watchErrors(page);
  // Every way out of the page a person uses: the main navigation, the account menu, the balance.
  const exits = [
    ['Machines', () => page.click('[data-test=nav] >> text=Machines'), /\/machines$/],
    ['Dashboard', () => page.click('header a.brand'), /:\d+\/$/],
    ['Billing', () => page.click('[data-test=nav-balance]'), /\/billing$/],
    ['Marketplace', () => page.click('[data-test=nav] >> text=Marketplace'), /\/marketplace$/],
  ];
  for (const [name, leave, landing] of exits) {
    await page.goto(`${BASE}/machines/${id}`);
    await hydrated(page);
    // The live parts have started: the usage stream has sent a sample, the command list is up.
    await page.waitForFunction(() => Number(document.querySelector('[data-test=usage-live]')?.dataset.samples) >= 1,
      null, { timeout: 30_000 });
    await page.locator('[data-test=command-form]').waitFor();
    await leave();
    await page.waitForURL(landing);
    await hydrated(page);
    // Long enough for a leftover timer (1 s) or a stream's next sample to fire.
    await settle(2500);
    assert.deepEqual(errors, [], `leaving for ${name} left errors behind`);
  }

  // A machine deleted from its own page: the page stops asking about it.
  await page.goto(`${BASE}/machines/${id}`);
  await hydrated(page);
  await page.waitForFunction(() => Number(document.querySelector('[data-test=usage-live]')?.dataset.samples) >= 1,
    null, { timeout: 30_000 });
  const afterDelete = [];
  let deleted = false;
  page.on('request', (r) => { if (deleted && r.url().includes(`/events/machines/${id}/stats`)) afterDelete.push(r.url()); });
  assert.equal((await api(`/api/vps/${id}`, token, undefined, 'DELETE')).status, 202);
  for (let i = 0; i < 60 && (await api(`/api/vps/${id}`, token)).status !== 404; i++) await settle(500);
  deleted = true;
  await settle(4000);
  assert.deepEqual(afterDelete, [], 'a deleted machine\'s usage stream is not asked for again');
  await page.click('[data-test=nav] >> text=Machines');
  await page.waitForURL(/\/machines$/);
  await hydrated(page);
  await settle(1500);
  assert.deepEqual(errors, [], 'no errors after the machine went');
  await context.close();
});
