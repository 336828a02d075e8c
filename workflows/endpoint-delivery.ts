// One endpoint's delivery inside a delivery workflow: a small state machine.
//
//   delivering ──2xx──────────────▶ delivered ──replay──▶ delivering (a resend)
//   delivering ──gives up─────────▶ dead_lettered ──replay──▶ delivering
//                                                  └─retention ends─▶ dropped ──replay──▶ delivering
//
// The states are the DeliveryStatus search attribute's words and what the Web UI's details
// table shows. Each run of attempts starts with a LOCAL activity inside the current workflow
// task (the happy path: one task, no activity-task round trip through the server); only a
// failure continues as a regular activity under the endpoint's retry policy, with the first
// attempt counted against maxAttempts and the deadline.
//
// An attempt first passes its endpoint's gate (in-flight cap, rate limit, Retry-After pause,
// circuit breaker; src/db/gate.ts). A refused attempt sends nothing and comes back as data —
// wait this long, for this reason — and the delivery waits in a durable timer: no worker slot
// held, no attempt burned, the deadline still running. (An in-flight refusal first waits up to a
// second inside the activity for a slot a release in the same worker hands it; handed one, the
// workflow never sees the refusal: activities/slot-waiters.ts.) Deterministic code only.
import { ActivityFailure, ApplicationFailure, condition, proxyActivities, proxyLocalActivities, sleep, TimeoutFailure } from '@temporalio/workflow';
import { RetryState } from '@temporalio/common';
import type { Activities, DeliverResult, FirstAttemptResult, GateWait, ResolvedEndpoint } from '../activities';
import { baseDelayMs, withJitter } from '../src/retry';
import type { DeliveryStatusValue } from '../src/search-attributes';

export type EndpointState = DeliveryStatusValue;

export interface DeliveryContext {
  eventId: string;
  /** The worker's request timeout; bounds an attempt's startToCloseTimeout. */
  requestTimeoutMs: number;
  /** Called after every state change, so the owner republishes what the Web UI shows. */
  changed(): void;
}

// Bookkeeping off the happy path (write a dead letter's status, record a late attempt) runs as
// regular activities: their outcomes are history events, so several in flight at once replay
// in the order they happened. (Outcomes of concurrent LOCAL activities may reach a replaying
// workflow grouped differently, and then in another order — a nondeterminism error.)
const bookkeeping = proxyActivities<Activities>({
  startToCloseTimeout: '10s',
  retry: { initialInterval: '1s', maximumInterval: '30s' },
});

// The activity enforces the request timeout itself; the extra only catches a stuck worker.
const STUCK_WORKER_MARGIN_MS = 5_000;

export class EndpointDelivery {
  state: EndpointState = 'delivering';
  reason?: string;
  /** A run of attempts or a dead-letter wait is in progress. */
  active = false;
  /** When the current dead-letter wait ends (epoch ms); 0 while not parked. */
  parkedUntil = 0;
  private replayRequested = false;
  /** A gateOpen signal came while waiting for an in-flight slot. */
  private slotFreed = false;
  /** Set while sleeping at the endpoint's gate: what another run needs to go on waiting. */
  private gateWait?: GateResume;

  constructor(
    readonly endpoint: ResolvedEndpoint,
    private readonly ctx: DeliveryContext,
  ) {}

  get id(): string {
    return this.endpoint.id;
  }

  /** Waiting as a dead letter with nothing in flight: safe to carry across continue-as-new. */
  get idleParked(): boolean {
    return this.active && this.parkedUntil > 0 && !this.replayRequested;
  }

  /**
   * Waiting at its endpoint's gate with nothing in flight: safe to carry across continue-as-new
   * (an open circuit can keep a delivery waiting for days, a wake-up every few minutes).
   */
  get idleWaiting(): GateResume | undefined {
    return this.active && !this.slotFreed && !this.replayRequested ? this.gateWait : undefined;
  }

  /** The endpoint's gate handed this delivery a freed slot, or its listener reconnected: stop waiting. */
  gateOpened(): void {
    this.slotFreed = true;
  }

  /** Parked: wake it. Mid-run: if this run gives up, start again at once. Otherwise: resend. */
  replay(): void {
    if (this.active) this.replayRequested = true;
    else void this.run();
  }

  /** Its local first attempt is in flight (firstAttempted follows): the delivery is active. */
  firstAttemptStarted(): void {
    this.active = true;
  }

