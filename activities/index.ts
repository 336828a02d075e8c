// The side effects of delivery: look up who gets an event (replays of closed workflows), sign
// and POST it, record what happened. Built by a factory so the worker and tests hand in their
// own pool and settings. Whether a failure retries is decided here, at the throw site; when it
// retries after how long is computed from the retry-policy snapshot the workflow passes in.
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { Pool } from '../src/db/pool';
import { randomUUID } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { getEndpointsByIds, listActiveEndpoints } from '../src/db/endpoints';
import { getEvent } from '../src/db/events';
import { ensureDeliveries, pendingDeliveries, recordAttempt, recordAttemptReleasing, setDeliveryStatus, type DeliveryRange, type DeliveryStatus, type NewAttempt } from '../src/db/deliveries';
import { acquireAgain, DEFAULT_GATE, forgetWaiter, gateRelease, loadAttemptAcquiring, releaseLease, type GateDecision, type GateRelease, type GateSettings, type WaitReason } from '../src/db/gate';
import type { EndpointRow } from '../src/db/endpoints';
import { emitOperationalEvent, type OperationalEventType } from '../src/ops-events';
import { nextDelayMs, resolveRetry, RETRY_AFTER_MAX_MS, type RetrySettings } from '../src/retry';
import { signatureHeader } from '../src/signing';
import { activityEventId, disableEndpoint, emitDeliveryEvent, type OpsEventLimit } from '../src/ops-events';
import { hostOf, subscribersOf, toResolved, type ResolvedEndpoint } from '../src/subscriptions';
import { USER_AGENT } from '../src/version';
import type { TargetPolicy } from '../src/net/address-policy';
import { post } from './http';
import { classifyAttempt, FailureTypes } from './outcome';
import { createListenTransport, LISTENER_OFFLINE, LISTENER_RECHECK_MS } from './listen-transport';
import { isListenUrl } from '../src/listen/sessions';
import { SlotWaiters, type SlotWaitSettings } from './slot-waiters';

export type { ResolvedEndpoint } from '../src/subscriptions';

export interface ActivityDeps {
  pool: Pool;
  /** The default response timeout: the whole request (an endpoint's timeouts.response overrides it). */
  requestTimeoutMs: number;
  /** The default connect timeout (an endpoint's timeouts.connect overrides it). */
  connectTimeoutMs?: number;
  /** In-flight cap, circuit breaker and auto-disable settings; DEFAULT_GATE when absent. */
  gate?: GateSettings;
  responseBodyMaxBytes: number;
  /** Which addresses deliveries may reach (HOOKLINE_ALLOWED_TARGETS). */
  targetPolicy: TargetPolicy;
  /** Signals a workflow that a slot freed (tests; default: the worker's Temporal client). */
  signalWorkflow?: (workflowId: string, endpointId: string) => Promise<void>;
  /** Called once per attempt, after it is recorded (logs, metrics). */
  onAttempt?: (a: AttemptReport) => void;
  /** Called when the workflow moves a delivery on (delivering, dead_lettered, dropped), after it is recorded. */
  onDeliveryStatus?: (s: DeliveryStatusReport) => void;
  /** The in-process wait for an in-flight slot (slot-waiters.ts); false: always wait in the workflow. */
  slotWait?: SlotWaitSettings | false;
  /** The operational webhooks' storm cap (src/ops-events.ts); tests shorten it. */
  opsEventLimit?: OpsEventLimit;
}

export interface DeliveryStatusReport {
  eventId: string;
  endpointId: string;
  status: DeliveryStatus;
  reason: string | null;
}

export interface AttemptReport {
  eventId: string;
  endpointId: string;
  attempt: number;
  statusCode: number | null;
  latencyMs: number;
  outcome: 'delivered' | 'retrying' | 'failed';
  error: string | null;
}

export { FailureTypes } from './outcome';

const RESPONSE_BODY_KEPT_BYTES = 2 * 1024;

