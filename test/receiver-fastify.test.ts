// The Fastify plugin (via app.inject) and the example receiver (over real HTTP): a verified
// request reaches the handler with request.webhook set; anything else is answered before it.
import { afterEach, describe, expect, it } from 'vitest';
import Fastify, { type FastifyInstance } from 'fastify';
import { generateSecret, generateSigningSecret, signatureHeader, verificationKey } from '../src/signing';
import { webhookReceiver, type VerifiedWebhook, type WebhookReceiverOptions } from '../src/receiver';
import { startExampleReceiver } from '../src/receiver/example';

const secret = generateSecret();

function signedRequest(body: string, secrets: string[] = [secret], id = 'evt_01TEST') {
  const ts = Math.floor(Date.now() / 1000);
  return {
    body,
    headers: {
      'content-type': 'application/json',
      'webhook-id': id,
      'webhook-timestamp': String(ts),
      'webhook-signature': signatureHeader(secrets, id, ts, body),
    },
  };
}

const envelope = (type = 'invoice.paid') =>
  // deliberately not JSON.stringify's spacing: the signature must cover the bytes as sent
  `{"id": "evt_01TEST", "type": "${type}", "timestamp": "2026-11-29T10:00:00.000Z", "data": {"amount": 42}}`;

interface Seen {
  webhook: VerifiedWebhook;
  body: unknown;
}

async function buildApp(options: WebhookReceiverOptions = { secrets: secret }) {
  const seen: Seen[] = [];
  const app = Fastify();
  // outside the webhook scope: ordinary JSON parsing, no signature needed
  app.post('/plain', async (request) => ({ echoed: request.body }));
  app.register(async (hooks) => {
    // route declared before the plugin: still protected (hooks bind to the scope at ready)
    hooks.post('/early', async (request) => {
      seen.push({ webhook: request.webhook, body: request.body });
      return { ok: true };
    });
    await hooks.register(webhookReceiver, options);
    hooks.post('/webhooks', async (request) => {
      seen.push({ webhook: request.webhook, body: request.body });
      return { ok: true };
    });
  });
  await app.ready();
  return { app, seen };
}

let app: FastifyInstance | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

