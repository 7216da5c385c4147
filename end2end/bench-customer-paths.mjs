// The API half of scripts/bench-customer-paths: a funded customer, a container and an app machine
// on the embedded node daemon, then exec round trips and four 64 MiB files at once each way,
// with the server's peak resident size (VmHWM, reset before each phase) read from /proc.
//
//   node end2end/bench-customer-paths.mjs URL SERVER_PID OPERATOR_EMAIL OPERATOR_PASSWORD
import { readFileSync, writeFileSync } from 'node:fs';

const [base, pid, opEmail, opPassword] = process.argv.slice(2);
const MiB = 1 << 20;
const FILE = 64 * MiB;
const PARALLEL = 4;
const EXECS = 60;

async function call(method, path, { token, body } = {}) {
  const headers = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(base + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  if (res.status >= 300) throw new Error(`${method} ${path} answered ${res.status}: ${text.slice(0, 300)}`);
  return text ? JSON.parse(text) : null;
}

const login = async (email, password) => (await call('POST', '/api/auth/login', { body: { email, password } })).token;

async function running(token, id) {
  for (let i = 0; i < 600; i++) {
    const vps = await call('GET', `/api/vps/${id}`, { token });
    if (vps.state === 'running' && !vps.transition) return;
    if (vps.state === 'error') throw new Error(`machine ${id} failed: ${vps.reason ?? ''}`);
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`machine ${id} never ran`);
}

const status = () => readFileSync(`/proc/${pid}/status`, 'utf8');
const kb = (field) => Number(status().match(new RegExp(`${field}:\\s+(\\d+)`))[1]);
const mb = (k) => `${Math.round(k / 1024)} MB`;
// Writing 5 to clear_refs resets the peak resident size, so each phase shows its own peak.
const resetPeak = () => writeFileSync(`/proc/${pid}/clear_refs`, '5');

const quantile = (xs, q) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))];

async function upload(token, id, path, data) {
  const res = await fetch(`${base}/api/vps/${id}/files?path=${encodeURIComponent(path)}`, {
    method: 'PUT', headers: { authorization: `Bearer ${token}` }, body: data,
  });
  if (res.status !== 204) throw new Error(`upload ${path}: ${res.status} ${await res.text()}`);
}

async function download(token, id, path) {
  const res = await fetch(`${base}/api/vps/${id}/files?path=${encodeURIComponent(path)}`, {
    headers: { authorization: `Bearer ${token}` },
  });
  if (res.status !== 200) throw new Error(`download ${path}: ${res.status} ${await res.text()}`);
  let n = 0;
  for await (const chunk of res.body) n += chunk.length;
  if (n !== FILE) throw new Error(`download ${path}: ${n} bytes, not ${FILE}`);
}

async function filesRow(name, token, id, dir, data) {
  const paths = Array.from({ length: PARALLEL }, (_, i) => `${dir}/bench-${i}.bin`);
  const idle = kb('VmRSS');
  resetPeak();
  let t = performance.now();
  await Promise.all(paths.map((p) => upload(token, id, p, data)));
  const up = performance.now() - t;
  const upPeak = kb('VmHWM');
  resetPeak();
  t = performance.now();
  await Promise.all(paths.map((p) => download(token, id, p)));
  const down = performance.now() - t;
  const downPeak = kb('VmHWM');
  const rate = (ms) => `${Math.round((PARALLEL * FILE) / MiB / (ms / 1000))} MiB/s`;
  console.log(`| ${name}, 4 × 64 MiB up | ${mb(idle)} | ${mb(upPeak)} | ${rate(up)} |`);
  console.log(`| ${name}, 4 × 64 MiB down | ${mb(idle)} | ${mb(downPeak)} | ${rate(down)} |`);
}

const stamp = Date.now().toString(36);
const operator = await login(opEmail, opPassword);
const email = `bench-${stamp}@example.com`;
const password = `bench ${stamp} long passphrase`;
const me = await call('POST', '/api/auth/register', { body: { email, username: `bench_${stamp}`, password } });
await call('POST', `/api/admin/users/${me.id}/credit`, { token: operator, body: { amount: 50 } });
const token = await login(email, password);
const container = await call('POST', '/api/vps', { token, body: { name: `bench-c-${stamp}`, plan_id: 'c-micro' } });
const app = await call('POST', '/api/vps', { token, body: { name: `bench-a-${stamp}`, plan_id: 'c-micro', image: 'demo-game-server' } });
await running(token, container.id);
await running(token, app.id);

const times = [];
for (let i = 0; i < EXECS; i++) {
  const t = performance.now();
  const out = await call('POST', `/api/vps/${container.id}/exec`, { token, body: { command: 'true' } });
  times.push(performance.now() - t);
  if (out.exit_code !== 0) throw new Error(`exec: ${JSON.stringify(out)}`);
}
console.log();
console.log(`| exec \`true\` in a container, ${EXECS} in a row | median ${quantile(times, 0.5).toFixed(1)} ms | p90 ${quantile(times, 0.9).toFixed(1)} ms |`);

const data = Buffer.alloc(FILE, 0x5a);
console.log();
console.log('| files | idle RSS | peak RSS | throughput |');
console.log('|---|---|---|---|');
await filesRow('container', token, container.id, '/tmp', data);
await filesRow('app volume (node daemon)', token, app.id, '/home/container', data);
