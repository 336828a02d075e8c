// The state of one run of a delivery workflow (deliverEvent, or a fan-out child's
// deliverEndpoints): the endpoints it delivers itself, the ones it handed to child workflows,
// where a replay goes, and what it shows — search attributes and the Web UI's details.
// Deterministic code only.
import {
  executeChild,
  getExternalWorkflowHandle,
  proxyActivities,
  setCurrentDetails,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities, ResolvedEndpoint } from '../activities';
import type { DeliveryRange } from '../src/db/deliveries';
import { DeadLetteredEndpoints, DeliveryStatus, EndpointIds, EventType, TenantId, type DeliveryStatusValue } from '../src/search-attributes';
import { childWorkflowId, ENDPOINT_IDS_MAX, startSearchAttributes, workflowCurrentDetails } from '../src/temporal/workflow-details';
import { EndpointDelivery, firstAttempts, type EndpointState, type GateResume } from './endpoint-delivery';

/** A dead letter carried across continue-as-new. */
export interface ParkedDelivery {
  endpoint: ResolvedEndpoint;
  retentionEndsAt: number;
  reason: string;
}

/** A delivery waiting at its endpoint's gate, carried across continue-as-new. */
export interface WaitingDelivery extends GateResume {
  endpoint: ResolvedEndpoint;
}

export interface ReplayArgs {
  endpointIds?: string[];
}

// A regular activity: an adopt may run while the first attempts' local activity is in flight
// (see bookkeeping in endpoint-delivery.ts).
const lookups = proxyActivities<Activities>({
  startToCloseTimeout: '10s',
  retry: { initialInterval: '1s', maximumInterval: '30s' },
});

const DEFAULT_HISTORY_LIMIT = 10_000;
const DEFAULT_REQUEST_TIMEOUT_MS = 15_000;

export class DeliveryRun {
  eventType: string;
  requestTimeoutMs: number;
  /** Endpoints this run delivers itself. */
  private readonly own = new Map<string, EndpointDelivery>();
  /** Every endpoint this run knows, its own and its children's. */
  private readonly known = new Map<string, ResolvedEndpoint>();
  /** Endpoints a running child delivers: endpoint id → child workflow id. */
  private readonly owner = new Map<string, string>();
  /** Last state a child reported for its endpoints. */
  private readonly childStates = new Map<string, EndpointState>();
  /** Replays that arrived before the endpoints were known ('all' = no ids given). */
  private early: string[] | 'all' | null = [];
  private readonly adopting = new Set<string>();
  /** gateOpen signals for endpoints not tracked yet (a new run's first activation). */
  private readonly earlyOpen = new Set<string>();
  /** Running children that load their endpoints from a range of the delivery rows. */
  private sliceOwners: (DeliveryRange & { childId: string })[] = [];
  private childCount = 0;
  /** This run delivers every planned delivery of the event: an adopt adds nothing. */
  private planned = false;
  /** An adopt signal that came before this run knew its own endpoints. */
  private earlyAdopt = false;
  /** Children running, lookups and forwards in flight: the run may not end while any is. */
  private pending = 0;
  private published = '';

  /** History length past which a run holding only idle dead letters continues as new. */
  private readonly historyLimit: number;

  constructor(
    readonly eventId: string,
    opts: { eventType?: string; requestTimeoutMs?: number; historyLimit?: number },
  ) {
    this.eventType = opts.eventType ?? '';
    this.requestTimeoutMs = opts.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    this.historyLimit = opts.historyLimit ?? DEFAULT_HISTORY_LIMIT;
  }

  /** The replay signal: wake, restart or resend the named endpoints (none named: all). */
  replay(ids: string[] | undefined): void {
    const named = ids && ids.length > 0 ? ids : null;
    if (this.early !== null) {
      if (!named) this.early = 'all';
      else if (this.early !== 'all') this.early.push(...named);
      return;
    }
    // "All" reaches the slice children too: this run does not know their endpoints' ids.
    if (!named) for (const s of this.sliceOwners) void this.forward(s.childId, undefined);
    this.route(named ?? [...this.known.keys()]);
  }

