// Retention on real Postgres: finished data older than HOOKLINE_RETENTION_DAYS goes (events,
// deliveries, attempts, expired secrets), anything a workflow may still need stays, and the relay
// process runs it. Rows are backdated with SQL instead of waiting days.
import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DeliveryStatus } from '../src/db/deliveries';
import type { Pool } from '../src/db/pool';
import { purgeExpiredData } from '../src/relay/retention';
import { createApiOnly, createHarness, spawnRole, waitFor, type Harness } from './helpers';

/** An event `ageDays` old with one delivery (and two attempts) per status given. */
async function seedEvent(pool: Pool, id: string, ageDays: number, statuses: DeliveryStatus[], opts: { outbox?: boolean } = {}) {
  await pool.query(
    `INSERT INTO events (id, type, data, created_at) VALUES ($1, 'retention.test', '{"n":1}', now() - make_interval(days => $2))`,
    [id, ageDays],
  );
  if (opts.outbox) await pool.query('INSERT INTO outbox (event_id) VALUES ($1)', [id]);
  for (const [i, status] of statuses.entries()) {
    const endpointId = `ep_${i}`;
    await pool.query(
      `INSERT INTO deliveries (event_id, endpoint_id, event_type, status, created_at) VALUES ($1, $2, 'retention.test', $3, now() - make_interval(days => $4))`,
      [id, endpointId, status, ageDays],
    );
    for (const attempt of [1, 2]) {
      await pool.query(
        `INSERT INTO attempts (event_id, endpoint_id, attempt, started_at, latency_ms, outcome) VALUES ($1, $2, $3, now(), 5, 'retrying')`,
        [id, endpointId, attempt],
      );
    }
  }
}

const count = async (pool: Pool, sql: string, params: unknown[] = []) => (await pool.query<{ n: number }>(`SELECT count(*)::int AS n ${sql}`, params)).rows[0].n;
const clear = async (pool: Pool) => pool.query('DELETE FROM events; DELETE FROM attempts');
const eventIds = async (pool: Pool) => (await pool.query<{ id: string }>('SELECT id FROM events ORDER BY id')).rows.map((r) => r.id);

describe('retention', () => {
  let api: Awaited<ReturnType<typeof createApiOnly>>;
  let pool: Pool;

  beforeAll(async () => {
    api = await createApiOnly();
    pool = api.pool;
  });
  afterAll(async () => {
    await api?.close();
  });

  it('deletes old finished events with their deliveries and attempts, and keeps what a workflow still needs', async () => {
    await seedEvent(pool, 'evt_old_delivered', 40, ['delivered', 'delivered']);
    await seedEvent(pool, 'evt_old_dropped', 40, ['dropped']);
    await seedEvent(pool, 'evt_old_no_endpoint', 40, []);
    await seedEvent(pool, 'evt_old_dead', 40, ['dead_lettered']);
    await seedEvent(pool, 'evt_old_pending', 40, ['pending']);
    await seedEvent(pool, 'evt_old_delivering', 40, ['delivering']);
    await seedEvent(pool, 'evt_old_mixed', 40, ['delivered', 'dead_lettered']);
    await seedEvent(pool, 'evt_old_unrelayed', 40, [], { outbox: true });
    await seedEvent(pool, 'evt_new_delivered', 1, ['delivered']);

    const result = await purgeExpiredData(pool, 30);
    expect(result).toMatchObject({ events: 3, attempts: 6 });
    expect(await eventIds(pool)).toEqual([
      'evt_new_delivered', 'evt_old_dead', 'evt_old_delivering', 'evt_old_mixed', 'evt_old_pending', 'evt_old_unrelayed',
    ]);
    for (const gone of ['evt_old_delivered', 'evt_old_dropped']) {
      expect(await count(pool, 'FROM deliveries WHERE event_id = $1', [gone])).toBe(0);
      expect(await count(pool, 'FROM attempts WHERE event_id = $1', [gone])).toBe(0);
    }
    // What stays keeps its history, dead letters included (they wait for a replay).
    expect(await count(pool, 'FROM attempts WHERE event_id = $1', ['evt_old_mixed'])).toBe(4);
    expect(await count(pool, 'FROM deliveries WHERE event_id = $1', ['evt_old_dead'])).toBe(1);

    // Once the dead letter is dropped (its retention ran out), the event goes on the next pass.
    await pool.query(`UPDATE deliveries SET status = 'dropped' WHERE event_id = 'evt_old_dead'`);
    expect((await purgeExpiredData(pool, 30)).events).toBe(1);
    expect(await eventIds(pool)).not.toContain('evt_old_dead');
    await clear(pool);
  });

  it('deletes in bounded batches until nothing old is left', async () => {
    for (let i = 0; i < 7; i++) await seedEvent(pool, `evt_batch_${i}`, 31, ['delivered']);
    const result = await purgeExpiredData(pool, 30, 2);
    expect(result.events).toBe(7);
    expect(await count(pool, 'FROM events')).toBe(0);
    expect(await count(pool, 'FROM attempts')).toBe(0);
  });

  it('0 days keeps everything', async () => {
    await seedEvent(pool, 'evt_keep', 400, ['delivered']);
    expect(await purgeExpiredData(pool, 0)).toEqual({ events: 0, attempts: 0, secrets: 0 });
    expect(await eventIds(pool)).toEqual(['evt_keep']);
    await clear(pool);
  });

  it('deletes secrets that stopped signing longer ago than the retention, keeps the rest', async () => {
    await pool.query(`INSERT INTO endpoints (id, url) VALUES ('ep_s', 'https://example.com/x')`);
    await pool.query(
      `INSERT INTO endpoint_secrets (endpoint_id, secret, expires_at) VALUES
         ('ep_s', 'long-expired', now() - interval '40 days'),
         ('ep_s', 'recently-expired', now() - interval '1 day'),
         ('ep_s', 'overlapping', now() + interval '1 hour'),
         ('ep_s', 'current', NULL)`,
    );
    expect((await purgeExpiredData(pool, 30)).secrets).toBe(1);
    const left = (await pool.query<{ secret: string }>(`SELECT secret FROM endpoint_secrets WHERE endpoint_id = 'ep_s' ORDER BY id`)).rows;
    expect(left.map((r) => r.secret)).toEqual(['recently-expired', 'overlapping', 'current']);
  });
});

describe('retention in the relay process', () => {
  let h: Harness;
  let child: ChildProcess | null = null;

  beforeAll(async () => {
    h = await createHarness({ noRelay: true, noWorker: true });
  });
  afterAll(async () => {
    child?.kill('SIGKILL');
    await h?.close();
  });

  it('runs a pass soon after start', async () => {
    await seedEvent(h.pool, 'evt_relay_old', 40, ['delivered']);
    await seedEvent(h.pool, 'evt_relay_dead', 40, ['dead_lettered']);
    child = spawnRole(h, 'relay', { HOOKLINE_RETENTION_DAYS: '30' });
    await waitFor(async () => !(await eventIds(h.pool)).includes('evt_relay_old'), 30_000, 'the relay to delete the old event');
    expect(await eventIds(h.pool)).toEqual(['evt_relay_dead']);
  });
});
