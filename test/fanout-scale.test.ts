// A fan-out far past one workflow start's size limit (issue #21, item 1): 3,000 endpoints whose
// retry policies are large (a 50-step schedule each). The relay's start input must not grow
// with the fan-out — each child loads its slice of endpoints from Postgres — and every endpoint
// gets the event once. And a start Temporal refuses as invalid is a visible failure, not a loop.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiOnly, createEndpoint, createHarness, quietLog, sendEvent, startReceiver, waitFor, type Harness, type Receiver } from './helpers';
import { Relay } from '../src/relay/relay';

const N = 3_000;
// 50 × 11 bytes of schedule per endpoint (the API allows 50 steps): the old start input, every endpoint's plan, was ~2.3 MB.
const LARGE_RETRY = { schedule: Array.from({ length: 50 }, (_, i) => 1_234_567_000 + i), deadline: '1h', deadLetterRetention: '60s' };

describe('a fan-out past the start size limit', () => {
  let h: Harness;
  let rx: Receiver;

  beforeAll(async () => {
    h = await createHarness({ noRelay: true, env: { HOOKLINE_MAX_ENDPOINTS_PER_TENANT: String(N + 10) } });
    rx = await startReceiver();
    // Eight at a time: the endpoints exist before the event, as in the report.
    const paths = Array.from({ length: N }, (_, i) => i);
    await Promise.all(Array.from({ length: 8 }, async () => {
      for (let i = paths.shift(); i !== undefined; i = paths.shift()) {
        await createEndpoint(h.app, { url: `${rx.url}/${'segment'.repeat(20)}/${i}`, eventTypes: ['huge.fanout'], retry: LARGE_RETRY });
      }
    }));
  }, 300_000);
  afterAll(async () => {
    await rx?.close();
    await h?.close();
  });

  it('delivers one event to 3,000 subscribed endpoints with large configs, once each', async () => {
    const ev = await sendEvent(h.app, { type: 'huge.fanout', data: { n: N } });
    await h.relay.start();
    await waitFor(async () => (await h.pool.query('SELECT count(*)::int AS n FROM outbox')).rows[0].n === 0, 60_000, 'relayed');
    await waitFor(async () => (await h.client.workflow.getHandle(ev.id).describe()).status.name === 'COMPLETED', 240_000, 'fan-out done');
    const paths = rx.requests.filter((r) => r.headers['webhook-id'] === ev.id).map((r) => r.url);
    // Every endpoint, once: 3,000 requests on 3,000 distinct paths.
    expect(paths).toHaveLength(N);
    expect(new Set(paths).size).toBe(N);
    const { rows } = await h.pool.query(`SELECT status, count(*)::int AS n, max(attempts) AS most FROM deliveries WHERE event_id = $1 GROUP BY status`, [ev.id]);
    expect(rows).toEqual([{ status: 'delivered', n: N, most: 1 }]);
    // The start carried no endpoint plans, and its search attribute lists none (children do).
    const { events } = await h.client.workflow.getHandle(ev.id).fetchHistory();
    const started = events![0].workflowExecutionStartedEventAttributes!;
    const inputBytes = (started.input?.payloads ?? []).reduce((n, p) => n + (p.data?.length ?? 0), 0);
    expect(inputBytes).toBeLessThan(2_048);
  }, 300_000);
});