  /** This run was started with the event's whole plan (the relay's start, or an adopting start). */
  holdsPlan(): void {
    this.planned = true;
  }

  /**
   * The adopt signal: once this run knows its own endpoints, take over the event's pending
   * deliveries it does not know — unless it holds the whole plan already. Once per run: what it
   * adopts is then its own, and a second adopt would find it pending again.
   */
  adopt(): void {
    if (this.early !== null) return void (this.earlyAdopt = true);
    if (this.planned) return;
    this.planned = true;
    void this.tracked(() => this.deliverPending(lookups.planSlices, false));
  }

  /**
   * Delivers the event's pending deliveries this run does not know: itself when they fit its
   * EndpointIds (fresh — a local first attempt — only in a run's first task, else resent as
   * regular activities), else through children that each load a slice of the delivery rows.
   */
  async deliverPending(planSlices: Activities['planSlices'], fresh: boolean): Promise<void> {
    const plan = await planSlices({ eventId: this.eventId, exclude: [...this.known.keys()], inlineMax: ENDPOINT_IDS_MAX - this.own.size, sliceSize: ENDPOINT_IDS_MAX });
    if (plan.endpoints && fresh) this.deliver(plan.endpoints);
    else if (plan.endpoints) this.resend(plan.endpoints);
    for (const slice of plan.slices ?? []) {
      const childId = childWorkflowId(this.eventId, ++this.childCount);
      this.sliceOwners.push({ ...slice, childId });
      void this.runChild(childId, { slice });
    }
  }

  /** A slot freed at this endpoint's gate: its delivery, if waiting for one, goes now. */
  gateOpen(endpointId: string): void {
    const d = this.own.get(endpointId);
    if (d) d.gateOpened();
    else this.earlyOpen.add(endpointId);
  }

  /** Delivers these endpoints here, fresh. */
  deliver(endpoints: ResolvedEndpoint[]): void {
    if (endpoints.length === 0) return;
    // All tracked before any runs, so the search attributes change once, not per endpoint.
    const tracked = endpoints.map((ep) => (this.known.set(ep.id, ep), this.track(ep)));
    for (const d of tracked) d.firstAttemptStarted();
    firstAttempts(this.eventId, endpoints, this.requestTimeoutMs, (results) => tracked.forEach((d, i) => d.firstAttempted(results[i])));
  }

  /**
   * Delivers these endpoints here again (a replay): all attempts as regular activities. Local
   * activities are kept to the first delivery's one batch — outcomes of several local
   * activities in flight at once may reach the workflow in another grouping on replay.
   */
  private resend(endpoints: ResolvedEndpoint[]): void {
    for (const ep of endpoints) this.known.set(ep.id, ep);
    for (const ep of endpoints) void this.track(ep).run();
  }

  /** Resumes dead letters and waits at the gate carried across continue-as-new. */
  resume(parked: ParkedDelivery[], waiting: WaitingDelivery[]): void {
    for (const p of parked) {
      this.known.set(p.endpoint.id, p.endpoint);
      const d = this.track(p.endpoint);
      d.state = 'dead_lettered';
      d.reason = p.reason;
    }
    for (const w of waiting) {
      this.known.set(w.endpoint.id, w.endpoint);
      this.track(w.endpoint);
    }
    for (const p of parked) void this.own.get(p.endpoint.id)!.run({ parkedUntil: p.retentionEndsAt });
    for (const { endpoint, ...resume } of waiting) {
      const d = this.own.get(endpoint.id)!;
      void d.run({ waiting: resume });
      // A slot handed over between the runs: the wait just resumed ends at once.
      if (this.earlyOpen.delete(endpoint.id)) d.gateOpened();
    }
  }

  /** A large fan-out whose endpoints are in hand (a replay's lookup): one child per ENDPOINT_IDS_MAX. */
  fanOut(endpoints: ResolvedEndpoint[]): void {
    for (let i = 0; i * ENDPOINT_IDS_MAX < endpoints.length; i++) {
      const batch = endpoints.slice(i * ENDPOINT_IDS_MAX, (i + 1) * ENDPOINT_IDS_MAX);
      const childId = childWorkflowId(this.eventId, ++this.childCount);
      for (const ep of batch) {
        this.known.set(ep.id, ep);
        this.owner.set(ep.id, childId);
        this.childStates.set(ep.id, 'delivering');
      }
      void this.runChild(childId, { endpoints: batch });
    }
  }

