// Postgres round trips per event, counted per role (API, relay, worker) with a pool wrapper: a
// deterministic cost figure on a shared box where wall-clock is noise. Each role gets a pool of
// its own; the relay polls once an hour, so only NOTIFY wakes it and every query counted is one
// an event caused. The ceilings are today's counts: a change that adds a round trip fails here.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEndpoint, createHarness, quietLog, sendEvent, startReceiver, waitFor, type Harness, type Receiver } from './helpers';
import { createPool, type Pool } from '../src/db/pool';
import { Relay } from '../src/relay/relay';

const WRAPPED = Symbol('counted');

/** Counts every query a pool runs, through pool.query or a client from pool.connect. */
function counted(pool: Pool): { pool: Pool; n: () => number; reset: () => void; kinds: Map<string, number> } {
  let n = 0;
  const kinds = new Map<string, number>();
  const wrap = (target: { query: (...a: any[]) => any }) => {
    const query = target.query.bind(target);
    target.query = (...a: any[]) => {
      n += 1;
      const text = String(typeof a[0] === 'string' ? a[0] : a[0]?.text).replace(/\s+/g, ' ').slice(0, 50);
      kinds.set(text, (kinds.get(text) ?? 0) + 1);
      return query(...a);
    };
  };
  // Every checkout, pool.query's included, emits 'acquire': each client is wrapped once.
  pool.on('acquire', (client: any) => {
    if (client[WRAPPED]) return;
    client[WRAPPED] = true;
    wrap(client);
  });
  return { pool, n: () => n, reset: () => { n = 0; kinds.clear(); }, kinds };
}

describe('Postgres round trips per delivered event', () => {
  let h: Harness;
  let rx: Receiver;
  let relayPool: Pool;
  let workerPool: Pool;
  let relay: Relay;
  const api = { n: () => 0, reset: () => {}, kinds: new Map<string, number>() };
  let relayCount: ReturnType<typeof counted>;
  let workerCount: ReturnType<typeof counted>;

  beforeAll(async () => {
    const url = () => h.config.DATABASE_URL!;
    let wp: Pool | null = null;
    // A getter: the worker (started below) reads its pool when it starts, after the database exists.
    h = await createHarness({
      noRelay: true,
      noWorker: true,
      activities: { get pool() { return wp!; } } as { pool: Pool },
    });
    rx = await startReceiver();
    await createEndpoint(h.app, { url: rx.url, eventTypes: ['rt.*'] });
    const apiCount = counted(h.pool);
    Object.assign(api, { n: apiCount.n, reset: apiCount.reset, kinds: apiCount.kinds });
    relayPool = createPool(url(), 5);
    relayCount = counted(relayPool);
    wp = createPool(url(), 10);
    workerPool = wp;
    workerCount = counted(workerPool);
    relay = new Relay({ pool: relayPool, client: h.client, taskQueue: h.taskQueue, databaseUrl: url(), log: quietLog, batchSize: 50, pollMs: 3_600_000 });
  });
  afterAll(async () => {
    await relay?.stop();
    await rx?.close();
    await h?.close();
    await relayPool?.end();
    await workerPool?.end();
  });

  /** Received, and each workflow closed (its last query done). */
  async function delivered(ids: string[]) {
    await waitFor(() => ids.every((id) => rx.requests.some((r) => r.headers['webhook-id'] === id)), 30_000, 'deliveries');
    for (const id of ids) await h.client.workflow.getHandle(id).result();
  }

  it('one event at a time: API 2, relay 6, worker 2 (endpoint + gate + event + secrets, record + release)', async () => {
    await h.startWorker();
    await relay.start();
    // Warm-up: the first event pays for caches (event types, connections).
    await delivered([(await sendEvent(h.app, { type: 'rt.warm', data: {} })).id]);
    api.reset();
    relayCount.reset();
    workerCount.reset();
    const n = 10;
    for (let i = 0; i < n; i++) {
      const { id } = await sendEvent(h.app, { type: 'rt.one', data: { i } });
      await delivered([id]);
    }
    const per = { api: api.n() / n, relay: relayCount.n() / n, worker: workerCount.n() / n };
    console.log([...api.kinds, ...relayCount.kinds, ...workerCount.kinds].map(([k, v]) => `${v} × ${k}`).join('\n'));
    console.log(`round trips per event, one at a time: ${JSON.stringify(per)}`);
    // Insert + NOTIFY; the event-type cache's refresh (every 2 s) adds a fraction.
    expect(per.api).toBeLessThan(2.5);
    expect(per.relay).toBeLessThanOrEqual(6);
    expect(per.worker).toBeLessThanOrEqual(2);
  });

  it('a burst of 40 claimed in one batch: relay round trips do not grow per event', async () => {
    await relay.stop();
    const ids: string[] = [];
    for (let i = 0; i < 40; i++) ids.push((await sendEvent(h.app, { type: 'rt.burst', data: { i } })).id);
    relayCount.reset();
    workerCount.reset();
    await relay.relayBatch();
    await delivered(ids);
    console.log([...workerCount.kinds].map(([k, v]) => `${v} × ${k}`).join('\n'));
    // The worker's figure here includes attempts the endpoint's in-flight cap refused and retried.
    console.log(`burst of 40: relay ${relayCount.n()} round trips in all, worker ${workerCount.n() / 40} per event`);
    // BEGIN, claim, endpoints, delivery rows, DELETE, COMMIT: per batch, not per event.
    expect(relayCount.n()).toBeLessThanOrEqual(6);
  });
});
