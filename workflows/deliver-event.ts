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
  proxyActivities,
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
}

export interface ReplayArgs {
  endpointIds?: string[];
}

export type EndpointState = 'delivering' | 'delivered' | 'dead_lettered' | 'dropped';

export const replaySignal = defineSignal<[ReplayArgs]>('replay');
export const statusQuery = defineQuery<Record<string, { state: EndpointState; reason?: string }>>('status');

const DEFAULT_HISTORY_LIMIT = 10_000;

const control = proxyActivities<Activities>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1s', maximumInterval: '1 minute' },
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
  const adopting = new Set<string>();

  // Registered before any await so a replay arriving early is never lost.
  setHandler(replaySignal, ({ endpointIds } = {}) => {
    if (!initialized) {
      early.push(...(endpointIds ?? []));
      return;
    }
    requestReplay(endpointIds && endpointIds.length > 0 ? endpointIds : [...endpoints.keys()]);
  });

  function requestReplay(ids: string[]): void {
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

  function publish(): void {
    const values = [...states.values()].map((s) => s.state);
    const overall: DeliveryStatusValue = values.includes('delivering')
      ? 'delivering'
      : values.includes('dead_lettered')
        ? 'dead_lettered'
        : values.includes('dropped')
          ? 'dropped'
          : 'delivered';
    const deadLettered = [...states.entries()].filter(([, s]) => s.state === 'dead_lettered').map(([id]) => id);
    upsertSearchAttributes([
      { key: EventType, value: eventType },
      { key: EndpointIds, value: [...endpoints.keys()] },
      { key: DeadLetteredEndpoints, value: deadLettered },
      { key: DeliveryStatus, value: overall },
    ]);
  }

  function setState(id: string, state: EndpointState, reason?: string): void {
    states.set(id, { state, reason });
    publish();
  }

  /** Parks a dead letter until replayed (→ true) or its retention ends (→ false). */
  async function park(ep: ResolvedEndpoint, until: number): Promise<boolean> {
    retentionEnds.set(ep.id, until);
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
        setState(ep.id, 'delivering');
        await control.markDelivery({ eventId, endpointId: ep.id, status: 'delivering' });
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
    const resolved = await control.resolveEndpoints({ eventId, onlyEndpointIds: input.onlyEndpointIds });
    eventType = resolved.eventType;
    requestTimeoutMs = resolved.requestTimeoutMs;
    for (const ep of resolved.endpoints) {
      endpoints.set(ep.id, ep);
      states.set(ep.id, { state: 'delivering' });
    }
    publish();
    for (const ep of resolved.endpoints) void run(ep, false);
    initialized = true;
  }
  const late = early.filter((id) => !endpoints.has(id));
  if (late.length > 0) requestReplay(late);

  const historyLimit = input.historyLimit ?? DEFAULT_HISTORY_LIMIT;
  const parkedIds = () => [...running].filter((id) => states.get(id)?.state === 'dead_lettered' && !replayRequested.has(id));
  const tooLong = () => workflowInfo().continueAsNewSuggested || workflowInfo().historyLength > historyLimit;
  // Done when nothing runs; continue as new when only parked dead letters remain and history
  // has grown long (a delivery replayed many times).
  await condition(
    () => pending === 0 && (running.size === 0 || (tooLong() && parkedIds().length === running.size)),
  );
  if (running.size > 0) {
    const now = Date.now();
    await continueAsNew<typeof deliverEvent>({
      eventId,
      eventType,
      requestTimeoutMs,
      historyLimit: input.historyLimit,
      parked: parkedIds().map((id) => ({
        endpoint: endpoints.get(id)!,
        reason: states.get(id)?.reason ?? '',
        retentionEndsAt: retentionEnds.get(id) ?? now + endpoints.get(id)!.retry.deadLetterRetentionMs,
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