  /** The endpoints are known: replays (and an adopt) that came early are routed now. */
  ready(resumedIds: string[]): void {
    const early = this.early;
    this.early = null;
    if (this.earlyAdopt) this.adopt();
    // Endpoints delivered fresh need no replay; resumed dead letters and unknown ones do.
    const resumed = new Set(resumedIds);
    const late = (early === 'all' ? resumedIds : early ?? []).filter((id) => !this.known.has(id) || resumed.has(id));
    if (late.length > 0) this.route(late);
  }

  /** The start search attributes list these endpoints (relay, parent): publish only changes. */
  startAttributesSet(listed: string[]): void {
    this.published = JSON.stringify([this.eventType, listed, [], 'delivering']);
  }

  private track(ep: ResolvedEndpoint): EndpointDelivery {
    const d = new EndpointDelivery(ep, { eventId: this.eventId, requestTimeoutMs: this.requestTimeoutMs, changed: () => this.publish() });
    this.own.set(ep.id, d);
    return d;
  }

  private route(ids: string[]): void {
    const byChild = new Map<string, string[]>();
    const unknown: string[] = [];
    for (const id of ids) {
      const child = this.owner.get(id) ?? this.sliceOwnerOf(id);
      if (child) byChild.set(child, [...(byChild.get(child) ?? []), id]);
      else if (this.own.has(id)) this.own.get(id)!.replay();
      else if (this.known.has(id)) this.resend([this.known.get(id)!]); // a closed child's endpoint
      else if (!this.adopting.has(id)) unknown.push(id);
    }
    for (const [child, childIds] of byChild) void this.forward(child, childIds);
    // Not part of this run (delivered before a continue-as-new): look it up again.
    if (unknown.length > 0) void this.lookUpAndResend(unknown);
  }

  /** The running slice child whose range holds this endpoint (byte order, as the rows' COLLATE "C"). */
  private sliceOwnerOf(id: string): string | undefined {
    const s = this.sliceOwners.find((r) => (r.after === null || id > r.after) && (r.upTo === null || id <= r.upTo) && !r.exclude?.includes(id));
    return s?.childId;
  }

  /** Passes a replay on to the child that owns the endpoints (undefined: all); if it has closed, runs it here. */
  private async forward(child: string, ids: string[] | undefined): Promise<void> {
    await this.tracked(async () => {
      try {
        await getExternalWorkflowHandle(child).signal('replay', ids ? { endpointIds: ids } : {});
      } catch {
        this.release(child);
        if (ids) this.route(ids);
      }
    });
  }

  private async lookUpAndResend(ids: string[]): Promise<void> {
    for (const id of ids) this.adopting.add(id);
    await this.tracked(async () => {
      try {
        const found = await lookups.resolveEndpoints({ eventId: this.eventId, onlyEndpointIds: ids });
        this.resend(found.endpoints);
      } finally {
        for (const id of ids) this.adopting.delete(id);
      }
    });
  }

  /** A child delivers its share: endpoints in hand, or a slice of the delivery rows it loads itself. */
  private async runChild(childId: string, share: { endpoints?: ResolvedEndpoint[]; slice?: DeliveryRange }): Promise<void> {
    await this.tracked(async () => {
      try {
        const outcome = await executeChild<(input: unknown) => Promise<Record<string, EndpointState>>>('deliverEndpoints', {
          workflowId: childId,
          args: [{ eventId: this.eventId, eventType: this.eventType, ...share, requestTimeoutMs: this.requestTimeoutMs, historyLimit: this.historyLimit }],
          staticSummary: `${this.eventType} ${this.eventId}: endpoints ${childId.split('/').pop()}`,
          // The parent's tenant (set by the relay at start), so the Web UI's tenant filter finds children too.
          typedSearchAttributes: startSearchAttributes(this.eventType, (share.endpoints ?? []).map((ep) => ep.id), workflowInfo().typedSearchAttributes.get(TenantId)),
        });
        for (const [id, state] of Object.entries(outcome)) this.childStates.set(id, state);
      } catch {
        // Closed without a result (an operator terminated it): a replay for its endpoints runs here.
      }
      this.release(childId);
      this.publish();
    });
  }

