// Asymmetric signatures (Standard Webhooks v1a, ed25519): checked against the spec with Node's
// crypto alone, with the receiver kit, mixed with v1 during a scheme change, through a rotation
// on the real stack, and kept out of Postgres (plaintext) and Temporal history.
import { createPublicKey, verify as cryptoVerify } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Webhook as StandardWebhook } from 'standardwebhooks';
import { Keyring } from '../src/crypto';
import { verifyWebhook, WebhookVerificationError, type VerifyWebhookInput } from '../src/receiver';
import { generateSigningSecret, signatureHeader, verificationKey } from '../src/signing';
import {
  createEndpoint, createHarness, FAST_RETRY, sendEvent, startReceiver, startVerifyingReceiver, TEST_ENCRYPTION_KEY, waitFor,
  workflowHistoryText,
  type Harness, type ReceivedRequest, type Receiver,
} from './helpers';

/**
 * The spec's description, with nothing from Hookline: `whpk_` + base64 of the raw 32-byte
 * public key; `webhook-signature` holds space-separated `v1a,<base64 ed25519 signature>` of
 * `{webhook-id}.{webhook-timestamp}.{body}`. True when any v1a entry verifies.
 */
function specVerifiesV1a(publicKey: string, headers: Record<string, unknown>, body: string): boolean {
  expect(publicKey.startsWith('whpk_')).toBe(true);
  const raw = Buffer.from(publicKey.slice('whpk_'.length), 'base64');
  expect(raw).toHaveLength(32);
  const key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: raw.toString('base64url') }, format: 'jwk' });
  const content = Buffer.from(`${headers['webhook-id']}.${headers['webhook-timestamp']}.${body}`);
  return String(headers['webhook-signature'])
    .split(' ')
    .filter((s) => s.startsWith('v1a,'))
    .some((s) => cryptoVerify(null, content, key, Buffer.from(s.slice(4), 'base64')));
}

const versions = (req: ReceivedRequest) => String(req.headers['webhook-signature']).split(' ').map((s) => s.split(',')[0]);

function signed(secrets: string[], body = '{"type":"x"}', id = 'evt_1', ts = Math.floor(Date.now() / 1000)) {
  return { headers: { 'webhook-id': id, 'webhook-timestamp': String(ts), 'webhook-signature': signatureHeader(secrets, id, ts, body) }, rawBody: body };
}

const reason = (input: VerifyWebhookInput) => {
  try {
    verifyWebhook(input);
  } catch (err) {
    expect(err).toBeInstanceOf(WebhookVerificationError);
    return (err as WebhookVerificationError).reason;
  }
  return 'verified';
};

