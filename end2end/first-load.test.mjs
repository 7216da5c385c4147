// A first visit downloads the code of the page it lands on, not the whole portal: each group of
// pages is a WASM module of its own (plus chunks it shares with other groups, `app::lazy_pages!`),
// all of them in one file per group (`pack_<group>.bin`), preloaded by the page's HTML and kept by
// the browser for good; another page's code comes when that page is opened.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { launch, hydrated, BASE } from './browser.mjs';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

test('a first visit loads the page it lands on; other pages load as they are opened', async () => {
  const context = await browser.newContext({ viewport: { width: 1366, height: 900 } });
  const page = await context.newPage();
  const files = [];
  page.on('response', (res) => {
    const url = new URL(res.url());
    if (url.pathname.startsWith('/pkg/') && /\.(wasm|bin)$/.test(url.pathname)) {
      files.push({ name: url.pathname.split('/').pop(), dir: url.pathname.split('/')[2], cache: res.headers()['cache-control'] });
    }
  });
  const fetched = (group) => files.some((m) => m.name === `pack_${group}.bin`);

  await page.goto(`${BASE}/marketplace`);
  await hydrated(page);
  assert.ok(files.some((m) => m.name === 'hangar_bg.wasm'), 'the main module');
  assert.ok(fetched('marketplace'), `the marketplace's own pack (${files.map((m) => m.name)})`);
  assert.deepEqual(files.map((m) => m.name).sort(), ['hangar_bg.wasm', 'pack_marketplace.bin'], 'two downloads: no module fetched on its own');
  for (const other of ['operator', 'billing', 'machine', 'visitor']) {
    assert.ok(!fetched(other), `${other} is not downloaded on the marketplace`);
  }
  for (const m of files) {
    assert.match(m.cache ?? '', /immutable/, `${m.name} is kept for good`);
  }
  // Less than the whole portal: the build's manifest lists every page's modules.
  const dir = files[0].dir;
  const manifest = await (await fetch(`${BASE}/pkg/${dir}/packs.json`)).json();
  const all = new Set(Object.values(manifest).flat());
  assert.ok(manifest.marketplace.length < all.size / 2, `${manifest.marketplace.length} of ${all.size} page modules on a first visit`);

  // A link to another page loads that page's code in the browser and shows it.
  const before = files.length;
  await page.click('a[href="/signin"]');
  await page.waitForURL(`${BASE}/signin`);
  await page.locator('[data-test=sign-in-form]').waitFor({ timeout: 15_000 });
  assert.ok(fetched('visitor'), 'the sign-in page\'s pack, fetched when opened');
  assert.ok(files.length > before);
  assert.equal(await page.evaluate(() => performance.getEntriesByType('navigation').length), 1, 'no full reload');
  await context.close();
});
