// Observability on the real parts: the OpenAPI document, endpoint stats, the API's and the
// worker's Prometheus metrics, the Temporal Web UI's summary, details and visibility queries
// (the ones the README tells operators to paste), and the worker process's log lines.
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import readline from 'node:readline';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ApplicationFailure } from '@temporalio/common';
import { Validator } from '@seriousme/openapi-schema-validator';
import { createWorkerMetrics, serveMetrics, type MetricsServer, type WorkerMetrics } from '../src/metrics';
import { createLogger } from '../src/logger';
import { PinoTemporalLogger } from '../src/worker/logging';
import { FailureTypes } from '../activities';
import { findFreePort } from '../src/dev/processes';
import { workflowCurrentDetails, workflowStaticDetails } from '../src/temporal/workflow-details';
import { createEndpoint, createHarness, FAST_RETRY, sendEvent, spawnRole, startReceiver, waitFor, type Harness, type Receiver } from './helpers';

const unique = () => randomBytes(4).toString('hex');

async function deliveryStatus(h: Harness, eventId: string, endpointId: string): Promise<string | undefined> {
  const res = await h.app.inject({ method: 'GET', url: `/v1/events/${eventId}` });
  return res.json().deliveries?.find((d: any) => d.endpointId === endpointId)?.status;
}

