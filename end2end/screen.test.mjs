// A real VM's screen in the browser (the QEMU tier: HANGAR_TEST_QEMU=1, which scripts/test sets
// up): an operator adds the tier as a VM node, a customer's VM boots on it, and its page's Screen
// tab shows the guest's display in noVNC through Hangar's relay. Saves a screenshot of it.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { launch, hydrated, uniqueName, api, signIn, BASE, ARTIFACTS } from './browser.mjs';

const QEMU = process.env.HANGAR_TEST_QEMU === '1';
let browser;
before(async () => { if (QEMU) browser = await launch(); });
after(async () => { await browser?.close(); });

test('a VM\'s screen shows the guest\'s display', { skip: !QEMU && 'the QEMU tier runs with HANGAR_TEST_QEMU=1' }, async () => {
  const op = await api('/api/auth/login', null, {
    email: process.env.HANGAR_E2E_ADMIN_EMAIL, password: process.env.HANGAR_E2E_ADMIN_PASSWORD,
  });
  const admin = op.body.token;
  const node = await api('/api/admin/nodes', admin, {
    name: 'e2e-qemu', kind: 'vm', region: 'qemu', uri: process.env.HANGAR_TEST_QEMU_URI,
    vcpu: 4, memory_mb: 4096, disk_gb: 50,
  });
  assert.equal(node.status, 201, JSON.stringify(node.body));
  // Kernel messages on the display too (tty0), so there is something to see.
  const image = await api('/api/admin/images', admin, {
    slug: 'tiny-linux-screen', name: 'Tiny Linux (screen)', kind: 'vm',
    source: `kernel=${process.env.HANGAR_TEST_QEMU_KERNEL} initrd=${process.env.HANGAR_TEST_QEMU_INITRD} append=console=tty0 console=ttyS0 quiet`,
  }, 'PUT');
  assert.equal(image.status, 200, JSON.stringify(image.body));

  const username = uniqueName('screen');
  const email = `${username}@example.com`;
  const password = 'screen-password-1';
  const reg = await api('/api/auth/register', null, { email, username, password });
  assert.equal((await api(`/api/admin/users/${reg.body.id}/credit`, admin, { amount: 5 })).status, 200);
  const login = await api('/api/auth/login', null, { email, password });
  const vps = await api('/api/vps', login.body.token, {
    name: 'screen-e2e', plan_id: 'nano', image: 'tiny-linux-screen', region: 'qemu',
  });
  assert.equal(vps.status, 201, JSON.stringify(vps.body));
  // Nothing else lands on the tier: the other browser tests' VMs stay simulated.
  assert.equal((await api(`/api/admin/nodes/${node.body.id}`, admin, { status: 'draining' }, 'PATCH')).status, 200);
  for (let i = 0; i < 120; i++) {
    const now = await api(`/api/vps/${vps.body.id}`, login.body.token);
    if (now.body.state === 'running') break;
    assert.notEqual(now.body.state, 'failed', JSON.stringify(now.body));
    await new Promise((r) => setTimeout(r, 500));
  }

  const context = await browser.newContext({ viewport: { width: 1366, height: 900 } });
  const page = await context.newPage();
  await signIn(page, email, password);
  await page.goto(`${BASE}/machines/${vps.body.id}`);
  await hydrated(page);
  // A real VM answers SSH at its address: the page gives the line (the node's network is private).
  assert.match(await page.textContent('[data-test=ssh-line]'), /^ssh root@\d+\.\d+\.\d+\.\d+$/);
  await page.click('[data-test=tab-screen]');
  await page.waitForFunction(() => window.hangarConsoleReady);
  await page.click('[data-test=open-screen]');
  await page.locator('[data-console-root][data-screen-connected]').waitFor({ timeout: 30_000 });

  // The guest's display is drawn: light text on the dark screen, not an empty canvas.
  let lit = 0;
  for (let i = 0; i < 60 && lit < 200; i++) {
    await page.waitForTimeout(500);
    lit = await page.evaluate(() => {
      const canvas = document.querySelector('[data-screen] canvas');
      if (!canvas || !canvas.width) return 0;
      const { data } = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height);
      let n = 0;
      for (let p = 0; p < data.length; p += 4) if (data[p] + data[p + 1] + data[p + 2] > 300) n++;
      return n;
    });
  }
  await page.locator('[data-screen]').scrollIntoViewIfNeeded();
  assert.ok(lit >= 200, `the guest's display shows something (${lit} lit pixels)`);
  // Not only the firmware's "Booting from ROM…": the guest's boot and a shell are on the screen,
  // so what is typed there is answered there (more text lights more pixels).
  const litNow = () => page.evaluate(() => {
    const canvas = document.querySelector('[data-screen] canvas');
    const { data } = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height);
    let n = 0;
    for (let p = 0; p < data.length; p += 4) if (data[p] + data[p + 1] + data[p + 2] > 300) n++;
    return n;
  });
  await page.locator('[data-screen] canvas').click();
  await page.keyboard.press('Enter');
  // A clear screen first: on one already full of the boot's log, new output only scrolls it and
  // lights few new pixels.
  await page.keyboard.type('clear', { delay: 50 });
  await page.keyboard.press('Enter');
  await page.waitForTimeout(1500);
  const before = await litNow();
  // A short command with a screenful of output: the terminal's own echo of what is typed could
  // not light that much.
  await page.keyboard.type('ls /bin', { delay: 50 });
  await page.keyboard.press('Enter');
  let after = before;
  for (let i = 0; i < 40 && after < before + 3000; i++) {
    await page.waitForTimeout(500);
    after = await litNow();
  }
  await page.screenshot({ path: `${ARTIFACTS}vm-screen.png` });
  assert.ok(after >= before + 3000, `a shell on the screen answered what was typed (${before} → ${after} lit pixels)`);
  await context.close();
  await api(`/api/vps/${vps.body.id}`, login.body.token, undefined, 'DELETE');
});