  /**
   * The outcome of its local first attempt. Delivered and recorded (the happy path): settled
   * here, synchronously — no run of attempts, no promise: the SDK captures a stack trace for
   * every promise a workflow makes, a large share of a delivery's CPU. Anything else goes on as
   * a run of attempts (a replay that came meanwhile is then honoured there).
   */
  firstAttempted(result: FirstAttemptResult): void {
    this.active = false;
    if (!result.delivered || result.delivered.unrecorded) return void this.run({ first: result });
    this.replayRequested = false;
    this.set('delivered');
  }

  /**
   * Delivers until delivered or dropped: from `first` (the outcome of this endpoint's local
   * first attempt), fresh, or — given parkedUntil or waiting — resuming a parked dead letter or
   * a wait at the gate carried across continue-as-new.
   */
  async run(opts: { first?: FirstAttemptResult; parkedUntil?: number; waiting?: GateResume } = {}): Promise<void> {
    let first = opts.first;
    let waiting = opts.waiting;
    const parkedUntil = opts.parkedUntil ?? 0;
    this.active = true;
    try {
      if (parkedUntil > 0 && !(await this.waitForReplay(parkedUntil))) return await this.drop();
      for (;;) {
        this.set('delivering');
        const reason = await attemptRun(this.endpoint, this.ctx, first, {
          show: (why) => this.set('delivering', why),
          wait: (ms, untilSlotFreed, resume) => this.waitForGate(ms, untilSlotFreed, resume),
        }, waiting);
        first = undefined;
        waiting = undefined;
        if (reason === undefined) {
          this.replayRequested = false;
          return this.set('delivered');
        }
        // A replay that came in during this run restarts it at once, without parking.
        if (this.replayRequested) {
          this.replayRequested = false;
          continue;
        }
        // State first: a replay signal handled while the row is being written must see it.
        this.set('dead_lettered', reason);
        await bookkeeping.markDelivery({ eventId: this.ctx.eventId, endpointId: this.id, status: 'dead_lettered', reason });
        if (!(await this.waitForReplay(Date.now() + this.endpoint.retry.deadLetterRetentionMs))) return await this.drop();
      }
    } finally {
      this.active = false;
    }
  }

  /**
   * Sleeps `ms` in a durable timer; waiting for an in-flight slot or a listener, a gateOpen
   * signal ends it sooner. A signal that came while the refused attempt was still returning
   * counts: the release that sent it is holding a slot for this delivery now (or the listener
   * that sent it is back).
   */
  private async waitForGate(ms: number, untilSlotFreed: boolean, resume: GateResume): Promise<void> {
    this.gateWait = resume;
    try {
      if (!untilSlotFreed) return await sleep(ms);
      await condition(() => this.slotFreed, ms);
      this.slotFreed = false;
    } finally {
      this.gateWait = undefined;
    }
  }

  /** Parks until replayed (→ true) or until `until` (→ false). */
  private async waitForReplay(until: number): Promise<boolean> {
    this.parkedUntil = until;
    const replayed = await condition(() => this.replayRequested, Math.max(1, until - Date.now()));
    this.parkedUntil = 0;
    this.replayRequested = false;
    return replayed;
  }

  private async drop(): Promise<void> {
    // State first, as for a dead letter: what the workflow shows changes in the task the
    // retention timer fired in, not after the write (keeps the commands deterministic).
    this.set('dropped', this.reason);
    await bookkeeping.markDelivery({ eventId: this.ctx.eventId, endpointId: this.id, status: 'dropped', reason: this.reason });
  }

  private set(state: EndpointState, reason?: string): void {
    this.state = state;
    this.reason = reason;
    this.ctx.changed();
  }
}

/** A delivery waiting at its endpoint's gate, as another run (continue-as-new) resumes it. */
export interface GateResume {
  /** When this run of attempts started (epoch ms): its deadline counts from it. */
  startedAt: number;
  /** Attempts made so far in this run: they count against maxAttempts. */
  attemptsBefore: number;
  /** The refusal it waits on: its reason, reserved rate-limit slot and queue ticket. */
  wait: GateWait;
  ticket: number | null;
  /** When the wait ends (epoch ms). */
  until: number;
}

/**
 * One run of attempts. The first delivery's first attempt comes in as `first` (the run's one
 * local activity, shared by all its endpoints); a failure continues as one regular activity
 * under the snapshot's retry policy with that attempt counted. A replay's run has no `first`:
 * all its attempts are the regular activity's. Whenever the endpoint's gate refuses, the run
 * waits (shown and slept through `waiting`) and goes on with a new regular activity, the attempts made so
 * far counted. `resume` goes on with such a wait carried from a previous run. Resolves to
 * undefined when delivered, else the dead-letter reason.
 */
