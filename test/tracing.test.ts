// OpenTelemetry traces end to end, on the real stack: the api and the worker (relaying, as
// deployed by default) run as child processes with the standard OTEL_* variables and export OTLP/JSON to a collector in this
// process; the receiver here verifies with the receiver kit, its spans caught by an in-memory
// exporter. One trace per event must hold API → relay → workflow → activity → POST → receiver,
// each span under the right parent. With tracing off nothing is exported and no traceparent sent.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import Fastify, { type FastifyInstance } from 'fastify';
import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { hasPollers } from '../bench/lib/stack';
import { webhookReceiver } from '../src/receiver';
import { tracingRequested } from '../src/telemetry';
import { findFreePort } from '../src/dev/processes';
import { createEndpoint, createHarness, FAST_RETRY, spawnRole, waitFor, type Harness } from './helpers';

/** A span as both sources give it, normalised: OTLP kinds (1 internal, 2 server, 3 client, 4 producer). */
interface SpanOut {
  service: string;
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  kind: number;
  attributes: Record<string, unknown>;
  links: { traceId: string; spanId: string }[];
}

/** An OTLP/HTTP collector that takes JSON (OTEL_EXPORTER_OTLP_PROTOCOL=http/json). */
async function startCollector() {
  const spans: SpanOut[] = [];
  let requests = 0;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      requests += 1;
      if (req.url === '/v1/traces') spans.push(...parseOtlpJson(JSON.parse(Buffer.concat(chunks).toString('utf8'))));
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    spans,
    requests: () => requests,
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}

function attributesOf(list: { key: string; value: Record<string, unknown> }[] = []): Record<string, unknown> {
  return Object.fromEntries(list.map(({ key, value }) => {
    const v = Object.values(value)[0];
    return [key, 'intValue' in value ? Number(v) : v];
  }));
}

function parseOtlpJson(body: any): SpanOut[] {
  return (body.resourceSpans ?? []).flatMap((rs: any) => {
    const service = String(attributesOf(rs.resource?.attributes)['service.name']);
    return (rs.scopeSpans ?? []).flatMap((ss: any) => (ss.spans ?? []).map((s: any): SpanOut => ({
      service, traceId: s.traceId, spanId: s.spanId, parentSpanId: s.parentSpanId ?? '', name: s.name, kind: s.kind,
      attributes: attributesOf(s.attributes),
      links: (s.links ?? []).map((l: any) => ({ traceId: l.traceId, spanId: l.spanId })),
    })));
  });
}

/** The receiver's own spans (this process), in the same shape. */
const memory = new InMemorySpanExporter();
function receiverSpans(): SpanOut[] {
  return memory.getFinishedSpans().map((s) => ({
    service: 'receiver', traceId: s.spanContext().traceId, spanId: s.spanContext().spanId, parentSpanId: s.parentSpanId ?? '',
    name: s.name, kind: s.kind + 1, attributes: { ...s.attributes },
    links: s.links.map((l) => ({ traceId: l.context.traceId, spanId: l.context.spanId })),
  }));
}

interface Received { webhookId: string; type: string; traceparent: string | undefined }

/** A receiver verifying with the kit; `trace.retry` events get a 500 on their first attempt. */
async function startKitReceiver(secret: string) {
  const received: Received[] = [];
  const app: FastifyInstance = Fastify({ logger: false });
  await app.register(async (scope) => {
    await scope.register(webhookReceiver, { secrets: secret });
    scope.post('/webhook/hook-path-secret', async (req, reply) => {
      const type = String((req.webhook.payload as { type: string }).type);
      const tp = req.headers.traceparent;
      received.push({ webhookId: req.webhook.id, type, traceparent: typeof tp === 'string' ? tp : undefined });
      const first = received.filter((r) => r.webhookId === req.webhook.id).length === 1;
      return reply.code(type === 'trace.retry' && first ? 500 : 200).send({ ok: true });
    });
  });
  const address = await app.listen({ port: 0, host: '127.0.0.1' });
  return { url: `${address}/webhook/hook-path-secret?token=query-secret`, received, close: () => app.close() };
}

