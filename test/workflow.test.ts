// deliverEvent's branches, one test each, on the real dev server with STUB activities: a worker
// of its own on a task queue of its own whose activities follow a per-event script instead of
// POSTing. Pins what end-to-end tests reach only by luck: a replay forwarded to a child that has
// closed, an endpoint adopted after continue-as-new, a replay before the endpoints are known, a
// replay during an attempt, and the dead-letter reason of each failure shape.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { Client, Connection } from '@temporalio/client';
import { ApplicationFailure, Context } from '@temporalio/activity';
import { NativeConnection, Worker } from '@temporalio/worker';
import type { AttemptRecord, DeliverInput, DeliverResult, FirstAttemptResult, FirstAttemptsInput, GateWait, ResolvedEndpoint } from '../activities';
import { resolveRetry, type RetryOverrides } from '../src/retry';
import { FANOUT_CHILD_BATCH, statusQuery } from '../workflows/deliver-event';
import { workflowStartMetadata } from '../src/temporal/workflow-details';
import { waitFor } from './helpers';

type Outcome = 'ok' | { retry: string } | { permanent: string; type?: string };

interface Script {
  eventType: string;
  /** What a lookup without a filter returns: the subscribed endpoints. */
  subscribed: ResolvedEndpoint[];
  /** Every endpoint a lookup by id may find (adopt, replay of a closed workflow). */
  known: ResolvedEndpoint[];
  /** The n-th (1-based) POST to an endpoint: its outcome, possibly after waiting. */
  attempt(endpointId: string, n: number): Outcome | Promise<Outcome>;
  /** A 2xx whose record failed in the activity: what it hands back to the workflow. */
  unrecorded?(endpointId: string): AttemptRecord | undefined;
  recordLate?(a: AttemptRecord): Promise<void>;
  /** The endpoint gate: the n-th (1-based) ask to send; a wait refuses it (nothing is POSTed). */
  gate?(endpointId: string, n: number, input: DeliverInput): Omit<GateWait, 'attemptsMade'> | undefined;
}

const scripts = new Map<string, Script>();
/** Every POST the stubs were asked for, in order: "eventId endpointId". */
const posts: string[] = [];
/** Every ask at an endpoint's gate: "eventId endpointId". */
const asks: string[] = [];
/** Every status the workflow wrote: "eventId endpointId status reason". */
const written: Array<{ eventId: string; endpointId: string; status: string; reason?: string }> = [];

const postsTo = (eventId: string, endpointId: string) => posts.filter((p) => p === `${eventId} ${endpointId}`).length;

function endpoint(id: string, retry: RetryOverrides = {}): ResolvedEndpoint {
  return {
    id,
    host: 'stub.test',
    retry: resolveRetry({ initialIntervalMs: 50, maximumIntervalMs: 100, deadlineMs: 30_000, deadLetterRetentionMs: 3_600_000, ...retry }),
  };
}

async function post(eventId: string, endpointId: string): Promise<void> {
  const script = scripts.get(eventId)!;
  posts.push(`${eventId} ${endpointId}`);
  const outcome = await script.attempt(endpointId, postsTo(eventId, endpointId));
  if (outcome === 'ok') return;
  if ('permanent' in outcome) throw ApplicationFailure.nonRetryable(outcome.permanent, outcome.type ?? 'PermanentHttpError');
  throw ApplicationFailure.create({ message: outcome.retry, type: 'RetryableDeliveryError', nextRetryDelay: 50, details: [{ retryDelayMs: 50 }] });
}

