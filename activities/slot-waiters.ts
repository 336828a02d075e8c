// A short, bounded wait inside the activity for an endpoint's in-flight slot, handed over in
// process. A delivery the in-flight cap refuses already holds a ticket in the endpoint's queue
// (gate_waiters); the release that frees a slot pops the first ticket and names its workflow.
// Before, that waiter had gone back to its workflow — a durable timer, then a `gateOpen` signal,
// two more workflow tasks and an activity task to take the slot. When the waiter is still in
// this process, the release now resolves its wait directly and it takes the slot at once: no
// signal, no workflow task. A release in another process, or one after the wait ended, still
// signals the workflow (the workflow counts a signal that came during the wait: gateOpened).
//
// Bounded so a hanging receiver cannot hold worker slots with it: at most waitMs per attempt,
// at most the endpoint's maxInFlight waiters per endpoint and maxTotal in all (a first attempt
// waits inside its workflow task, whose slot it holds meanwhile). Whoever finds no room, or
// waits in vain, goes back to the durable wait exactly as before.

export interface SlotWaitSettings {
  /** Longest in-process wait; well below the activities' stuck-worker margin (5 s). */
  waitMs: number;
  /** Waiters across all endpoints in this process. */
  maxTotal: number;
}

// Measured with the bench's e2e phase at maxInFlight 10 (see the report in the commit).
export const DEFAULT_SLOT_WAIT: SlotWaitSettings = { waitMs: 1_000, maxTotal: 20 };

export class SlotWaiters {
  /** endpoint id → workflow id → wake-up of its waiting attempt. */
  private readonly waiting = new Map<string, Map<string, () => void>>();
  private total = 0;

  constructor(private readonly s: SlotWaitSettings = DEFAULT_SLOT_WAIT) {}

  /**
   * Waits until a release in this process hands this workflow's ticket a slot (true), or until
   * the bound (false). False at once when the endpoint or the process has no room for a waiter.
   */
  wait(endpointId: string, workflowId: string, maxPerEndpoint: number): Promise<boolean> {
    let here = this.waiting.get(endpointId);
    if (this.total >= this.s.maxTotal || (here?.size ?? 0) >= maxPerEndpoint || here?.has(workflowId)) return Promise.resolve(false);
    if (!here) this.waiting.set(endpointId, (here = new Map()));
    const waiters = here;
    this.total += 1;
    return new Promise<boolean>((resolve) => {
      const done = (woken: boolean) => {
        clearTimeout(timer);
        waiters.delete(workflowId);
        if (waiters.size === 0) this.waiting.delete(endpointId);
        this.total -= 1;
        resolve(woken);
      };
      const timer = setTimeout(() => done(false), this.s.waitMs);
      waiters.set(workflowId, () => done(true));
    });
  }

  /** A release popped this workflow's ticket: true when its attempt waits here (now woken). */
  wake(endpointId: string, workflowId: string): boolean {
    const wake = this.waiting.get(endpointId)?.get(workflowId);
    wake?.();
    return wake !== undefined;
  }

  get size(): number {
    return this.total;
  }
}