/** api and worker (with its relay) as child processes on `h`'s queue, ready to take an event. */
async function startRoles(h: Harness, env: Record<string, string>) {
  const port = await findFreePort();
  const children: ChildProcess[] = [];
  const start = async (role: 'api' | 'worker') => {
    const child = spawnRole(h, role, {
      HOOKLINE_LOG_LEVEL: 'info', HOOKLINE_LOG_FORMAT: 'json', HOOKLINE_RELAY_POLL_MS: '200',
      HOOKLINE_WORKFLOW_BUNDLE: inject('workflowBundlePath'), PORT: String(port), ...env,
    }, ['ignore', 'pipe', 'inherit']);
    children.push(child);
    const lines: string[] = [];
    createInterface({ input: child.stdout! }).on('line', (l) => lines.push(l));
    await waitFor(async () => {
      if (child.exitCode !== null) throw new Error(`${role} exited with ${child.exitCode}`);
      if (role === 'api') return (await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => null))?.ok;
      return lines.some((l) => l.includes('relay started')) && hasPollers(h.client, h.taskQueue, child.pid);
    }, 90_000, `${role} ready`);
  };
  await Promise.all([start('api'), start('worker')]);
  return {
    async send(type: string): Promise<string> {
      const res = await fetch(`http://127.0.0.1:${port}/v1/events`, {
        method: 'POST', headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ type, data: { marker: 'payload-marker-value' } }),
      });
      expect(res.status).toBe(202);
      return ((await res.json()) as { id: string }).id;
    },
    /** SIGTERM each, waiting for the exits: a traced role flushes its spans on the way out. */
    async stop() {
      await Promise.all(children.filter((c) => c.exitCode === null).map((c) => {
        const exited = new Promise((resolve) => c.once('exit', resolve));
        c.kill('SIGTERM');
        return exited;
      }));
    },
  };
}

const newSecret = () => `whsec_${randomBytes(32).toString('base64')}`;

describe('tracingRequested', () => {
  it('is on only with an OTLP endpoint, and off when the SDK or the exporter is turned off', () => {
    expect(tracingRequested({})).toBe(false);
    expect(tracingRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' })).toBe(true);
    expect(tracingRequested({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://c:4318/v1/traces' })).toBe(true);
    expect(tracingRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_SDK_DISABLED: 'true' })).toBe(false);
    expect(tracingRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_TRACES_EXPORTER: 'none' })).toBe(false);
  });
});

