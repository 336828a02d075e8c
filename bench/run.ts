// `npm run bench`: Hookline's speed, measured against what it is built from.
//
// Stands up its own Postgres database (on DATABASE_URL's server, dropped at the end) and its own
// Temporal dev server on a SQLite file in a temp dir (TEMPORAL_ADDRESS set: that server instead),
// runs api and worker (relaying) as child processes (api, relay and worker with
// HOOKLINE_WORKER_RELAY=false), and measures on one local receiver:
//   e2e      N events, POST /v1/events → receiver: throughput and latency under a burst
//   latency  events at light load (20/s, or half the burst rate if lower): POST → receiver latency
//   fanout   one event to F endpoints: time until all F have it
//   isolation  a receiver that never answers with hundreds of deliveries queued, beside the
//            healthy endpoint: the healthy one's submit→receipt latency (bench/lib/isolation.ts)
//   submit   POST /v1/events alone (relay and worker stopped) under autocannon
//   memory   peak RSS (VmHWM) of each process
//   https    TLS receiver: the worker's HTTP client with and without connection reuse, and
//            Hookline delivering to it (bench/lib/https.ts)
// and the baselines on the same machine and Temporal server:
//   empty    a workflow that returns at once, started directly by a client (bench/bare/)
//   local    a workflow whose one LOCAL activity POSTs the same payload, same HTTP client
//   bare     a one-activity workflow that POSTs the same payload with the same HTTP client,
//            started directly by a client (bench/bare/), same worker settings
//   raw      the same POSTs in a plain loop, no Temporal
//   fastify  a bare Fastify route writing one row, under the same autocannon load
// With the dev server, e2e and its baselines run once per SQLite setting (default, WAL) so the
// better one can be chosen. Prints a table; writes bench/results/<timestamp>.json.
//
// Options (flag or env): --events/BENCH_EVENTS (2000), --concurrency/BENCH_CONCURRENCY (32, the
// producer's), --latency-events/BENCH_LATENCY_EVENTS (500), --fanout/BENCH_FANOUT (100),
// --submit-seconds/BENCH_SUBMIT_SECONDS (10), --connections/BENCH_CONNECTIONS (32, autocannon),
// --pragmas/BENCH_PRAGMAS (both | default | wal), --phases/BENCH_PHASES (comma list of
// raw,empty,local,bare,e2e,latency,fanout,isolation,submit,https; default all),
// --isolation-backlog/BENCH_ISOLATION_BACKLOG (300, deliveries queued for the hanging endpoint), --payload-bytes/BENCH_PAYLOAD_BYTES (512).
// --workers/BENCH_WORKERS (1; a list such as 1,2 runs the Hookline phases once per count of worker
// processes on one task queue, to see how delivery scales with workers against one Temporal),
// BENCH_MAX_IN_FLIGHT (50, the e2e endpoint's maxInFlight).
// HOOKLINE_* variables (HOOKLINE_WORKER_MAX_ACTIVITIES, HOOKLINE_RELAY_BATCH_SIZE,
// HOOKLINE_LOG_LEVEL, …) pass through to the roles and are recorded with the results.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import pg from 'pg';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { findFreePort } from '../src/dev/processes';
import { VERSION } from '../src/version';
import { cpuSecondsOfExecutable, machineCpu, pidsOfExecutable, postgresCpuSeconds, procStats, REPO, sleep, spawnNode, type ChildProc } from './lib/procs';
import { createEndpoint, samplePayload, submitBurst, submitEvent, submitPaced, type Submitted } from './lib/producer';
import { runHttpsPhase } from './lib/https';
import { runIsolationPhase } from './lib/isolation';
import { BenchReceiver } from './lib/receiver';
import {
  connectTemporal, createDatabase, DEFAULT_ADMIN_URL, hasPollers, HooklineRoles, PRAGMA_SETS, startTemporal,
  type TemporalHandle,
} from './lib/stack';
import { latency, now, pool, round, table, type Latency } from './lib/stats';
import { hopBreakdown } from './lib/hops';

Runtime.install({ logger: new DefaultLogger('ERROR') });

const PHASES = ['raw', 'empty', 'local', 'bare', 'e2e', 'latency', 'fanout', 'isolation', 'submit', 'https'] as const;
type Phase = (typeof PHASES)[number];
const LIGHT_LOAD_PER_SECOND = 20;