/** The activities deliverEvent calls, following the scripts. */
function stubActivities() {
  const stubs = {
    async resolveEndpoints(input: { eventId: string; onlyEndpointIds?: string[] }) {
      const s = scripts.get(input.eventId)!;
      const endpoints = input.onlyEndpointIds ? s.known.filter((e) => input.onlyEndpointIds!.includes(e.id)) : s.subscribed;
      return { eventType: s.eventType, requestTimeoutMs: 1_000, endpoints };
    },
    async deliver(input: DeliverInput): Promise<DeliverResult> {
      asks.push(`${input.eventId} ${input.endpointId}`);
      const n = asks.filter((a) => a === `${input.eventId} ${input.endpointId}`).length;
      const refused = scripts.get(input.eventId)!.gate?.(input.endpointId, n, input);
      if (refused) {
        const info = Context.current().info;
        return { statusCode: 0, attempt: 0, wait: { ...refused, attemptsMade: info.isLocal ? 0 : info.attempt - 1 } };
      }
      await post(input.eventId, input.endpointId);
      const unrecorded = scripts.get(input.eventId)!.unrecorded?.(input.endpointId);
      return { statusCode: 200, attempt: input.attemptsBefore + (Context.current().info.isLocal ? 1 : Context.current().info.attempt), ...(unrecorded ? { unrecorded } : {}) };
    },
    async firstAttempts(input: FirstAttemptsInput): Promise<FirstAttemptResult[]> {
      return Promise.all(input.endpoints.map(async ({ endpointId, retry }): Promise<FirstAttemptResult> => {
        try {
          const result = await stubs.deliver({ eventId: input.eventId, endpointId, retry, attemptsBefore: 0 });
          return result.wait ? { wait: result.wait } : { delivered: result };
        } catch (err) {
          const f = err as ApplicationFailure;
          return { failed: { message: f.message, type: f.type ?? 'error', nonRetryable: Boolean(f.nonRetryable), retryDelayMs: 50 } };
        }
      }));
    },
    async recordLateAttempt(a: AttemptRecord) {
      const s = scripts.get(a.eventId)!;
      await s.recordLate?.(a);
      written.push({ eventId: a.eventId, endpointId: a.endpointId, status: 'recorded late' });
    },
    async markDelivery(input: { eventId: string; endpointId: string; status: string; reason?: string }) {
      written.push(input);
    },
  };
  return stubs;
}

/** A gate a stub attempt waits on until the test opens it. */
function gate<T>() {
  let open!: (v: T) => void;
  let waiting = false;
  const promise = new Promise<T>((r) => (open = r));
  return {
    wait: () => ((waiting = true), promise),
    get waiting() {
      return waiting;
    },
    open,
  };
}

