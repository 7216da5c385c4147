// The end-to-end tests' stand-in for Stripe Checkout (Stripe cannot be reached from here). It
// speaks Stripe's wire format where Hangar talks to it: `POST /v1/checkout/sessions` (form-encoded,
// answers a session as JSON) and the signed `checkout.session.completed` webhook
// (`Stripe-Signature: t=...,v1=HMAC-SHA256(secret, "t.payload")`). Its pay page plays the customer.
//   PORT=... WEBHOOK_SECRET=whsec_... HANGAR_WEBHOOK_URL=http://.../api/billing/webhook node fake-stripe.mjs
import { createServer } from 'node:http';
import { createHmac } from 'node:crypto';

const port = Number(process.env.PORT ?? 12111);
const secret = process.env.WEBHOOK_SECRET ?? 'whsec_e2e';
const webhook = process.env.HANGAR_WEBHOOK_URL;
const sessions = new Map();

const read = (req) => new Promise((resolve) => { let b = ''; req.on('data', (c) => { b += c; }); req.on('end', () => resolve(b)); });
const now = () => Math.floor(Date.now() / 1000);

async function createSession(req, res) {
  const form = new URLSearchParams(await read(req));
  const id = `cs_test_${sessions.size + 1}_${Date.now().toString(36)}`;
  const amount = Number(form.get('line_items[0][price_data][unit_amount]')) * Number(form.get('line_items[0][quantity]') ?? 1);
  const metadata = {};
  for (const [k, v] of form) { const m = /^metadata\[(.+)\]$/.exec(k); if (m) metadata[m[1]] = v; }
  const session = {
    id, object: 'checkout.session', automatic_tax: { enabled: false }, created: now(), custom_fields: [],
    custom_text: {}, expires_at: now() + 86400, livemode: false, mode: form.get('mode'), payment_method_types: ['card'],
    payment_status: 'unpaid', shipping_options: [], status: 'open', currency: 'usd', amount_total: amount,
    amount_subtotal: amount, client_reference_id: form.get('client_reference_id'), customer_email: form.get('customer_email'),
    metadata, success_url: form.get('success_url'), cancel_url: form.get('cancel_url'),
    url: `http://127.0.0.1:${port}/pay/${id}`,
  };
  sessions.set(id, session);
  res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify(session));
}

function payPage(res, s) {
  res.writeHead(200, { 'Content-Type': 'text/html' }).end(`<!doctype html><title>Fake Checkout</title>
    <h1>Fake Stripe Checkout</h1><p data-test="fake-amount">$${(s.amount_total / 100).toFixed(2)} USD for ${s.customer_email}</p>
    <form method="post"><button data-test="fake-pay">Pay</button></form>
    <a data-test="fake-cancel" href="${s.cancel_url}">Cancel</a>`);
}

async function pay(res, s) {
  const paid = { ...s, payment_status: 'paid', status: 'complete' };
  sessions.set(s.id, paid);
  const payload = JSON.stringify({
    id: `evt_${s.id}`, object: 'event', api_version: '2026-09-30.endive', created: now(), data: { object: paid },
    livemode: false, pending_webhooks: 1, request: { id: null, idempotency_key: null }, type: 'checkout.session.completed',
  });
  const t = now();
  const v1 = createHmac('sha256', secret).update(`${t}.${payload}`).digest('hex');
  const answer = await fetch(webhook, { method: 'POST', headers: { 'Content-Type': 'application/json', 'Stripe-Signature': `t=${t},v1=${v1}` }, body: payload });
  if (!answer.ok) console.error('webhook refused', answer.status, await answer.text());
  res.writeHead(303, { Location: s.success_url.replace('{CHECKOUT_SESSION_ID}', s.id) }).end();
}

createServer(async (req, res) => {
  const url = new URL(req.url, `http://127.0.0.1:${port}`);
  const m = /^\/pay\/(.+)$/.exec(url.pathname);
  if (req.method === 'POST' && url.pathname === '/v1/checkout/sessions') return createSession(req, res);
  if (m && sessions.has(m[1])) return req.method === 'POST' ? pay(res, sessions.get(m[1])) : payPage(res, sessions.get(m[1]));
  res.writeHead(404, { 'Content-Type': 'application/json' }).end('{"error":{"message":"not found"}}');
}).listen(port, '127.0.0.1', () => console.log(`fake stripe on ${port}`));
