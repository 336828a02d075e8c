// The delivery workflows. deliverEvent is the card of one event (workflow id = event id): the
// relay starts it with the subscribed endpoints, it delivers to each (endpoint-delivery.ts),
// parks what gives up as a dead letter until a `replay` signal or the retention runs out, and
// hands a large fan-out to deliverEndpoints children of ENDPOINT_IDS_MAX endpoints each: the
// relay then passes only the count, and each child loads its slice from the delivery rows, so
// the start input stays the same size however many endpoints subscribe. The
// state lives in DeliveryRun; each workflow function is its handlers plus one wait.
// Deterministic code only: everything with side effects is an activity.
import { condition, continueAsNew, defineQuery, defineSignal, proxyLocalActivities, setHandler } from '@temporalio/workflow';
import type { Activities, ResolvedEndpoint } from '../activities';
import { ENDPOINT_IDS_MAX, listedAtStart } from '../src/temporal/workflow-details';
import { DeliveryRun, type ParkedDelivery, type ReplayArgs, type WaitingDelivery } from './delivery-run';
import type { EndpointState } from './endpoint-delivery';
import type { DeliveryRange } from '../src/db/deliveries';

export { deadLetterReason, type EndpointState } from './endpoint-delivery';
export type { ReplayArgs } from './delivery-run';

export interface DeliverEventInput {
  eventId: string;
  eventType?: string;
  /**
   * The subscribed endpoints, planned by the relay: their delivery rows exist and the start
   * search attributes list them. Absent (a replay that starts a new run): looked up here.
   */
  endpoints?: ResolvedEndpoint[];
  /**
   * A large fan-out (more than FANOUT_CHILD_BATCH endpoints), planned by the relay: their
   * delivery rows hold the plans; children load them in slices. Instead of `endpoints`.
   */
  fanOut?: { total: number };
  /** Started by the relay's adopt (the event's last run had closed): deliver what is still pending. */
  adopt?: boolean;
  /** Replay of a closed workflow: deliver to these endpoints only (looked up here). */
  onlyEndpointIds?: string[];
  /** Carried across continue-as-new: this event's planned deliveries are all this workflow's. */
  planned?: boolean;
  /** Carried across continue-as-new: endpoints still waiting as dead letters. */
  parked?: ParkedDelivery[];
  /** Carried across continue-as-new: deliveries waiting at their endpoint's gate. */
  waiting?: WaitingDelivery[];
  requestTimeoutMs?: number;
  /** History length past which a waiting workflow continues as new (tests set it low). */
  historyLimit?: number;
}

/** A fan-out child: its share of the parent's endpoints (rows exist, start attributes set). */
export interface DeliverEndpointsInput {
  eventId: string;
  eventType: string;
  endpoints?: ResolvedEndpoint[];
  /** Its share as a range of the event's delivery rows, loaded here (a large fan-out). */
  slice?: DeliveryRange;
  parked?: ParkedDelivery[];
  waiting?: WaitingDelivery[];
  requestTimeoutMs: number;
  historyLimit?: number;
}

export const replaySignal = defineSignal<[ReplayArgs]>('replay');
/** A freed in-flight slot for the delivery to this endpoint (sent by the activity that freed it; GATE_OPEN_SIGNAL in activities). */
export const gateOpenSignal = defineSignal<[string]>('gateOpen');
/**
 * From the relay, when its start found the workflow already there: deliver every planned
 * delivery of the event that no run has taken yet. Idempotent: a run that holds the whole
 * plan (the relay's own, after a crash) ignores it; another (a replay's run) adopts once.
 */
export const adoptSignal = defineSignal<[]>('adopt');
export const statusQuery = defineQuery<Record<string, { state: EndpointState; reason?: string }>>('status');

/** Past this many endpoints an event fans out through child workflows of this many each. */
export const FANOUT_CHILD_BATCH = ENDPOINT_IDS_MAX;

const lookups = proxyLocalActivities<Activities>({
  startToCloseTimeout: '10s',
  retry: { initialInterval: '1s', maximumInterval: '30s' },
});