describe('v1a signing and verification (pure)', () => {
  const sk = generateSigningSecret('ed25519');
  const pk = verificationKey(sk);

  it('issues whsk_ private keys and whpk_ public keys of the sizes the spec implies', () => {
    expect(sk).toMatch(/^whsk_[A-Za-z0-9+/]+={0,2}$/);
    expect(pk).toMatch(/^whpk_[A-Za-z0-9+/]+={0,2}$/);
    expect(Buffer.from(pk.slice(5), 'base64')).toHaveLength(32);
    expect(generateSigningSecret('ed25519')).not.toBe(sk);
    const req = signed([sk]);
    expect(req.headers['webhook-signature']).toMatch(/^v1a,[A-Za-z0-9+/]{86}==$/); // 64 bytes
    expect(specVerifiesV1a(pk, req.headers, req.rawBody)).toBe(true);
    expect(specVerifiesV1a(pk, req.headers, req.rawBody + ' ')).toBe(false);
  });

  it('the kit verifies v1a with the whpk_ key and rejects another key, a changed body or id', () => {
    const req = signed([sk]);
    expect(verifyWebhook({ ...req, secrets: pk }).id).toBe('evt_1');
    expect(reason({ ...req, secrets: verificationKey(generateSigningSecret('ed25519')) })).toBe('no_matching_signature');
    expect(reason({ ...req, rawBody: '{"type":"y"}', secrets: pk })).toBe('no_matching_signature');
    expect(reason({ ...req, headers: { ...req.headers, 'webhook-id': 'evt_2' }, secrets: pk })).toBe('no_matching_signature');
    // A v1a signature relabelled v1 is not accepted as HMAC, nor a v1 one as v1a.
    const relabelled = { ...req.headers, 'webhook-signature': req.headers['webhook-signature'].replace(/^v1a,/, 'v1,') };
    expect(reason({ ...req, headers: relabelled, secrets: pk })).toBe('no_matching_signature');
  });

  it('a v1 and a v1a on the same request each verify with their own key only', () => {
    const hmac = generateSigningSecret('hmac');
    const req = signed([hmac, sk]);
    expect(req.headers['webhook-signature'].split(' ').map((s) => s.split(',')[0])).toEqual(['v1', 'v1a']);
    expect(verifyWebhook({ ...req, secrets: hmac }).id).toBe('evt_1');
    expect(verifyWebhook({ ...req, secrets: pk }).id).toBe('evt_1');
    expect(verifyWebhook({ ...req, secrets: [pk, hmac] }).id).toBe('evt_1');
    // Break one signature: the other key still verifies, the broken one's key no longer does.
    const [v1, v1a] = req.headers['webhook-signature'].split(' ');
    const brokenV1a = { ...req.headers, 'webhook-signature': `${v1} v1a,${Buffer.alloc(64, 1).toString('base64')}` };
    expect(reason({ ...req, headers: brokenV1a, secrets: pk })).toBe('no_matching_signature');
    expect(verifyWebhook({ ...req, headers: brokenV1a, secrets: hmac }).id).toBe('evt_1');
    const brokenV1 = { ...req.headers, 'webhook-signature': `v1,${Buffer.alloc(32).toString('base64')} ${v1a}` };
    expect(reason({ ...req, headers: brokenV1, secrets: hmac })).toBe('no_matching_signature');
    expect(verifyWebhook({ ...req, headers: brokenV1, secrets: pk }).id).toBe('evt_1');
    // Receivers on the standardwebhooks library (v1 only) skip the v1a entry and still verify.
    expect(() => new StandardWebhook(hmac).verify(req.rawBody, req.headers)).not.toThrow();
  });

  it('refuses a private key or a malformed public key as receiver configuration', () => {
    const req = signed([sk]);
    expect(() => verifyWebhook({ ...req, secrets: sk })).toThrow(/whsk_ private key/);
    expect(() => verifyWebhook({ ...req, secrets: 'whpk_' + Buffer.alloc(31).toString('base64') })).toThrow(TypeError);
    expect(() => verifyWebhook({ ...req, secrets: 'whpk_not base64!' })).toThrow(TypeError);
  });
});

