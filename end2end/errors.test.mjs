// A new user's mistakes on every kind of portal form, in a real browser: each answers a 4xx (the
// network panel's status, not a 500) and the page shows the same readable message as before.
// Values are ones the browser's own form checks let through, so the server is the one saying no.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { launch, hydrated, uniqueName, BASE, api, signIn } from './browser.mjs';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

/** Records the status of every server-function call the page makes. */
function watchServerFunctions(page) {
  const calls = [];
  page.on('response', (res) => {
    const path = new URL(res.url()).pathname;
    if (path.startsWith('/_fn/')) calls.push({ path, status: res.status() });
  });
  return {
    /** Waits for the next answer from `/_fn/<name>` after `since` calls, and returns its status. */
    async statusOf(name, since) {
      for (let i = 0; i < 100; i++) {
        const hit = calls.slice(since).find((c) => c.path === `/_fn/${name}`);
        if (hit) return hit.status;
        await page.waitForTimeout(100);
      }
      throw new Error(`no call to /_fn/${name}; saw ${JSON.stringify(calls.slice(since))}`);
    },
    get count() { return calls.length; },
    all: calls,
  };
}

/** Submits `form` (a selector) and checks the server's status and the message shown. */
async function mistake(page, fns, { form, endpoint, status, message }) {
  const since = fns.count;
  await page.click(`${form} button[type=submit]`);
  assert.equal(await fns.statusOf(endpoint, since), status, `${endpoint}: status`);
  await page.locator('.alert-error', { hasText: message }).first().waitFor();
}

test("a person's mistakes on every form answer 4xx with a readable message", async () => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  const fns = watchServerFunctions(page);
  const username = uniqueName('oops');
  const email = `${username}@example.com`;
  const password = 'browser-password-1';

  // Sign up works; signing up again with the same email is a conflict.
  await page.goto(`${BASE}/signup`);
  await hydrated(page);
  await page.fill('input[name=email]', email);
  await page.fill('input[name=username]', username);
  await page.fill('input[name=password]', password);
  await page.click('[data-test=sign-up-form] button[type=submit]');
  await page.waitForURL(`${BASE}/`);
  await page.click('[data-test=sign-out]');
  await page.waitForURL(`${BASE}/signin`);

  await page.goto(`${BASE}/signup`);
  await hydrated(page);
  await page.fill('input[name=email]', email);
  await page.fill('input[name=username]', `${username}x`);
  await page.fill('input[name=password]', password);
  await mistake(page, fns, {
    form: '[data-test=sign-up-form]', endpoint: 'sign_up', status: 409,
    message: 'An account with this email already exists',
  });

  // A wrong password: 401, the same words as before.
  await page.goto(`${BASE}/signin`);
  await hydrated(page);
  await page.fill('input[name=email]', email);
  await page.fill('input[name=password]', 'not-the-password');
  await mistake(page, fns, {
    form: '[data-test=sign-in-form]', endpoint: 'sign_in', status: 401,
    message: 'Invalid email or password',
  });
  await page.fill('input[name=password]', password);
  await page.click('[data-test=sign-in-form] button[type=submit]');
  await page.waitForURL(`${BASE}/`);

  // A token whose name is only spaces.
  await page.goto(`${BASE}/tokens`);
  await hydrated(page);
  await page.fill('[data-test=create-token-form] input[name=name]', '   ');
  await mistake(page, fns, {
    form: '[data-test=create-token-form]', endpoint: 'create_token', status: 400, message: 'name',
  });

  // Something that is not an SSH key.
  await page.goto(`${BASE}/keys`);
  await hydrated(page);
  await page.fill('[data-test=add-key-form] input[name=name]', 'laptop');
  await page.fill('[data-test=add-key-form] textarea[name=public_key]', 'this is not a key');
  await mistake(page, fns, {
    form: '[data-test=add-key-form]', endpoint: 'add_ssh_key', status: 400, message: 'Unsupported key type',
  });

  // A machine without the balance for its minimum runtime: 402.
  await page.goto(`${BASE}/machines`);
  await hydrated(page);
  await page.fill('[data-test=create-machine-form] input[name=name]', 'web-1');
  await mistake(page, fns, {
    form: '[data-test=create-machine-form]', endpoint: 'create_machine', status: 402,
    message: 'insufficient balance',
  });

  // An invitation to nobody: 404.
  await page.goto(`${BASE}/pools`);
  await hydrated(page);
  await page.locator('a[href^="/pools/"]').first().click();
  await page.waitForURL(/\/pools\/.+/);
  await hydrated(page);
  await page.fill('[data-test=invite-form] input[name=username]', `${username}_nobody`);
  await mistake(page, fns, {
    form: '[data-test=invite-form]', endpoint: 'invite', status: 404, message: 'not found',
  });

  // A pool whose name is only spaces.
  await page.goto(`${BASE}/pools`);
  await hydrated(page);
  await page.fill('[data-test=create-pool-form] input[name=name]', '   ');
  await mistake(page, fns, {
    form: '[data-test=create-pool-form]', endpoint: 'create_pool', status: 400,
    message: 'Pool name is required',
  });

  // An alert address without a domain the server accepts.
  await page.goto(`${BASE}/billing`);
  await hydrated(page);
  await page.fill('[data-test=notify-form] input[name=email]', 'someone@localhost');
  await mistake(page, fns, {
    form: '[data-test=notify-form]', endpoint: 'add_notify_email', status: 400, message: 'mail',
  });

  // Renting with no balance: the page says so and will not pay; a submission that gets through
  // anyway (an old page, a script) is a 402.
  await page.goto(`${BASE}/marketplace`);
  await hydrated(page);
  await page.locator('a[href^="/marketplace/"]').first().click();
  await page.waitForURL(/\/marketplace\/.+/);
  await hydrated(page);
  await page.locator('[data-test=short-balance]').waitFor();
  assert.equal(await page.isDisabled('[data-test=rent-form] button[type=submit]'), true);
  const since = fns.count;
  await page.$eval('[data-test=rent-form]', (f) => f.requestSubmit());
  assert.equal(await fns.statusOf('rent', since), 402, 'rent: status');
  await page.locator('.alert-error', { hasText: 'balance' }).first().waitFor();

  const failures = fns.all.filter((c) => c.status >= 500);
  assert.deepEqual(failures, [], 'no server function answered 5xx');
  await context.close();
});

