// deliverEvent: the card of one event (workflow id = event id). Resolves the subscribed
// endpoints, runs one `deliver` activity per endpoint under that endpoint's retry policy and
// deadline, parks what gives up as a dead letter until a `replay` signal or the retention
// runs out, and keeps the search attributes current so the Web UI can find it.
// Deterministic code only: everything with side effects is an activity.
import {
  ActivityFailure,
  ApplicationFailure,
  condition,
  continueAsNew,
  defineQuery,
  defineSignal,
  executeChild,
  getExternalWorkflowHandle,
  proxyActivities,
  proxyLocalActivities,
  setCurrentDetails,
  setHandler,
  TimeoutFailure,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import { RetryState } from '@temporalio/common';
import type { Activities, ResolvedEndpoint } from '../activities';
import {
  DeadLetteredEndpoints,
  DeliveryStatus,
  EndpointIds,
  EventType,
  type DeliveryStatusValue,
} from '../src/search-attributes';
import { workflowCurrentDetails } from '../src/temporal/web-ui';

export interface DeliverEventInput {
  eventId: string;
  /** Replay of a closed workflow: deliver to these endpoints only. */
  onlyEndpointIds?: string[];
  /** Carried across continue-as-new: endpoints still waiting as dead letters. */
  parked?: { endpoint: ResolvedEndpoint; retentionEndsAt: number; reason: string }[];
  eventType?: string;
  requestTimeoutMs?: number;
  /** History length past which a waiting workflow continues as new (tests set it low). */
  historyLimit?: number;
  /**
   * Set on the child workflows of a large fan-out: the endpoints the parent resolved for this
   * child (with eventType and requestTimeoutMs), so the child neither resolves nor splits again.
   */
  batch?: ResolvedEndpoint[];
}

export interface ReplayArgs {
  endpointIds?: string[];
}

/** One endpoint's state in the workflow: the same words as the DeliveryStatus search attribute. */
export type EndpointState = DeliveryStatusValue;

export const replaySignal = defineSignal<[ReplayArgs]>('replay');
export const statusQuery = defineQuery<Record<string, { state: EndpointState; reason?: string }>>('status');

const DEFAULT_HISTORY_LIMIT = 10_000;
// Past this many endpoints an event fans out through child workflows of this many endpoints
// each: every history stays small, and each child's EndpointIds search attribute stays under
// Temporal's 2 KiB limit per search attribute value (50 ids × ~33 bytes).
export const FANOUT_CHILD_BATCH = 50;

// Bookkeeping (resolve endpoints, write a delivery's status) runs as local activities: no
// activity-task round trip through the server and fewer history events per event, and after a
// worker crash it is retried within seconds rather than after a long task timeout.
const control = proxyLocalActivities<Activities>({
  startToCloseTimeout: '10s',
  retry: { initialInterval: '1s', maximumInterval: '30s' },
});

export async function deliverEvent(input: DeliverEventInput): Promise<Record<string, EndpointState>> {
  const { eventId } = input;
  const states = new Map<string, { state: EndpointState; reason?: string }>();
  const endpoints = new Map<string, ResolvedEndpoint>();
  const replayRequested = new Set<string>();
  const running = new Set<string>();
  let pending = 0; // replays being resolved
  // When each parked dead letter's retention ends (epoch ms), carried across continue-as-new.
  const retentionEnds = new Map<string, number>();
  let eventType = input.eventType ?? '';
  let requestTimeoutMs = input.requestTimeoutMs ?? 15_000;

  setHandler(statusQuery, () => Object.fromEntries(states));

  // Replays that arrive before the endpoints are resolved (signalWithStart, or a signal racing
  // the first activity) wait here; an endpoint about to be delivered fresh needs no replay.
  let initialized = false;
  const early: string[] = [];
  let earlyAll = false;
  const adopting = new Set<string>();
  // Endpoints delivered by a running child workflow (large fan-outs): endpoint id → child id.
  const owner = new Map<string, string>();
  // Every endpoint ever handed to a child (kept after the child closes: its history has them).
  const delegated = new Set<string>();

  // Registered before any await so a replay arriving early is never lost.
  setHandler(replaySignal, ({ endpointIds } = {}) => {
    if (!initialized) {
      if (endpointIds && endpointIds.length > 0) early.push(...endpointIds);
      else earlyAll = true;
      return;
    }
    requestReplay(endpointIds && endpointIds.length > 0 ? endpointIds : [...endpoints.keys()]);
  });

  function requestReplay(allIds: string[]): void {
    const byChild = new Map<string, string[]>();
    for (const id of allIds) {
      const child = owner.get(id);
      if (child) byChild.set(child, [...(byChild.get(child) ?? []), id]);
    }
    for (const [child, childIds] of byChild) void forward(child, childIds);
    const ids = allIds.filter((id) => !owner.has(id));
    // Not part of this run (e.g. delivered before a continue-as-new): look it up again.
    const unknown = ids.filter((id) => !endpoints.has(id) && !adopting.has(id));
    if (unknown.length > 0) void adopt(unknown);
    for (const id of ids) {
      const ep = endpoints.get(id);
      if (!ep) continue;
      if (running.has(id)) {
        // Parked (or being parked) as a dead letter: wake it. Mid-delivery: if this run of
        // attempts gives up, it starts again at once instead of parking.
        replayRequested.add(id);
      } else {
        // Delivered or dropped: a replay resends, as a new delivery.
        void run(ep, false);
      }
    }
  }

  /** Passes a replay on to the child that owns the endpoints; if it has closed, runs it here. */
  async function forward(child: string, ids: string[]): Promise<void> {
    pending += 1;
    try {
      await getExternalWorkflowHandle(child).signal(replaySignal, { endpointIds: ids });
    } catch {
      for (const id of ids) if (owner.get(id) === child) owner.delete(id);
      requestReplay(ids);
    } finally {
      pending -= 1;
    }
  }

  /** Large fan-out: one child workflow per batch of endpoints; their outcomes come back here. */
  async function runChild(childId: string, batch: ResolvedEndpoint[]): Promise<void> {
    pending += 1;
    try {
      const outcome = await executeChild(deliverEvent, {
        workflowId: childId,
        args: [{ eventId, batch, eventType, requestTimeoutMs, historyLimit: input.historyLimit }],
        staticSummary: `${eventType} ${eventId}: endpoints ${childId.split('/').pop()}`,
      });
      for (const [id, state] of Object.entries(outcome)) {
        if (owner.get(id) === childId) owner.delete(id);
        if (!running.has(id)) states.set(id, { state });
      }
      publish();
    } catch {
      // The child closed without a result (terminated by an operator): its endpoints are
      // nobody's now, so a replay for them runs here.
      for (const [id, child] of owner) if (child === childId) owner.delete(id);
    } finally {
      pending -= 1;
    }
  }

  async function adopt(ids: string[]): Promise<void> {
    pending += 1;
    for (const id of ids) adopting.add(id);
    try {
      const resolved = await control.resolveEndpoints({ eventId, onlyEndpointIds: ids });
      for (const ep of resolved.endpoints) {
        endpoints.set(ep.id, ep);
        void run(ep, false);
      }
    } finally {
      for (const id of ids) adopting.delete(id);
      pending -= 1;
    }
  }

  let published = '';
  function publish(): void {
    const values = [...states.values()].map((s) => s.state);
    const overall: DeliveryStatusValue = values.includes('delivering')
      ? 'delivering'
      : values.includes('dead_lettered')
        ? 'dead_lettered'
        : values.includes('dropped')
          ? 'dropped'
          : 'delivered';
    const deadLettered = [...states.entries()].filter(([id, s]) => s.state === 'dead_lettered' && !owner.has(id)).map(([id]) => id);
    const visible = [...endpoints.keys()].filter((id) => !delegated.has(id) || running.has(id));
    // Each upsert is a history event: write only when what the Web UI searches on changed.
    const key = JSON.stringify([eventType, visible, deadLettered, overall]);
    if (key !== published) {
      published = key;
      upsertSearchAttributes([
        { key: EventType, value: eventType },
        // Endpoints delivered by child workflows are listed on the children.
        { key: EndpointIds, value: visible },
        { key: DeadLetteredEndpoints, value: deadLettered },
        { key: DeliveryStatus, value: overall },
      ]);
    }
    // The Web UI's "current details" of a running delivery (no history event; read by query).
    setCurrentDetails(workflowCurrentDetails(eventType, states));
  }

  function setState(id: string, state: EndpointState, reason?: string): void {
    states.set(id, { state, reason });
    publish();
  }

  /** Parks a dead letter until replayed (→ true) or its retention ends (→ false). */
  async function park(ep: ResolvedEndpoint, until: number): Promise<boolean> {
    retentionEnds.set(ep.id, until); // also marks it as parked: safe to continue as new
    const replayed = await condition(() => replayRequested.has(ep.id), Math.max(1, until - Date.now()));
    retentionEnds.delete(ep.id);
    replayRequested.delete(ep.id);
    return replayed;
  }

  async function run(ep: ResolvedEndpoint, startParked: boolean, parkedUntil = 0): Promise<void> {
    running.add(ep.id);
    try {
      let parked = startParked;
      for (;;) {
        if (parked) {
          const until = parkedUntil || Date.now() + ep.retry.deadLetterRetentionMs;
          if (!(await park(ep, until))) {
            await control.markDelivery({ eventId, endpointId: ep.id, status: 'dropped', reason: states.get(ep.id)?.reason });
            setState(ep.id, 'dropped', states.get(ep.id)?.reason);
            return;
          }
          parkedUntil = 0;
        }
        const previous = states.get(ep.id)?.state;
        setState(ep.id, 'delivering');
        // A replay moves the row back to delivering at once; a first run's row is already
        // pending, and the first attempt updates it.
        if (previous !== 'delivering') {
          await control.markDelivery({ eventId, endpointId: ep.id, status: 'delivering' });
        }
        try {
          await deliveryActivities(ep, requestTimeoutMs).deliver({ eventId, endpointId: ep.id });
          replayRequested.delete(ep.id);
          setState(ep.id, 'delivered');
          return;
        } catch (err) {
          const reason = deadLetterReason(err);
          // State first: a replay signal handled while the row is being written must see it.
          setState(ep.id, 'dead_lettered', reason);
          await control.markDelivery({ eventId, endpointId: ep.id, status: 'dead_lettered', reason });
          parked = true;
        }
      }
    } finally {
      running.delete(ep.id);
    }
  }

  if (input.parked) {
    // Resumed after continue-as-new: only the parked dead letters are still open.
    for (const p of input.parked) {
      endpoints.set(p.endpoint.id, p.endpoint);
      states.set(p.endpoint.id, { state: 'dead_lettered', reason: p.reason });
    }
    publish();
    for (const p of input.parked) void run(p.endpoint, true, p.retentionEndsAt);
    initialized = true;
  } else {
    // A fan-out child was handed its endpoints (their delivery rows exist): no second lookup.
    const resolved = input.batch
      ? { eventType, requestTimeoutMs, endpoints: input.batch }
      : await control.resolveEndpoints({ eventId, onlyEndpointIds: input.onlyEndpointIds });
    eventType = resolved.eventType;
    requestTimeoutMs = resolved.requestTimeoutMs;
    for (const ep of resolved.endpoints) {
      endpoints.set(ep.id, ep);
      states.set(ep.id, { state: 'delivering' });
    }
    if (resolved.endpoints.length > FANOUT_CHILD_BATCH && !input.batch) {
      for (let i = 0; i * FANOUT_CHILD_BATCH < resolved.endpoints.length; i++) {
        const batch = resolved.endpoints.slice(i * FANOUT_CHILD_BATCH, (i + 1) * FANOUT_CHILD_BATCH);
        const childId = `${eventId}/${i + 1}`;
        for (const ep of batch) {
          owner.set(ep.id, childId);
          delegated.add(ep.id);
        }
        void runChild(childId, batch);
      }
      publish();
    } else {
      publish();
      for (const ep of resolved.endpoints) void run(ep, false);
    }
    initialized = true;
  }
  // Early replays: endpoints just resolved start fresh anyway; parked ones (resumed after
  // continue-as-new, where a replay may be carried over) and unknown ones need the replay.
  const resumed = new Set((input.parked ?? []).map((p) => p.endpoint.id));
  const late = (earlyAll ? [...resumed] : early).filter((id) => !endpoints.has(id) || resumed.has(id));
  if (late.length > 0) requestReplay(late);

  const historyLimit = input.historyLimit ?? DEFAULT_HISTORY_LIMIT;
  // Only endpoints waiting inside park(): nothing of theirs is in flight.
  const parkedIds = () => [...running].filter((id) => retentionEnds.has(id) && !replayRequested.has(id));
  const tooLong = () => workflowInfo().continueAsNewSuggested || workflowInfo().historyLength > historyLimit;
  // Done when nothing runs; continue as new when only parked dead letters remain and history
  // has grown long (a delivery replayed many times).
  await condition(
    () => pending === 0 && (running.size === 0 || (tooLong() && parkedIds().length === running.size)),
  );
  if (running.size > 0) {
    await continueAsNew<typeof deliverEvent>({
      eventId,
      eventType,
      requestTimeoutMs,
      historyLimit: input.historyLimit,
      parked: parkedIds().map((id) => ({
        endpoint: endpoints.get(id)!,
        reason: states.get(id)?.reason ?? '',
        retentionEndsAt: retentionEnds.get(id)!,
      })),
    });
  }
  return Object.fromEntries([...states.entries()].map(([id, s]) => [id, s.state]));
}

function deliveryActivities(ep: ResolvedEndpoint, requestTimeoutMs: number) {
  const r = ep.retry;
  return proxyActivities<Activities>({
    summary: `deliver to ${ep.id} (${ep.host})`,
    scheduleToCloseTimeout: r.deadlineMs,
    // The activity enforces the request timeout itself; this only catches a stuck worker.
    startToCloseTimeout: requestTimeoutMs + 5_000,
    retry: {
      initialInterval: r.initialIntervalMs,
      backoffCoefficient: r.backoffCoefficient,
      maximumInterval: r.maximumIntervalMs,
      maximumAttempts: r.maxAttempts > 0 ? r.maxAttempts : undefined,
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