// Not async, as deliverEndpoints: the happy path awaits only in finish (the SDK captures a stack
// trace for every promise a workflow makes; an async function and its result are two more).
export function deliverEvent(input: DeliverEventInput): Promise<Record<string, EndpointState>> {
  const run = handle(new DeliveryRun(input.eventId, input));
  const next = (carry: ReturnType<DeliveryRun['carryOver']>) => continueAsNew<typeof deliverEvent>(carry);
  if (input.parked || input.waiting) {
    if (input.planned) run.holdsPlan();
    run.resume(input.parked ?? [], input.waiting ?? []);
  } else if (input.endpoints) {
    run.holdsPlan();
    run.startAttributesSet(listedAtStart(input.endpoints));
    start(run, input.endpoints);
  } else if (input.fanOut || input.adopt) {
    // Both read the plan from the delivery rows, and this run takes all of it that is pending.
    run.holdsPlan();
    run.startAttributesSet([]);
    return run.deliverPending(lookups.planSlices, true).then(() => finish(run, [], next));
  } else {
    // A replay that starts a new run: its endpoints are looked up first.
    return lookUp(run, input.onlyEndpointIds).then((endpoints) => (start(run, endpoints), finish(run, [], next)));
  }
  return finish(run, carried(input), next);
}

function start(run: DeliveryRun, endpoints: ResolvedEndpoint[]): void {
  if (endpoints.length > FANOUT_CHILD_BATCH) run.fanOut(endpoints);
  else run.deliver(endpoints);
}

export function deliverEndpoints(input: DeliverEndpointsInput): Promise<Record<string, EndpointState>> {
  const run = handle(new DeliveryRun(input.eventId, input));
  if (input.parked || input.waiting) {
    run.resume(input.parked ?? [], input.waiting ?? []);
  } else if (input.slice) {
    run.startAttributesSet([]);
    return lookups.loadSlice({ eventId: input.eventId, slice: input.slice })
      .then((endpoints) => (run.deliver(endpoints), finish(run, [], (next) => continueAsNew<typeof deliverEndpoints>(next))));
  } else {
    run.startAttributesSet(listedAtStart(input.endpoints ?? []));
    run.deliver(input.endpoints ?? []);
  }
  return finish(run, carried(input), (next) => continueAsNew<typeof deliverEndpoints>(next));
}

/** Registered before any await, so a replay that arrives first is kept. */
function handle(run: DeliveryRun): DeliveryRun {
  setHandler(statusQuery, () => Object.fromEntries(run.states()));
  setHandler(replaySignal, (args) => run.replay(args?.endpointIds));
  setHandler(gateOpenSignal, (endpointId) => run.gateOpen(endpointId));
  setHandler(adoptSignal, () => run.adopt());
  return run;
}

async function lookUp(run: DeliveryRun, onlyEndpointIds?: string[]): Promise<ResolvedEndpoint[]> {
  const found = await lookups.resolveEndpoints({ eventId: run.eventId, onlyEndpointIds });
  run.eventType = found.eventType;
  run.requestTimeoutMs = found.requestTimeoutMs;
  return found.endpoints;
}

/** The endpoints a previous run handed over (continue-as-new). */
function carried(input: { parked?: ParkedDelivery[]; waiting?: WaitingDelivery[] }): string[] {
  return [...(input.parked ?? []), ...(input.waiting ?? [])].map((p) => p.endpoint.id);
}

/** The one wait: until every endpoint is settled, or only idle waits remain in a long history. */
async function finish(
  run: DeliveryRun,
  resumedIds: string[],
  next: (carry: ReturnType<DeliveryRun['carryOver']>) => Promise<never>,
): Promise<Record<string, EndpointState>> {
  run.ready(resumedIds);
  run.publish();
  for (;;) {
    await condition(() => run.finished || run.shouldContinueAsNew);
    if (run.finished) return run.result();
    // Checked again: a delivery may have woken between the condition and here (a timer that
    // fired in the same activation), and then it is no longer idle.
    if (run.shouldContinueAsNew) await next(run.carryOver());
  }
}