function options() {
  const { values } = parseArgs({
    options: {
      events: { type: 'string' },
      concurrency: { type: 'string' },
      'latency-events': { type: 'string' },
      fanout: { type: 'string' },
      'submit-seconds': { type: 'string' },
      connections: { type: 'string' },
      pragmas: { type: 'string' },
      phases: { type: 'string' },
      'payload-bytes': { type: 'string' },
      workers: { type: 'string' },
      'isolation-backlog': { type: 'string' },
    },
  });
  const env = process.env;
  const num = (flag: string | undefined, name: string, dflt: number) => {
    const v = Number(flag ?? env[name] ?? dflt);
    if (!Number.isFinite(v) || v < 0) throw new Error(`${name}: not a number`);
    return v;
  };
  const pragmas = values.pragmas ?? env.BENCH_PRAGMAS ?? 'both';
  if (!['both', 'default', 'wal'].includes(pragmas)) throw new Error('BENCH_PRAGMAS: both, default or wal');
  const phases = (values.phases ?? env.BENCH_PHASES ?? PHASES.join(',')).split(',').map((s) => s.trim()) as Phase[];
  for (const p of phases) if (!PHASES.includes(p)) throw new Error(`BENCH_PHASES: unknown phase ${p}`);
  // Worker processes for the Hookline phases, one run per count: --workers 1,2 compares scaling.
  const workers = String(values.workers ?? env.BENCH_WORKERS ?? '1').split(',').map(Number);
  if (workers.some((n) => !Number.isInteger(n) || n < 1)) throw new Error('BENCH_WORKERS: a list of worker counts >= 1');
  return {
    workers,
    events: num(values.events, 'BENCH_EVENTS', 2000),
    concurrency: num(values.concurrency, 'BENCH_CONCURRENCY', 32),
    latencyEvents: num(values['latency-events'], 'BENCH_LATENCY_EVENTS', 500),
    fanout: num(values.fanout, 'BENCH_FANOUT', 100),
    isolationBacklog: num(values['isolation-backlog'], 'BENCH_ISOLATION_BACKLOG', 300),
    submitSeconds: num(values['submit-seconds'], 'BENCH_SUBMIT_SECONDS', 10),
    connections: num(values.connections, 'BENCH_CONNECTIONS', 32),
    payloadBytes: num(values['payload-bytes'], 'BENCH_PAYLOAD_BYTES', 512),
    pragmas: pragmas as 'both' | 'default' | 'wal',
    phases: new Set(phases),
  };
}

type Options = ReturnType<typeof options>;