describe('deliverEvent against stub activities', () => {
  const taskQueue = `wf-${randomBytes(4).toString('hex')}`;
  let nativeConnection: NativeConnection;
  let connection: Connection;
  let client: Client;
  let worker: Worker;
  let running: Promise<void> | null = null;

  const startWorker = async () => {
    worker = await Worker.create({
      connection: nativeConnection,
      taskQueue,
      workflowBundle: { codePath: inject('workflowBundlePath') },
      activities: stubActivities(),
    });
    running = worker.run();
  };
  const stopWorker = async () => {
    worker.shutdown();
    await running;
    running = null;
  };

  beforeAll(async () => {
    nativeConnection = await NativeConnection.connect({ address: inject('temporalAddress') });
    connection = await Connection.connect({ address: inject('temporalAddress') });
    client = new Client({ connection });
    await startWorker();
  });
  afterAll(async () => {
    if (running) await stopWorker();
    await connection?.close();
    await nativeConnection?.close();
  });

  const newEvent = (script: Script) => {
    const eventId = `evt_wf_${randomBytes(6).toString('hex')}`;
    scripts.set(eventId, script);
    return eventId;
  };
  const start = (eventId: string, extra: Record<string, unknown> = {}) =>
    client.workflow.start('deliverEvent', { workflowId: eventId, taskQueue, args: [{ eventId, ...extra }] });
  const status = (eventId: string) => client.workflow.getHandle(eventId).query(statusQuery);
  const stateOf = async (eventId: string, endpointId: string) => (await status(eventId))[endpointId];

  it('delivers an event the relay planned in one workflow task, with no search-attribute upsert before the POST', async () => {
    const eps = [endpoint('ep_a'), endpoint('ep_b')];
    const eventId = newEvent({ eventType: 'happy.path', subscribed: [], known: [], attempt: () => 'ok' });
    // As the relay starts it: the endpoints in the input, the start search attributes set.
    const handle = await client.workflow.start('deliverEvent', {
      workflowId: eventId,
      taskQueue,
      args: [{ eventId, eventType: 'happy.path', endpoints: eps }],
      ...workflowStartMetadata('happy.path', eventId, eps.map((e) => e.id)),
    });
    expect(await handle.result()).toEqual({ ep_a: 'delivered', ep_b: 'delivered' });
    const { events } = await handle.fetchHistory();
    // Started, task scheduled/started/completed, the local-activity marker, the final
    // DeliveryStatus upsert, completed.
    expect(events!.filter((e) => e.workflowTaskCompletedEventAttributes)).toHaveLength(1);
    // One local activity for all the endpoints' first attempts: one marker.
    expect(events!.filter((e) => e.markerRecordedEventAttributes)).toHaveLength(1);
    expect(events!.length).toBe(7);
    expect(events!.some((e) => e.activityTaskScheduledEventAttributes)).toBe(false);
    const desc = await handle.describe();
    expect(desc.searchAttributes.DeliveryStatus).toEqual(['delivered']);
    expect(desc.searchAttributes.EndpointIds).toEqual(['ep_a', 'ep_b']);
    expect(postsTo(eventId, 'ep_a')).toBe(1);
  });

  it('never POSTs again after a 2xx whose record failed: the record is retried alone', async () => {
    const ep = endpoint('ep_recorded_late');
    let recordFailures = 2;
    const eventId = newEvent({
      eventType: 'late.record',
      subscribed: [ep],
      known: [ep],
      attempt: () => 'ok',
      unrecorded: (id) => ({
        eventId, endpointId: id, startedAt: new Date().toISOString(), latencyMs: 1, statusCode: 200, error: null, outcome: 'delivered', responseBodyBase64: null,
      }),
      recordLate: async () => {
        if (recordFailures-- > 0) throw new Error('database down');
      },
    });
    expect(await (await start(eventId)).result()).toEqual({ [ep.id]: 'delivered' });
    expect(postsTo(eventId, ep.id)).toBe(1);
    expect(written.filter((w) => w.eventId === eventId && w.status === 'recorded late')).toHaveLength(1);
  });

  it('runs a replay forwarded to a child that has closed in the parent instead', async () => {
    // FANOUT_CHILD_BATCH + 1 endpoints: child 1 gets the first batch, child 2 the last one.
    const eps = Array.from({ length: FANOUT_CHILD_BATCH + 1 }, (_, i) => endpoint(`ep_${String(i).padStart(3, '0')}`));
    const parked = eps[0].id;
    const replayed = eps[1].id;
    const eventId = newEvent({
      eventType: 'wide.event',
      subscribed: eps,
      known: eps,
      // Child 1 keeps running: one of its endpoints is parked as a dead letter.
      attempt: (id) => (id === parked ? { permanent: 'HTTP 400' } : 'ok'),
    });
    await start(eventId);
    const child1 = `${eventId}/1`;
    await waitFor(async () => (await client.workflow.getHandle(child1).query(statusQuery))[parked]?.state === 'dead_lettered', 30_000, 'child parked');
    await waitFor(() => postsTo(eventId, replayed) === 1, 30_000, 'first delivery');

    // With no worker, the child closes (an operator terminates it) and a replay for one of its
    // endpoints reaches the parent: the parent sees both in one activation, the signal first,
    // so it forwards to a child that is already gone.
    await stopWorker();
    await client.workflow.getHandle(child1).terminate('test: child closes under the parent');
    await client.workflow.getHandle(eventId).signal('replay', { endpointIds: [replayed] });
    await startWorker();

    const result = await client.workflow.getHandle(eventId).result();
    expect(postsTo(eventId, replayed)).toBe(2);
    expect(result[replayed]).toBe('delivered');
  });

  it('adopts an endpoint it no longer knows after continue-as-new when a replay names it', async () => {
    const good = endpoint('ep_good');
    const bad = endpoint('ep_bad');
    const badId = bad.id;
    let healthy = false;
    const eventId = newEvent({
      eventType: 'long.life',
      subscribed: [good, bad],
      known: [good, bad],
      attempt: (id) => (id === badId && !healthy ? { permanent: 'HTTP 400' } : 'ok'),
    });
    const handle = await start(eventId, { historyLimit: 30 });
    // Replay the dead letter until the run has grown past its limit and continued as new; the
    // new run carries only the parked dead letter.
    for (let i = 0; (await handle.describe()).runId === handle.firstExecutionRunId; i++) {
      // Parked AND its status write finished: a replay that lands while markDelivery is still in
      // flight restarts the delivery before it ever idles, and an idle park is what lets the run
      // continue as new (on a loaded box the write is slow enough for that to happen every time).
      const idle = async () => ((await handle.describe()).raw.pendingActivities ?? []).length === 0;
      await waitFor(async () => (await stateOf(eventId, badId))?.state === 'dead_lettered' && postsTo(eventId, badId) === i + 1 && (await idle()), 30_000, `parked ${i}`).catch(async (e) => {
        throw new Error(`${e.message} ${JSON.stringify(await status(eventId))} posts ${postsTo(eventId, badId)}`);
      });
      if ((await handle.describe()).runId !== handle.firstExecutionRunId) break;
      await handle.signal('replay', { endpointIds: [badId] });
      expect(i).toBeLessThan(20);
    }
    await waitFor(async () => (await stateOf(eventId, badId))?.state === 'dead_lettered', 30_000, 'parked after continue-as-new');
    expect(await stateOf(eventId, good.id)).toBeUndefined();

    // A replay of the delivered endpoint: the new run looks it up again and resends it.
    await handle.signal('replay', { endpointIds: [good.id] });
    await waitFor(() => postsTo(eventId, good.id) === 2, 30_000, 'good resent');
    await waitFor(async () => (await stateOf(eventId, good.id))?.state === 'delivered', 30_000, 'good delivered');
    healthy = true;
    await handle.signal('replay', {});
    expect(await handle.result()).toEqual({ [good.id]: 'delivered', [badId]: 'delivered' });
  });

  it('keeps a replay that arrives before the endpoints are resolved, without sending twice', async () => {
    const subscribed = endpoint('ep_sub');
    const other = endpoint('ep_other');
    const eventId = newEvent({ eventType: 'early.replay', subscribed: [subscribed], known: [subscribed, other], attempt: () => 'ok' });
    // signalWithStart: the signal is in the first activation, before resolveEndpoints returns.
    await client.workflow.signalWithStart('deliverEvent', {
      workflowId: eventId,
      taskQueue,
      args: [{ eventId }],
      signal: 'replay',
      signalArgs: [{ endpointIds: [subscribed.id, other.id] }],
    });
    const result = await client.workflow.getHandle(eventId).result();
    expect(result).toEqual({ [subscribed.id]: 'delivered', [other.id]: 'delivered' });
    // The subscribed endpoint was about to be delivered fresh: the replay adds no second POST.
    expect(postsTo(eventId, subscribed.id)).toBe(1);
    expect(postsTo(eventId, other.id)).toBe(1);
  });

  it('starts again at once when a replay arrives during an attempt that then gives up', async () => {
    const ep = endpoint('ep_slow');
    const hold = gate<Outcome>();
    const eventId = newEvent({
      eventType: 'slow.receiver',
      subscribed: [ep],
      known: [ep],
      // 1: fails and is retried; 2: held open, then gives up; 3 (after the replay): delivered.
      attempt: (_id, n) => (n === 1 ? { retry: 'HTTP 503' } : n === 2 ? hold.wait() : 'ok'),
    });
    const handle = await start(eventId);
    await waitFor(() => hold.waiting, 30_000, 'second attempt in flight');
    await handle.signal('replay', { endpointIds: [ep.id] });
    // A query after a signal sees the signal handled.
    expect((await status(eventId))[ep.id].state).toBe('delivering');
    hold.open({ permanent: 'HTTP 400' });
    expect(await handle.result()).toEqual({ [ep.id]: 'delivered' });
    expect(postsTo(eventId, ep.id)).toBe(3);
  });

  describe('waiting for the endpoint (gate refusals)', () => {
    it('waits in durable timers while refused, passing back its reserved slot and its ticket (kept), and sends once', async () => {
      const ep = endpoint('ep_gated');
      const seen: DeliverInput[] = [];
      let waitingShown: string | undefined;
      const eventId = newEvent({
        eventType: 'gated.test',
        subscribed: [ep],
        known: [ep],
        attempt: () => 'ok',
        // 1 (the local first attempt): circuit open; 2: a rate-limit slot reserved; 3: admitted.
        gate: (_id, n, input) => {
          seen.push(input);
          if (n === 1) return { reason: 'circuit_open', ms: 300, slotMs: null, ticket: 7 };
          if (n === 2) return { reason: 'rate_limit', ms: 200, slotMs: 123_456, ticket: null };
          return undefined;
        },
      });
      const handle = await start(eventId, { eventType: 'gated.test', endpoints: [ep] });
      waitingShown = await waitFor(async () => (await stateOf(eventId, ep.id))?.reason, 30_000, 'waiting shown');
      expect(waitingShown).toMatch(/^waiting: /);
      expect(await handle.result()).toEqual({ [ep.id]: 'delivered' });
      expect(postsTo(eventId, ep.id)).toBe(1);
      expect(seen.map((i) => [i.slotMs ?? null, i.ticket ?? null, i.attemptsBefore])).toEqual([[null, null, 0], [null, 7, 0], [123_456, 7, 0]]);
      const { events } = await handle.fetchHistory();
      expect(events!.filter((e) => e.timerStartedEventAttributes)).toHaveLength(2);
      // The wait was a timer, never a failed activity: no retry burned.
      expect(events!.filter((e) => e.activityTaskFailedEventAttributes)).toHaveLength(0);
    });

    it('waits for an in-flight slot until a gateOpen signal hands it one, not its whole fallback timer', async () => {
      const ep = endpoint('ep_gated_slot');
      const eventId = newEvent({
        eventType: 'gated.slot',
        subscribed: [ep],
        known: [ep],
        attempt: () => 'ok',
        // Refused once with a fallback far past this test's bound: only the signal can end it.
        gate: (_id, n) => (n === 1 ? { reason: 'in_flight', ms: 600_000, slotMs: null, ticket: 3 } : undefined),
      });
      const handle = await start(eventId, { eventType: 'gated.slot', endpoints: [ep] });
      await waitFor(async () => (await stateOf(eventId, ep.id))?.reason?.startsWith('waiting: '), 30_000, 'waiting');
      await handle.signal('gateOpen', ep.id);
      expect(await handle.result()).toEqual({ [ep.id]: 'delivered' });
      expect(postsTo(eventId, ep.id)).toBe(1);
    });

    it('counts attempts made before a refusal and none for the refusal itself', async () => {
      const ep = endpoint('ep_gated_count', { maxAttempts: 3 });
      const eventId = newEvent({
        eventType: 'gated.count',
        subscribed: [ep],
        known: [ep],
        attempt: () => ({ retry: 'HTTP 500' }),
        // The local attempt and the regular activity's first fail; its second is refused.
        gate: (_id, n) => (n === 3 ? { reason: 'in_flight', ms: 100, slotMs: null, ticket: null } : undefined),
      });
      await start(eventId);
      const st = await waitFor(async () => {
        const s = await stateOf(eventId, ep.id);
        return s?.state === 'dead_lettered' ? s : null;
      }, 30_000, 'dead-lettered');
      expect(st.reason).toBe('attempts exhausted: HTTP 500');
      expect(postsTo(eventId, ep.id)).toBe(3);
    });

    it('dead-letters as "deadline exceeded" when the wait would outlast the deadline, having sent nothing', async () => {
      const ep = endpoint('ep_gated_deadline', { deadlineMs: 1_000 });
      const eventId = newEvent({
        eventType: 'gated.deadline',
        subscribed: [ep],
        known: [ep],
        attempt: () => 'ok',
        gate: () => ({ reason: 'circuit_open', ms: 60_000, slotMs: null, ticket: 1 }),
      });
      await start(eventId);
      const st = await waitFor(async () => {
        const s = await stateOf(eventId, ep.id);
        return s?.state === 'dead_lettered' ? s : null;
      }, 30_000, 'dead-lettered');
      expect(st.reason).toBe('deadline exceeded: waiting for the endpoint (circuit open, endpoint failing)');
      expect(postsTo(eventId, ep.id)).toBe(0);
    });

    it('carries a delivery waiting on an open circuit across continue-as-new, and delivers it once the circuit closes', async () => {
      const ep = endpoint('ep_gated_long', { maxAttempts: 5 });
      const seen: DeliverInput[] = [];
      let closed = false;
      const eventId = newEvent({
        eventType: 'gated.long',
        subscribed: [ep],
        known: [ep],
        // The first attempt fails (it counts); then the circuit stays open until the test closes it.
        attempt: (_id, n) => (n === 1 ? { retry: 'HTTP 503' } : 'ok'),
        gate: (_id, n, input) => {
          seen.push(input);
          return n === 1 || closed ? undefined : { reason: 'circuit_open', ms: 150, slotMs: null, ticket: 7 };
        },
      });
      // A circuit open for days wakes its waiters every few minutes: each wake-up is history, so
      // the waiting run must continue as new like a parked dead letter does.
      const handle = await start(eventId, { eventType: 'gated.long', endpoints: [ep], historyLimit: 30 });
      await waitFor(async () => (await handle.describe()).runId !== handle.firstExecutionRunId, 30_000, 'continued as new while waiting');
      await waitFor(async () => (await stateOf(eventId, ep.id))?.reason?.startsWith('waiting: '), 30_000, 'waiting in the new run');
      closed = true;
      expect(await handle.result()).toEqual({ [ep.id]: 'delivered' });
      expect(postsTo(eventId, ep.id)).toBe(2);
      // The failed first attempt still counts, once, and the queue ticket is kept across runs.
      const last = seen[seen.length - 1];
      expect([last.attemptsBefore, last.ticket]).toEqual([1, 7]);
      expect(seen.length).toBeGreaterThan(3);
    });
  });

  describe('dead-letter reasons', () => {
    const deadLetter = async (ep: ResolvedEndpoint, attempt: Script['attempt']) => {
      const eventId = newEvent({ eventType: 'reason.test', subscribed: [ep], known: [ep], attempt });
      await start(eventId);
      const s = await waitFor(async () => {
        const st = await stateOf(eventId, ep.id);
        return st?.state === 'dead_lettered' ? st : null;
      }, 30_000, 'dead-lettered');
      const row = await waitFor(() => written.find((w) => w.eventId === eventId && w.status === 'dead_lettered'), 30_000, 'row written');
      // What the workflow shows and what it writes to Postgres are the same words.
      expect(row?.reason).toBe(s.reason);
      return { reason: s.reason!, posts: postsTo(eventId, ep.id) };
    };

    it('says "deadline exceeded" when the deadline runs out while retrying', async () => {
      const r = await deadLetter(endpoint('ep_deadline', { deadlineMs: 1_500 }), () => ({ retry: 'ECONNREFUSED: refused' }));
      expect(r.reason).toMatch(/^deadline exceeded/);
      expect(r.posts).toBeGreaterThan(1);
    });

    it('says "attempts exhausted" with the last error when maxAttempts runs out', async () => {
      const r = await deadLetter(endpoint('ep_attempts', { maxAttempts: 3 }), () => ({ retry: 'HTTP 500' }));
      expect(r.reason).toBe('attempts exhausted: HTTP 500');
      expect(r.posts).toBe(3);
    });

    it('says "attempts exhausted" when the only attempt allowed fails', async () => {
      const r = await deadLetter(endpoint('ep_once', { maxAttempts: 1 }), () => ({ retry: 'HTTP 502' }));
      expect(r.reason).toBe('attempts exhausted: HTTP 502');
      expect(r.posts).toBe(1);
    });

    it('names the failure type of a permanent failure, after one attempt', async () => {
      const r = await deadLetter(endpoint('ep_400'), () => ({ permanent: 'HTTP 400' }));
      expect(r.reason).toBe('PermanentHttpError: HTTP 400');
      expect(r.posts).toBe(1);
      const gone = await deadLetter(endpoint('ep_410'), () => ({ permanent: 'HTTP 410 from stub.test: endpoint disabled', type: 'EndpointGone' }));
      expect(gone.reason).toBe('EndpointGone: HTTP 410 from stub.test: endpoint disabled');
    });
  });

  it('replays every history these tests made without a nondeterminism error', async () => {
    // Runs after the others (file order): their workflows, closed or parked, replayed from scratch
    // as a worker that lost its cache would — local-activity outcomes included.
    const histories = client.workflow.list({ query: `TaskQueue = '${taskQueue}'` }).intoHistories();
    const failures: string[] = [];
    let replayed = 0;
    for await (const r of Worker.runReplayHistories({ workflowBundle: { codePath: inject('workflowBundlePath') } }, histories)) {
      replayed += 1;
      if (r.error) failures.push(`${r.workflowId}: ${r.error.message}`);
    }
    expect(failures).toEqual([]);
    expect(replayed).toBeGreaterThanOrEqual(16);
  });
});
