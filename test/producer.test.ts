// The producer's side of the outbox, end to end on real Postgres, Temporal and HTTP receivers:
// enqueueEvent inside the producer's own transaction (rollback → nothing, commit then SIGKILL →
// delivered), Idempotency-Key under a burst of concurrent submissions, and routing by wildcard
// and channel.
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { enqueueEvent, isEventContractError, newEventId } from '../src/producer';
import { createEndpoint, createHarness, sendEvent, startReceiver, waitFor, type Harness, type Receiver } from './helpers';

const FIXTURE = path.join(__dirname, 'fixtures', 'producer-commit-then-die.ts');

describe('producer', () => {
  let h: Harness;
  let db: pg.Client;
  const receivers: Receiver[] = [];

  beforeAll(async () => {
    h = await createHarness();
    db = new pg.Client({ connectionString: h.config.DATABASE_URL });
    await db.connect();
    // The producer's own business table, in the same database as Hookline's.
    await db.query('CREATE TABLE orders (id text PRIMARY KEY, total integer NOT NULL)');
  });
  afterAll(async () => {
    await db?.end();
    for (const rx of receivers) await rx.close();
    await h?.close();
  });

  async function receiver(endpoint: Record<string, unknown> = {}) {
    const rx = await startReceiver();
    receivers.push(rx);
    const ep = await createEndpoint(h.app, { url: rx.url, ...endpoint });
    return { rx, ep };
  }
  const ids = (rx: Receiver) => rx.requests.map((r) => r.headers['webhook-id'] as string);
  const count = async (sql: string, params: unknown[] = []) => (await h.pool.query(sql, params)).rows[0].n as number;

  it('is what package.json exports as hookline/producer', () => {
    expect(createRequire(__filename).resolve('hookline/producer')).toBe(path.join(__dirname, '..', 'src', 'producer', 'index.ts'));
  });

  it('writes nothing when the producer rolls back', async () => {
    const { rx } = await receiver();
    await db.query('BEGIN');
    await db.query('INSERT INTO orders (id, total) VALUES ($1, $2)', ['ord-rolled-back', 100]);
    const enqueued = await enqueueEvent(db, { type: 'order.placed', data: { orderId: 'ord-rolled-back' } });
    expect(enqueued.created).toBe(true);
    expect(enqueued.id).toMatch(/^evt_/);
    // Visible inside the producer's transaction, nowhere else.
    expect((await db.query('SELECT count(*)::int AS n FROM outbox WHERE event_id = $1', [enqueued.id])).rows[0].n).toBe(1);
    expect(await count('SELECT count(*)::int AS n FROM events WHERE id = $1', [enqueued.id])).toBe(0);
    await db.query('ROLLBACK');

    // A later event through the API: once it is delivered the relay has drained past the
    // rolled-back one, had it existed.
    const sentinel = await sendEvent(h.app, { type: 'order.placed', data: { sentinel: true } });
    await waitFor(() => ids(rx).includes(sentinel.id), 30_000, 'sentinel delivery');
    await new Promise((r) => setTimeout(r, 2 * h.config.HOOKLINE_RELAY_POLL_MS));
    expect(ids(rx)).not.toContain(enqueued.id);
    expect(await count('SELECT count(*)::int AS n FROM events WHERE id = $1', [enqueued.id])).toBe(0);
    expect(await count("SELECT count(*)::int AS n FROM orders WHERE id = 'ord-rolled-back'")).toBe(0);
    expect(await count('SELECT count(*)::int AS n FROM deliveries WHERE event_id = $1', [enqueued.id])).toBe(0);
  });

  it('delivers an event whose producer was SIGKILLed right after COMMIT', async () => {
    const { rx } = await receiver({ eventTypes: ['order.*'] });
    const eventId = `order-placed-${newEventId()}`;
    const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE], {
      cwd: path.join(__dirname, '..'),
      env: { ...process.env, DATABASE_URL: h.config.DATABASE_URL, EVENT_ID: eventId, ORDER_ID: 'ord-killed' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stderr.on('data', (c) => (stderr += c));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.on('exit', (code, signal) => resolve({ code, signal })),
    );
    child.stdout.on('data', (c) => {
      stdout += c;
      // Whichever comes first, the child's own SIGKILL or ours: nothing runs after the commit.
      if (stdout.includes('committed')) child.kill('SIGKILL');
    });
    const { code, signal } = await exited;
    expect(stdout, stderr).toContain('committed');
    expect({ code, signal }).toEqual({ code: null, signal: 'SIGKILL' });

    await waitFor(() => ids(rx).includes(eventId), 30_000, 'delivery of the dead producer’s event');
    const envelope = JSON.parse(rx.requests.find((r) => r.headers['webhook-id'] === eventId)!.body);
    expect(envelope).toMatchObject({ id: eventId, type: 'order.placed', data: { orderId: 'ord-killed', total: 4200 } });
    expect(await count("SELECT count(*)::int AS n FROM orders WHERE id = 'ord-killed'")).toBe(1);
    await waitFor(async () => (await count('SELECT count(*)::int AS n FROM outbox WHERE event_id = $1', [eventId])) === 0, 10_000, 'outbox drained');
  });

  it('refuses to run outside a transaction, and keeps the caller’s transaction usable on failure', async () => {
    await expect(enqueueEvent(db, { type: 'order.placed', data: {} })).rejects.toThrow(/inside a transaction/);
    await expect(enqueueEvent(db, { type: 'bad type', data: {} })).rejects.toThrow(/^type:/);
    await expect(enqueueEvent(db, { type: 'order.placed', data: [] as any })).rejects.toThrow(/^data:/);
    await expect(enqueueEvent(db, { type: 'order.placed', data: {}, channels: ['no spaces'] })).rejects.toThrow(/^channels:/);

    await db.query('BEGIN');
    await db.query('INSERT INTO orders (id, total) VALUES ($1, $2)', ['ord-dup', 1]);
    const first = await enqueueEvent(db, { id: 'ord-dup-placed', type: 'order.placed', data: { orderId: 'ord-dup' } });
    const again = await enqueueEvent(db, { id: 'ord-dup-placed', type: 'order.placed', data: { orderId: 'ord-dup' } });
    expect(first).toEqual({ id: 'ord-dup-placed', created: true });
    expect(again).toEqual({ id: 'ord-dup-placed', created: false });
    // A database error inside enqueueEvent (jsonb refuses \u0000) is rolled back to its savepoint.
    await expect(enqueueEvent(db, { type: 'order.placed', data: { s: '\u0000' } })).rejects.toThrow();
    await db.query('COMMIT');
    expect(await count("SELECT count(*)::int AS n FROM orders WHERE id = 'ord-dup'")).toBe(1);
    expect(await count("SELECT count(*)::int AS n FROM events WHERE id = 'ord-dup-placed'")).toBe(1);
  });

  it('checks registered schemas only when asked to, with the API’s contract', async () => {
    const registered = await h.app.inject({
      method: 'POST',
      url: '/v1/event-types',
      payload: { name: 'order.shipped', schema: { type: 'object', required: ['carrier'], properties: { carrier: { type: 'string' } } } },
    });
    expect(registered.statusCode).toBe(201);
    const { rx } = await receiver({ eventTypes: ['order.shipped'] });

    await db.query('BEGIN');
    let error: unknown;
    try {
      await enqueueEvent(db, { type: 'order.shipped', data: { carrier: 7 } }, { validate: true });
    } catch (err) {
      error = err;
    }
    expect(isEventContractError(error)).toBe(true);
    expect(error).toMatchObject({ code: 'schema_violation', message: 'data.carrier: must be string', details: [{ path: 'data.carrier', message: 'must be string' }] });
    // Not validating: recorded as given, without a version.
    const unchecked = await enqueueEvent(db, { type: 'order.shipped', data: { carrier: 7 } });
    const checked = await enqueueEvent(db, { type: 'order.shipped', data: { carrier: 'DHL' } }, { validate: true });
    await expect(enqueueEvent(db, { type: 'order.unknown', data: {} }, { validate: true, acceptUnregistered: false })).rejects.toMatchObject({
      code: 'unregistered_event_type',
    });
    await db.query('COMMIT');

    await waitFor(() => ids(rx).includes(checked.id) && ids(rx).includes(unchecked.id), 30_000, 'deliveries');
    const body = (id: string) => JSON.parse(rx.requests.find((r) => r.headers['webhook-id'] === id)!.body);
    expect(body(checked.id)).toMatchObject({ version: 1, data: { carrier: 'DHL' } });
    expect(body(unchecked.id)).not.toHaveProperty('version');
  });

  it('turns 50 concurrent submissions with one Idempotency-Key into one event and one delivery', async () => {
    const { rx } = await receiver({ eventTypes: ['payment.captured'] });
    const address = await h.app.listen({ port: 0, host: '127.0.0.1' });
    const submit = () =>
      fetch(`${address}/v1/events`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': 'capture-pay_123' },
        body: JSON.stringify({ type: 'payment.captured', data: { paymentId: 'pay_123', amount: 990 } }),
      }).then(async (res) => ({ status: res.status, body: (await res.json()) as { id: string } }));
    const results = await Promise.all(Array.from({ length: 50 }, submit));
    expect(results.map((r) => r.status)).toEqual(Array(50).fill(202));
    const eventIds = new Set(results.map((r) => r.body.id));
    expect(eventIds.size).toBe(1);
    const [id] = eventIds;
    expect(await count("SELECT count(*)::int AS n FROM events WHERE type = 'payment.captured'")).toBe(1);

    await waitFor(() => rx.requests.length >= 1, 30_000, 'the delivery');
    // Room for a duplicate to show up, had one been started.
    await new Promise((r) => setTimeout(r, 1_500));
    expect(ids(rx)).toEqual([id]);
  });

  it('routes by wildcard and by channel, end to end', async () => {
    const invoices = await receiver({ eventTypes: ['invoice.*'] });
    const exact = await receiver({ eventTypes: ['invoice.paid'] });
    const eu = await receiver({ channels: ['eu'] });
    const euInvoices = await receiver({ eventTypes: ['invoice.*'], channels: ['eu'] });
    const everything = await receiver({ eventTypes: ['invoice.*', 'invoice', 'customer.*'] });

    // Several events in one producer transaction, next to the business write.
    await db.query('BEGIN');
    await db.query('INSERT INTO orders (id, total) VALUES ($1, $2)', ['ord-routing', 1]);
    const send = async (type: string, channels?: string[]) => (await enqueueEvent(db, { type, data: { type, channels }, channels })).id;
    const paid = await send('invoice.paid');
    const paidEu = await send('invoice.paid', ['eu']);
    const lineUs = await send('invoice.line.created', ['us']);
    const bareEu = await send('invoice', ['eu']);
    const customerUsEu = await send('customer.created', ['us', 'eu']);
    const customerUs = await send('customer.created', ['us']);
    await db.query('COMMIT');

    const all = [paid, paidEu, lineUs, bareEu, customerUsEu, customerUs];
    await waitFor(() => all.every((id) => ids(everything.rx).includes(id)), 30_000, 'every event at the catch-all endpoint');
    const expected = new Map<Receiver, string[]>([
      [invoices.rx, [paid, paidEu, lineUs]], // invoice.* matches invoice.line.created, not bare "invoice"
      [exact.rx, [paid, paidEu]],
      [eu.rx, [paidEu, bareEu, customerUsEu]], // an event with no channel never reaches a channel endpoint
      [euInvoices.rx, [paidEu]], // both filters must match
    ]);
    await waitFor(() => [...expected].every(([rx, want]) => want.every((id) => ids(rx).includes(id))), 30_000, 'routed deliveries');
    await new Promise((r) => setTimeout(r, 1_000));
    for (const [rx, want] of expected) {
      expect(ids(rx).filter((id) => all.includes(id)).sort()).toEqual([...want].sort());
    }
    const channelsSeen = JSON.parse(eu.rx.requests.find((r) => r.headers['webhook-id'] === customerUsEu)!.body).data.channels;
    expect(channelsSeen).toEqual(['us', 'eu']);
  });
});
