// Two-factor sign-in as a person sets it up: the Account page shows a QR code and the key, a code
// from the "authenticator app" (computed here, RFC 6238) turns it on and shows recovery codes once;
// signing in again asks for a code after the password, and a recovery code works in its place.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { launch, hydrated, BASE, ARTIFACTS, fundedCustomer, signIn } from './browser.mjs';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

/** What an authenticator app holding `base32` shows `stepOffset` 30-second steps from now. */
function totp(base32, stepOffset = 0) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const c of base32.replace(/=+$/, '')) bits += alphabet.indexOf(c).toString(2).padStart(5, '0');
  const key = Buffer.from(bits.match(/.{8}/g).map((b) => parseInt(b, 2)));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(Date.now() / 30_000) + stepOffset));
  const mac = createHmac('sha1', key).update(counter).digest();
  const offset = mac[19] & 0x0f;
  return String((mac.readUInt32BE(offset) & 0x7fffffff) % 1_000_000).padStart(6, '0');
}

test('turn on two-factor sign-in, then sign in with a code and with a recovery code', async () => {
  const { email, password } = await fundedCustomer('twofa', 1);
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  await signIn(page, email, password);

  await page.goto(`${BASE}/account`);
  await hydrated(page);
  await page.getByText('Off. With it on').waitFor();
  await page.click('[data-test=two-factor-setup] button[type=submit]');
  const secret = (await page.textContent('[data-test=two-factor-secret]')).trim();
  assert.match(secret, /^[A-Z2-7]{32}$/);
  assert.ok(await page.locator('.enrol .qr svg').isVisible(), 'the QR code is drawn');
  await page.setViewportSize({ width: 390, height: 844 });
  await page.screenshot({ path: `${ARTIFACTS}two-factor-setup-phone.png`, fullPage: true });
  await page.setViewportSize({ width: 1280, height: 800 });
  await page.fill('[data-test=two-factor-enable] input[name=code]', totp(secret));
  await page.click('[data-test=two-factor-enable] button[type=submit]');
  await page.locator('[data-test=recovery-codes]').waitFor();
  const codes = await page.locator('[data-test=recovery-codes] li').allTextContents();
  assert.equal(codes.length, 10);
  assert.match(await page.textContent('[data-test=two-factor-on]'), /On\.[\s\S]*10 recovery codes left/);

  // A new sign-in: the password alone brings up the code field.
  await page.click('[data-test=sign-out]');
  await page.waitForURL(`${BASE}/signin`);
  await hydrated(page);
  await page.fill('input[name=email]', email);
  await page.fill('input[name=password]', password);
  await page.click('[data-test=sign-in-form] button[type=submit]');
  await page.getByText('Enter the 6-digit code from your authenticator app').waitFor();
  // The code used to turn it on was spent; the next step's is accepted.
  await page.fill('[data-test=sign-in-code]', totp(secret, 1));
  await page.click('[data-test=sign-in-form] button[type=submit]');
  await page.waitForURL(`${BASE}/`);

  // A recovery code in place of the app, once.
  await page.click('[data-test=sign-out]');
  await page.waitForURL(`${BASE}/signin`);
  await hydrated(page);
  await page.fill('input[name=email]', email);
  await page.fill('input[name=password]', password);
  await page.click('[data-test=sign-in-form] button[type=submit]');
  await page.locator('[data-test=sign-in-code]').waitFor();
  // A phone offers its full keyboard there: recovery codes have letters.
  assert.notEqual(await page.getAttribute('[data-test=sign-in-code]', 'inputmode'), 'numeric');
  await page.fill('[data-test=sign-in-code]', codes[0]);
  await page.click('[data-test=sign-in-form] button[type=submit]');
  await page.waitForURL(`${BASE}/`);
  await page.goto(`${BASE}/account`);
  await hydrated(page);
  assert.match(await page.textContent('[data-test=two-factor-on]'), /9 recovery codes left/);
  await context.close();
});