describe('ed25519 endpoints on the real stack', () => {
  let h: Harness;
  const receivers: Receiver[] = [];

  beforeAll(async () => {
    h = await createHarness();
  });
  afterAll(async () => {
    for (const r of receivers) await r.close();
    await h?.close();
  });

  /** Sends one event of `type` and returns the request that was delivered (2xx) for it. */
  async function deliver(rx: Receiver, type: string, endpointId: string): Promise<ReceivedRequest> {
    const ev = await sendEvent(h.app, { type, data: { at: Date.now() } });
    await waitFor(async () => {
      const res = await h.app.inject({ method: 'GET', url: `/v1/events/${ev.id}` });
      return res.json().deliveries?.find((d: any) => d.endpointId === endpointId)?.status === 'delivered';
    }, 30_000, `${ev.id} delivered`);
    return rx.requests.filter((r) => r.headers['webhook-id'] === ev.id).at(-1)!;
  }

  const rotate = async (id: string, payload: Record<string, unknown>) => {
    const res = await h.app.inject({ method: 'POST', url: `/v1/endpoints/${id}/secret/rotate`, payload });
    expect(res.statusCode).toBe(200);
    return res.json() as { secret: string; signing: string };
  };

  it('creates an ed25519 endpoint whose deliveries verify per the spec and with the kit', async () => {
    let keys: string[] = [];
    const rx = await startVerifyingReceiver(() => keys);
    receivers.push(rx);
    const res = await h.app.inject({ method: 'POST', url: '/v1/endpoints', payload: { url: rx.url, eventTypes: ['ed.plain'], signing: 'ed25519', retry: FAST_RETRY } });
    expect(res.statusCode).toBe(201);
    const ep = res.json();
    expect(ep.signing).toBe('ed25519');
    expect(ep.secret).toMatch(/^whpk_/);
    keys = [ep.secret];
    const req = await deliver(rx, 'ed.plain', ep.id);
    expect(versions(req)).toEqual(['v1a']);
    expect(specVerifiesV1a(ep.secret, req.headers, req.body)).toBe(true);
    expect(verifyWebhook({ headers: req.headers, rawBody: req.body, secrets: ep.secret }).id).toBe(req.headers['webhook-id']);
    const read = await h.app.inject({ method: 'GET', url: `/v1/endpoints/${ep.id}` });
    expect(read.json().signing).toBe('ed25519');
  });

  it('rotates from one key pair to another with both v1a signatures during the overlap', async () => {
    let keys: string[] = [];
    const rx = await startVerifyingReceiver(() => keys);
    receivers.push(rx);
    const ep = await createEndpoint(h.app, { url: rx.url, eventTypes: ['ed.rotate'], signing: 'ed25519', retry: FAST_RETRY });
    const oldKey = ep.secret;
    keys = [oldKey];
    await deliver(rx, 'ed.rotate', ep.id);

    const rotated = await rotate(ep.id, { expireOldAfter: '1 hour' });
    expect(rotated.signing).toBe('ed25519');
    const newKey = rotated.secret;
    expect(newKey).toMatch(/^whpk_/);
    expect(newKey).not.toBe(oldKey);

    // The receiver still holds only the old key: the delivery verifies, and the new key alone too.
    const overlap = await deliver(rx, 'ed.rotate', ep.id);
    expect(versions(overlap)).toEqual(['v1a', 'v1a']);
    for (const key of [oldKey, newKey]) {
      expect(specVerifiesV1a(key, overlap.headers, overlap.body)).toBe(true);
      expect(() => verifyWebhook({ headers: overlap.headers, rawBody: overlap.body, secrets: key })).not.toThrow();
    }

    // Expire the old pair at once: only the newest signs, the old public key verifies nothing.
    keys = [newKey];
    const newest = (await rotate(ep.id, { expireOldAfter: 0 })).secret;
    keys = [newest];
    const after = await deliver(rx, 'ed.rotate', ep.id);
    expect(versions(after)).toEqual(['v1a']);
    expect(specVerifiesV1a(newest, after.headers, after.body)).toBe(true);
    expect(specVerifiesV1a(oldKey, after.headers, after.body)).toBe(false);
    expect(() => verifyWebhook({ headers: after.headers, rawBody: after.body, secrets: [oldKey, newKey] })).toThrow();
  });

  it('switches an endpoint from hmac to ed25519 by a rotation: v1 and v1a on the same request', async () => {
    let keys: string[] = [];
    const rx = await startVerifyingReceiver(() => keys);
    receivers.push(rx);
    const ep = await createEndpoint(h.app, { url: rx.url, eventTypes: ['ed.switch'], retry: FAST_RETRY });
    expect(ep.secret).toMatch(/^whsec_/);
    const hmac = ep.secret;
    keys = [hmac];

    const switched = await rotate(ep.id, { signing: 'ed25519', expireOldAfter: '1 hour' });
    expect(switched.signing).toBe('ed25519');
    const pk = switched.secret;
    // A receiver mid-migration holds both; each signature verifies with its own key.
    keys = [hmac, pk];
    const mixed = await deliver(rx, 'ed.switch', ep.id);
    expect(versions(mixed)).toEqual(['v1a', 'v1']);
    expect(() => verifyWebhook({ headers: mixed.headers, rawBody: mixed.body, secrets: hmac })).not.toThrow();
    expect(() => verifyWebhook({ headers: mixed.headers, rawBody: mixed.body, secrets: pk })).not.toThrow();
    expect(specVerifiesV1a(pk, mixed.headers, mixed.body)).toBe(true);
    expect(() => new StandardWebhook(hmac).verify(mixed.body, mixed.headers as Record<string, string>)).not.toThrow();
    const read = await h.app.inject({ method: 'GET', url: `/v1/endpoints/${ep.id}` });
    expect(read.json().signing).toBe('ed25519');
  });

  it('keeps the private key sealed in Postgres and out of Temporal history and API responses', async () => {
    const rx = await startReceiver();
    receivers.push(rx);
    const created = await h.app.inject({ method: 'POST', url: '/v1/endpoints', payload: { url: rx.url, eventTypes: ['ed.secret'], signing: 'ed25519', retry: FAST_RETRY } });
    const ep = created.json();
    const { rows } = await h.pool.query<{ secret: string }>('SELECT secret FROM endpoint_secrets WHERE endpoint_id = $1', [ep.id]);
    expect(rows).toHaveLength(1);
    expect(rows[0].secret).toMatch(/^enc:v1:[0-9a-f]{8}:/);
    const privateKey = Keyring.fromText(TEST_ENCRYPTION_KEY).decrypt(rows[0].secret, `endpoint_secret:${ep.id}`).toString();
    expect(privateKey).toMatch(/^whsk_/);
    expect(verificationKey(privateKey)).toBe(ep.secret);
    const raw = Buffer.from(privateKey.slice(5), 'base64');
    // The whole key and its 32-byte seed alone, in the encodings a leak would likely use.
    const needles = [privateKey.slice(5), raw.subarray(0, 32).toString('base64'), raw.subarray(0, 32).toString('hex')];

    const ev = await sendEvent(h.app, { type: 'ed.secret', data: { n: 1 } });
    await waitFor(() => rx.requests.find((r) => r.headers['webhook-id'] === ev.id), 30_000, 'delivered');
    const text = await workflowHistoryText(h.client, ev.id);
    expect(text).toContain(ep.id); // the history is readable here…
    const dump = (await h.pool.query('SELECT e::text AS t FROM endpoints e UNION ALL SELECT s::text FROM endpoint_secrets s')).rows.map((r) => r.t).join('\n');
    const read = await h.app.inject({ method: 'GET', url: `/v1/endpoints/${ep.id}` });
    for (const needle of needles) {
      expect(text).not.toContain(needle); // …and holds no private key
      expect(dump).not.toContain(needle);
      expect(created.body).not.toContain(needle);
      expect(read.body).not.toContain(needle);
    }
  });

  it('rejects a bad signing value, a caller-chosen ed25519 key and signing in PATCH, naming the field', async () => {
    const bad = await h.app.inject({ method: 'POST', url: '/v1/endpoints', payload: { url: 'http://127.0.0.1:9/x', signing: 'rsa' } });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().message).toContain('body.signing');
    const withSecret = await h.app.inject({
      method: 'POST', url: '/v1/endpoints', payload: { url: 'http://127.0.0.1:9/x', signing: 'ed25519', secret: generateSigningSecret('hmac') },
    });
    expect(withSecret.statusCode).toBe(422);
    expect(withSecret.json()).toMatchObject({ code: 'invalid_secret' });
    expect(withSecret.json().message).toContain('body.secret');

    const ep = await createEndpoint(h.app, { url: 'http://127.0.0.1:9/x', eventTypes: ['none.test'], signing: 'ed25519' });
    const rot = await h.app.inject({ method: 'POST', url: `/v1/endpoints/${ep.id}/secret/rotate`, payload: { secret: generateSigningSecret('hmac') } });
    expect(rot.statusCode).toBe(422);
    expect(rot.json().message).toContain('body.secret');
    // The failed rotation changed nothing.
    const read = await h.app.inject({ method: 'GET', url: `/v1/endpoints/${ep.id}` });
    expect(read.json().signing).toBe('ed25519');
    const patch = await h.app.inject({ method: 'PATCH', url: `/v1/endpoints/${ep.id}`, payload: { signing: 'hmac' } });
    expect(patch.statusCode).toBe(400);
    expect(patch.json().message).toContain('signing');
  });
});
