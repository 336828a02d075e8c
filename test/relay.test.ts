// The relay's promise: every committed event gets exactly one workflow, even with two relays
// racing and a relay that dies between starting workflows and deleting their outbox rows. And
// where it runs: inside `hookline worker` (default), starting each workflow eagerly on that
// worker, or as `hookline relay` beside workers that only deliver (HOOKLINE_WORKER_RELAY=false).
import type { ChildProcess } from 'node:child_process';
import os from 'node:os';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { hasPollers } from '../bench/lib/stack';
import { createEndpoint, createHarness, quietLog, sendEvent, spawnRole, startReceiver, waitFor, type Harness, type Receiver } from './helpers';
import { Relay } from '../src/relay/relay';
import { replay } from '../src/replay';

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

describe('a start that finds a run there (issue #21, item 2)', () => {
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

  const newRelay = () =>
    new Relay({ pool: h.pool, client: h.client, taskQueue: h.taskQueue, databaseUrl: h.config.DATABASE_URL!, log: quietLog, batchSize: 10, pollMs: 100 });
  const hits = (eventId: string, path: string) => rx.requests.filter((r) => r.headers['webhook-id'] === eventId && r.url === path).length;

  /** n endpoints of `type`, each on its own path of the receiver. */
  async function endpoints(type: string, n: number) {
    const eps: { id: string; path: string }[] = [];
    for (let i = 0; i < n; i++) eps.push({ ...(await createEndpoint(h.app, { url: `${rx.url}/${type}/${i}`, eventTypes: [type] })), path: `/webhook/${type}/${i}` });
    return eps;
  }

  // A replay of a pending delivery (before the relay got to the event) starts a run for that one
  // endpoint; the relay's start then finds it. The 409 for this replay is the API's; here the
  // replay goes straight to Temporal, as any run the relay did not start would.
  it('a replay run that closed before the relay: the relay delivers every other endpoint, the replayed one once', async () => {
    const eps = await endpoints('adopt.closed', 4);
    const ev = await sendEvent(h.app, { type: 'adopt.closed', data: {} });
    await h.pool.query(`INSERT INTO deliveries (event_id, endpoint_id, event_type, status, tenant_id) SELECT $1, unnest($2::text[]), $3, 'pending', 'default' ON CONFLICT DO NOTHING`, [ev.id, eps.map((e) => e.id), 'adopt.closed']);
    await replay(h.client, h.taskQueue, ev.id, 'adopt.closed', [eps[0].id]);
    await h.client.workflow.getHandle(ev.id).result();
    expect(eps.map((e) => hits(ev.id, e.path))).toEqual([1, 0, 0, 0]);

    const relay = newRelay();
    await relay.relayBatch();
    await waitFor(() => eps.every((e) => hits(ev.id, e.path) >= 1), 30_000, 'every endpoint delivered');
    expect(relay.started).toBe(0);
    expect(relay.adopted).toBe(1);
    await h.client.workflow.getHandle(ev.id).result();
    expect(eps.map((e) => hits(ev.id, e.path))).toEqual([1, 1, 1, 1]);
    const { rows } = await h.pool.query(`SELECT status FROM deliveries WHERE event_id = $1`, [ev.id]);
    expect(rows.map((r) => r.status)).toEqual(['delivered', 'delivered', 'delivered', 'delivered']);
  });

  it('a replay run still running: it is signalled and adopts the rest; the replayed endpoint is not sent again', async () => {
    const eps = await endpoints('adopt.running', 3);
    const ev = await sendEvent(h.app, { type: 'adopt.running', data: {} });
    // The replayed endpoint answers 400: a dead letter, so its run stays open (parked) for the relay.
    const answer = rx.respond;
    rx.respond = (req, n) => (req.url === eps[0].path ? { status: 400 } : answer(req, n));
    const status = async () => new Map((await h.pool.query(`SELECT endpoint_id, status FROM deliveries WHERE event_id = $1`, [ev.id])).rows.map((r) => [r.endpoint_id, r.status]));
    await h.pool.query(`INSERT INTO deliveries (event_id, endpoint_id, event_type, status, tenant_id) SELECT $1, unnest($2::text[]), $3, 'pending', 'default' ON CONFLICT DO NOTHING`, [ev.id, eps.map((e) => e.id), 'adopt.running']);
    await replay(h.client, h.taskQueue, ev.id, 'adopt.running', [eps[0].id]);
    await waitFor(async () => (await status()).get(eps[0].id) === 'dead_lettered', 30_000, 'replayed endpoint parked');
    expect((await h.client.workflow.getHandle(ev.id).describe()).status.name).toBe('RUNNING');

    const relay = newRelay();
    await relay.relayBatch();
    await waitFor(async () => [...(await status()).values()].filter((s) => s === 'delivered').length === 2, 30_000, 'the rest delivered');
    expect(relay.adopted).toBe(1);
    rx.respond = answer;
    expect(eps.map((e) => hits(ev.id, e.path))).toEqual([1, 1, 1]);
    expect((await status()).get(eps[0].id)).toBe('dead_lettered');
    // One run did it all: the relay signalled the replay's run, it did not start another.
    const runs = await waitFor(async () => {
      const ids: string[] = [];
      for await (const w of h.client.workflow.list({ query: `WorkflowId = '${ev.id}'` })) ids.push(w.runId);
      return ids.length > 0 && ids;
    }, 10_000, 'the run listed');
    expect(runs).toHaveLength(1);
  });

  it('a replay run and a plan past one child: the run adopts through slice children, the replayed endpoint left out', async () => {
    const eps = await endpoints('adopt.wide', 120);
    const ev = await sendEvent(h.app, { type: 'adopt.wide', data: {} });
    const answer = rx.respond;
    rx.respond = (req, n) => (req.url === eps[0].path ? { status: 400 } : answer(req, n));
    const statuses = async () => (await h.pool.query(`SELECT status, count(*)::int AS n FROM deliveries WHERE event_id = $1 GROUP BY status ORDER BY status`, [ev.id])).rows;
    // The replay's run writes its one row; the relay then writes the other 119, with their plans.
    await replay(h.client, h.taskQueue, ev.id, 'adopt.wide', [eps[0].id]);
    await waitFor(async () => JSON.stringify(await statuses()) === JSON.stringify([{ status: 'dead_lettered', n: 1 }]), 30_000, 'replayed endpoint parked');

    const relay = newRelay();
    await relay.relayBatch();
    await waitFor(async () => JSON.stringify(await statuses()) === JSON.stringify([{ status: 'dead_lettered', n: 1 }, { status: 'delivered', n: 119 }]), 60_000, 'the rest delivered');
    rx.respond = answer;
    expect(eps.map((e) => hits(ev.id, e.path))).toEqual(eps.map(() => 1));
    expect(relay.adopted).toBe(1);
    // 119 pending past the run's 49 free EndpointIds places: three slice children of the run.
    for (const n of [1, 2, 3]) expect((await h.client.workflow.getHandle(`${ev.id}/${n}`).describe()).status.name).toBe('COMPLETED');
  });
});

