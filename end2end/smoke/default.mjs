// The default as a new user meets it (scripts/smoke starts Hangar through scripts/run first):
// an account, a balance, and through the public API one machine of every kind the default
// offers — a container plan, the app template on the embedded node daemon, and a VM when the
// VM node is real — each waited to `running`, used (a command, a file both ways, the console),
// and deleted. Every step prints what it did; the first failure ends the run with its reason.
//
//   node --experimental-websocket end2end/smoke/default.mjs URL OPERATOR_EMAIL OPERATOR_PASSWORD
import assert from 'node:assert/strict';

const [base, opEmail, opPassword] = process.argv.slice(2);
const stamp = Date.now().toString(36);
let passed = 0;
let failed = 0;

async function api(method, path, { token, body, raw } = {}) {
  const headers = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined && !raw) headers['content-type'] = 'application/json';
  const res = await fetch(base + path, {
    method,
    headers,
    body: body === undefined ? undefined : raw ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* a file, or empty */ }
  return { status: res.status, json, text };
}

async function ok(method, path, opts, want = [200, 201, 202, 204]) {
  const r = await api(method, path, opts);
  assert.ok(want.includes(r.status), `${method} ${path} answered ${r.status}: ${r.text.slice(0, 500)}`);
  return r.json;
}

