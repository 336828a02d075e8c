// Replicas: two APIs, two relays and two workers as real processes against one Temporal and one
// Postgres, as production runs them. Every event reaches each endpoint (duplicates counted),
// the relays never start a workflow twice, a rolling restart of every process while events flow
// loses nothing, and SIGTERM lets a worker finish the attempt it has in flight.
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasPollers } from '../bench/lib/stack';
import { findFreePort } from '../src/dev/processes';
import { createEndpoint, createHarness, spawnRole, startReceiver, waitFor, type Harness, type Receiver } from './helpers';

type Role = 'api' | 'relay' | 'worker';
const API_KEY = `replicas-${randomBytes(12).toString('hex')}`;
// Past the receiver's slow answer below, so a drained attempt completes rather than being cut off.
const SHUTDOWN_GRACE_MS = 10_000;
const SLOW_ANSWER_MS = 2_000;
// Quick retries, but a deadline no overloaded CI machine reaches: a dead letter here would be a
// slow box, not a lost event, and would hide what the test is about.
const RETRY = { initialInterval: '200ms', backoffCoefficient: 2, maximumInterval: '2s', deadline: '30 minutes' };

interface Proc { role: Role; child: ChildProcess; port?: number; lines: string[] }

describe('replicas: 2 APIs, 2 relays, 2 workers as processes', () => {
  let h: Harness;
  let a: Receiver;
  let b: Receiver;
  let slow: Receiver;
  const procs: Proc[] = [];
  /** Exit codes of every process the test stopped on purpose. */
  const exits: Array<{ role: Role; code: number | null; signal: NodeJS.Signals | null }> = [];

  async function start(role: Role): Promise<Proc> {
    const port = role === 'api' ? await findFreePort() : undefined;
    const child = spawnRole(h, role, {
      HOOKLINE_API_KEY: API_KEY, HOOKLINE_LOG_FORMAT: 'json', HOOKLINE_LOG_LEVEL: 'info', HOOKLINE_RELAY_POLL_MS: '200',
      HOOKLINE_WORKER_SHUTDOWN_GRACE_MS: String(SHUTDOWN_GRACE_MS), ...(port ? { PORT: String(port) } : {}),
    }, ['ignore', 'pipe', 'inherit']);
    const proc: Proc = { role, child, port, lines: [] };
    createInterface({ input: child.stdout! }).on('line', (l) => proc.lines.push(l));
    procs.push(proc);
    await waitFor(async () => {
      if (child.exitCode !== null) throw new Error(`${role} exited with ${child.exitCode}`);
      if (role === 'api') return (await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => null))?.ok;
      if (role === 'worker') return hasPollers(h.client, h.taskQueue, child.pid);
      return proc.lines.some((l) => l.includes('relay started'));
    }, 90_000, `${role} ready`);
    return proc;
  }

  async function stop(proc: Proc): Promise<void> {
    procs.splice(procs.indexOf(proc), 1);
    const exited = new Promise<void>((resolve) => proc.child.once('exit', (code, signal) => {
      exits.push({ role: proc.role, code, signal });
      resolve();
    }));
    proc.child.kill('SIGTERM');
    await exited;
  }

  const apis = () => procs.filter((p) => p.role === 'api');

  /** A producer as it should be: Idempotency-Key per event, retried on another API when one is away. */
  async function submit(type: string, n: number): Promise<string> {
    const key = `${type}-${n}`;
    for (let attempt = 0; ; attempt++) {
      const list = apis();
      const api = list[(n + attempt) % Math.max(list.length, 1)];
      const res = api && await fetch(`http://127.0.0.1:${api.port}/v1/events`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${API_KEY}`, 'idempotency-key': key },
        body: JSON.stringify({ type, data: { n } }),
      }).catch(() => null);
      if (res?.status === 202) return ((await res.json()) as { id: string }).id;
      if (attempt > 100) throw new Error(`could not submit ${key}: ${res?.status}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Requests per event id at a receiver. */
  const arrivals = (r: Receiver) => {
    const counts = new Map<string, number>();
    for (const req of r.requests) counts.set(String(req.headers['webhook-id']), (counts.get(String(req.headers['webhook-id'])) ?? 0) + 1);
    return counts;
  };

  /** Waits until every event reached both endpoints; returns the duplicates each got. */
  async function expectDelivered(ids: string[]): Promise<{ duplicates: number }> {
    const missing = () => ids.filter((id) => !arrivals(a).has(id) || !arrivals(b).has(id));
    await waitFor(() => missing().length === 0, 180_000, `${ids.length} events at both endpoints`).catch(async (err: Error) => {
      const statuses = await h.pool.query(`SELECT status, count(*)::int AS n FROM deliveries WHERE event_id = ANY($1) GROUP BY 1`, [ids]);
      throw new Error(`${err.message}: ${missing().length} missing; deliveries ${JSON.stringify(statuses.rows)}`);
    });
    const duplicates = [a, b].reduce((sum, r) => sum + ids.reduce((s, id) => s + (arrivals(r).get(id)! - 1), 0), 0);
    // Hookline's own record agrees: one delivered row per event and endpoint.
    await waitFor(async () => (await h.pool.query(
      `SELECT count(*)::int AS n FROM deliveries WHERE event_id = ANY($1) AND status = 'delivered'`, [ids])).rows[0].n === ids.length * 2,
    30_000, 'deliveries recorded as delivered');
    // The relays started each workflow once: one run per event id, and the outbox is empty.
    const runs = new Map<string, number>();
    await waitFor(async () => {
      runs.clear();
      for await (const wf of h.client.workflow.list({ query: `TaskQueue = '${h.taskQueue}'` })) {
        if (ids.includes(wf.workflowId)) runs.set(wf.workflowId, (runs.get(wf.workflowId) ?? 0) + 1);
      }
      return runs.size === ids.length;
    }, 30_000, 'every workflow visible');
    expect([...runs.values()].filter((n) => n !== 1)).toEqual([]);
    const outbox = await h.pool.query(`SELECT count(*)::int AS n FROM outbox WHERE event_id = ANY($1)`, [ids]);
    expect(outbox.rows[0].n).toBe(0);
    return { duplicates };
  }

  beforeAll(async () => {
    h = await createHarness({ noRelay: true, noWorker: true });
    [a, b, slow] = await Promise.all([startReceiver(), startReceiver(), startReceiver()]);
    // The first attempt fails fast, so the second runs as a regular activity (the first is a
    // local one, inside the workflow task); that one answers slowly.
    slow.respond = (_req, n) => (n === 0 ? { status: 503 } : { status: 200, delayMs: SLOW_ANSWER_MS });
    await createEndpoint(h.app, { url: a.url, eventTypes: ['flow.*'], retry: RETRY });
    await createEndpoint(h.app, { url: b.url, eventTypes: ['flow.*'], retry: RETRY });
    await createEndpoint(h.app, { url: slow.url, eventTypes: ['drain.*'], retry: RETRY });
    // One at a time: six processes starting at once on two cores only slows each of them.
    for (const role of ['api', 'api', 'relay', 'relay', 'worker', 'worker'] as const) await start(role);
  }, 300_000);

  afterAll(async () => {
    await Promise.all(procs.slice().map((p) => stop(p)));
    await Promise.all([a, b, slow].map((r) => r?.close()));
    await h?.close();
  });

  it('delivers every event once per endpoint', async () => {
    const ids = await Promise.all(Array.from({ length: 50 }, (_, n) => submit('flow.steady', n)));
    expect(new Set(ids).size).toBe(50);
    const { duplicates } = await expectDelivered(ids);
    console.log(`replicas, steady: 50 events × 2 endpoints, ${duplicates} duplicate deliveries`);
    // No process died, nothing timed out: nothing may have been sent twice.
    expect(duplicates).toBe(0);
  }, 240_000);

  it('a rolling restart of every process while events flow loses nothing', async () => {
    const ids: string[] = [];
    let restarting = true;
    const producer = (async () => {
      // About 4 events/s for as long as the restarts take (~30 s on an idle 2-core box), capped
      // at 100 to stay CI-sized.
      for (let n = 0; (restarting && n < 100) || n < 20; n++) {
        ids.push(await submit('flow.rolling', n));
        await new Promise((r) => setTimeout(r, 250));
      }
    })();
    // Replace each process in turn: SIGTERM, wait for it to exit, start its successor.
    for (const role of ['api', 'relay', 'worker', 'api', 'relay', 'worker'] as const) {
      await stop(procs.find((p) => p.role === role)!);
      await start(role);
    }
    restarting = false;
    await producer;

    expect(new Set(ids).size).toBe(ids.length);
    const { duplicates } = await expectDelivered(ids);
    console.log(`replicas, rolling restart of 6 processes: ${ids.length} events × 2 endpoints, 0 lost, ${duplicates} duplicate deliveries`);
    const events = await h.pool.query(`SELECT count(*)::int AS n FROM events WHERE type = 'flow.rolling'`);
    expect(events.rows[0].n).toBe(ids.length); // producer retries never made a second event
    // Every process left on SIGTERM by itself: a clean drain, not a kill.
    expect(exits).toEqual(exits.map((e) => ({ ...e, code: 0, signal: null })));
  }, 420_000);

  it('SIGTERM lets a worker finish the attempt in flight, then exit', async () => {
    const id = await submit('drain.check', 0);
    await waitFor(() => slow.requests.filter((r) => r.headers['webhook-id'] === id).length === 2, 30_000, 'the slow attempt in flight');
    // Whichever worker holds the attempt, both are asked to stop while the receiver still thinks.
    const workers = procs.filter((p) => p.role === 'worker');
    const before = exits.length;
    await Promise.all(workers.map((w) => stop(w)));
    expect(exits.slice(before)).toEqual(workers.map(() => ({ role: 'worker', code: 0, signal: null })));

    // The attempt completed and was recorded before the process went (HOOKLINE_WORKER_SHUTDOWN_GRACE_MS;
    // without it the SDK cancels the activity at once and another worker sends it again later).
    const attempts = await h.pool.query(`SELECT attempt, status_code, outcome FROM attempts WHERE event_id = $1 ORDER BY id`, [id]);
    expect(attempts.rows).toEqual([
      { attempt: 1, status_code: 503, outcome: 'retrying' },
      { attempt: 2, status_code: 200, outcome: 'delivered' },
    ]);
    expect(slow.requests.filter((r) => r.headers['webhook-id'] === id)).toHaveLength(2);
  }, 120_000);
});