/** One POST of a delivery, as the workflow asks for it. */
export interface DeliverInput {
  eventId: string;
  endpointId: string;
  /** The delivery's retry-policy snapshot: the delay before the next attempt comes from it. */
  retry: RetrySettings;
  /** Attempts of this run made before this activity's first (1 when a local first attempt failed). */
  attemptsBefore: number;
  /** A rate-limit slot the gate reserved for this delivery while it waited. */
  slotMs?: number | null;
  /** Its place in the endpoint's queue, once it has waited. */
  ticket?: number | null;
}

/**
 * The endpoint's gate refused the attempt: nothing was POSTed, and trying again makes sense in
 * `ms`. Data, not an error: the workflow waits in a durable timer, holding no worker slot.
 */
export interface GateWait {
  reason: WaitReason;
  ms: number;
  /** A reserved rate-limit slot to pass back (DeliverInput.slotMs). */
  slotMs: number | null;
  /** Its place in the endpoint's queue (in-flight cap, open circuit), to pass back (DeliverInput.ticket). */
  ticket: number | null;
  /** Attempts this activity made (and failed) before the refused one: they count. */
  attemptsMade: number;
}

export interface DeliverResult {
  statusCode: number;
  attempt: number;
  /**
   * Set when the receiver answered 2xx but the attempt could not be recorded (database down):
   * the workflow records it with its own retries, so a bookkeeping error never causes a second POST.
   */
  unrecorded?: AttemptRecord;
  /** Set when the gate refused: nothing was sent (statusCode and attempt are 0). */
  wait?: GateWait;
}

export interface FirstAttemptsInput {
  eventId: string;
  endpoints: { endpointId: string; retry: RetrySettings }[];
}

export type FirstAttemptResult =
  | { delivered: DeliverResult; failed?: undefined; wait?: undefined }
  | { delivered?: undefined; failed: { message: string; type: string; nonRetryable: boolean; retryDelayMs: number }; wait?: undefined }
  | { delivered?: undefined; failed?: undefined; wait: GateWait };

// A lease outlives its request by this much before the gate frees it on its own (a worker that
// died mid-request never releases).
const LEASE_MARGIN_MS = 5_000;

/**
 * NewAttempt as it crosses the workflow boundary, as plain JSON: the date as an ISO string, the
 * receiver's bytes as base64 (a Buffer would come back from the payload converter as an object).
 */
export type AttemptRecord = Omit<NewAttempt, 'startedAt' | 'responseBody'> & { startedAt: string; responseBodyBase64: string | null };

export function toAttemptRecord({ startedAt, responseBody, ...rest }: NewAttempt): AttemptRecord {
  const bytes = responseBody === null || Buffer.isBuffer(responseBody) ? responseBody : Buffer.from(responseBody, 'utf8');
  return { ...rest, startedAt: startedAt.toISOString(), responseBodyBase64: bytes?.toString('base64') ?? null };
}

function fromAttemptRecord({ startedAt, responseBodyBase64, ...rest }: AttemptRecord): NewAttempt {
  return { ...rest, startedAt: new Date(startedAt), responseBody: responseBodyBase64 === null ? null : Buffer.from(responseBodyBase64, 'base64') };
}