test("mistakes on a machine's forms and on the operator's forms answer 4xx too", async () => {
  const username = uniqueName('oops');
  const email = `${username}@example.com`;
  const password = 'machine-password-1';
  const reg = await api('/api/auth/register', null, { email, username, password });
  assert.equal(reg.status, 201);
  const op = await api('/api/auth/login', null, {
    email: process.env.HANGAR_E2E_ADMIN_EMAIL, password: process.env.HANGAR_E2E_ADMIN_PASSWORD,
  });
  assert.equal((await api(`/api/admin/users/${reg.body.id}/credit`, op.body.token, { amount: 5 })).status, 200);

  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const fns = watchServerFunctions(page);
  await signIn(page, email, password);
  await page.goto(`${BASE}/machines`);
  await hydrated(page);
  // The browser checks a name itself: the pattern must be one Chrome accepts (under the `v`
  // flag an unescaped `-` in a class makes it invalid, and then nothing is checked).
  const nameField = page.locator('[data-test=create-machine-form] input[name=name]');
  await nameField.fill('bad name!');
  assert.equal(await nameField.evaluate((el) => el.validity.patternMismatch), true, 'the name pattern is checked');
  await nameField.fill('web-01_b.x');
  assert.equal(await nameField.evaluate((el) => el.validity.valid), true, 'letters, digits, . _ - pass');
  await page.fill('[data-test=create-machine-form] input[name=name]', 'oops-1');
  await page.locator('[data-test=source-card][data-name=Nano]').click();
  await page.click('[data-test=create-machine-form] button[type=submit]');
  const row = page.locator('[data-test=machine-row]', { hasText: 'oops-1' });
  await row.locator('[data-test=machine-state][data-state=running]').waitFor({ timeout: 20_000 });
  await row.locator('a').click();
  await page.waitForURL(/\/machines\/[0-9a-f]{24}$/);
  await hydrated(page);

  // A name with a space, which the rename field does not check itself.
  await page.fill('form:has(input[name=name][value]) input[name=name]', 'bad name');
  await mistake(page, fns, {
    form: 'form:has(input[name=name][value])', endpoint: 'rename_machine', status: 400, message: 'name',
  });

  const snapName = page.locator('[data-test=snapshot-form] input[name=name]');
  await snapName.fill('-starts-with-dash');
  assert.equal(await snapName.evaluate((el) => el.validity.patternMismatch), true, 'the snapshot name pattern is checked');

  // The same snapshot name twice: a conflict.
  await page.fill('[data-test=snapshot-form] input[name=name]', 'first');
  await page.click('[data-test=snapshot-form] button[type=submit]');
  await page.locator('[data-test=snapshot-row][data-state=ready]').waitFor({ timeout: 20_000 });
  await page.fill('[data-test=snapshot-form] input[name=name]', 'first');
  await mistake(page, fns, {
    form: '[data-test=snapshot-form]', endpoint: 'snapshot_action', status: 409, message: 'exists',
  });

  // An operator's address range with an address that is not one.
  const ops = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const opPage = await ops.newPage();
  const opFns = watchServerFunctions(opPage);
  await signIn(opPage, process.env.HANGAR_E2E_ADMIN_EMAIL, process.env.HANGAR_E2E_ADMIN_PASSWORD);
  await opPage.goto(`${BASE}/operator`);
  await hydrated(opPage);
  await opPage.fill('[data-test=add-range-form] input[name=region]', 'local');
  await opPage.fill('[data-test=add-range-form] input[name=first]', '203.0.113.300');
  await opPage.fill('[data-test=add-range-form] input[name=last]', '203.0.113.310');
  await mistake(opPage, opFns, {
    form: '[data-test=add-range-form]', endpoint: 'operator_add_range', status: 400, message: 'address',
  });

  const failures = [...fns.all, ...opFns.all].filter((c) => c.status >= 500);
  assert.deepEqual(failures, [], 'no server function answered 5xx');
  await ops.close();
  await context.close();
});