async function step(name, f) {
  const started = Date.now();
  try {
    const out = await f();
    passed += 1;
    console.log(`ok   ${name} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
    return out;
  } catch (e) {
    failed += 1;
    console.log(`FAIL ${name}: ${e.message}`);
    throw e;
  }
}

async function login(email, password) {
  return (await ok('POST', '/api/auth/login', { body: { email, password } })).token;
}

// Polls the machine until it is running; fails at once on `error`, with the reason Hangar gives.
async function untilRunning(token, id, seconds) {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    const vps = await ok('GET', `/api/vps/${id}`, { token });
    if (vps.state === 'running' && !vps.transition) return vps;
    assert.notEqual(vps.state, 'error', `machine ${id} failed: ${vps.reason}`);
    assert.ok(Date.now() < deadline, `machine ${id} not running after ${seconds} s (${vps.state}, ${vps.progress ?? ''})`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

// Opens the console with a fresh ticket, types `line`, and resolves with everything it printed
// once `expect` shows up.
async function consoleSays(token, id, line, expect) {
  const ticket = await ok('POST', `/api/vps/${id}/console`, { token, body: { kind: 'console' } });
  assert.ok(ticket.ticket && ticket.path, 'a ticket and a path');
  const url = base.replace(/^http/, 'ws') + `${ticket.path}?ticket=${encodeURIComponent(ticket.ticket)}`;
  // The upgrade carries the caller's credential as well as the ticket (undici's WebSocket takes
  // headers, as API clients' libraries do).
  const ws = new WebSocket(url, { headers: { authorization: `Bearer ${token}` } });
  ws.binaryType = 'arraybuffer';
  let seen = '';
  return await new Promise((resolve, reject) => {
    const timer = setTimeout(() => { ws.close(); reject(new Error(`console never showed ${expect}; it showed: ${seen.slice(-500)}`)); }, 20000);
    ws.onopen = () => setTimeout(() => ws.send(new TextEncoder().encode(line + '\n')), 500);
    ws.onmessage = (m) => {
      if (typeof m.data !== 'string') seen += new TextDecoder().decode(m.data);
      if (seen.includes(expect)) { clearTimeout(timer); ws.close(); resolve(seen); }
    };
    ws.onerror = (e) => { clearTimeout(timer); reject(new Error(`console WebSocket: ${e.message ?? 'error'}`)); };
  });
}

async function fileRoundTrip(token, id, path) {
  const content = `smoke ${stamp}\n`;
  await ok('PUT', `/api/vps/${id}/files?path=${encodeURIComponent(path)}`, { token, body: content, raw: true });
  const back = await api('GET', `/api/vps/${id}/files?path=${encodeURIComponent(path)}`, { token });
  assert.equal(back.status, 200, back.text);
  assert.equal(back.text, content, 'the file reads back as written');
}

async function deleteMachine(token, id) {
  await ok('DELETE', `/api/vps/${id}`, { token });
  const deadline = Date.now() + 60000;
  for (;;) {
    const r = await api('GET', `/api/vps/${id}`, { token });
    if (r.status === 404) return;
    assert.ok(Date.now() < deadline, `machine ${id} still there a minute after its delete`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

try {
  const user = await step('a new user signs up', async () => {
    const me = await ok('POST', '/api/auth/register', {
      body: { email: `smoke-${stamp}@example.com`, username: `smoke_${stamp}`, password: `smoke ${stamp} long passphrase` },
    });
    const token = await login(`smoke-${stamp}@example.com`, `smoke ${stamp} long passphrase`);
    return { id: me.id, token };
  });
  await step('an operator credits $20', async () => {
    const op = await login(opEmail, opPassword);
    await ok('POST', `/api/admin/users/${user.id}/credit`, { token: op, body: { amount: 20, note: 'smoke test' } });
  });
  const { plans, templates, images } = await step('the catalog offers only what a node holds', async () => {
    const plans = await ok('GET', '/api/pricing');
    const templates = await ok('GET', '/api/templates', { token: user.token });
    const images = await ok('GET', '/api/images');
    assert.ok(images.some((i) => i.kind === 'container'), 'a container image is offered');
    for (const t of templates) assert.ok(images.some((i) => i.slug === t.image), `template ${t.slug}'s image ${t.image} is offered`);
    return { plans, templates, images };
  });
  const vmReal = images.some((i) => i.kind === 'vm' && i.slug === 'tiny-linux');

  // A plain container from the smallest container plan.
  const containerPlan = plans.filter((p) => p.kind === 'container').sort((a, b) => a.price_hourly - b.price_hourly)[0];
  const container = await step(`a container (${containerPlan.id}) reaches running`, async () => {
    const vps = await ok('POST', '/api/vps', { token: user.token, body: { name: `smoke-c-${stamp}`, plan_id: containerPlan.id } });
    return untilRunning(user.token, vps.id, 120);
  });
  await step('the container runs a command', async () => {
    const out = await ok('POST', `/api/vps/${container.id}/exec`, { token: user.token, body: { command: 'echo hello from $(hostname)' } });
    assert.equal(out.exit_code, 0, JSON.stringify(out));
    assert.match(out.stdout, /^hello from /);
  });
  await step('a file goes into the container and back', () => fileRoundTrip(user.token, container.id, '/tmp/smoke.txt'));
  await step("the container's console answers", () => consoleSays(user.token, container.id, `echo console-${stamp}`, `console-${stamp}`));
  await step('the container is deleted', () => deleteMachine(user.token, container.id));

  // The app template on the embedded node daemon (its install runs first).
  const app = templates.find((t) => t.image === 'demo-game-server');
  assert.ok(app, 'the demo app template is offered on the default');
  const appMachine = await step(`the app template (${app.slug}) installs and reaches running`, async () => {
    const vps = await ok('POST', '/api/vps', { token: user.token, body: { name: `smoke-a-${stamp}`, template: app.slug } });
    return untilRunning(user.token, vps.id, 120);
  });
  await step("the app's console takes a command", () => consoleSays(user.token, appMachine.id, `say ${stamp}`, `[server] say ${stamp}`));
  await step("the app's install left its files, and a file goes in and back", async () => {
    const props = await api('GET', `/api/vps/${appMachine.id}/files?path=${encodeURIComponent('/home/container/server.properties')}`, { token: user.token });
    assert.equal(props.status, 200, props.text);
    assert.match(props.text, /motd=Welcome/);
    await fileRoundTrip(user.token, appMachine.id, '/home/container/smoke.txt');
  });
  await step('the app machine is deleted', () => deleteMachine(user.token, appMachine.id));

  if (vmReal) {
    const vmPlan = plans.filter((p) => p.kind === 'vm').sort((a, b) => a.price_hourly - b.price_hourly)[0];
    const vm = await step(`a VM (${vmPlan.id}, tiny-linux) boots to running`, async () => {
      const vps = await ok('POST', '/api/vps', { token: user.token, body: { name: `smoke-v-${stamp}`, plan_id: vmPlan.id, image: 'tiny-linux' } });
      return untilRunning(user.token, vps.id, 300);
    });
    await step('the VM runs a command at once', async () => {
      const out = await ok('POST', `/api/vps/${vm.id}/exec`, { token: user.token, body: { command: 'uname -s' } });
      assert.equal(out.stdout.trim(), 'Linux');
    });
    await step('a file goes into the VM and back', () => fileRoundTrip(user.token, vm.id, '/root/smoke.txt'));
    await step('the VM is deleted', () => deleteMachine(user.token, vm.id));
  } else {
    console.log('--   no real VM node on this host: VMs are simulated on the default, nothing to use inside');
  }
} catch {
  // Reported by its step.
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