const log = (msg: string) => console.log(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}`);

/** Waits until `count()` reaches `target`, logging progress; throws after `timeoutMs` without progress. */
async function waitCount(what: string, count: () => number, target: number, stallMs = 120_000): Promise<void> {
  let last = -1;
  let lastChange = Date.now();
  let lastLog = Date.now();
  for (;;) {
    const c = count();
    if (c >= target) return;
    if (c !== last) {
      last = c;
      lastChange = Date.now();
    }
    if (Date.now() - lastChange > stallMs) throw new Error(`${what}: stuck at ${c}/${target} for ${stallMs / 1000} s`);
    if (Date.now() - lastLog > 5_000) {
      log(`  ${what}: ${c}/${target}`);
      lastLog = Date.now();
    }
    await sleep(20);
  }
}

/**
 * CPU seconds per process over a phase, our database's Postgres backends, the bench process
 * itself, and what the rest of the machine used meanwhile (`other`: shared Postgres processes,
 * and anything else running — on a shared box, the reason a number is noisy).
 */
function cpuMeter(procs: () => Array<{ name: string; pid: number }>, database?: string, external = false) {
  const start = new Map<string, number>();
  for (const p of procs()) start.set(p.name, procStats(p.pid)?.cpuSeconds ?? 0);
  const pg0 = database ? postgresCpuSeconds(database) : 0;
  // An external server on this machine (bench/temporal-postgres.sh): its process and its databases.
  const ext = () => ({
    temporal: cpuSecondsOfExecutable('temporal-server'),
    // Its databases: the names scripts/temporal-postgres.sh was given (TEMPORAL_DB, …) or its defaults.
    temporalPostgres:
      postgresCpuSeconds(process.env.TEMPORAL_DB || 'temporal') +
      postgresCpuSeconds(process.env.TEMPORAL_VISIBILITY_DB || 'temporal_visibility'),
  });
  const ext0 = external ? ext() : null;
  const self0 = process.cpuUsage();
  const m0 = machineCpu();
  return () => {
    const out: Record<string, number> = {};
    for (const p of procs()) out[p.name] = round((procStats(p.pid)?.cpuSeconds ?? 0) - (start.get(p.name) ?? 0), 2);
    if (database) out.postgres = round(postgresCpuSeconds(database) - pg0, 2);
    if (ext0) {
      const e = ext();
      out.temporal = round(e.temporal - ext0.temporal, 2);
      out.temporalPostgres = round(e.temporalPostgres - ext0.temporalPostgres, 2);
    }
    const self = process.cpuUsage(self0);
    out.bench = round((self.user + self.system) / 1e6, 2);
    const m1 = machineCpu();
    const busy = (m1.busy - m0.busy) / 100;
    const known = Object.values(out).reduce((a, b) => a + b, 0);
    out.other = round(Math.max(0, busy - known), 2);
    out.machineBusyPct = round((100 * (m1.busy - m0.busy)) / Math.max(1, m1.total - m0.total), 0);
    return out;
  };
}

/** Share of the machine's CPU that was busy over `ms`, before a run starts (is the box quiet?). */
async function machineBusyPct(ms: number): Promise<number> {
  const m0 = machineCpu();
  await sleep(ms);
  const m1 = machineCpu();
  return round((100 * (m1.busy - m0.busy)) / Math.max(1, m1.total - m0.total), 0);
}

/** History length of a closed workflow: the work Temporal did for one event (waits for it to close). */
async function historyLength(client: Awaited<ReturnType<typeof connectTemporal>>['client'], workflowId: string): Promise<number | null> {
  try {
    const handle = client.workflow.getHandle(workflowId);
    await handle.result();
    return (await handle.describe()).historyLength;
  } catch {
    return null;
  }
}

interface ThroughputResult {
  events: number;
  seconds: number;
  perSecond: number;
  latencyMs: Latency;
  cpu?: Record<string, number>;
}

function measure(sent: Submitted[] | Array<{ id: string; sentAt: number }>, rx: BenchReceiver, p: string): ThroughputResult {
  const lat: number[] = [];
  let last = 0;
  for (const s of sent) {
    const a = rx.arrivals.get(rx.key(p, s.id));
    if (!a) throw new Error(`${s.id} never arrived at ${p}`);
    lat.push(a.first - s.sentAt);
    last = Math.max(last, a.first);
  }
  const first = Math.min(...sent.map((s) => s.sentAt));
  const seconds = (last - first) / 1000;
  return { events: sent.length, seconds: round(seconds, 2), perSecond: round(sent.length / seconds, 1), latencyMs: latency(lat) };
}

/** Like measure(), from workflow completion times (the `empty` baseline has no arrivals). */
function measureCompleted(sent: Array<{ id: string; sentAt: number }>, done: Map<string, number>): ThroughputResult {
  const lat = sent.map((s) => done.get(s.id)! - s.sentAt);
  const first = Math.min(...sent.map((s) => s.sentAt));
  const seconds = (Math.max(...done.values()) - first) / 1000;
  return { events: sent.length, seconds: round(seconds, 2), perSecond: round(sent.length / seconds, 1), latencyMs: latency(lat) };
}

async function autocannonRun(url: string, seconds: number, connections: number, body: string) {
  const r = await autocannon({
    url,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
    connections,
    duration: seconds,
  });
  return {
    requestsPerSecond: round(r.requests.average, 0),
    latencyMs: { p50: r.latency.p50, p97_5: r.latency.p97_5, p99: r.latency.p99, max: r.latency.max },
    total: r.requests.total,
    ok: r['2xx'],
    non2xx: r.non2xx,
    errors: r.errors,
    connections,
    seconds,
  };
}

type SubmitResult = Awaited<ReturnType<typeof autocannonRun>> & { cpu?: Record<string, number> };

async function runRaw(o: Options, rx: BenchReceiver, logDir: string) {
  const p = '/raw';
  const n = o.events;
  const child = spawnNode({
    name: 'raw', script: path.join(__dirname, 'bare', 'raw-post.ts'),
    args: [rx.url(p), String(n), String(Number(process.env.HOOKLINE_WORKER_MAX_ACTIVITIES ?? 200)), String(o.payloadBytes)],
    env: process.env, logFile: path.join(logDir, 'raw.log'),
  });
  const exit = await child.exited;
  if (exit.code !== 0) throw new Error(`raw-post failed; see ${child.logFile}`);
  const { readFileSync } = await import('node:fs');
  const line = readFileSync(child.logFile, 'utf8').trim().split('\n').pop()!;
  const r = JSON.parse(line) as { n: number; failed: number; elapsedMs: number };
  return { events: n, failed: r.failed, seconds: round(r.elapsedMs / 1000, 2), perSecond: round(n / (r.elapsedMs / 1000), 1) };
}

/**
 * The floor baselines, one workflow per event started directly by a client (bench/bare/):
 * `bare` one activity POST, `local` one local-activity POST, `empty` a workflow that returns
 * at once (no POST: counted done when the workflow completes).
 */
type Baseline = 'bare' | 'local' | 'empty';
const BASELINE_WORKFLOW: Record<Baseline, string> = { bare: 'bareDeliver', local: 'localDeliver', empty: 'emptyWorkflow' };

async function runBare(o: Options, rx: BenchReceiver, temporal: TemporalHandle, client: Awaited<ReturnType<typeof connectTemporal>>['client'], tag: string, logDir: string, kind: Baseline = 'bare') {
  const taskQueue = `bench-${kind}-${tag}-${Date.now()}`;
  const worker = spawnNode({
    name: 'bare-worker', script: path.join(__dirname, 'bare', 'worker.ts'),
    env: { ...process.env, TEMPORAL_ADDRESS: temporal.address, TEMPORAL_TASK_QUEUE: taskQueue },
    logFile: path.join(logDir, `${kind}-worker-${tag}.log`),
  });
  try {
    const deadline = Date.now() + 90_000;
    while (!(await hasPollers(client, taskQueue, worker.pid))) {
      if (Date.now() > deadline || worker.child.exitCode !== null) throw new Error(`bare worker not ready; see ${worker.logFile}`);
      await sleep(200);
    }
    const p = `/${kind}/${tag}`;
    const data = samplePayload(o.payloadBytes);
    // `empty` never POSTs: its completions are counted instead of arrivals.
    let completed = 0;
    const done = new Map<string, number>();
    const startAll = async (ids: string[]) => {
      const sent: Array<{ id: string; sentAt: number }> = new Array(ids.length);
      // As many starts in flight as the relay has (one batch).
      await pool(ids.length, Number(process.env.HOOKLINE_RELAY_BATCH_SIZE ?? 100), async (i) => {
        const id = ids[i];
        const body = JSON.stringify({ id, type: `bench.${kind}`, timestamp: new Date().toISOString(), data });
        const sentAt = now();
        const handle = await client.workflow.start(BASELINE_WORKFLOW[kind], { taskQueue, workflowId: id, args: kind === 'empty' ? [] : [{ url: rx.url(p), id, body }] });
        sent[i] = { id, sentAt };
        if (kind === 'empty') void handle.result().then(() => (done.set(id, now()), (completed += 1)));
      });
      return sent;
    };
    const arrived = () => (kind === 'empty' ? completed : rx.distinct.get(p) ?? 0);
    // Unique per run: a persistent server (TEMPORAL_ADDRESS) still holds the last run's ids.
    const run = Date.now().toString(36);
    const warm = await startAll(Array.from({ length: 50 }, (_, i) => `${kind}_${tag}_${run}_warm_${i}`));
    await waitCount(`${kind} warm-up`, arrived, warm.length);
    const cpu = cpuMeter(() => [{ name: 'worker', pid: worker.pid }, ...(temporal.server ? [{ name: 'temporal', pid: temporal.server.pid }] : [])], undefined, !temporal.server);
    const sent = await startAll(Array.from({ length: o.events }, (_, i) => `${kind}_${tag}_${run}_${i}`));
    await waitCount(kind, arrived, warm.length + o.events);
    const result: ThroughputResult = { ...(kind === 'empty' ? measureCompleted(sent, done) : measure(sent, rx, p)), cpu: cpu() };
    worker.sample();
    return { ...result, historyEvents: await historyLength(client, sent[0].id), workerPeakRssMiB: round((worker.last?.hwmKb ?? 0) / 1024, 0) };
  } finally {
    await worker.stop();
  }
}

async function runHookline(o: Options, rx: BenchReceiver, temporal: TemporalHandle, client: Awaited<ReturnType<typeof connectTemporal>>['client'], tag: string, logDir: string, adminUrl: string, workers = 1) {
  const db = await createDatabase(adminUrl, 'hookline_bench');
  const roles = new HooklineRoles({
    databaseUrl: db.url,
    temporalAddress: temporal.address,
    logDir,
    settings: {
      apiPort: await findFreePort(),
      env: { HOOKLINE_LOG_LEVEL: process.env.HOOKLINE_LOG_LEVEL ?? 'info' },
      profile: process.env.BENCH_PROFILE
        ? { roles: process.env.BENCH_PROFILE.split(','), dir: path.join(os.tmpdir(), 'hookline-bench-profiles') }
        : undefined,
    },
  });
  const out: Record<string, unknown> = {};
  try {
    await roles.startAll(client);
    for (let i = 1; i < workers; i++) await roles.addWorker(client);
    const api = roles.apiUrl;
    const data = samplePayload(o.payloadBytes);
    const procList = () => [
      ...(['api', 'relay', 'worker'] as const).flatMap((r) => (roles.procs[r] ? [{ name: r, pid: roles.procs[r]!.pid }] : [])),
      ...roles.extraWorkers.map((w, i) => ({ name: `worker${i + 2}`, pid: w.pid })),
      ...(temporal.server ? [{ name: 'temporal', pid: temporal.server.pid }] : []),
    ];

    const e2ePath = `/e2e/${tag}`;
    // The highest in-flight cap an endpoint may declare: with the default (10) a one-endpoint burst
    // measures the gate (refused first attempts wait in durable timers: more tasks, more history),
    // not the delivery engine. BENCH_MAX_IN_FLIGHT=10 shows the default's cost.
    await createEndpoint(api, { url: rx.url(e2ePath), eventTypes: ['bench.e2e'], maxInFlight: Number(process.env.BENCH_MAX_IN_FLIGHT ?? 50) });
    let arrived = 0;
    const warm = await submitBurst(api, 'bench.e2e', 50, o.concurrency, data);
    arrived += warm.length;
    await waitCount('hookline warm-up', () => rx.distinct.get(e2ePath) ?? 0, arrived);

    if (o.phases.has('e2e')) {
      log(`${tag}: e2e, ${o.events} events`);
      const cpu = cpuMeter(procList, db.name, !temporal.server);
      const sent = await submitBurst(api, 'bench.e2e', o.events, o.concurrency, data);
      arrived += sent.length;
      await waitCount('e2e', () => rx.distinct.get(e2ePath) ?? 0, arrived);
      out.e2e = { ...measure(sent, rx, e2ePath), cpu: cpu(), historyEvents: await historyLength(client, sent[0].id) };
      const e2e = out.e2e as ThroughputResult;
      log(`${tag}: e2e ${e2e.perSecond}/s, p50 ${e2e.latencyMs.p50} ms, p99 ${e2e.latencyMs.p99} ms`);
    }

    if (o.phases.has('latency')) {
      const base = (out.e2e as ThroughputResult | undefined)?.perSecond ?? 50;
      // Light load, as a producer trickling events sees it: 20/s, or half the burst rate if lower.
      const rate = Math.min(LIGHT_LOAD_PER_SECOND, Math.max(5, Math.round(base / 2)));
      const n = Math.min(o.latencyEvents, rate * 30);
      log(`${tag}: latency, ${n} events at ${rate}/s`);
      const sent = await submitPaced(api, 'bench.e2e', n, rate, data);
      arrived += sent.length;
      await waitCount('latency', () => rx.distinct.get(e2ePath) ?? 0, arrived);
      const m = measure(sent, rx, e2ePath);
      // Hop by hop, over the last 100 (the first ones may still meet a cold worker).
      const sample = sent.slice(-100).map((s) => ({ ...s, arrivedAt: rx.arrivals.get(rx.key(e2ePath, s.id))!.first }));
      const hops = await hopBreakdown(db.url, client, sample);
      out.latency = { events: n, ratePerSecond: rate, latencyMs: m.latencyMs, hops };
      log(`${tag}: latency p50 ${m.latencyMs.p50} ms; hop p50s: ${Object.entries(hops).filter(([k]) => k !== 'samples' && k !== 'legend').map(([k, v]) => `${k} ${(v as Latency).p50}`).join(', ')}`);
    }

    if (o.phases.has('fanout') && o.fanout > 0) {
      log(`${tag}: fan-out to ${o.fanout} endpoints`);
      const paths = Array.from({ length: o.fanout }, (_, k) => `/fan/${tag}/${k}`);
      await pool(paths.length, 10, async (k) => {
        await createEndpoint(api, { url: rx.url(paths[k]), eventTypes: ['bench.fanout'] });
      });
      const runs: number[] = [];
      for (let r = 0; r < 3; r++) {
        const ev = await submitEvent(api, 'bench.fanout', { ...data, round: r });
        await waitCount('fan-out', () => paths.filter((p) => rx.arrivals.has(rx.key(p, ev.id))).length, paths.length);
        const last = Math.max(...paths.map((p) => rx.arrivals.get(rx.key(p, ev.id))!.first));
        runs.push(round(last - ev.sentAt, 0));
      }
      out.fanout = { endpoints: o.fanout, msUntilAllDelivered: runs };
    }

    if (o.phases.has('isolation')) {
      const rate = LIGHT_LOAD_PER_SECOND;
      log(`${tag}: isolation, ${rate * 10} healthy events at ${rate}/s alone, then again with ${o.isolationBacklog} deliveries queued at a receiver that never answers`);
      const r = await runIsolationPhase({
        api, backlog: o.isolationBacklog, healthyEvents: rate * 10, ratePerSecond: rate, concurrency: o.concurrency, payload: data, rx,
        healthyPath: e2ePath, waitCount: (what, count, target) => waitCount(what, count, target),
      });
      arrived += r.alone.length + r.healthy.length;
      const m = measure(r.healthy, rx, e2ePath);
      const alone = measure(r.alone, rx, e2ePath);
      out.isolation = {
        backlog: r.backlog, hangingMaxOpen: r.hangingMaxOpen, hangingReceived: r.hangingReceived, healthyEvents: r.healthy.length,
        ratePerSecond: rate, latencyMs: m.latencyMs, aloneLatencyMs: alone.latencyMs,
      };
      log(`${tag}: isolation: healthy p50 ${m.latencyMs.p50} ms, p99 ${m.latencyMs.p99} ms (alone: ${alone.latencyMs.p50} / ${alone.latencyMs.p99}); hanging receiver held ${r.hangingMaxOpen} at most`);
    }

    if (o.phases.has('submit')) {
      // The submit path alone: nothing else competes for the two cores.
      await roles.procs.relay?.stop();
      await roles.procs.worker?.stop();
      log(`${tag}: submit path, autocannon ${o.submitSeconds} s × ${o.connections} connections`);
      const cpu = cpuMeter(() => [{ name: 'api', pid: roles.procs.api!.pid }], db.name);
      out.submit = { ...(await autocannonRun(`${api}/v1/events`, o.submitSeconds, o.connections, JSON.stringify({ type: 'bench.submit', data }))), cpu: cpu() };
      // Those events are not for delivery: keep the next run's relay from finding them.
      const c = new pg.Client({ connectionString: db.url });
      await c.connect();
      await c.query('DELETE FROM outbox').finally(() => c.end());
    }

    const mem: Record<string, number> = {};
    for (const r of ['api', 'relay', 'worker'] as const) {
      const p = roles.procs[r];
      p?.sample();
      if (p?.last) mem[r] = round(p.last.hwmKb / 1024, 0);
    }
    const temporalPids = temporal.server ? [temporal.server.pid] : pidsOfExecutable('temporal-server');
    const hwm = temporalPids.reduce((a, pid) => a + (procStats(pid)?.hwmKb ?? 0), 0);
    if (hwm > 0) mem.temporal = round(hwm / 1024, 0);
    out.peakRssMiB = mem;
    return out;
  } finally {
    await roles.stopAll();
    await db.drop().catch((err) => log(`could not drop ${db.name}: ${(err as Error).message}`));
  }
}

async function runSubmitBaseline(o: Options, adminUrl: string, logDir: string): Promise<SubmitResult> {
  const db = await createDatabase(adminUrl, 'hookline_bench');
  const port = await findFreePort();
  const server: ChildProc = spawnNode({
    name: 'fastify', script: path.join(__dirname, 'bare', 'submit-server.ts'),
    env: { ...process.env, DATABASE_URL: db.url, PORT: String(port) },
    logFile: path.join(logDir, 'submit-server.log'),
  });
  try {
    const deadline = Date.now() + 60_000;
    while (!(await fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.ok, () => false))) {
      if (Date.now() > deadline || server.child.exitCode !== null) throw new Error(`submit server not ready; see ${server.logFile}`);
      await sleep(200);
    }
    log(`bare Fastify route, autocannon ${o.submitSeconds} s × ${o.connections} connections`);
    const cpu = cpuMeter(() => [{ name: 'api', pid: server.pid }], db.name);
    const r = await autocannonRun(`http://127.0.0.1:${port}/v1/events`, o.submitSeconds, o.connections, JSON.stringify({ type: 'bench.submit', data: samplePayload(o.payloadBytes) }));
    return { ...r, cpu: cpu() };
  } finally {
    await server.stop();
    await db.drop().catch(() => {});
  }
}