async function attemptRun(
  ep: ResolvedEndpoint,
  ctx: DeliveryContext,
  first: FirstAttemptResult | undefined,
  waiting: { show(why?: string): void; wait(ms: number, untilSlotFreed: boolean, resume: GateResume): Promise<void> },
  resume?: GateResume,
): Promise<string | undefined> {
  const r = ep.retry;
  const startedAt = resume?.startedAt ?? Date.now();
  let attemptsBefore = resume?.attemptsBefore ?? 0;
  let wait: GateWait | undefined = resume?.wait;
  // Set while resuming: the wait's end was computed by the previous run.
  let until = resume?.until;
  if (first) {
    if (first.delivered) return recorded(first.delivered);
    if (first.wait) {
      wait = first.wait;
    } else {
      const { failed } = first;
      if (failed.nonRetryable) return `${failed.type}: ${failed.message}`;
      if (r.maxAttempts === 1) return `attempts exhausted: ${failed.message}`;
      // The first retry waits the delay the attempt computed (jitter, Retry-After), as Temporal's
      // own retries do after it; the deadline counts from the first attempt's start.
      const delayMs = failed.retryDelayMs || withJitter(baseDelayMs(r, 1));
      if (Date.now() + delayMs - startedAt >= r.deadlineMs) return `deadline exceeded: ${failed.message}`;
      await sleep(delayMs);
      attemptsBefore = 1;
    }
  }
  // The endpoint queue's ticket this delivery holds once it has waited: kept until it goes.
  let ticket: number | null = resume ? resume.ticket : wait?.ticket ?? null;
  for (;;) {
    if (wait) {
      // The in-flight and listener waits are guesses (a signal usually ends them).
      const guess = SIGNALLED_WAITS[wait.reason];
      if (until === undefined) {
        const remainingMs = r.deadlineMs - (Date.now() - startedAt);
        // A guessed wait never outlasts the deadline: the delivery tries once more before it.
        // The others are certain: a wait past the deadline ends the delivery now, as a retry
        // delay past it does.
        const ms = guess ? Math.min(gateWaitMs(wait), remainingMs - DEADLINE_MARGIN_MS) : gateWaitMs(wait);
        if (ms <= 0 || ms >= remainingMs) return `deadline exceeded: waiting for the endpoint (${WAIT_WORDS[wait.reason]})`;
        until = Date.now() + ms;
      }
      const ms = Math.max(1, until - Date.now());
      waiting.show(`waiting: ${WAIT_WORDS[wait.reason]}; next try ${guess ? `${guess} or ` : ''}in ${Math.ceil(ms / 1000)} s`);
      await waiting.wait(ms, guess !== undefined, { startedAt, attemptsBefore, wait, ticket, until });
      until = undefined;
      waiting.show(undefined);
    }
    let result: DeliverResult;
    try {
      const input = { eventId: ctx.eventId, endpointId: ep.id, retry: r, attemptsBefore, slotMs: wait?.slotMs ?? null, ticket };
      result = await retries(ep, ctx, r.deadlineMs - (Date.now() - startedAt), attemptsBefore).deliver(input);
    } catch (err) {
      return deadLetterReason(err);
    }
    if (!result.wait) return recorded(result);
    attemptsBefore += result.wait.attemptsMade;
    wait = result.wait;
    ticket = wait.ticket ?? ticket;
  }
}

const WAIT_WORDS: Record<GateWait['reason'], string> = {
  in_flight: 'endpoint at its in-flight limit',
  rate_limit: 'endpoint rate limit',
  paused: 'receiver asked to wait (Retry-After)',
  circuit_open: 'circuit open, endpoint failing',
  disabled: 'endpoint disabled',
  listener_offline: 'endpoint paused, hookline listen is disconnected',
};

// Waits a gateOpen signal ends early (when, in words): a freed in-flight slot, a listener that
// reconnected. Their timers are fallbacks, so they never outlast the deadline.
const SIGNALLED_WAITS: Partial<Record<GateWait['reason'], string>> = {
  in_flight: 'when a request ends',
  listener_offline: 'when the listener reconnects',
};

// An in-flight wait ends this long before the deadline, to leave the last try time to run.
const DEADLINE_MARGIN_MS = 1_000;

// A Retry-After pause ends at one instant for every waiter: spread them over up to 1 s.
const WAKE_SPREAD_MAX_MS = 1_000;

