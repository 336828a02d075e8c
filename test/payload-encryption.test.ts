// HOOKLINE_ENCRYPT_PAYLOADS=true on the real stack: events' data is stored sealed, read back by
// the API, delivered in clear and verifiable, and idempotent resubmissions still compare it.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Webhook } from 'standardwebhooks';
import { prepareDataAtRest, reencryptAll } from '../src/at-rest-start';
import { Keyring, sealedKeyId } from '../src/crypto';
import {
  createEndpoint, createHarness, sendEvent, startReceiver, TEST_ENCRYPTION_KEY, waitFor, type Harness, type Receiver,
} from './helpers';

const MARKER = 'PAYLOAD-AT-REST-MARKER';

describe('payload encryption at rest', () => {
  let h: Harness;
  let rx: Receiver;

  beforeAll(async () => {
    h = await createHarness({ env: { HOOKLINE_ENCRYPT_PAYLOADS: 'true' } });
    rx = await startReceiver();
  });
  afterAll(async () => {
    await rx?.close();
    await h?.close();
  });

  const storedRow = async (id: string) =>
    (await h.pool.query<{ data: unknown; data_encrypted: string | null }>('SELECT data, data_encrypted FROM events WHERE id = $1', [id])).rows[0];

  it('stores data sealed, returns it from the API and delivers it signed', async () => {
    const ep = await createEndpoint(h.app, { url: rx.url, eventTypes: ['sealed.test'] });
    const ev = await sendEvent(h.app, { type: 'sealed.test', data: { marker: MARKER, nested: { n: 1 } } });

    const row = await storedRow(ev.id);
    expect(row.data).toBeNull();
    expect(row.data_encrypted).toMatch(/^enc:v1:/);
    expect(row.data_encrypted).not.toContain(MARKER);

    const read = await h.app.inject({ method: 'GET', url: `/v1/events/${ev.id}` });
    expect(read.json().data).toEqual({ marker: MARKER, nested: { n: 1 } });

    await waitFor(() => rx.requests.find((r) => r.headers['webhook-id'] === ev.id), 30_000, 'delivery');
    const req = rx.requests.find((r) => r.headers['webhook-id'] === ev.id)!;
    const payload = new Webhook(ep.secret).verify(req.body, req.headers as Record<string, string>) as { data: unknown };
    expect(payload.data).toEqual({ marker: MARKER, nested: { n: 1 } });
  });

  it('seals what the receiver answered too, and the attempts API opens it', async () => {
    rx.respond = () => ({ status: 200, body: `echo ${MARKER}` });
    try {
      const ep = await createEndpoint(h.app, { url: rx.url, eventTypes: ['sealed.answer'] });
      const ev = await sendEvent(h.app, { type: 'sealed.answer', data: { n: 2 } });
      const stored = () => h.pool.query<{ response_body: Buffer; response_body_sealed: boolean }>(
        'SELECT response_body, response_body_sealed FROM attempts WHERE event_id = $1', [ev.id]);
      await waitFor(async () => (await stored()).rowCount === 1, 30_000, 'the attempt recorded');
      const [row] = (await stored()).rows;
      expect(row.response_body_sealed).toBe(true);
      expect(row.response_body.toString('utf8')).toMatch(/^enc:v1:/);
      expect(row.response_body.toString('utf8')).not.toContain(MARKER);
      const api = await h.app.inject({ method: 'GET', url: `/v1/deliveries/${ev.id}/${ep.id}/attempts` });
      expect(api.json().data[0]).toMatchObject({ responseBody: `echo ${MARKER}`, responseBodyEncoding: 'utf8' });
    } finally {
      rx.respond = () => ({ status: 200 });
    }
  });

  it('idempotent resubmissions compare the decrypted data', async () => {
    const body = { id: 'evt_sealed_idem', type: 'sealed.idem', data: { b: 2, a: 1 } };
    const first = await h.app.inject({ method: 'POST', url: '/v1/events', payload: body });
    expect(first.statusCode).toBe(202);
    // The same id and content (keys in another order): the same event.
    const again = await h.app.inject({ method: 'POST', url: '/v1/events', payload: { ...body, data: { a: 1, b: 2 } } });
    expect(again.statusCode).toBe(202);
    expect(again.json().data).toEqual({ a: 1, b: 2 });
    // The same id, other content: a conflict, not a silent overwrite.
    const other = await h.app.inject({ method: 'POST', url: '/v1/events', payload: { ...body, data: { a: 2 } } });
    expect(other.statusCode).toBe(409);

    const headers = { 'idempotency-key': 'sealed-key-1' };
    const k1 = await sendEvent(h.app, { type: 'sealed.idem', data: { k: 1 } }, headers);
    const k2 = await h.app.inject({ method: 'POST', url: '/v1/events', payload: { type: 'sealed.idem', data: { k: 1 } }, headers });
    expect(k2.json()).toMatchObject({ id: k1.id, data: { k: 1 } });
  });

  it('still reads events stored in plaintext before the setting was on', async () => {
    await h.pool.query(`INSERT INTO events (id, type, data) VALUES ('evt_plain_before', 'sealed.old', '{"old":true}')`);
    const read = await h.app.inject({ method: 'GET', url: '/v1/events/evt_plain_before' });
    expect(read.statusCode).toBe(200);
    expect(read.json().data).toEqual({ old: true });
  });

  it('a sealed payload moved to another event does not open', async () => {
    const a = await sendEvent(h.app, { type: 'sealed.move', data: { who: 'a' } });
    await h.pool.query(`INSERT INTO events (id, type, data_encrypted) VALUES ('evt_moved', 'sealed.move', $1)`, [(await storedRow(a.id)).data_encrypted]);
    const read = await h.app.inject({ method: 'GET', url: '/v1/events/evt_moved' });
    expect(read.statusCode).toBeGreaterThanOrEqual(500);
    expect(read.body).not.toContain('who');
    await h.pool.query(`DELETE FROM events WHERE id = 'evt_moved'`);
  });

  it('the database refuses a row with both or neither of data and data_encrypted', async () => {
    await expect(h.pool.query(`INSERT INTO events (id, type) VALUES ('evt_neither', 'x')`)).rejects.toThrow(/events_data_xor_encrypted/);
    await expect(h.pool.query(`INSERT INTO events (id, type, data, data_encrypted) VALUES ('evt_both', 'x', '{}', 'enc:v1:x')`)).rejects.toThrow(/events_data_xor_encrypted/);
  });

  it('hookline reencrypt moves every secret and payload to the newest key, so the old one can go', async () => {
    await createEndpoint(h.app, { url: 'http://127.0.0.1:9/r', eventTypes: ['none.test'] });
    const ev = await sendEvent(h.app, { type: 'sealed.rotate', data: { r: 1 } });
    const fresh = randomBytes(32).toString('base64');
    const freshId = Keyring.fromText(fresh).primaryId;
    const keyIds = async () => {
      const { rows } = await h.pool.query<{ v: string | null }>(
        `SELECT secret AS v FROM endpoint_secrets UNION ALL SELECT data_encrypted FROM events
         UNION ALL SELECT convert_from(response_body, 'UTF8') FROM attempts WHERE response_body_sealed`,
      );
      return new Set(rows.map((r) => (r.v === null ? 'plaintext' : sealedKeyId(r.v))));
    };
    expect(await keyIds()).toContain('plaintext'); // evt_plain_before, written before the setting

    const run = spawn(process.execPath, ['--import', 'tsx', path.join(__dirname, '../src/cli/main.ts'), 'reencrypt'], {
      env: { ...process.env, DATABASE_URL: h.config.DATABASE_URL, HOOKLINE_ENCRYPTION_KEY: `${fresh},${TEST_ENCRYPTION_KEY}`, HOOKLINE_ENCRYPT_PAYLOADS: 'true' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    run.stdout!.on('data', (d) => (output += d));
    run.stderr!.on('data', (d) => (output += d));
    const code = await new Promise((resolve) => run.on('exit', resolve));
    expect(output).toMatch(/re-encrypted/);
    expect(code).toBe(0);
    expect(output).toMatch(new RegExp(`re-encrypted \\d+ secret\\(s\\), \\d+ payload\\(s\\) and [1-9]\\d* response bod\\(ies\\) with key ${freshId}`));
    expect(await keyIds()).toEqual(new Set([freshId]));

    // The new key alone reads everything.
    await prepareDataAtRest(h.pool, { ...h.config, HOOKLINE_ENCRYPTION_KEY: fresh });
    expect((await h.app.inject({ method: 'GET', url: `/v1/events/${ev.id}` })).json().data).toEqual({ r: 1 });
    expect((await h.app.inject({ method: 'GET', url: '/v1/events/evt_plain_before' })).json().data).toEqual({ old: true });

    // Back to the harness key (in process this time), for anything that follows.
    const back = await reencryptAll(h.pool, { ...h.config, HOOKLINE_ENCRYPTION_KEY: `${TEST_ENCRYPTION_KEY},${fresh}` });
    expect(back.payloads).toBeGreaterThan(0);
    expect(await keyIds()).toEqual(new Set([Keyring.fromText(TEST_ENCRYPTION_KEY).primaryId]));
  });
});