export function createActivities(deps: ActivityDeps) {
  const { pool } = deps;
  // `listen://` endpoints (hookline listen) travel over the listener's connection, not HTTP.
  const listen = createListenTransport(pool);

  /** Looks up the endpoints of a replay that starts a new run, or of an endpoint adopted after continue-as-new. */
  async function resolveEndpoints(input: { eventId: string; onlyEndpointIds?: string[] }): Promise<{
    eventType: string;
    requestTimeoutMs: number;
    endpoints: ResolvedEndpoint[];
  }> {
    const event = await getEvent(pool, input.eventId);
    if (!event) throw ApplicationFailure.nonRetryable(`event ${input.eventId} does not exist`, 'EventNotFound');
    const candidates = input.onlyEndpointIds
      ? await getEndpointsByIds(pool, input.onlyEndpointIds, event.tenantId)
      : subscribersOf(await listActiveEndpoints(pool, [event.tenantId]), event);
    await ensureDeliveries(pool, event.id, event.type, candidates.map((e) => e.id), event.tenantId);
    return { eventType: event.type, requestTimeoutMs: deps.requestTimeoutMs, endpoints: candidates.map(toResolved) };
  }

  /**
   * Who a large fan-out goes to, read from the delivery rows the relay wrote: the event's
   * pending deliveries (less `exclude`, what the asking run delivers already) as endpoints when
   * there are at most `inlineMax`, else as key ranges of `sliceSize` for child workflows. Only
   * the ranges' bounds enter the workflow's history, however wide the fan-out. The first and
   * last ranges are open, so every row belongs to exactly one.
   */
  async function planSlices(input: { eventId: string; exclude?: string[]; inlineMax: number; sliceSize: number }): Promise<{
    endpoints?: ResolvedEndpoint[];
    slices?: DeliveryRange[];
  }> {
    const all = { after: null, upTo: null, exclude: input.exclude };
    const pending = await pendingDeliveries(pool, input.eventId, all, false);
    if (pending.length <= input.inlineMax) return { endpoints: await asPlanned(pending.length > 0 ? await pendingDeliveries(pool, input.eventId, all) : []) };
    const slices: DeliveryRange[] = [];
    for (let i = 0; i < pending.length; i += input.sliceSize) {
      const last = i + input.sliceSize >= pending.length;
      slices.push({ after: i === 0 ? null : pending[i - 1].endpointId, upTo: last ? null : pending[i + input.sliceSize - 1].endpointId, exclude: input.exclude });
    }
    return { slices };
  }

  /** A fan-out child's endpoints: the pending deliveries of its slice, as planned. */
  async function loadSlice(input: { eventId: string; slice: DeliveryRange }): Promise<ResolvedEndpoint[]> {
    return asPlanned(await pendingDeliveries(pool, input.eventId, input.slice));
  }

  /**
   * The rows' plans. A row without one (written before migration 020) is planned from its
   * endpoint now; a deleted endpoint's still gets a delivery, which dead-letters it with the
   * reason instead of leaving it pending.
   */
  async function asPlanned(pending: { endpointId: string; plan: unknown }[]): Promise<ResolvedEndpoint[]> {
    const missing = pending.filter((p) => !p.plan).map((p) => p.endpointId);
    const found = new Map(missing.length > 0 ? (await getEndpointsByIds(pool, missing)).map((e) => [e.id, toResolved(e)]) : []);
    return pending.map((p) => (p.plan as ResolvedEndpoint | null) ?? found.get(p.endpointId) ?? { id: p.endpointId, host: 'deleted', retry: resolveRetry(null) });
  }

  const gate = deps.gate ?? DEFAULT_GATE;
  const slots = deps.slotWait === false ? null : new SlotWaiters(deps.slotWait);

  /**
   * Loads what one attempt needs and asks the endpoint's gate for a lease, in the same query; a
   * missing or disabled endpoint is a permanent failure. Refused: `wait` says for how long.
   */
  async function load(eventId: string, endpointId: string, leaseId: string, slotMs: number | null, ticket: number | null, workflowId: string | null) {
    // The lease outlives the endpoint's response timeout by a margin.
    const { loaded, read } = await loadAttemptAcquiring(pool, eventId, endpointId, { id: leaseId, defaultTimeoutMs: deps.requestTimeoutMs, marginMs: LEASE_MARGIN_MS, slotMs, ticket, workflowId }, gate);
    if (!read) {
      if (loaded?.gate.admitted) await releaseLease(pool, endpointId, leaseId);
      throw ApplicationFailure.nonRetryable(`event ${eventId} does not exist`, 'EventNotFound');
    }
    if (!loaded) throw ApplicationFailure.nonRetryable(`endpoint ${endpointId} was deleted`, FailureTypes.deleted);
    const { endpoint } = loaded;
    const { event, secrets } = read;
    if (endpoint.disabled) {
      throw ApplicationFailure.nonRetryable(
        `endpoint ${endpointId} is disabled${endpoint.disabledReason ? `: ${endpoint.disabledReason}` : ''}`,
        FailureTypes.disabled,
      );
    }
    const body = JSON.stringify({
      id: event.id,
      type: event.type,
      timestamp: event.createdAt.toISOString(),
      ...(event.version != null ? { version: event.version } : {}),
      data: event.data,
    });
    return { endpoint, event, secrets, body, gate: loaded.gate };
  }

  /**
   * What the gate's first answer leads to, waited for in process where that is short: a
   * rate-limited start a moment away, or an in-flight slot a release here hands over.
   */
  async function admit(
    endpoint: EndpointRow,
    first: GateDecision,
    lease: { id: string; askedAt: number; ticket: number | null; workflowId: string | null },
  ): Promise<GateDecision> {
    const again = (startMs: number | null, ticket: number | null) => acquireAgain(pool, endpoint.id, {
      id: lease.id, defaultTimeoutMs: deps.requestTimeoutMs, marginMs: LEASE_MARGIN_MS, slotMs: first.slotMs, ticket, workflowId: lease.workflowId, startMs,
    }, gate);
    if (first.startMs !== null) {
      // A rate-limited endpoint's start is a moment away: wait for it here, where a timer is
      // exact, rather than in the workflow, where a timer that fires late loses the slot.
      const startInMs = lease.askedAt + first.waitMs - Date.now();
      if (startInMs > 0) await delay(startInMs);
      return again(first.startMs, lease.ticket);
    }
    // Rate-limited endpoints keep their schedule's own waits (above); the in-process hand-off
    // is for the in-flight cap alone.
    const queued = !first.admitted && first.reason === 'in_flight' && first.ticket !== null && lease.workflowId !== null;
    if (!queued || !slots || endpoint.limits.rateLimit != null) return first;
    const handed = await slots.wait(endpoint.id, lease.workflowId!, endpoint.limits.maxInFlight ?? gate.defaultMaxInFlight);
    // Handed over: the release holds the slot for this ticket, and asking again with it takes it.
    return handed ? again(null, first.ticket) : first;
  }

  /**
   * Signs and POSTs one attempt, records it, and decides what the answer means. Runs as the
   * local first attempt inside the workflow task and, when that fails, as the retried activity.
   */
  async function deliver(input: DeliverInput): Promise<DeliverResult> {
    const { eventId, endpointId } = input;
    const leaseId = randomUUID();
    const info = Context.current().info;
    const askedAt = Date.now();
    const workflowId = info.workflowExecution?.workflowId ?? null;
    const { endpoint, event, secrets, body, gate: first } = await load(eventId, endpointId, leaseId, input.slotMs ?? null, input.ticket ?? null, workflowId);
    const decision = await admit(endpoint, first, { id: leaseId, askedAt, ticket: input.ticket ?? null, workflowId });
    if (!decision.admitted) {
      const attemptsMade = info.isLocal ? 0 : info.attempt - 1;
      return { statusCode: 0, attempt: 0, wait: { reason: decision.reason ?? 'in_flight', ms: decision.waitMs, slotMs: decision.slotMs, ticket: decision.ticket, attemptsMade } };
    }
    let recordedLease = false;
    try {
      const startedAt = new Date();
      const timestamp = Math.floor(startedAt.getTime() / 1000);
      const result = await (isListenUrl(endpoint.url) ? listen.post : post)({
        url: endpoint.url,
        body,
        headers: {
          'content-type': 'application/json',
          'user-agent': USER_AGENT,
          'webhook-id': event.id,
          'webhook-timestamp': String(timestamp),
          'webhook-signature': signatureHeader(secrets, event.id, timestamp, body),
        },
        timeoutMs: endpoint.limits.responseTimeoutMs ?? deps.requestTimeoutMs,
        connectTimeoutMs: endpoint.limits.connectTimeoutMs ?? deps.connectTimeoutMs,
        maxResponseBytes: deps.responseBodyMaxBytes,
        targetPolicy: deps.targetPolicy,
        waiter: info.workflowExecution?.workflowId ?? null,
      });
      if (result.kind === 'error' && result.code === LISTENER_OFFLINE) {
        // Nobody runs `hookline listen` for it: the endpoint is paused, not failing. Nothing was
        // sent, so nothing is recorded and the lease goes back (finally); the workflow waits
        // until the listener attaches (it is signalled) or the recheck timer ends.
        const attemptsMade = info.isLocal ? 0 : info.attempt - 1;
        return { statusCode: 0, attempt: 0, wait: { reason: 'listener_offline', ms: LISTENER_RECHECK_MS, slotMs: null, ticket: null, attemptsMade } };
      }

      const o = classifyAttempt(result, { listen: isListenUrl(endpoint.url), nowMs: Date.now() });
      const record: NewAttempt = {
        eventId, endpointId, startedAt, latencyMs: result.latencyMs, statusCode: o.statusCode, error: o.error, outcome: o.recorded,
        responseBody: result.kind === 'response' ? result.body.slice(0, RESPONSE_BODY_KEPT_BYTES) : null,
      };
      // The release goes with the record: the lease frees and the circuit moves in one statement.
      const release = gateRelease(endpointId, leaseId, o.health, Math.min(o.retryAfterMs ?? 0, RETRY_AFTER_MAX_MS), gate);
      recordedLease = true;
      if (o.kind === 'delivered') return await recordDelivered(record, o.statusCode!, release);
      const attempt = await recordAndReport(record, release);

      if (o.kind === 'gone') {
        await disableEndpoint(pool, endpoint, { reason: 'receiver answered 410 Gone', eventId, statusCode: 410 }, deps.opsEventLimit);
        throw ApplicationFailure.nonRetryable(`HTTP 410 from ${hostOf(endpoint.url)}: endpoint disabled`, FailureTypes.gone);
      }
      if (o.kind === 'permanent') throw ApplicationFailure.nonRetryable(o.error!, o.failureType, { statusCode: o.statusCode, attempt });
      const retryDelayMs = nextDelayMs(input.retry, input.attemptsBefore + (info.isLocal ? 1 : info.attempt), o.retryAfterMs);
      throw ApplicationFailure.create({ message: o.error!, type: FailureTypes.retryable, details: [{ statusCode: o.statusCode }], nextRetryDelay: retryDelayMs });
    } finally {
      // Anything that ended the attempt before its record (a throw while signing or posting) frees the lease now.
      if (!recordedLease) await releaseLease(pool, endpointId, leaseId).catch(() => {});
    }
  }

  /**
   * The first attempt to each of an event's endpoints, concurrently, as ONE local activity in
   * the workflow's first task: one marker, one resolution, so the workflow reacts to all the
   * outcomes in one deterministic step. Delivery failures come back as data; anything else
   * (database down before the POST) comes back as a retryable failure of that endpoint.
   */
  async function firstAttempts(input: FirstAttemptsInput): Promise<FirstAttemptResult[]> {
    return Promise.all(input.endpoints.map(async ({ endpointId, retry }): Promise<FirstAttemptResult> => {
      try {
        const result = await deliver({ eventId: input.eventId, endpointId, retry, attemptsBefore: 0 });
        return result.wait ? { wait: result.wait } : { delivered: result };
      } catch (err) {
        const f = err instanceof ApplicationFailure ? err : null;
        const retryDelayMs = typeof f?.nextRetryDelay === 'number' ? f.nextRetryDelay : 0;
        return { failed: { message: (err as Error).message, type: f?.type ?? 'error', nonRetryable: Boolean(f?.nonRetryable), retryDelayMs } };
      }
    }));
  }

  /** After a 2xx nothing may throw: a failed record goes back to the workflow to be retried alone. */
  async function recordDelivered(record: NewAttempt, statusCode: number, release: GateRelease): Promise<DeliverResult> {
    try {
      return { statusCode, attempt: await recordAndReport(record, release) };
    } catch {
      return { statusCode, attempt: 0, unrecorded: toAttemptRecord(record) };
    }
  }

  async function recordAndReport(a: NewAttempt, release?: GateRelease): Promise<number> {
    const { attempt, transition, wake } = release ? await recordAttemptReleasing(pool, a, release) : { attempt: await recordAttempt(pool, a), transition: null, wake: null };
    deps.onAttempt?.({ eventId: a.eventId, endpointId: a.endpointId, attempt, statusCode: a.statusCode, latencyMs: a.latencyMs, outcome: a.outcome, error: a.error });
    if (wake) await handOver(wake, a.endpointId);
    if (transition) await announce(a.endpointId, transition, a.error);
    return attempt;
  }

  /**
   * The slot this attempt freed goes to the first delivery waiting for it: a signal wakes its
   * workflow from its timer. Best effort — a lost wake-up costs that waiter its fallback timer.
   */
  async function handOver(workflowId: string, endpointId: string): Promise<void> {
    // Its attempt still waits in this process: it takes the slot now, the workflow never hears.
    if (slots?.wake(endpointId, workflowId)) return;
    try {
      await (deps.signalWorkflow ?? ((id, ep) => Context.current().client.workflow.getHandle(id).signal(GATE_OPEN_SIGNAL, ep)))(workflowId, endpointId);
    } catch {
      // Closed meanwhile, or Temporal unreachable: the waiter's timer wakes it.
    }
  }

  /** An operator hears of a circuit that opened or recovered and of an endpoint auto-disabled. */
  async function announce(endpointId: string, transition: string, lastError: string | null): Promise<void> {
    const type = TRANSITION_EVENTS[transition];
    if (!type) return;
    // Bookkeeping after the attempt is recorded: an outage here must not fail (and re-POST) it.
    await emitOperationalEvent(pool, type, { endpointId, lastError }).catch(() => {});
  }

  /** The late record of a delivered attempt (see DeliverResult.unrecorded). */
  async function recordLateAttempt(a: AttemptRecord): Promise<void> {
    await recordAndReport(fromAttemptRecord(a));
  }

  async function markDelivery(input: { eventId: string; endpointId: string; status: DeliveryStatus; reason?: string }): Promise<void> {
    await setDeliveryStatus(pool, input.eventId, input.endpointId, input.status, input.reason ?? null);
    // Given up while queued for an in-flight slot (its deadline passed): out of the queue.
    const workflowId = Context.current().info.workflowExecution?.workflowId;
    if (input.status === 'dead_lettered' && workflowId) await forgetWaiter(pool, input.endpointId, workflowId);
    if (input.status === 'dead_lettered' || input.status === 'dropped') {
      // The id names this activity, not the attempt: a retry after the insert emits nothing new.
      const d = { ...input, status: input.status, reason: input.reason ?? null };
      await emitDeliveryEvent(pool, d, { id: activityEventId(Context.current().info), limit: deps.opsEventLimit });
    }
    deps.onDeliveryStatus?.({ eventId: input.eventId, endpointId: input.endpointId, status: input.status, reason: input.reason ?? null });
  }

  return { resolveEndpoints, planSlices, loadSlice, firstAttempts, deliver, recordLateAttempt, markDelivery };
}

/** The signal that hands a freed in-flight slot to a waiting delivery (workflows/deliver-event.ts). */
export const GATE_OPEN_SIGNAL = 'gateOpen';

const TRANSITION_EVENTS: Record<string, OperationalEventType> = {
  opened: 'hookline.endpoint.circuit_opened',
  recovered: 'hookline.endpoint.recovered',
  disabled: 'hookline.endpoint.disabled',
};

export type Activities = ReturnType<typeof createActivities>;