describe('webhookReceiver plugin', () => {
  it('valid request: the handler runs with the verified event on request.webhook and request.body', async () => {
    const built = await buildApp();
    app = built.app;
    const req = signedRequest(envelope());
    const res = await app.inject({ method: 'POST', url: '/webhooks', ...req });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ ok: true });
    expect(built.seen).toHaveLength(1);
    expect(built.seen[0].webhook.id).toBe('evt_01TEST');
    expect(built.seen[0].webhook.timestamp).toBe(Number(req.headers['webhook-timestamp']));
    expect(built.seen[0].webhook.payload).toMatchObject({ type: 'invoice.paid', data: { amount: 42 } });
    expect(built.seen[0].body).toEqual(built.seen[0].webhook.payload);
  });

  it('tampered body: 401 invalid_signature and the handler never runs', async () => {
    const built = await buildApp();
    app = built.app;
    const req = signedRequest(envelope());
    const res = await app.inject({ method: 'POST', url: '/webhooks', headers: req.headers, body: envelope('invoice.refunded') });
    expect(res.statusCode).toBe(401);
    expect(res.json()).toMatchObject({ code: 'invalid_signature', reason: 'no_matching_signature' });
    expect(built.seen).toHaveLength(0);
  });

  it('missing headers: 401 missing_header, also on a route declared before the plugin', async () => {
    const built = await buildApp();
    app = built.app;
    for (const url of ['/webhooks', '/early']) {
      const res = await app.inject({ method: 'POST', url, headers: { 'content-type': 'application/json' }, body: envelope() });
      expect(res.statusCode, url).toBe(401);
      expect(res.json()).toMatchObject({ code: 'invalid_signature', reason: 'missing_header' });
    }
    expect(built.seen).toHaveLength(0);
  });

  it('stale timestamp: 401 too_old (clock from the options)', async () => {
    const built = await buildApp({ secrets: secret, now: () => Date.now() + 301_000 });
    app = built.app;
    const res = await app.inject({ method: 'POST', url: '/webhooks', ...signedRequest(envelope()) });
    expect(res.statusCode).toBe(401);
    expect(res.json().reason).toBe('too_old');
    expect(built.seen).toHaveLength(0);
  });

  it('verifies whatever the content type says (the signature covers bytes)', async () => {
    const built = await buildApp();
    app = built.app;
    const req = signedRequest(envelope());
    const res = await app.inject({
      method: 'POST',
      url: '/webhooks',
      body: req.body,
      headers: { ...req.headers, 'content-type': 'text/plain; charset=utf-8' },
    });
    expect(res.statusCode).toBe(200);
    expect(built.seen).toHaveLength(1);
  });

  it('correctly signed non-JSON body: 400 invalid_payload, handler not run', async () => {
    const built = await buildApp();
    app = built.app;
    const res = await app.inject({ method: 'POST', url: '/webhooks', ...signedRequest('<xml/>') });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ code: 'invalid_payload', reason: 'bad_payload' });
    expect(built.seen).toHaveLength(0);
  });

  it('rotation: signed with the new secret only, verified by a receiver holding old and new', async () => {
    const next = generateSecret();
    const built = await buildApp({ secrets: [secret, next] });
    app = built.app;
    const res = await app.inject({ method: 'POST', url: '/webhooks', ...signedRequest(envelope(), [next]) });
    expect(res.statusCode).toBe(200);
    expect(built.seen).toHaveLength(1);
  });

  it('ed25519: v1a verified with a whpk_ key, v1 and v1a mixed, a stranger key refused', async () => {
    const sk = generateSigningSecret('ed25519');
    const built = await buildApp({ secrets: [secret, verificationKey(sk)] });
    app = built.app;
    for (const signers of [[sk], [secret, sk]]) {
      const res = await app.inject({ method: 'POST', url: '/webhooks', ...signedRequest(envelope(), signers) });
      expect(res.statusCode).toBe(200);
    }
    const stranger = await app.inject({ method: 'POST', url: '/webhooks', ...signedRequest(envelope(), [generateSigningSecret('ed25519')]) });
    expect(stranger.statusCode).toBe(401);
    expect(stranger.json()).toMatchObject({ code: 'invalid_signature', reason: 'no_matching_signature' });
    expect(built.seen).toHaveLength(2);
  });

  it('leaves routes outside its scope alone', async () => {
    const built = await buildApp();
    app = built.app;
    const res = await app.inject({ method: 'POST', url: '/plain', payload: { a: 1 } });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ echoed: { a: 1 } });
  });

  it('refuses to start with an unusable secret', async () => {
    const bad = Fastify();
    bad.register(async (hooks) => {
      await hooks.register(webhookReceiver, { secrets: [] });
    });
    await expect(bad.ready()).rejects.toThrow(/at least one secret/);
    await bad.close();
    // The private key on a receiver is a configuration mistake, named as such.
    const leaked = Fastify();
    leaked.register(async (hooks) => {
      await hooks.register(webhookReceiver, { secrets: generateSigningSecret('ed25519') });
    });
    await expect(leaked.ready()).rejects.toThrow(/whsk_ private key/);
    await leaked.close();
  });
});

describe('example receiver (real HTTP)', () => {
  it('answers 200 and prints verified events, 401 and prints the reason otherwise', async () => {
    const lines: string[] = [];
    const receiver = await startExampleReceiver({ secret, port: 0, log: (l) => lines.push(l) });
    try {
      expect(receiver.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
      const req = signedRequest(envelope());
      const target = new URL('hooks/any/path', receiver.url);

      const ok = await fetch(target, { method: 'POST', headers: req.headers, body: req.body });
      expect(ok.status).toBe(200);
      const again = await fetch(receiver.url, { method: 'POST', headers: req.headers, body: req.body });
      expect(again.status).toBe(200);
      const bad = await fetch(target, { method: 'POST', headers: req.headers, body: envelope('invoice.voided') });
      expect(bad.status).toBe(401);
      expect(await bad.json()).toMatchObject({ code: 'invalid_signature', reason: 'no_matching_signature' });

      expect(lines).toEqual([
        'received evt_01TEST invoice.paid',
        'received evt_01TEST invoice.paid (redelivery)',
        'rejected POST /hooks/any/path: no_matching_signature',
      ]);
    } finally {
      await receiver.close();
    }
  });
});
