// The receiver kit's verifier: the Standard Webhooks test vector, one rejection per test (each
// breaks one thing in an otherwise valid request), rotation, and interoperability both ways with
// the `standardwebhooks` and `svix` libraries.
import { describe, expect, it } from 'vitest';
import { Webhook as StandardWebhook } from 'standardwebhooks';
import { Webhook as SvixWebhook } from 'svix';
import { generateSecret, signatureHeader } from '../src/signing';
import { verifyWebhook, WebhookVerificationError, type VerifyWebhookInput } from '../src/receiver';

const VECTOR = {
  secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
  id: 'msg_p5jXN8AQM9LWM0D4loKWxJek',
  timestamp: 1614265330,
  payload: '{"test": 2432232314}',
  signature: 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=',
};

/** A valid request at the vector's time; each test changes one thing. */
function validRequest(overrides: Partial<VerifyWebhookInput> = {}): VerifyWebhookInput {
  return {
    headers: {
      'webhook-id': VECTOR.id,
      'webhook-timestamp': String(VECTOR.timestamp),
      'webhook-signature': VECTOR.signature,
    },
    rawBody: VECTOR.payload,
    secrets: VECTOR.secret,
    now: new Date(VECTOR.timestamp * 1000),
    ...overrides,
  };
}

function rejection(input: VerifyWebhookInput): WebhookVerificationError {
  try {
    verifyWebhook(input);
  } catch (err) {
    expect(err).toBeInstanceOf(WebhookVerificationError);
    return err as WebhookVerificationError;
  }
  throw new Error('expected verifyWebhook to throw');
}

const nowSeconds = () => Math.floor(Date.now() / 1000);

describe('verifyWebhook', () => {
  it('accepts the Standard Webhooks test vector', () => {
    const out = verifyWebhook(validRequest());
    expect(out).toEqual({ id: VECTOR.id, timestamp: VECTOR.timestamp, payload: { test: 2432232314 } });
  });

  it('accepts a Buffer body, a Headers instance and mixed-case header names', () => {
    expect(verifyWebhook(validRequest({ rawBody: Buffer.from(VECTOR.payload) })).id).toBe(VECTOR.id);
    const headers = new Headers({
      'Webhook-Id': VECTOR.id,
      'Webhook-Timestamp': String(VECTOR.timestamp),
      'Webhook-Signature': VECTOR.signature,
    });
    expect(verifyWebhook(validRequest({ headers })).timestamp).toBe(VECTOR.timestamp);
    const record = { 'WEBHOOK-ID': VECTOR.id, 'Webhook-Timestamp': String(VECTOR.timestamp), 'webhook-Signature': VECTOR.signature };
    expect(verifyWebhook(validRequest({ headers: record })).payload).toEqual({ test: 2432232314 });
  });

  it('accepts svix-* header aliases', () => {
    const headers = {
      'svix-id': VECTOR.id,
      'svix-timestamp': String(VECTOR.timestamp),
      'svix-signature': VECTOR.signature,
    };
    expect(verifyWebhook(validRequest({ headers })).id).toBe(VECTOR.id);
  });

  it('accepts the secret without its whsec_ prefix', () => {
    const bare = VECTOR.secret.slice('whsec_'.length);
    expect(verifyWebhook(validRequest({ secrets: bare })).id).toBe(VECTOR.id);
  });

  it('accepts any of several secrets (receiver side of a rotation)', () => {
    const secrets = [generateSecret(), VECTOR.secret, generateSecret()];
    expect(verifyWebhook(validRequest({ secrets })).id).toBe(VECTOR.id);
    expect(rejection(validRequest({ secrets: [generateSecret(), generateSecret()] })).reason).toBe('no_matching_signature');
  });

  it('accepts any of several signatures, skipping other versions and unknown ones', () => {
    const headers = {
      'webhook-id': VECTOR.id,
      'webhook-timestamp': String(VECTOR.timestamp),
      'webhook-signature': `v1a,${'A'.repeat(88)} v1,${Buffer.alloc(32).toString('base64')} ${VECTOR.signature} v2,xyz`,
    };
    expect(verifyWebhook(validRequest({ headers })).id).toBe(VECTOR.id);
  });

  it('accepts a signature header repeated (string[]), as Node may deliver it', () => {
    const headers = {
      'webhook-id': VECTOR.id,
      'webhook-timestamp': String(VECTOR.timestamp),
      'webhook-signature': [`v1,${Buffer.alloc(32).toString('base64')}`, VECTOR.signature],
    };
    expect(verifyWebhook(validRequest({ headers })).id).toBe(VECTOR.id);
  });

  it('rejects the v1 signature when it is only present under another version', () => {
    const headers = {
      'webhook-id': VECTOR.id,
      'webhook-timestamp': String(VECTOR.timestamp),
      'webhook-signature': VECTOR.signature.replace(/^v1,/, 'v2,'),
    };
    expect(rejection(validRequest({ headers })).reason).toBe('no_matching_signature');
  });

  describe('rejects, one broken thing at a time', () => {
    it.each(['webhook-id', 'webhook-timestamp', 'webhook-signature'])('missing_header: no %s', (name) => {
      const headers: Record<string, string> = { ...(validRequest().headers as Record<string, string>) };
      delete headers[name];
      const err = rejection(validRequest({ headers }));
      expect(err.reason).toBe('missing_header');
      expect(err.message).toMatch(/missing/);
    });

    it('bad_timestamp: not unix seconds', () => {
      for (const bad of ['abc', '1614265330abc', '1614265330.5', '-1614265330', '2021-02-25T15:02:10Z']) {
        const headers = { ...(validRequest().headers as Record<string, string>), 'webhook-timestamp': bad };
        expect(rejection(validRequest({ headers })).reason, bad).toBe('bad_timestamp');
      }
    });

    it('too_old: timestamp more than the tolerance in the past', () => {
      const now = new Date((VECTOR.timestamp + 301) * 1000);
      expect(rejection(validRequest({ now })).reason).toBe('too_old');
      // exactly at the edge still passes
      expect(verifyWebhook(validRequest({ now: (VECTOR.timestamp + 300) * 1000 })).id).toBe(VECTOR.id);
    });

    it('too_new: timestamp more than the tolerance in the future', () => {
      const now = new Date((VECTOR.timestamp - 301) * 1000);
      expect(rejection(validRequest({ now })).reason).toBe('too_new');
      expect(verifyWebhook(validRequest({ now: (VECTOR.timestamp - 300) * 1000 })).id).toBe(VECTOR.id);
    });

    it('honours a custom tolerance', () => {
      const now = new Date((VECTOR.timestamp + 11) * 1000);
      expect(rejection(validRequest({ now, toleranceSeconds: 10 })).reason).toBe('too_old');
    });

    it('no_matching_signature: body changed by one byte', () => {
      expect(rejection(validRequest({ rawBody: '{"test": 2432232315}' })).reason).toBe('no_matching_signature');
    });

    it('no_matching_signature: body re-serialised (whitespace differs)', () => {
      expect(rejection(validRequest({ rawBody: JSON.stringify(JSON.parse(VECTOR.payload)) })).reason).toBe(
        'no_matching_signature',
      );
    });

    it('no_matching_signature: id changed', () => {
      const headers = { ...(validRequest().headers as Record<string, string>), 'webhook-id': 'msg_other' };
      expect(rejection(validRequest({ headers })).reason).toBe('no_matching_signature');
    });

    it('no_matching_signature: timestamp changed within the window', () => {
      const headers = { ...(validRequest().headers as Record<string, string>), 'webhook-timestamp': String(VECTOR.timestamp + 1) };
      expect(rejection(validRequest({ headers })).reason).toBe('no_matching_signature');
    });

    it('no_matching_signature: wrong secret', () => {
      expect(rejection(validRequest({ secrets: generateSecret() })).reason).toBe('no_matching_signature');
    });

    it('no_matching_signature: signature truncated', () => {
      const headers = { ...(validRequest().headers as Record<string, string>), 'webhook-signature': VECTOR.signature.slice(0, -2) };
      expect(rejection(validRequest({ headers })).reason).toBe('no_matching_signature');
    });

    it('bad_payload: correctly signed body that is not JSON', () => {
      const body = 'not json';
      const headers = {
        'webhook-id': VECTOR.id,
        'webhook-timestamp': String(VECTOR.timestamp),
        'webhook-signature': signatureHeader([VECTOR.secret], VECTOR.id, VECTOR.timestamp, body),
      };
      expect(rejection(validRequest({ headers, rawBody: body })).reason).toBe('bad_payload');
    });
  });

  it('throws TypeError (a configuration error, not a 401) for unusable secrets', () => {
    expect(() => verifyWebhook(validRequest({ secrets: [] }))).toThrow(TypeError);
    expect(() => verifyWebhook(validRequest({ secrets: 'whsec_not base64!' }))).toThrow(TypeError);
  });
});

