// First load of a page in Chromium with an empty cache: `node end2end/bench-first-load.mjs
// [PATH] [RUNS]` against HANGAR_E2E_URL (default /marketplace, 10 runs). Each run is a new
// browser context (no cache, no cookies); it reports the bytes the page transferred, the time to
// the HTML's first paint and to hydrated (the WASM loaded, compiled and run over the page), and
// the median of each. A benchmark, not a test: the figures go to docs/BENCHMARKS.md.
// HANGAR_BENCH_NET="RTT_MS,MBIT" has Chromium emulate a network link (round-trip time, download
// and upload speed) instead of loopback, e.g. "40,20" for a good mobile or DSL line.
import { launch, BASE } from './browser.mjs';

const path = process.argv[2] ?? '/marketplace';
const runs = Number(process.argv[3] ?? 10);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const browser = await launch();
const rows = [];
for (let i = 0; i < runs; i++) {
  // Self-signed certificates are fine: the benchmark may go through a local TLS proxy (HTTP/2).
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  const page = await context.newPage();
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
  rows.push({ paint, hydrated, bytes });
  console.log(`run ${i + 1}: first paint ${paint.toFixed(0)} ms, hydrated ${hydrated.toFixed(0)} ms, ${bytes} bytes`);
  await context.close();
}
await browser.close();
console.log(
  `median of ${runs}: first paint ${median(rows.map((r) => r.paint)).toFixed(0)} ms, ` +
  `hydrated ${median(rows.map((r) => r.hydrated)).toFixed(0)} ms, ` +
  `${median(rows.map((r) => r.bytes))} bytes transferred`,
);