/** The OpenTelemetry SDK and Temporal's interceptor modules a fresh process has loaded, after `setup`. */
async function sdkModulesLoaded(env: Record<string, string>): Promise<string[]> {
  const dir = mkdtempSync(path.join(tmpdir(), 'hookline-otel-'));
  const script = path.join(dir, 'probe.ts');
  const repo = path.join(__dirname, '..');
  writeFileSync(script, `
    for (const m of ['src/worker/worker', 'src/relay/run', 'src/api/server', 'activities', 'src/receiver']) require(${JSON.stringify(repo)} + '/' + m);
    require(${JSON.stringify(repo)} + '/src/telemetry').startTracing('worker');
    const sdk = Object.keys(require.cache).filter((k) => /@opentelemetry[\\/](sdk|exporter|resources)|interceptors-opentelemetry/.test(k));
    console.log(JSON.stringify(sdk));
    process.exit(0);
  `);
  try {
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', script], { env: { PATH: process.env.PATH!, ...env } });
    return JSON.parse(stdout.trim().split('\n').pop()!);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('tracing off costs nothing', () => {
  it('loads no SDK, exporter or Temporal interceptor module without an OTLP endpoint', async () => {
    expect(await sdkModulesLoaded({})).toEqual([]);
    // The probe sees them when tracing is on, so the empty list above means something.
    expect((await sdkModulesLoaded({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:9' })).length).toBeGreaterThan(10);
  }, 60_000);
});

describe('traces with OTEL_EXPORTER_OTLP_ENDPOINT set', () => {
  let h: Harness;
  let collector: Awaited<ReturnType<typeof startCollector>>;
  let receiver: Awaited<ReturnType<typeof startKitReceiver>>;
  let roles: Awaited<ReturnType<typeof startRoles>>;
  let provider: NodeTracerProvider;
  const secret = newSecret();

  beforeAll(async () => {
    // The receiving app's own OpenTelemetry setup, as a user would have it.
    provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(memory)] });
    provider.register();
    collector = await startCollector();
    receiver = await startKitReceiver(secret);
    h = await createHarness({ noRelay: true, noWorker: true });
    await createEndpoint(h.app, { url: receiver.url, secret, retry: FAST_RETRY });
    roles = await startRoles(h, {
      OTEL_EXPORTER_OTLP_ENDPOINT: collector.url, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json', OTEL_BSP_SCHEDULE_DELAY: '100',
    });
  }, 180_000);

  afterAll(async () => {
    await roles?.stop();
    await receiver?.close();
    await collector?.close();
    await h?.close();
    await provider?.shutdown();
  });

  /** Every span of the trace the receiver saw for `eventId`, once the workflow span has come in. */
  async function traceOf(eventId: string, posts: number): Promise<SpanOut[]> {
    const mine = () => receiver.received.filter((r) => r.webhookId === eventId);
    const got = await waitFor(() => (mine().length === posts ? mine()[0] : undefined), 60_000, `${posts} deliveries of ${eventId}`);
    expect(got.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    const traceId = got.traceparent!.split('-')[1];
    const all = () => [...collector.spans, ...receiverSpans()].filter((s) => s.traceId === traceId);
    await waitFor(() => all().some((s) => s.name === 'RunWorkflow:deliverEvent'), 60_000, 'the workflow span');
    return all();
  }

  function chain(spans: SpanOut[]) {
    const one = (name: string) => {
      const found = spans.filter((s) => s.name === name);
      expect({ name, count: found.length }).toEqual({ name, count: 1 });
      return found[0];
    };
    const api = one('POST /v1/events');
    const relay = one('relay deliverEvent');
    const start = one('StartWorkflow:deliverEvent');
    const run = one('RunWorkflow:deliverEvent');
    const firstStart = one('StartActivity:firstAttempts');
    const firstRun = one('RunActivity:firstAttempts');
    expect(api).toMatchObject({ service: 'hookline-api', kind: 2, parentSpanId: '' });
    expect(api.attributes).toMatchObject({ 'http.request.method': 'POST', 'http.route': '/v1/events', 'http.response.status_code': 202 });
    // The relay (in the worker's process) runs later: a child of the API span (one trace per
    // event) and linked to it.
    expect(relay).toMatchObject({ service: 'hookline-worker', parentSpanId: api.spanId });
    expect(relay.links).toEqual([{ traceId: api.traceId, spanId: api.spanId }]);
    expect(start).toMatchObject({ service: 'hookline-worker', parentSpanId: relay.spanId });
    expect(run).toMatchObject({ service: 'hookline-worker', parentSpanId: start.spanId });
    expect(firstStart).toMatchObject({ service: 'hookline-worker', parentSpanId: run.spanId });
    expect(firstRun).toMatchObject({ service: 'hookline-worker', parentSpanId: firstStart.spanId });
    return { one, run, firstRun };
  }

  /** The POST spans (worker) and the receiver's verification under each, in attempt order. */
  function attempts(spans: SpanOut[], eventId: string) {
    const posts = spans.filter((s) => s.name === 'POST' && s.kind === 3);
    const sent = receiver.received.filter((r) => r.webhookId === eventId).map((r) => r.traceparent!.split('-')[2]);
    // The traceparent each attempt carried names that attempt's client span.
    expect(posts.map((p) => p.spanId).sort()).toEqual([...sent].sort());
    const ordered = sent.map((id) => posts.find((p) => p.spanId === id)!);
    for (const post of ordered) {
      expect(post.service).toBe('hookline-worker');
      expect(post.attributes).toMatchObject({ 'http.request.method': 'POST', 'server.address': '127.0.0.1', 'url.scheme': 'http' });
      const verify = spans.filter((s) => s.name === 'webhook verify' && s.parentSpanId === post.spanId);
      expect(verify).toHaveLength(1);
      expect(verify[0]).toMatchObject({ service: 'receiver', kind: 2, attributes: { 'messaging.message.id': eventId } });
    }
    return ordered;
  }

  function expectNothingPrivate(spans: SpanOut[]) {
    const text = JSON.stringify(spans);
    for (const leak of ['hook-path-secret', 'query-secret', 'payload-marker-value', secret]) expect(text).not.toContain(leak);
  }

  it('follows a delivered event from the API through relay, workflow and activity to the receiver', async () => {
    const eventId = await roles.send('trace.ok');
    const spans = await traceOf(eventId, 1);
    const { firstRun } = chain(spans);
    const [post] = attempts(spans, eventId);
    expect(post.parentSpanId).toBe(firstRun.spanId);
    expect(post.attributes['http.response.status_code']).toBe(200);
    expect(post.attributes['error.type']).toBeUndefined();
    expectNothingPrivate(spans);
  }, 120_000);

  it('follows a retried event: the failed first attempt and the retry, each to the receiver', async () => {
    const eventId = await roles.send('trace.retry');
    const spans = await traceOf(eventId, 2);
    const { one, run, firstRun } = chain(spans);
    const [failed, retried] = attempts(spans, eventId);
    expect(failed.parentSpanId).toBe(firstRun.spanId);
    expect(failed.attributes).toMatchObject({ 'http.response.status_code': 500, 'error.type': '500' });
    const retryStart = one('StartActivity:deliver');
    const retryRun = one('RunActivity:deliver');
    expect(retryStart.parentSpanId).toBe(run.spanId);
    expect(retryRun.parentSpanId).toBe(retryStart.spanId);
    expect(retried.parentSpanId).toBe(retryRun.spanId);
    expect(retried.attributes['http.response.status_code']).toBe(200);
    expectNothingPrivate(spans);
  }, 120_000);
});

describe('tracing off', () => {
  it('sends no traceparent and exports nothing when the SDK is disabled, even with an endpoint set', async () => {
    const collector = await startCollector();
    const secret = newSecret();
    const receiver = await startKitReceiver(secret);
    const h = await createHarness({ noRelay: true, noWorker: true });
    let roles: Awaited<ReturnType<typeof startRoles>> | undefined;
    try {
      const ep = await createEndpoint(h.app, { url: receiver.url, secret, retry: FAST_RETRY });
      roles = await startRoles(h, {
        OTEL_EXPORTER_OTLP_ENDPOINT: collector.url, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
        OTEL_BSP_SCHEDULE_DELAY: '100', OTEL_SDK_DISABLED: 'true',
      });
      const eventId = await roles.send('trace.ok');
      const got = await waitFor(() => receiver.received.find((r) => r.webhookId === eventId), 60_000, 'the delivery');
      expect(got.traceparent).toBeUndefined();
      await waitFor(async () => (await h.pool.query(
        `SELECT 1 FROM deliveries WHERE event_id = $1 AND endpoint_id = $2 AND status = 'delivered'`, [eventId, ep.id])).rowCount === 1,
      30_000, 'delivered');
      // A traced process flushes its spans on SIGTERM; these must have had none to send.
      await roles.stop();
      expect(collector.requests()).toBe(0);
    } finally {
      await roles?.stop();
      await receiver.close();
      await collector.close();
      await h.close();
    }
  }, 180_000);
});
