// Shared Playwright set-up: Debian's Chromium with flags that work as root on a closed network.
import { chromium } from 'playwright-core';

export const BASE = process.env.HANGAR_E2E_URL ?? 'http://127.0.0.1:3000';
export const ARTIFACTS = new URL('./artifacts/', import.meta.url).pathname;

export async function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
    // Playwright gives every launch its own fresh, temporary profile directory.
  });
}

/** Waits until the WASM bundle has hydrated the page (the hydration script flips this). */
export async function hydrated(page) {
  const problems = [];
  const onError = (e) => problems.push(`pageerror: ${e.message}`);
  const onConsole = (m) => { if (m.type() === 'error') problems.push(`console: ${m.text()}`); };
  page.on('pageerror', onError);
  page.on('console', onConsole);
  try {
    await page.waitForFunction(() => window.__hangarHydrated === true, null, { timeout: 30_000 });
  } catch (e) {
    throw new Error(`page ${page.url()} did not hydrate: ${problems.join(' | ') || e.message}`);
  } finally {
    page.off('pageerror', onError);
    page.off('console', onConsole);
  }
}

export function uniqueName(prefix) {
  return `${prefix}_${Date.now().toString(36)}${Math.floor(Math.random() * 1e4)}`;
}

/** A JSON API call: `{status, body}`; `method` defaults to POST when there is a body, else GET. */
export async function api(path, token, body, method) {
  const res = await fetch(`${BASE}${path}`, {
    method: method ?? (body === undefined ? 'GET' : 'POST'),
    headers: { 'Content-Type': 'application/json', ...(token ? { Authorization: `Bearer ${token}` } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: await res.json().catch(() => null) };
}

/**
 * Waits (through the API) until machine `id` runs. Tests that open a new machine's page wait
 * first: starting a container adds network interfaces on this host, and Chromium fails every
 * request in flight when the host's interfaces change (`ERR_NETWORK_CHANGED`), which would
 * sometimes cost the page a script. Users' browsers are not on the host.
 */
export async function untilRunning(id, token) {
  for (let i = 0; i < 120; i++) {
    const vps = await api(`/api/vps/${id}`, token);
    if (vps.body?.state === 'running') return;
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`machine ${id} did not start within a minute`);
}

/** A new customer with `usd` of credit from the e2e operator: `{email, password, token}`. */
export async function fundedCustomer(prefix, usd) {
  const username = uniqueName(prefix);
  const email = `${username}@example.com`;
  const password = `${prefix}-password-1`;
  const reg = await api('/api/auth/register', null, { email, username, password });
  if (reg.status !== 201) throw new Error(`register: ${reg.status} ${JSON.stringify(reg.body)}`);
  const op = await api('/api/auth/login', null, {
    email: process.env.HANGAR_E2E_ADMIN_EMAIL, password: process.env.HANGAR_E2E_ADMIN_PASSWORD,
  });
  const credit = await api(`/api/admin/users/${reg.body.id}/credit`, op.body.token, { amount: usd, confirm: true });
  if (credit.status !== 200) throw new Error(`credit: ${credit.status}`);
  const login = await api('/api/auth/login', null, { email, password });
  return { email, password, token: login.body.token };
}

/** Signs `page` in through the form, as a person would. */
export async function signIn(page, email, password) {
  await page.goto(`${BASE}/signin`);
  await hydrated(page);
  await page.fill('input[name=email]', email);
  await page.fill('input[name=password]', password);
  await page.click('[data-test=sign-in-form] button[type=submit]');
  // Operators land on their own page.
  await page.waitForURL(/\/(operator)?$/);
}