describe('where the relay runs', () => {
  let h: Harness;
  let rx: Receiver;
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    h = await createHarness({ noRelay: true, noWorker: true });
    rx = await startReceiver();
    await createEndpoint(h.app, { url: rx.url, eventTypes: ['where.*'] });
  });
  afterAll(async () => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    await rx?.close();
    await h?.close();
  });

  /** A role as a child process, its JSON log lines collected; resolves once it works. */
  async function start(role: 'worker' | 'relay', env: Record<string, string> = {}) {
    const child = spawnRole(h, role, {
      HOOKLINE_LOG_FORMAT: 'json', HOOKLINE_LOG_LEVEL: 'info', HOOKLINE_RELAY_POLL_MS: '200',
      HOOKLINE_WORKFLOW_BUNDLE: inject('workflowBundlePath'), ...env,
    }, ['ignore', 'pipe', 'inherit']);
    children.push(child);
    const lines: Array<Record<string, unknown>> = [];
    createInterface({ input: child.stdout! }).on('line', (l) => {
      try {
        lines.push(JSON.parse(l));
      } catch {
        /* not a log record */
      }
    });
    await waitFor(async () => {
      if (child.exitCode !== null) throw new Error(`${role} exited with ${child.exitCode}`);
      const relaying = lines.some((l) => l.msg === 'relay started');
      return role === 'relay' ? relaying : relaying === (env.HOOKLINE_WORKER_RELAY !== 'false') && hasPollers(h.client, h.taskQueue, child.pid);
    }, 90_000, `${role} ready`);
    return { child, lines };
  }

  async function stop(child: ChildProcess): Promise<number | null> {
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    return exited;
  }

  /** Delivers `n` events of `type`; returns each one's first WorkflowTaskStarted identity. */
  async function deliverAndIdentities(type: string, n: number): Promise<string[]> {
    const ids: string[] = [];
    for (let i = 0; i < n; i++) ids.push((await sendEvent(h.app, { type, data: { i } })).id);
    await waitFor(() => ids.every((id) => rx.requests.some((r) => r.headers['webhook-id'] === id)), 60_000, `${type} delivered`);
    const identities: string[] = [];
    for (const id of ids) {
      const { events } = await h.client.workflow.getHandle(id).fetchHistory();
      identities.push(String(events?.find((e) => e.workflowTaskStartedEventAttributes)?.workflowTaskStartedEventAttributes?.identity));
    }
    return identities;
  }

  it('hookline worker relays the outbox itself and starts each workflow eagerly on itself', async () => {
    const worker = await start('worker');
    const identities = await deliverAndIdentities('where.worker', 5);
    // The first workflow task came back in the start response (Temporal records the starting
    // client's identity on it); a task that went through matching shows the poller's `<pid>@<host>`.
    expect(identities).toEqual(identities.map(() => `${worker.child.pid}@${os.hostname()} relay (eager start)`));

    expect(await stop(worker.child)).toBe(0);
    // On SIGTERM the relay stops claiming before the worker starts draining.
    const relayStopped = worker.lines.findIndex((l) => l.msg === 'relay stopped');
    const workerStopping = worker.lines.findIndex((l) => l.msg === 'Worker state changed' && l.state === 'STOPPING');
    expect(worker.lines[relayStopped]).toMatchObject({ started: 5, eagerlyStarted: 5 });
    expect(workerStopping).toBeGreaterThan(relayStopped);
  });

  it('with HOOKLINE_WORKER_RELAY=false the worker only delivers and hookline relay starts the workflows', async () => {
    const worker = await start('worker', { HOOKLINE_WORKER_RELAY: 'false' });
    const relay = await start('relay');
    const identities = await deliverAndIdentities('where.apart', 3);
    // Started by another process: each first task went through matching to the worker's poller.
    expect(identities).toEqual(identities.map(() => `${worker.child.pid}@${os.hostname()}`));
    expect(worker.lines.some((l) => l.msg === 'relay started')).toBe(false);
    expect(await stop(relay.child)).toBe(0);
    expect(relay.lines.find((l) => l.msg === 'relay stopped')).toMatchObject({ started: 3, eagerlyStarted: 0 });
    expect(await stop(worker.child)).toBe(0);
  });
});
