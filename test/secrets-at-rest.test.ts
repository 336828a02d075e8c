// Endpoint secrets at rest on the real stack: Postgres holds only sealed values, deliveries still
// verify with the standardwebhooks library, plaintext rows are sealed at start, a key rotation
// reseals, and a missing or wrong key is a clear error at start.
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { Webhook } from 'standardwebhooks';
import { ensureDevEncryptionKey, prepareDataAtRest } from '../src/at-rest-start';
import { runDev } from '../src/cli/dev';
import { loadConfig } from '../src/config';
import { Keyring, sealedKeyId } from '../src/crypto';
import { activeSecrets } from '../src/db/endpoints';
import { generateSecret } from '../src/signing';
import {
  createApiOnly, createEndpoint, createHarness, createTestDatabase, sendEvent, spawnRole, startReceiver, TEST_ENCRYPTION_KEY, waitFor,
  type Harness, type Receiver,
} from './helpers';

const newKey = () => randomBytes(32).toString('base64');

describe('endpoint secrets at rest', () => {
  let h: Harness;
  let rx: Receiver;

  beforeAll(async () => {
    h = await createHarness();
    rx = await startReceiver();
  });
  afterAll(async () => {
    // Leave the process keyring as the harness expects it, whatever a failed test left behind.
    await prepareDataAtRest(h.pool, h.config).catch(() => {});
    await rx?.close();
    await h?.close();
  });

  const storedSecrets = async (endpointId: string) =>
    (await h.pool.query<{ secret: string }>('SELECT secret FROM endpoint_secrets WHERE endpoint_id = $1 ORDER BY id', [endpointId])).rows.map((r) => r.secret);

  /** Sends one event of `type` (one endpoint subscribes) and checks standardwebhooks verifies it with `secret`. */
  async function deliverAndVerify(secret: string, type = 'atrest.test') {
    const ev = await sendEvent(h.app, { type, data: { n: Math.random() } });
    await waitFor(() => rx.requests.find((r) => r.headers['webhook-id'] === ev.id), 30_000, `delivery of ${ev.id}`);
    const req = rx.requests.find((r) => r.headers['webhook-id'] === ev.id)!;
    const payload = new Webhook(secret).verify(req.body, {
      'webhook-id': req.headers['webhook-id'] as string,
      'webhook-timestamp': req.headers['webhook-timestamp'] as string,
      'webhook-signature': req.headers['webhook-signature'] as string,
    }) as { id: string };
    expect(payload.id).toBe(ev.id);
    return req;
  }

  it('stores a sealed value, not the secret, and deliveries still verify', async () => {
    const ep = await createEndpoint(h.app, { url: rx.url, eventTypes: ['atrest.test'] });
    const [stored] = await storedSecrets(ep.id);
    expect(stored).toMatch(/^enc:v1:[0-9a-f]{8}:/);
    expect(sealedKeyId(stored)).toBe(Keyring.fromText(TEST_ENCRYPTION_KEY).primaryId);
    expect(stored).not.toContain(ep.secret.slice('whsec_'.length));
    expect(Keyring.fromText(TEST_ENCRYPTION_KEY).decrypt(stored, `endpoint_secret:${ep.id}`).toString()).toBe(ep.secret);
    await deliverAndVerify(ep.secret);

    // A rotation stores the new secret sealed too; both sign during the overlap.
    const rotated = await h.app.inject({ method: 'POST', url: `/v1/endpoints/${ep.id}/secret/rotate`, payload: { expireOldAfter: '1 hour' } });
    const newSecret = rotated.json().secret as string;
    const rows = await storedSecrets(ep.id);
    expect(rows).toHaveLength(2);
    for (const row of rows) expect(row).toMatch(/^enc:v1:/);
    expect(rows.join()).not.toContain(newSecret.slice('whsec_'.length));
    const req = await deliverAndVerify(newSecret);
    expect(String(req.headers['webhook-signature']).split(' ')).toHaveLength(2);
    expect(() => new Webhook(ep.secret).verify(req.body, req.headers as Record<string, string>)).not.toThrow();
  });

  it('a secret moved to another endpoint\'s row does not open', async () => {
    const a = await createEndpoint(h.app, { url: 'http://127.0.0.1:9/a', eventTypes: ['none.test'] });
    const b = await createEndpoint(h.app, { url: 'http://127.0.0.1:9/b', eventTypes: ['none.test'] });
    await h.pool.query('UPDATE endpoint_secrets SET secret = (SELECT secret FROM endpoint_secrets WHERE endpoint_id = $1) WHERE endpoint_id = $2', [a.id, b.id]);
    await expect(activeSecrets(h.pool, b.id)).rejects.toThrow(/failed authentication/);
    await h.pool.query('DELETE FROM endpoints WHERE id = ANY($1)', [[a.id, b.id]]);
  });

  it('seals plaintext secrets (written before a key was set) at start', async () => {
    const secret = generateSecret();
    await h.pool.query(`INSERT INTO endpoints (id, url, event_types) VALUES ('ep_legacy', $1, '{legacy.test}')`, [rx.url]);
    await h.pool.query(`INSERT INTO endpoint_secrets (endpoint_id, secret) VALUES ('ep_legacy', $1)`, [secret]);
    // Until a role starts, the plaintext row still signs.
    expect(await activeSecrets(h.pool, 'ep_legacy')).toEqual([secret]);

    await prepareDataAtRest(h.pool, h.config);
    const [stored] = await storedSecrets('ep_legacy');
    expect(stored).toMatch(/^enc:v1:/);
    expect(stored).not.toContain(secret.slice('whsec_'.length));
    expect(await activeSecrets(h.pool, 'ep_legacy')).toEqual([secret]);
    await deliverAndVerify(secret, 'legacy.test');
  });

  it('key rotation: the new key seals, start reseals old rows, the old key is then unneeded', async () => {
    const ep = await createEndpoint(h.app, { url: rx.url, eventTypes: ['rotate.key'] });
    const oldRing = Keyring.fromText(TEST_ENCRYPTION_KEY);
    const fresh = newKey();
    const rotatedConfig = { ...h.config, HOOKLINE_ENCRYPTION_KEY: `${fresh},${TEST_ENCRYPTION_KEY}` };
    const newId = Keyring.fromText(fresh).primaryId;

    await prepareDataAtRest(h.pool, rotatedConfig);
    const all = (await h.pool.query<{ secret: string }>('SELECT secret FROM endpoint_secrets')).rows;
    expect(all.length).toBeGreaterThan(1);
    for (const row of all) expect(sealedKeyId(row.secret)).toBe(newId);
    expect(await activeSecrets(h.pool, ep.id)).toEqual([ep.secret]);
    await deliverAndVerify(ep.secret, 'rotate.key');

    // New secrets are sealed with the new key.
    const ep2 = await createEndpoint(h.app, { url: 'http://127.0.0.1:9/x', eventTypes: ['none.test'] });
    expect(sealedKeyId((await storedSecrets(ep2.id))[0])).toBe(newId);

    // The old key alone can no longer read them: a clear error at start, naming the key id.
    const stale = { ...h.config, HOOKLINE_ENCRYPTION_KEY: TEST_ENCRYPTION_KEY };
    await expect(prepareDataAtRest(h.pool, stale)).rejects.toThrow(new RegExp(`key id ${newId}.*HOOKLINE_ENCRYPTION_KEY`));
    expect(oldRing.primaryId).not.toBe(newId);

    // The new key alone is enough once everything is resealed.
    await prepareDataAtRest(h.pool, { ...h.config, HOOKLINE_ENCRYPTION_KEY: fresh });
    expect(await activeSecrets(h.pool, ep.id)).toEqual([ep.secret]);

    // Back to the harness key for the tests that follow (reseals everything with it).
    await prepareDataAtRest(h.pool, { ...h.config, HOOKLINE_ENCRYPTION_KEY: `${TEST_ENCRYPTION_KEY},${fresh}` });
    await deliverAndVerify(ep.secret, 'rotate.key');
  });

  it('a production role without a key refuses to start when secrets exist', async () => {
    const noKey = loadConfig({ DATABASE_URL: h.config.DATABASE_URL });
    await expect(prepareDataAtRest(h.pool, noKey)).rejects.toThrow(/HOOKLINE_ENCRYPTION_KEY is not set, but the database holds \d+ endpoint secret/);
    await prepareDataAtRest(h.pool, h.config);

    const child = spawnRole(h, 'relay', { HOOKLINE_ENCRYPTION_KEY: '' }, ['ignore', 'pipe', 'pipe']);
    let output = '';
    child.stdout!.on('data', (d) => (output += d));
    child.stderr!.on('data', (d) => (output += d));
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    expect(code).toBe(1);
    expect(output).toMatch(/HOOKLINE_ENCRYPTION_KEY is not set, but the database holds/);
  });
});