/**
 * How long to sleep on a refusal: a reserved rate-limit slot or an open circuit's queue place
 * exactly as the gate computed it (oldest first), a fallback for the in-flight cap (a gateOpen
 * signal usually ends that wait first), a spread wake-up after a Retry-After.
 */
function gateWaitMs(w: GateWait): number {
  const ms = Math.max(1, w.ms);
  if (w.reason === 'rate_limit' || w.reason === 'circuit_open') return ms;
  // In-flight cap: the gateOpen signal is the wake-up; this is the fallback (the oldest lease's
  // expiry), jittered so waiters that lost their signal do not come back together.
  if (w.reason === 'in_flight' || w.reason === 'listener_offline') return Math.max(1, withJitter(ms));
  // Math.random is the workflow's seeded one: deterministic on replay.
  return ms + Math.round(Math.random() * Math.min(WAKE_SPREAD_MAX_MS, ms / 4));
}

/**
 * The first attempts of a batch of endpoints: one local activity; an error fails each retryably.
 * Each outcome goes to `settle` in the endpoints' order. A callback, not an async function: one
 * promise for the batch (see firstAttempted).
 */
export function firstAttempts(
  eventId: string,
  endpoints: ResolvedEndpoint[],
  requestTimeoutMs: number,
  settle: (results: FirstAttemptResult[]) => void,
): void {
  const one = endpoints.length === 1 ? `${endpoints[0].id} (${endpoints[0].host})` : `${endpoints.length} endpoints`;
  void proxyLocalActivities<Activities>({
    summary: `deliver to ${one}, attempt 1`,
    startToCloseTimeout: Math.max(...endpoints.map((ep) => attemptTimeoutMs(ep, requestTimeoutMs))) + STUCK_WORKER_MARGIN_MS,
    // Once: whether and when to try again is the regular activity's retry policy.
    retry: { maximumAttempts: 1 },
  })
    .firstAttempts({ eventId, endpoints: endpoints.map((ep) => ({ endpointId: ep.id, retry: ep.retry })) })
    .then(settle, (err: unknown) => {
      const message = err instanceof ActivityFailure && err.cause ? err.cause.message : (err as Error).message;
      settle(endpoints.map(() => ({ failed: { message, type: 'error', nonRetryable: false, retryDelayMs: 0 } })));
    });
}

/** The longest one attempt to this endpoint may take: its own response timeout or the worker's. */
function attemptTimeoutMs(ep: ResolvedEndpoint, requestTimeoutMs: number): number {
  return ep.responseTimeoutMs ?? requestTimeoutMs;
}

/** A 2xx whose record failed in the activity is recorded here, retried on its own — never re-POSTed. */
async function recorded(result: DeliverResult): Promise<undefined> {
  if (result.unrecorded) await bookkeeping.recordLateAttempt(result.unrecorded);
  return undefined;
}

function retries(ep: ResolvedEndpoint, ctx: DeliveryContext, remainingMs: number, attemptsBefore: number) {
  const r = ep.retry;
  return proxyActivities<Activities>({
    summary: `deliver to ${ep.id} (${ep.host})${attemptsBefore > 0 ? ', retries' : ''}`,
    scheduleToCloseTimeout: Math.max(1, remainingMs),
    startToCloseTimeout: attemptTimeoutMs(ep, ctx.requestTimeoutMs) + STUCK_WORKER_MARGIN_MS,
    retry: {
      initialInterval: r.initialIntervalMs,
      backoffCoefficient: r.backoffCoefficient,
      maximumInterval: r.maximumIntervalMs,
      // A local first attempt counted; 0 (unlimited) stays unlimited.
      maximumAttempts: r.maxAttempts > 0 ? r.maxAttempts - attemptsBefore : undefined,
    },
  });
}

/** A short, stable reason for a dead letter, read from the failure chain. */
export function deadLetterReason(err: unknown): string {
  if (err instanceof ActivityFailure) {
    const cause = err.cause;
    if (cause instanceof TimeoutFailure || err.retryState === RetryState.TIMEOUT) {
      return `deadline exceeded${cause && !(cause instanceof TimeoutFailure) ? `: ${cause.message}` : ''}`;
    }
    if (err.retryState === RetryState.MAXIMUM_ATTEMPTS_REACHED) {
      return `attempts exhausted: ${cause?.message ?? 'unknown error'}`;
    }
    if (cause instanceof ApplicationFailure) return `${cause.type ?? 'error'}: ${cause.message}`;
    return cause?.message ?? err.message;
  }
  return err instanceof Error ? err.message : String(err);
}
