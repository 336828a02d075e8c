// The relay's promise: every committed event gets exactly one workflow, even with two relays
// racing and a relay that dies between starting workflows and deleting their outbox rows.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEndpoint, createHarness, quietLog, sendEvent, startReceiver, waitFor, type Harness, type Receiver } from './helpers';
import { Relay } from '../src/relay/relay';

describe('relay', () => {
  let h: Harness;
  let rx: Receiver;

  beforeAll(async () => {
    h = await createHarness({ noRelay: true });
    rx = await startReceiver();
    await createEndpoint(h.app, { url: rx.url });
  });
  afterAll(async () => {
    await rx?.close();
    await h?.close();
  });

  const newRelay = (batchSize = 10) =>
    new Relay({ pool: h.pool, client: h.client, taskQueue: h.taskQueue, databaseUrl: h.config.DATABASE_URL!, log: quietLog, batchSize, pollMs: 100 });

  it('two relays at once start every event exactly once', async () => {
    const events: { id: string }[] = [];
    for (let i = 0; i < 60; i++) events.push(await sendEvent(h.app, { type: 'load.test', data: { i } }));
    const a = newRelay(7);
    const b = newRelay(5);
    await Promise.all([a.start(), b.start()]);
    await waitFor(async () => (await h.pool.query('SELECT count(*)::int AS n FROM outbox')).rows[0].n === 0, 30_000, 'outbox drained');
    await Promise.all([a.stop(), b.stop()]);
    // Both relays did some of the work, and together started each event once.
    expect(a.started + b.started).toBe(60);
    await waitFor(() => rx.requests.length >= 60, 60_000, 'deliveries');
    await new Promise((r) => setTimeout(r, 500));
    const ids = rx.requests.map((r) => r.headers['webhook-id']);
    expect(new Set(ids).size).toBe(60);
    expect(ids).toHaveLength(60);
    expect(new Set(ids)).toEqual(new Set(events.map((e) => e.id)));
  });

  it('a relay that died after starting workflows but before committing starts none twice', async () => {
    rx.requests.length = 0;
    const events: { id: string }[] = [];
    for (let i = 0; i < 10; i++) events.push(await sendEvent(h.app, { type: 'crash.test', data: { i } }));
    // Simulate the crash: start the workflows of a claimed batch, then roll back instead of
    // committing, so the rows come back as if the relay died mid-batch.
    const crashing = newRelay(10) as any;
    const db = await h.pool.connect();
    await db.query('BEGIN');
    const { rows } = await db.query(
      `SELECT o.event_id, e.tenant_id, e.only_endpoint_id, e.type, e.channels, o.relay_attempts FROM outbox o JOIN events e ON e.id = o.event_id ORDER BY o.created_at LIMIT 5 FOR UPDATE OF o SKIP LOCKED`,
    );
    expect(rows).toHaveLength(5);
    await crashing.startWorkflows(rows);
    await db.query('ROLLBACK');
    db.release();

    const survivor = newRelay(10);
    await survivor.start();
    await waitFor(async () => (await h.pool.query('SELECT count(*)::int AS n FROM outbox')).rows[0].n === 0, 30_000, 'outbox drained');
    await survivor.stop();
    // It started only the five the crashed relay had not; the other five were already there.
    expect(survivor.started).toBe(5);
    await waitFor(() => rx.requests.length >= 10, 60_000, 'deliveries');
    await new Promise((r) => setTimeout(r, 1000));
    const ids = rx.requests.map((r) => r.headers['webhook-id']);
    expect(ids).toHaveLength(10);
    expect(new Set(ids)).toEqual(new Set(events.map((e) => e.id)));
  });
});
