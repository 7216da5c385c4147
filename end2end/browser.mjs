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