/**
 * The engine's targets against Temporal's own floor on the same server, as ratios (they hold
 * while other load on the box makes absolute numbers drift): e2e ≥ 0.8 × empty and ≥ 1.3 ×
 * bare; Temporal server CPU per delivered event ≤ 1.3 × empty's; history events per event ≤ 7;
 * light-load p50 ≤ 30 ms.
 */
function floorTargets(run: Record<string, any>) {
  const perEvent = (x: any, k: string) => (x?.cpu?.[k] !== undefined ? (1000 * x.cpu[k]) / x.events : undefined);
  const ratio = (a?: number, b?: number) => (a !== undefined && b ? round(a / b, 2) : undefined);
  const e2e = run.e2e?.perSecond;
  const temporalMs = { hookline: perEvent(run.e2e, 'temporal'), empty: perEvent(run.empty, 'temporal'), local: perEvent(run.local, 'temporal') };
  return {
    e2eToEmpty: { value: ratio(e2e, run.empty?.perSecond), target: '>= 0.8' },
    e2eToLocal: { value: ratio(e2e, run.local?.perSecond), target: '(floor of a webhook)' },
    e2eToBare: { value: ratio(e2e, run.bare?.perSecond), target: '>= 1.3' },
    temporalCpuMsPerEvent: { hookline: round(temporalMs.hookline ?? NaN, 1), empty: round(temporalMs.empty ?? NaN, 1), local: round(temporalMs.local ?? NaN, 1) },
    temporalCpuToEmpty: { value: ratio(temporalMs.hookline, temporalMs.empty), target: '<= 1.3' },
    historyEventsPerEvent: { value: run.e2e?.historyEvents, target: '<= 7' },
    lightLoadP50Ms: { value: run.latency?.latencyMs?.p50, target: '<= 30' },
  };
}