describe('interoperability', () => {
  const body = JSON.stringify({ id: 'evt_1', type: 'invoice.paid', timestamp: new Date().toISOString(), data: { amount: 42, note: 'π ✓' } });

  it('verifies signatures made by the standardwebhooks library', () => {
    const secret = generateSecret();
    const ts = nowSeconds();
    const signature = new StandardWebhook(secret).sign('evt_1', new Date(ts * 1000), body);
    const out = verifyWebhook({
      headers: { 'webhook-id': 'evt_1', 'webhook-timestamp': String(ts), 'webhook-signature': signature },
      rawBody: body,
      secrets: secret,
    });
    expect(out.payload).toEqual(JSON.parse(body));
  });

  it("verifies signatures made by svix's Webhook class, under svix-* headers", () => {
    const secret = generateSecret();
    const ts = nowSeconds();
    const signature = new SvixWebhook(secret).sign('evt_1', new Date(ts * 1000), body);
    const out = verifyWebhook({
      headers: { 'svix-id': 'evt_1', 'svix-timestamp': String(ts), 'svix-signature': signature },
      rawBody: Buffer.from(body),
      secrets: secret,
    });
    expect(out.id).toBe('evt_1');
  });

  it('signatures from src/signing.ts (rotation: two secrets) verify with standardwebhooks and svix, each secret alone', () => {
    const oldSecret = generateSecret();
    const newSecret = generateSecret(64);
    const ts = nowSeconds();
    const headers = {
      'webhook-id': 'evt_1',
      'webhook-timestamp': String(ts),
      'webhook-signature': signatureHeader([oldSecret, newSecret], 'evt_1', ts, body),
    };
    for (const secret of [oldSecret, newSecret]) {
      expect(new StandardWebhook(secret).verify(body, headers)).toEqual(JSON.parse(body));
      expect(new SvixWebhook(secret).verify(body, headers)).toEqual(JSON.parse(body));
      expect(verifyWebhook({ headers, rawBody: body, secrets: secret }).id).toBe('evt_1');
    }
    // and a third secret verifies with none of them
    const stranger = generateSecret();
    expect(() => new StandardWebhook(stranger).verify(body, headers)).toThrow();
    expect(() => new SvixWebhook(stranger).verify(body, headers)).toThrow();
  });
});