/** The value of one sample in Prometheus text format, or undefined. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[3] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((l) => [l[1], l[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[4]);
  }
  return undefined;
}

describe('observability (in-process worker)', () => {
  let h: Harness;
  let metrics: WorkerMetrics;
  let metricsServer: MetricsServer;
  const receivers: Receiver[] = [];
  const receiver = async () => {
    const r = await startReceiver();
    receivers.push(r);
    return r;
  };

  beforeAll(async () => {
    metrics = createWorkerMetrics();
    h = await createHarness({ activities: { onAttempt: (a) => metrics.onAttempt(a), onDeliveryStatus: (s) => metrics.onDeliveryStatus(s) } });
    metrics.watch(h.worker);
    metricsServer = await serveMetrics(metrics.registry, 0, '127.0.0.1', () => h.worker.getState() === 'RUNNING');
  });
  afterAll(async () => {
    await metricsServer?.close();
    for (const r of receivers) await r.close();
    await h?.close();
  });

  it('serves a valid OpenAPI 3.1 document listing the /v1 routes, and Swagger UI at /docs', async () => {
    const res = await h.app.inject({ method: 'GET', url: '/docs/json' });
    expect(res.statusCode).toBe(200);
    const doc = res.json();
    const result = await new Validator().validate(doc);
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
    expect(doc.openapi).toMatch(/^3\.1\./);
    for (const [p, method] of [
      ['/v1/endpoints', 'post'], ['/v1/endpoints/{id}', 'patch'], ['/v1/endpoints/{id}/stats', 'get'],
      ['/v1/events', 'post'], ['/v1/events/{id}', 'get'], ['/v1/deliveries', 'get'],
      ['/v1/deliveries/{eventId}/{endpointId}/attempts', 'get'], ['/v1/deliveries/{eventId}/{endpointId}/replay', 'post'],
      ['/v1/dead-letters', 'get'], ['/v1/dead-letters/replay', 'post'],
    ]) {
      expect(doc.paths[p]?.[method], `${method.toUpperCase()} ${p}`).toBeDefined();
      expect(Object.keys(doc.paths[p][method].responses ?? {}).length).toBeGreaterThan(0);
    }
    // Generated from the zod schemas: the request body of POST /v1/endpoints requires url.
    const body = doc.paths['/v1/endpoints'].post.requestBody.content['application/json'].schema;
    expect(body.required).toContain('url');
    // Internal routes stay out of the document.
    expect(Object.keys(doc.paths).filter((p) => !p.startsWith('/v1/'))).toEqual([]);

    const ui = await h.app.inject({ method: 'GET', url: '/docs/' });
    expect(ui.statusCode).toBe(200);
    expect(ui.headers['content-type']).toMatch(/text\/html/);
  });

  it('reports endpoint stats: success rate, percentiles, streak and last failures', async () => {
    const rx = await receiver();
    let failing = true;
    rx.respond = () => ({ status: failing ? 503 : 200 });
    const type = `stats.${unique()}`;
    const ep = await createEndpoint(h.app, { eventTypes: [type], url: rx.url, retry: { ...FAST_RETRY, maximumInterval: '200ms' } });

    const first = await sendEvent(h.app, { type, data: {} });
    await waitFor(() => rx.requests.length >= 3, 30_000, 'three failed attempts');
    const during = (await h.app.inject({ method: 'GET', url: `/v1/endpoints/${ep.id}/stats` })).json();
    expect(during.consecutiveFailures).toBeGreaterThanOrEqual(3);
    expect(during.lastSuccessAt).toBeNull();
    expect(during.lastFailures[0]).toMatchObject({ eventId: first.id, statusCode: 503, error: 'HTTP 503' });
    expect(during.lastFailures.length).toBeLessThanOrEqual(5);

    failing = false;
    await waitFor(async () => (await deliveryStatus(h, first.id, ep.id)) === 'delivered', 30_000, 'delivered');
    const second = await sendEvent(h.app, { type, data: {} });
    await waitFor(async () => (await deliveryStatus(h, second.id, ep.id)) === 'delivered', 30_000, 'second delivered');

    const res = await h.app.inject({ method: 'GET', url: `/v1/endpoints/${ep.id}/stats?window=1h` });
    expect(res.statusCode).toBe(200);
    const s = res.json();
    const attempts = rx.requests.length;
    expect(s.window).toBe(3_600_000);
    expect(s.attempts).toEqual({ total: attempts, succeeded: 2, failed: attempts - 2 });
    expect(s.successRate).toBeCloseTo(2 / attempts, 5);
    expect(s.consecutiveFailures).toBe(0);
    expect(s.lastSuccessAt).not.toBeNull();
    expect(s.deliveries).toMatchObject({ delivered: 2, deadLettered: 0 });
    for (const p of ['p50', 'p95', 'p99'] as const) expect(s.latencyMs[p]).toBeGreaterThanOrEqual(0);
    expect(s.latencyMs.p50).toBeLessThanOrEqual(s.latencyMs.p95);
    expect(s.latencyMs.p95).toBeLessThanOrEqual(s.latencyMs.p99);

    expect((await h.app.inject({ method: 'GET', url: '/v1/endpoints/ep_missing/stats' })).statusCode).toBe(404);
    const bad = await h.app.inject({ method: 'GET', url: `/v1/endpoints/${ep.id}/stats?window=soon` });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().message).toMatch(/window/);
    const idle = await createEndpoint(h.app, { eventTypes: [`idle.${unique()}`], url: rx.url });
    const empty = (await h.app.inject({ method: 'GET', url: `/v1/endpoints/${idle.id}/stats` })).json();
    expect(empty).toMatchObject({ successRate: null, consecutiveFailures: 0, lastFailures: [], latencyMs: { p50: null, p95: null, p99: null } });
  });

  it('exposes Prometheus metrics: outbox and dead letters from the API, attempts from the worker', async () => {
    const rx = await receiver();
    rx.respond = (_req, n) => ({ status: n === 0 ? 500 : 400 });
    const type = `metrics.${unique()}`;
    const ep = await createEndpoint(h.app, { eventTypes: [type], url: rx.url, retry: FAST_RETRY });
    const ev = await sendEvent(h.app, { type, data: { card: '4242' } });
    await waitFor(async () => (await deliveryStatus(h, ev.id, ep.id)) === 'dead_lettered', 30_000, 'dead-lettered');

    const api = await h.app.inject({ method: 'GET', url: '/metrics' });
    expect(api.statusCode).toBe(200);
    expect(api.headers['content-type']).toMatch(/text\/plain/);
    expect(sample(api.body, 'hookline_database_up')).toBe(1);
    expect(sample(api.body, 'hookline_dead_letters_open', { endpoint_id: ep.id })).toBe(1);
    expect(sample(api.body, 'hookline_outbox_backlog')).toBeGreaterThanOrEqual(0);
    expect(sample(api.body, 'hookline_http_requests_total', { route: '/v1/events', method: 'POST', status_code: '202' })).toBeGreaterThanOrEqual(1);
    // Bounded labels: route templates, never raw paths with ids; no URLs at all.
    expect(api.body).not.toContain(`/v1/events/${ev.id}`);
    expect(api.body).not.toContain(rx.url);

    // With no relay running, a new event waits in the outbox and ages.
    await h.relay.stop();
    try {
      await sendEvent(h.app, { type: `outbox.${unique()}`, data: {} });
      await new Promise((r) => setTimeout(r, 1_100)); // past the scrape cache, and old enough to measure
      const waiting = (await h.app.inject({ method: 'GET', url: '/metrics' })).body;
      expect(sample(waiting, 'hookline_outbox_backlog')).toBeGreaterThanOrEqual(1);
      expect(sample(waiting, 'hookline_outbox_oldest_age_seconds')).toBeGreaterThan(0.5);
    } finally {
      await h.relay.start();
    }
    await waitFor(async () => {
      await new Promise((r) => setTimeout(r, 1_100));
      return sample((await h.app.inject({ method: 'GET', url: '/metrics' })).body, 'hookline_outbox_backlog') === 0;
    }, 30_000, 'outbox drained');

    const worker = await fetch(`http://127.0.0.1:${metricsServer.port}/metrics`);
    expect(worker.status).toBe(200);
    const text = await worker.text();
    expect(sample(text, 'hookline_delivery_attempts_total', { endpoint_id: ep.id, outcome: 'retrying' })).toBe(1);
    expect(sample(text, 'hookline_delivery_attempts_total', { endpoint_id: ep.id, outcome: 'failed' })).toBe(1);
    expect(sample(text, 'hookline_delivery_attempt_duration_seconds_count', { endpoint_id: ep.id })).toBe(2);
    expect(sample(text, 'hookline_deliveries_total', { endpoint_id: ep.id, outcome: 'dead_lettered' })).toBe(1);
    expect(sample(text, 'hookline_attempts_per_delivery_count', { outcome: 'failed' })).toBeGreaterThanOrEqual(1);
    expect(sample(text, 'hookline_worker_running')).toBe(1);
    expect(sample(text, 'hookline_worker_activities_in_flight')).toBeGreaterThanOrEqual(0);
    expect(text).not.toContain(ev.id);
    expect((await fetch(`http://127.0.0.1:${metricsServer.port}/healthz`)).status).toBe(200);
  });

  it('gives each delivery a readable summary and details in the Temporal Web UI', async () => {
    const rx = await receiver();
    rx.respond = () => ({ status: 422 });
    const type = `details.${unique()}`;
    const ep = await createEndpoint(h.app, { eventTypes: [type], url: rx.url, retry: FAST_RETRY });
    const ev = await sendEvent(h.app, { type, data: {} });
    await waitFor(async () => (await deliveryStatus(h, ev.id, ep.id)) === 'dead_lettered', 30_000, 'dead-lettered');

    const handle = h.client.workflow.getHandle(ev.id);
    const desc = await handle.describe();
    expect(await desc.staticSummary()).toBe(`${type} ${ev.id}`);
    const details = await desc.staticDetails();
    expect(details).toContain(ev.id);
    expect(details).toContain(type);
    expect(details).toContain('"endpointIds"');
    expect(details).not.toMatch(/https?:\/\//);

    // The "current details" the Web UI reads through the built-in metadata query.
    const meta: any = await handle.query('__temporal_workflow_metadata');
    expect(meta.currentDetails).toContain(`**${type}** to 1 endpoint: 1 dead lettered`);
    expect(meta.currentDetails).toContain(`| \`${ep.id}\` | dead_lettered | PermanentHttpError: HTTP 422 |`);
    expect(meta.currentDetails).not.toContain(rx.url);
  });

  it('answers the visibility queries the README gives operators', async () => {
    const rx = await receiver();
    const bad = await receiver();
    bad.respond = () => ({ status: 400 });
    const prefix = `vis${unique()}`;
    const good = await createEndpoint(h.app, { eventTypes: [`${prefix}.*`], url: rx.url, retry: FAST_RETRY });
    const broken = await createEndpoint(h.app, { eventTypes: [`${prefix}.failing`], url: bad.url, retry: FAST_RETRY });
    const paid = await sendEvent(h.app, { type: `${prefix}.paid`, data: {} });
    const failing = await sendEvent(h.app, { type: `${prefix}.failing`, data: {} });
    await waitFor(async () => (await deliveryStatus(h, failing.id, broken.id)) === 'dead_lettered', 30_000, 'dead-lettered');

    const ids = async (query: string) => {
      const out: string[] = [];
      for await (const wf of h.client.workflow.list({ query })) out.push(wf.workflowId);
      return out.sort();
    };
    // Visibility is eventually consistent: wait until each query sees what it should.
    const expectQuery = (query: string, expected: string[]) =>
      waitFor(async () => JSON.stringify(await ids(query)) === JSON.stringify([...expected].sort()), 20_000, `${query} → ${expected.join(', ')}`);

    await expectQuery(`EventType = '${prefix}.paid'`, [paid.id]);
    await expectQuery(`EventType STARTS_WITH '${prefix}.'`, [paid.id, failing.id]);
    await expectQuery(`EndpointIds = '${good.id}'`, [paid.id, failing.id]);
    await expectQuery(`DeliveryStatus = 'dead_lettered' AND DeadLetteredEndpoints = '${broken.id}'`, [failing.id]);
    await expectQuery(`DeliveryStatus = 'delivered' AND EventType = '${prefix}.paid'`, [paid.id]);
    await expectQuery(`DeliveryStatus IN ('dead_lettered', 'dropped') AND EndpointIds = '${broken.id}'`, [failing.id]);
    await expectQuery(`ExecutionStatus = 'Running' AND DeadLetteredEndpoints = '${broken.id}'`, [failing.id]);

    // The replay signal as the Web UI sends it: name `replay`, input {"endpointIds":[…]}.
    bad.respond = () => ({ status: 200 });
    await h.client.workflow.getHandle(failing.id).signal('replay', { endpointIds: [broken.id] });
    await waitFor(async () => (await deliveryStatus(h, failing.id, broken.id)) === 'delivered', 30_000, 'delivered after the signal');
    await expectQuery(`DeliveryStatus = 'dead_lettered' AND DeadLetteredEndpoints = '${broken.id}'`, []);
  });
});

describe('Web UI text', () => {
  it('keeps the details table readable: dead letters first, cells escaped, long fan-outs cut', () => {
    const states = new Map<string, { state: string; reason?: string }>();
    for (let i = 0; i < 30; i++) states.set(`ep_${String(i).padStart(2, '0')}`, { state: 'delivered' });
    states.set('ep_zz', { state: 'dead_lettered', reason: 'PermanentHttpError: HTTP 400 | `bad`\nline' });
    const md = workflowCurrentDetails('invoice.paid', states);
    const rows = md.split('\n').filter((l) => l.startsWith('| `'));
    expect(md.split('\n')[0]).toBe('**invoice.paid** to 31 endpoints: 30 delivered, 1 dead lettered');
    expect(rows).toHaveLength(25);
    expect(rows[0]).toBe("| `ep_zz` | dead_lettered | PermanentHttpError: HTTP 400 \\| 'bad' line |");
    expect(md).toContain('… and 6 more');
    expect(workflowStaticDetails('a.b', 'evt_1', Array.from({ length: 12 }, (_, i) => `ep_${i}`))).toContain('and 2 more');
  });
});

describe('logs', () => {
  // Streams hand lines on asynchronously.
  const flushed = () => new Promise((r) => setTimeout(r, 50));

  it('turns expected delivery failures from the Temporal runtime into debug lines without a stack', async () => {
    const out = new PassThrough();
    const lines: any[] = [];
    out.on('data', (chunk) => lines.push(...String(chunk).trim().split('\n').map((l) => JSON.parse(l))));
    const logger = new PinoTemporalLogger(createLogger({ HOOKLINE_LOG_LEVEL: 'debug', HOOKLINE_LOG_FORMAT: 'json' }, 'worker', out));

    const expected = ApplicationFailure.create({ message: 'HTTP 503', type: FailureTypes.retryable });
    logger.warn('Activity failed', { error: expected, activityType: 'deliver', workflowId: 'evt_1' });
    const surprise = ApplicationFailure.nonRetryable('event evt_2 does not exist', 'EventNotFound');
    logger.warn('Activity failed', { error: surprise, activityType: 'deliver' });
    logger.error('Worker failed', { error: new Error('boom') });
    logger.info('Worker state changed', { state: 'RUNNING' });
    await flushed();

    expect(lines).toHaveLength(4);
    expect(lines[0]).toMatchObject({ level: 20, msg: 'Activity failed', failureType: 'RetryableDeliveryError', error: 'HTTP 503', workflowId: 'evt_1' });
    expect(JSON.stringify(lines[0])).not.toContain('stack');
    expect(lines[1]).toMatchObject({ level: 40, msg: 'Activity failed' });
    expect(lines[1].err.message).toBe('event evt_2 does not exist');
    expect(lines[1].err.stack).toBeDefined();
    expect(lines[2]).toMatchObject({ level: 50, msg: 'Worker failed' });
    expect(lines[3]).toMatchObject({ level: 30, state: 'RUNNING' });
  });

  it('prints one readable line per record in pretty format', async () => {
    const out = new PassThrough();
    let text = '';
    out.on('data', (chunk) => (text += String(chunk)));
    const log = createLogger({ HOOKLINE_LOG_LEVEL: 'info', HOOKLINE_LOG_FORMAT: 'pretty' }, 'worker', out);
    log.info({ kind: 'attempt', eventId: 'evt_1', endpointId: 'ep_1', attempt: 1, statusCode: 200, latencyMs: 12, outcome: 'delivered', error: null },
      'delivered evt_1 → ep_1: 200 in 12 ms (attempt 1)');
    log.warn({ taskQueue: 'hookline', secret: 'whsec_abc' }, 'something to know');
    await flushed();
    const lines = text.trimEnd().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: delivered evt_1 → ep_1: 200 in 12 ms \(attempt 1\)$/);
    expect(lines[1]).toMatch(/WARN: something to know .*taskQueue=hookline/);
    expect(lines[1]).toContain('secret=[redacted]');
    expect(text).not.toContain('whsec_abc');
  });
});

describe('worker process', () => {
  let h: Harness;
  let rx: Receiver;
  let child: ChildProcess | null = null;

  beforeAll(async () => {
    h = await createHarness({ noWorker: true });
    rx = await startReceiver();
  });
  afterAll(async () => {
    child?.kill('SIGKILL');
    await rx?.close();
    await h?.close();
  });

  it('logs one JSON line per attempt, no payloads or secrets, no SDK warnings for receiver errors, and serves metrics', async () => {
    const metricsPort = await findFreePort();
    const lines: any[] = [];
    const raw: string[] = [];
    child = spawnRole(
      h,
      'worker',
      { HOOKLINE_LOG_LEVEL: 'info', HOOKLINE_LOG_FORMAT: 'json', HOOKLINE_WORKER_METRICS_PORT: String(metricsPort) },
      ['ignore', 'pipe', 'pipe'],
    );
    for (const stream of [child.stdout!, child.stderr!]) {
      readline.createInterface({ input: stream }).on('line', (line) => {
        raw.push(line);
        try {
          lines.push(JSON.parse(line));
        } catch {
          /* not JSON: kept in raw, checked below */
        }
      });
    }

    rx.respond = (_req, n) => ({ status: n < 2 ? 503 : 200 });
    const ep = await createEndpoint(h.app, { eventTypes: ['logs.test'], url: rx.url, retry: FAST_RETRY });
    const ev = await sendEvent(h.app, { type: 'logs.test', data: { marker: 'PAYLOAD-MUST-NOT-BE-LOGGED' } });
    await waitFor(async () => (await deliveryStatus(h, ev.id, ep.id)) === 'delivered', 60_000, 'delivered');
    await waitFor(() => lines.filter((l) => l.kind === 'attempt').length === 3, 10_000, 'three attempt lines');

    const attempts = lines.filter((l) => l.kind === 'attempt');
    expect(attempts.map((a) => [a.attempt, a.outcome, a.statusCode])).toEqual([[1, 'retrying', 503], [2, 'retrying', 503], [3, 'delivered', 200]]);
    for (const a of attempts) {
      expect(a).toMatchObject({ role: 'worker', eventId: ev.id, endpointId: ep.id });
      expect(typeof a.latencyMs).toBe('number');
      expect(a.msg).toContain(`${ev.id} → ${ep.id}`);
    }
    const output = raw.join('\n');
    expect(output).not.toContain('PAYLOAD-MUST-NOT-BE-LOGGED');
    expect(output).not.toContain('whsec_');
    // The SDK's "Activity failed" for a 503 is routine: not a warning, no stack.
    expect(lines.filter((l) => l.level >= 40)).toEqual([]);
    expect(raw.filter((l) => !l.startsWith('{'))).toEqual([]);

    const res = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
    const text = await res.text();
    expect(sample(text, 'hookline_delivery_attempts_total', { endpoint_id: ep.id, outcome: 'retrying' })).toBe(2);
    expect(sample(text, 'hookline_deliveries_total', { endpoint_id: ep.id, outcome: 'delivered' })).toBe(1);
    expect(sample(text, 'hookline_attempts_per_delivery_sum', { outcome: 'delivered' })).toBe(3);
    expect(sample(text, 'hookline_worker_running')).toBe(1);
    expect(sample(text, 'process_resident_memory_bytes')).toBeGreaterThan(0);
  });
});