describe('without a key and without secrets', () => {
  it('starts, and refuses to store a secret in plaintext', async () => {
    const api = await createApiOnly({ HOOKLINE_ENCRYPTION_KEY: '' });
    try {
      const res = await api.app.inject({ method: 'POST', url: '/v1/endpoints', payload: { url: 'https://example.com/hook' } });
      expect(res.statusCode).toBe(503);
      expect(res.json()).toMatchObject({ code: 'encryption_key_missing' });
      expect(res.json().message).toContain('HOOKLINE_ENCRYPTION_KEY');
      expect((await api.pool.query('SELECT count(*)::int AS n FROM endpoints')).rows[0].n).toBe(0);
    } finally {
      await api.close();
    }
  });
});

describe('hookline dev key file', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'hookline-key-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('is made once (mode 0600), then reused; a loose mode is tightened; a bad one is a clear error', () => {
    const first = ensureDevEncryptionKey(dir);
    expect(first.created).toBe(true);
    expect(statSync(first.file).mode & 0o777).toBe(0o600);
    expect(() => Keyring.fromText(first.key)).not.toThrow();
    const second = ensureDevEncryptionKey(dir);
    expect(second).toMatchObject({ created: false, key: first.key });

    chmodSync(first.file, 0o644);
    ensureDevEncryptionKey(dir);
    expect(statSync(first.file).mode & 0o777).toBe(0o600);

    writeFileSync(first.file, 'short\n');
    expect(() => ensureDevEncryptionKey(dir)).toThrow(/encryption\.key.*openssl rand -base64 32/);
  });

  it('hookline dev makes the key in its data dir on first start', async () => {
    const db = await createTestDatabase();
    const dataDir = path.join(dir, 'data');
    const lines: string[] = [];
    let stop!: () => void;
    const stopped = new Promise<void>((resolve) => (stop = resolve));
    try {
      const config = loadConfig({ DATABASE_URL: db.url, TEMPORAL_ADDRESS: inject('temporalAddress'), HOOKLINE_DATA_DIR: dataDir });
      const running = runDev(config, { roles: [], out: (l) => lines.push(l), exitProcess: false, stopWhen: stopped });
      await waitFor(() => lines.some((l) => l.includes('made an encryption key')), 30_000, 'the key to be made');
      stop();
      await running;
      const key = readFileSync(path.join(dataDir, 'encryption.key'), 'utf8').trim();
      expect(() => Keyring.fromText(key)).not.toThrow();
      expect(lines.join('\n')).not.toContain(key);
    } finally {
      stop();
      await db.drop();
    }
  });
});