  private release(childId: string): void {
    for (const [id, child] of this.owner) if (child === childId) this.owner.delete(id);
    this.sliceOwners = this.sliceOwners.filter((s) => s.childId !== childId);
  }

  private async tracked(fn: () => Promise<void>): Promise<void> {
    this.pending += 1;
    try {
      await fn();
    } finally {
      this.pending -= 1;
    }
  }

  /** Nothing left to do: every endpoint delivered or dropped, no child or lookup in flight. */
  get finished(): boolean {
    return this.pending === 0 && [...this.own.values()].every((d) => !d.active);
  }

  /** Only idle dead letters and waits at the gate remain and the history is long: time to continue as new. */
  get shouldContinueAsNew(): boolean {
    const active = [...this.own.values()].filter((d) => d.active);
    const long = workflowInfo().continueAsNewSuggested || workflowInfo().historyLength > this.historyLimit;
    return this.pending === 0 && active.length > 0 && long && active.every((d) => d.idleParked || d.idleWaiting);
  }

  /** What the next run carries: the parked dead letters, the waits at the gate and the settings. */
  carryOver() {
    const own = [...this.own.values()];
    const parked: ParkedDelivery[] = own
      .filter((d) => d.idleParked)
      .map((d) => ({ endpoint: d.endpoint, reason: d.reason ?? '', retentionEndsAt: d.parkedUntil }));
    const waiting: WaitingDelivery[] = own.flatMap((d) => {
      const w = d.idleWaiting;
      return w ? [{ endpoint: d.endpoint, ...w }] : [];
    });
    return { eventId: this.eventId, eventType: this.eventType, requestTimeoutMs: this.requestTimeoutMs, historyLimit: this.historyLimit, planned: this.planned, parked, waiting };
  }

  /** Every endpoint's state (a child's endpoint re-run here reports its state here). */
  states(): Map<string, { state: EndpointState; reason?: string }> {
    const out = new Map<string, { state: EndpointState; reason?: string }>();
    for (const [id, state] of this.childStates) out.set(id, { state });
    for (const [id, d] of this.own) out.set(id, { state: d.state, reason: d.reason });
    return out;
  }

  result(): Record<string, EndpointState> {
    return Object.fromEntries([...this.states()].map(([id, s]) => [id, s.state]));
  }

  private attributesKey(): string {
    const states = this.states();
    const values = [...states.values()].map((s) => s.state);
    // A slice child's endpoints are unknown here until it reports: still delivering.
    if (this.sliceOwners.length > 0) values.push('delivering');
    const overall: DeliveryStatusValue = (['delivering', 'dead_lettered', 'dropped'] as const).find((s) => values.includes(s)) ?? 'delivered';
    // A child lists its own endpoints and dead letters; the parent lists those it delivers itself.
    const deadLettered = [...this.own.values()].filter((d) => d.state === 'dead_lettered').map((d) => d.id);
    return JSON.stringify([this.eventType, [...this.own.keys()], deadLettered, overall]);
  }

  /** Search attributes when they changed (each upsert is a history event), details always. */
  publish(): void {
    const key = this.attributesKey();
    if (key !== this.published) {
      this.published = key;
      const [eventType, ids, deadLettered, overall] = JSON.parse(key) as [string, string[], string[], string];
      upsertSearchAttributes([
        { key: EventType, value: eventType },
        { key: EndpointIds, value: ids },
        { key: DeadLetteredEndpoints, value: deadLettered },
        { key: DeliveryStatus, value: overall },
      ]);
    }
    // The Web UI's "current details" of a running delivery (no history event; read by query).
    setCurrentDetails(workflowCurrentDetails(this.eventType, this.states()));
  }
}
