// First load of a page in Chromium with an empty cache: `node end2end/bench-first-load.mjs
// [PATH] [RUNS]` against HANGAR_E2E_URL (default /marketplace, 10 runs). Each run is a new
// browser context (no cache, no cookies); it reports the bytes the page transferred, the time to
// the HTML's first paint and to hydrated (the WASM loaded, compiled and run over the page), and
// the median of each. A benchmark, not a test: the figures go to docs/BENCHMARKS.md.
// HANGAR_BENCH_NET="RTT_MS,MBIT" has Chromium emulate a network link (round-trip time, download
// and upload speed) instead of loopback, e.g. "40,20" for a good mobile or DSL line.
// HANGAR_BENCH_LOGIN="EMAIL:PASSWORD" signs in first and gives each run the session cookie, for
// pages behind sign-in; HANGAR_BENCH_READY="SELECTOR" also reports when
// that element shows (a card drawn after hydration, say).
import { launch, BASE, signIn } from './browser.mjs';

const path = process.argv[2] ?? '/marketplace';
const runs = Number(process.argv[3] ?? 10);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const browser = await launch();
const rows = [];
// Signed in once, in a context of its own: each run starts from a new context (an empty cache)
// holding only the session cookie.
let cookies = null;
if (process.env.HANGAR_BENCH_LOGIN) {
  const [email, password] = process.env.HANGAR_BENCH_LOGIN.split(':');
  const login = await browser.newContext();
  await signIn(await login.newPage(), email, password);
  cookies = await login.cookies();
  await login.close();
}
for (let i = 0; i < runs; i++) {
  // Self-signed certificates are fine: the benchmark may go through a local TLS proxy (HTTP/2).
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  const page = await context.newPage();
  if (cookies) await context.addCookies(cookies);
  if (process.env.HANGAR_BENCH_NET) {
    const [rtt, mbit] = process.env.HANGAR_BENCH_NET.split(',').map(Number);
    const cdp = await context.newCDPSession(page);
    await cdp.send('Network.enable');
    await cdp.send('Network.emulateNetworkConditions', {
      offline: false, latency: rtt, downloadThroughput: (mbit * 1e6) / 8, uploadThroughput: (mbit * 1e6) / 8,
    });
  }
  let bytes = 0;
  page.on('response', async (res) => {
    const length = Number((await res.allHeaders())['content-length'] ?? 0);
    bytes += length;
  });
  await page.goto(`${BASE}${path}`, { waitUntil: 'commit' });
  await page.waitForFunction(() => window.__hangarHydrated === true, null, { timeout: 60_000 });
  const [paint, hydrated] = await page.evaluate(() => [
    performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? NaN,
    performance.now(),
  ]);
  let ready = NaN;
  if (process.env.HANGAR_BENCH_READY) {
    await page.locator(process.env.HANGAR_BENCH_READY).first().waitFor({ timeout: 60_000 });
    ready = await page.evaluate(() => performance.now());
  }
  rows.push({ paint, hydrated, ready, bytes });
  console.log(`run ${i + 1}: first paint ${paint.toFixed(0)} ms, hydrated ${hydrated.toFixed(0)} ms, ` +
    `${Number.isNaN(ready) ? '' : `ready ${ready.toFixed(0)} ms, `}${bytes} bytes`);
  await context.close();
}
await browser.close();
console.log(
  `median of ${runs}: first paint ${median(rows.map((r) => r.paint)).toFixed(0)} ms, ` +
  `hydrated ${median(rows.map((r) => r.hydrated)).toFixed(0)} ms, ` +
  (process.env.HANGAR_BENCH_READY ? `ready ${median(rows.map((r) => r.ready)).toFixed(0)} ms, ` : '') +
  `${median(rows.map((r) => r.bytes))} bytes transferred`,
);