describe('a start Temporal refuses as invalid', () => {
  let h: Harness;
  let rx: Receiver;

  beforeAll(async () => {
    h = await createHarness({ noRelay: true });
    rx = await startReceiver();
  });
  afterAll(async () => {
    await rx?.close();
    await h?.close();
  });

  it('dead-letters the deliveries with the reason, drops the outbox row and emits an operational event', async () => {
    const a = await createEndpoint(h.app, { url: `${rx.url}/a`, eventTypes: ['refused.start'] });
    const b = await createEndpoint(h.app, { url: `${rx.url}/b`, eventTypes: ['refused.start'] });
    const ev = await sendEvent(h.app, { type: 'refused.start', data: {} });
    // A task queue name past Temporal's length limit: the server answers INVALID_ARGUMENT.
    const relay = new Relay({ pool: h.pool, client: h.client, taskQueue: 'q'.repeat(1_100), databaseUrl: h.config.DATABASE_URL!, log: quietLog, batchSize: 10, pollMs: 100 });
    await relay.relayBatch();
    expect((await h.pool.query('SELECT count(*)::int AS n FROM outbox WHERE event_id = $1', [ev.id])).rows[0].n).toBe(0);
    const { rows } = await h.pool.query('SELECT endpoint_id, status, reason FROM deliveries WHERE event_id = $1 ORDER BY endpoint_id', [ev.id]);
    expect(rows.map((r) => r.endpoint_id)).toEqual([a.id, b.id].sort());
    for (const r of rows) {
      expect(r.status).toBe('dead_lettered');
      expect(r.reason).toMatch(/^Temporal refused the workflow start/);
    }
    // One report, in two copies: the event's tenant's and the operator feed's (src/ops-events.ts).
    const ops = await h.pool.query(`SELECT tenant_id, data FROM events WHERE type = 'hookline.event.start_refused' ORDER BY tenant_id`);
    expect(ops.rows.map((r) => r.tenant_id)).toEqual(['_operator', 'default']);
    for (const r of ops.rows) expect(r.data).toMatchObject({ eventId: ev.id, eventType: 'refused.start', deliveries: 2 });
    expect(relay.refused).toBe(1);
    // Nothing loops: the next pass claims only the two copies (their own starts refused the same
    // way, they are dead-lettered without another report), and then the outbox is empty.
    expect(await relay.relayBatch()).toBe(2);
    expect(await relay.relayBatch()).toBe(0);
    expect((await h.pool.query(`SELECT count(*)::int AS n FROM events WHERE type = 'hookline.event.start_refused'`)).rows[0].n).toBe(2);
  });

  it('an event with more subscribers than HOOKLINE_MAX_SUBSCRIBERS_PER_EVENT is dead-lettered with the limit named', async () => {
    for (let i = 0; i < 3; i++) await createEndpoint(h.app, { url: `${rx.url}/many/${i}`, eventTypes: ['too.many'] });
    const ev = await sendEvent(h.app, { type: 'too.many', data: {} });
    const relay = new Relay({ pool: h.pool, client: h.client, taskQueue: h.taskQueue, databaseUrl: h.config.DATABASE_URL!, log: quietLog, batchSize: 10, pollMs: 100, maxSubscribersPerEvent: 2 });
    await relay.relayBatch();
    const { rows } = await h.pool.query('SELECT status, reason FROM deliveries WHERE event_id = $1', [ev.id]);
    expect(rows).toHaveLength(3);
    for (const r of rows) expect(r).toEqual({ status: 'dead_lettered', reason: 'the event has 3 subscribed endpoints, more than HOOKLINE_MAX_SUBSCRIBERS_PER_EVENT (2)' });
    expect(relay.started).toBe(0);
    // No workflow was started for it.
    await expect(h.client.workflow.getHandle(ev.id).describe()).rejects.toThrow();
    expect(rx.requests.some((r) => r.headers['webhook-id'] === ev.id)).toBe(false);
  });
});

describe('endpoints per tenant', () => {
  it('POST /v1/endpoints past HOOKLINE_MAX_ENDPOINTS_PER_TENANT answers 422 naming the limit', async () => {
    const api = await createApiOnly({ HOOKLINE_MAX_ENDPOINTS_PER_TENANT: '2', HOOKLINE_ALLOWED_TARGETS: 'loopback' });
    try {
      const create = () => api.app.inject({ method: 'POST', url: '/v1/endpoints', payload: { url: 'http://127.0.0.1:9/x' } });
      // Three at once: the per-tenant lock lets exactly two through.
      const answers = await Promise.all([create(), create(), create()]);
      expect(answers.map((a) => a.statusCode).sort()).toEqual([201, 201, 422]);
      const refused = answers.find((a) => a.statusCode === 422)!.json();
      expect(refused.code).toBe('endpoint_limit');
      expect(refused.message).toMatch(/HOOKLINE_MAX_ENDPOINTS_PER_TENANT/);
    } finally {
      await api.close();
    }
  });

  it('rejects a limit that is not a positive integer, naming the variable', async () => {
    const { loadConfig } = await import('../src/config');
    expect(() => loadConfig({ HOOKLINE_MAX_ENDPOINTS_PER_TENANT: '0' })).toThrow(/HOOKLINE_MAX_ENDPOINTS_PER_TENANT/);
    expect(() => loadConfig({ HOOKLINE_MAX_SUBSCRIBERS_PER_EVENT: 'lots' })).toThrow(/HOOKLINE_MAX_SUBSCRIBERS_PER_EVENT/);
  });
});