function machine() {
  const cpus = os.cpus();
  return {
    cpus: cpus.length,
    cpuModel: cpus[0]?.model ?? 'unknown',
    memoryGiB: round(os.totalmem() / 2 ** 30, 0),
    os: `${os.type()} ${os.release()}`,
    node: process.version,
  };
}

/** CPU the pipeline spent (every role process, Temporal, Postgres): not the bench, not unrelated load. */
function pipelineCpu(cpu: Record<string, number>): number {
  const pipeline = /^(api|relay|worker\d*|temporal|postgres|temporalPostgres)$/;
  return Object.entries(cpu).reduce((a, [k, v]) => a + (pipeline.test(k) ? v : 0), 0);
}

async function main(): Promise<void> {
  const o = options();
  const adminUrl = process.env.DATABASE_URL || DEFAULT_ADMIN_URL;
  const external = process.env.TEMPORAL_ADDRESS || undefined;
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'hookline-bench-'));
  const logDir = path.join(tmp, 'logs');
  mkdirSync(logDir);
  const startedAt = new Date();
  const settings = Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith('HOOKLINE_')));
  log(`temp dir ${tmp} (role logs in ${logDir})`);

  const idleBusyPct = await machineBusyPct(2_000);
  if (idleBusyPct > 15) log(`warning: the machine is ${idleBusyPct}% busy before the run; numbers will be noisy`);
  const rx = new BenchReceiver();
  await rx.up();
  const configs: string[] = external ? ['external'] : o.pragmas === 'both' ? ['default', 'wal'] : [o.pragmas];
  const runs: Array<Record<string, any>> = [];
  let raw: Awaited<ReturnType<typeof runRaw>> | null = null;
  let fastify: SubmitResult | null = null;
  let failed = false;
  try {
    if (o.phases.has('raw')) {
      log(`raw HTTP loop, ${o.events} POSTs`);
      raw = await runRaw(o, rx, logDir);
    }
    if (o.phases.has('submit')) fastify = await runSubmitBaseline(o, adminUrl, logDir);

    for (const [tag, workers] of configs.flatMap((c) => o.workers.map((w) => [c, w] as const))) {
      const pragmas = PRAGMA_SETS[tag] ?? {};
      log(`Temporal: ${external ? `external ${external}` : `dev server, SQLite file, pragmas ${JSON.stringify(pragmas)}`}`);
      const started = Date.now();
      const temporal = await startTemporal({ external, dbFile: path.join(tmp, `temporal-${tag}.db`), pragmas });
      const { client, connection } = await connectTemporal(temporal.address);
      const label = o.workers.length > 1 ? `${tag}, ${workers} worker${workers > 1 ? 's' : ''}` : tag;
      const run: Record<string, any> = { temporal: label, workers, pragmas, temporalStartMs: Date.now() - started };
      try {
        for (const kind of ['empty', 'local', 'bare'] as const) {
          if (!o.phases.has(kind)) continue;
          log(`${tag}: ${kind} Temporal baseline, ${o.events} workflows`);
          run[kind] = await runBare(o, rx, temporal, client, tag, logDir, kind);
          log(`${tag}: ${kind} ${run[kind].perSecond}/s`);
        }
        // Its own receiver path per worker count: the receiver keeps counting across runs.
        const hooklineTag = o.workers.length > 1 ? `${tag}-w${workers}` : tag;
        Object.assign(run, await runHookline(o, rx, temporal, client, hooklineTag, logDir, adminUrl, workers));
        if (run.e2e) run.e2eCpuMsPerEvent = round((1000 * pipelineCpu(run.e2e.cpu)) / run.e2e.events, 1);
        if (o.phases.has('https')) {
          log(`${tag}: https receiver, ${o.events} POSTs with and without connection reuse, then Hookline e2e`);
          run.https = await runHttpsPhase({
            posts: o.events, e2eEvents: Math.min(o.events, 500), concurrency: o.concurrency, payloadBytes: o.payloadBytes,
            logDir, adminUrl, temporalAddress: temporal.address, client,
          });
        }
        if (run.e2e && run.bare) {
          run.ratioToBareTemporal = round(run.e2e.perSecond / run.bare.perSecond, 2);
          // Noise-resistant companion of the throughput ratio: CPU the pipeline spent per event
          // (everything but the bench process and unrelated load), bare over Hookline.
          run.cpuMsPerEvent = { hookline: run.e2eCpuMsPerEvent, bare: round((1000 * pipelineCpu(run.bare.cpu)) / run.bare.events, 1) };
          run.cpuRatioToBareTemporal = round(run.cpuMsPerEvent.bare / run.cpuMsPerEvent.hookline, 2);
        }
        run.targets = floorTargets(run);
        if (run.e2e && raw) run.ratioToRawHttp = round(run.e2e.perSecond / raw.perSecond, 3);
        if (run.submit && fastify) run.submitRatioToFastify = round(run.submit.requestsPerSecond / fastify.requestsPerSecond, 2);
      } catch (err) {
        failed = true;
        run.error = (err as Error).message;
        log(`${tag}: FAILED: ${(err as Error).stack}`);
      } finally {
        runs.push(run);
        await connection.close();
        if (temporal.server) {
          const s = procStats(temporal.server.pid);
          if (s && run.peakRssMiB) run.peakRssMiB.temporal = round(s.hwmKb / 1024, 0);
        }
        await temporal.stop();
      }
    }
  } finally {
    await rx.down();
  }

  const withE2e = runs.filter((r) => r.e2e);
  const winner = withE2e.length > 1 ? withE2e.reduce((a, b) => (b.e2e.perSecond > a.e2e.perSecond ? b : a)).temporal : null;
  const results = {
    hookline: VERSION,
    startedAt: startedAt.toISOString(),
    durationSeconds: round((Date.now() - startedAt.getTime()) / 1000, 0),
    machine: { ...machine(), busyPctBeforeRun: idleBusyPct },
    options: { ...o, phases: [...o.phases] },
    settings: {
      ...settings,
      HOOKLINE_WORKER_MAX_ACTIVITIES: settings.HOOKLINE_WORKER_MAX_ACTIVITIES ?? '200 (default)',
      HOOKLINE_RELAY_BATCH_SIZE: settings.HOOKLINE_RELAY_BATCH_SIZE ?? '100 (default)',
      HOOKLINE_LOG_LEVEL: settings.HOOKLINE_LOG_LEVEL ?? 'info (default)',
    },
    temporal: external ? `external ${external}` : 'temporal server start-dev (CLI v1.5.1, server 1.29.1), SQLite file',
    raw,
    fastify,
    runs,
    fastestSqliteSetting: winner,
  };
  const resultsDir = path.join(REPO, 'bench', 'results');
  mkdirSync(resultsDir, { recursive: true });
  const file = path.join(resultsDir, `${startedAt.toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);

  console.log('');
  console.log(report(results));
  console.log(`\nresults: ${path.relative(process.cwd(), file)}`);
  if (!failed) rmSync(tmp, { recursive: true, force: true });
  else log(`role logs kept in ${logDir}`);
  process.exitCode = failed ? 1 : 0;
}

/** Worker CPU seconds, one figure per worker process ("1.2 + 1.1" with two). */
function workerCpu(cpu: Record<string, number>): string {
  return Object.keys(cpu).filter((k) => /^worker\d*$/.test(k)).map((k) => cpu[k]).join(' + ') || '-';
}

function report(r: { machine: ReturnType<typeof machine> & { busyPctBeforeRun: number }; raw: any; fastify: SubmitResult | null; runs: any[]; options: any }): string {
  const cols = r.runs.map((x) => x.temporal);
  const row = (label: string, f: (x: any) => unknown) => [label, ...r.runs.map((x) => {
    try {
      const v = f(x);
      return v === undefined || v === null || Number.isNaN(v) ? '-' : String(v);
    } catch {
      return '-';
    }
  })];
  const rows: Array<Array<string | number>> = [
    ['', ...cols.map((c) => `Temporal: ${c}`)],
    row(`Hookline e2e events/s (${r.options.events} events)`, (x) => x.e2e.perSecond),
    row('  worker processes', (x) => x.workers),
    row('  e2e pipeline CPU ms per event', (x) => x.e2eCpuMsPerEvent),
    row('  burst latency p50 / p95 / p99 ms', (x) => `${x.e2e.latencyMs.p50} / ${x.e2e.latencyMs.p95} / ${x.e2e.latencyMs.p99}`),
    row('  history events per workflow, Hookline / bare', (x) => `${x.e2e.historyEvents} / ${x.bare.historyEvents}`),
    row('empty workflows/s (returns at once)', (x) => x.empty.perSecond),
    row('local-activity POST workflows/s', (x) => x.local.perSecond),
    row('bare Temporal workflows/s', (x) => x.bare.perSecond),
    row('  TARGET e2e / empty (>= 0.8)', (x) => x.targets.e2eToEmpty.value),
    row('  e2e / local', (x) => x.targets.e2eToLocal.value),
    row('  TARGET e2e / bare (>= 1.3)', (x) => x.targets.e2eToBare.value),
    row('  Temporal CPU ms/event Hookline / empty / local', (x) => `${x.targets.temporalCpuMsPerEvent.hookline} / ${x.targets.temporalCpuMsPerEvent.empty} / ${x.targets.temporalCpuMsPerEvent.local}`),
    row('  TARGET Temporal CPU Hookline / empty (<= 1.3)', (x) => x.targets.temporalCpuToEmpty.value),
    row('  TARGET history events per event (<= 7)', (x) => x.targets.historyEventsPerEvent.value),
    row('  TARGET light-load p50 ms (<= 30)', (x) => x.targets.lightLoadP50Ms.value),
    row('  ratio Hookline / bare Temporal', (x) => x.ratioToBareTemporal),
    row('  CPU ms per event, Hookline / bare (ratio)', (x) => `${x.cpuMsPerEvent.hookline} / ${x.cpuMsPerEvent.bare} (${x.cpuRatioToBareTemporal})`),
    row('raw HTTP POSTs/s', () => r.raw?.perSecond),
    row('  ratio Hookline / raw HTTP', (x) => x.ratioToRawHttp),
    row('latency at light load: rate/s', (x) => x.latency.ratePerSecond),
    row('  p50 / p95 / p99 ms', (x) => `${x.latency.latencyMs.p50} / ${x.latency.latencyMs.p95} / ${x.latency.latencyMs.p99}`),
    row('  hop p50s ms: api / commit+notify+relay / dispatch / worker / post', (x) => ['api', 'commit+notify+relay', 'dispatch', 'worker', 'post'].map((k) => x.latency.hops?.[k]?.p50).join(' / ')),
    row(`fan-out to ${r.options.fanout}: ms until all delivered`, (x) => x.fanout.msUntilAllDelivered.join(' / ')),
    row('isolation: healthy p50 / p99 ms while another endpoint hangs', (x) => `${x.isolation.latencyMs.p50} / ${x.isolation.latencyMs.p99}`),
    row('  the same load with nothing hanging, p50 / p99 ms', (x) => `${x.isolation.aloneLatencyMs.p50} / ${x.isolation.aloneLatencyMs.p99}`),
    row('  hanging backlog / connections it held at most', (x) => `${x.isolation.backlog} / ${x.isolation.hangingMaxOpen}`),
    row('POST /v1/events req/s (autocannon)', (x) => x.submit.requestsPerSecond),
    row('  p50 / p99 ms', (x) => `${x.submit.latencyMs.p50} / ${x.submit.latencyMs.p99}`),
    row('bare Fastify 1-row insert req/s', () => r.fastify?.requestsPerSecond),
    row('  p50 / p99 ms', () => `${r.fastify!.latencyMs.p50} / ${r.fastify!.latencyMs.p99}`),
    row('  ratio submit / bare Fastify', (x) => x.submitRatioToFastify),
    row('  CPU ms per request api+postgres, Hookline / Fastify', (x) =>
      `${round((1000 * (x.submit.cpu.api + x.submit.cpu.postgres)) / x.submit.total, 2)} / ${round((1000 * (r.fastify!.cpu!.api + r.fastify!.cpu!.postgres)) / r.fastify!.total, 2)}`),
    row('HTTPS POSTs/s, reused / fresh connections (ratio)', (x) => `${x.https.client.reuse.postsPerSecond} / ${x.https.client.fresh.postsPerSecond} (${x.https.reuseSpeedup})`),
    row('  CPU ms per POST sender, reused / fresh', (x) => `${x.https.client.reuse.senderCpuMsPerPost} / ${x.https.client.fresh.senderCpuMsPerPost} (${x.https.senderCpuRatio})`),
    row('  CPU ms per POST receiver, reused / fresh', (x) => `${x.https.client.reuse.receiverCpuMsPerPost} / ${x.https.client.fresh.receiverCpuMsPerPost} (${x.https.receiverCpuRatio})`),
    row('  Hookline e2e over HTTPS events/s (TLS connections)', (x) => `${x.https.e2e.perSecond} (${x.https.e2e.tlsConnections} for ${x.https.e2e.events})`),
    row('peak RSS MiB api / relay / worker', (x) => `${x.peakRssMiB.api} / ${x.peakRssMiB.relay ?? '- (in the worker)'} / ${x.peakRssMiB.worker}`),
    row('peak RSS MiB Temporal server', (x) => x.peakRssMiB.temporal),
    row('e2e CPU s api/relay/worker(s)/temporal/bench', (x) => ['api', 'relay', 'worker', 'temporal', 'bench'].map((k) =>
      k === 'worker' ? workerCpu(x.e2e.cpu) : x.e2e.cpu[k] ?? '-').join(' / ')),
    row('  CPU s postgres (this db) / other', (x) => `${x.e2e.cpu.postgres} / ${x.e2e.cpu.other}`),
    row('bare CPU s worker/temporal/other', (x) => ['worker', 'temporal', 'other'].map((k) => x.bare.cpu[k] ?? '-').join(' / ')),
    row('  machine busy during e2e %', (x) => x.e2e.cpu.machineBusyPct),
  ];
  for (const x of r.runs) if (x.error) rows.push([`error (${x.temporal})`, x.error]);
  const m = r.machine;
  return `Hookline bench — ${m.cpus} × ${m.cpuModel}, ${m.memoryGiB} GiB, ${m.os}, Node ${m.node}; ` +
    `machine ${m.busyPctBeforeRun}% busy before the run\n\n${table(rows)}`;
}

main().catch((err) => {
  console.error(`bench: ${err instanceof Error ? err.stack : err}`);
  process.exit(1);
});
