// A delivery the in-flight cap refuses, while its attempt still waits in the worker, takes the
// slot a release in the same worker frees — in process (activities/slot-waiters.ts): its
// workflow takes the happy path's single task, no timer, no gateOpen signal, no second
// activity, and the receiver still never has more than maxInFlight requests open.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEndpoint, createHarness, FAST_RETRY, sendEvent, waitFor, type Harness } from './helpers';

/** Answers 200, but only once `release()` is called for the requests held so far. */
async function startHoldingReceiver() {
  const state = { received: [] as string[], open: 0, maxOpen: 0 };
  let held: Array<() => void> = [];
  const server = http.createServer((req, res) => {
    state.received.push(String(req.headers['webhook-id']));
    state.open += 1;
    state.maxOpen = Math.max(state.maxOpen, state.open);
    req.resume();
    held.push(() => {
      state.open -= 1;
      res.end('ok');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return Object.assign(state, {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/held`,
    release: () => {
      const now = held;
      held = [];
      for (const answer of now) answer();
    },
    close: () => new Promise<void>((r) => (server.closeAllConnections(), server.close(() => r()))),
  });
}

describe('in-process hand-off of an in-flight slot', () => {
  let h: Harness;

  beforeAll(async () => {
    // A wait bound well above what the test needs (the release follows the queueing at once),
    // so a slow box does not send the waiter back to its workflow first; below the first
    // attempt's timeout (the harness's 3 s request timeout + 5 s margin).
    h = await createHarness({ activities: { slotWait: { waitMs: 4_000, maxTotal: 20 } } });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('hands the freed slot to the attempt waiting in the worker: no timer, no signal, one attempt', async () => {
    const rx = await startHoldingReceiver();
    try {
      const ep = await createEndpoint(h.app, { url: rx.url, eventTypes: ['handoff.test'], maxInFlight: 1, retry: FAST_RETRY });
      const first = await sendEvent(h.app, { type: 'handoff.test', data: { n: 1 } });
      await waitFor(() => rx.received.length === 1, 30_000, 'the first request holding the one slot');
      const second = await sendEvent(h.app, { type: 'handoff.test', data: { n: 2 } });
      const queued = async () => (await h.pool.query('SELECT 1 FROM gate_waiters WHERE endpoint_id = $1 AND workflow_id = $2', [ep.id, second.id])).rowCount === 1;
      await waitFor(queued, 30_000, 'the second delivery queued for the slot');
      rx.release();
      await waitFor(() => rx.received.length === 2, 30_000, 'the second request');
      rx.release();

      for (const id of [first.id, second.id]) {
        await h.client.workflow.getHandle(id).result();
        const { rows } = await h.pool.query('SELECT status, attempts FROM deliveries WHERE event_id = $1 AND endpoint_id = $2', [id, ep.id]);
        expect(rows[0]).toEqual({ status: 'delivered', attempts: 1 });
      }
      expect(rx.received).toEqual([first.id, second.id]);
      expect(rx.maxOpen).toBe(1);
      const { events } = await h.client.workflow.getHandle(second.id).fetchHistory();
      // Refused, then admitted inside the same local activity: the happy path's history.
      expect(events!.filter((e) => e.workflowExecutionSignaledEventAttributes)).toHaveLength(0);
      expect(events!.filter((e) => e.timerStartedEventAttributes)).toHaveLength(0);
      expect(events!.some((e) => e.activityTaskScheduledEventAttributes)).toBe(false);
      expect(events!.length).toBe(7);
      const { rows } = await h.pool.query('SELECT count(*)::int AS n FROM gate_waiters WHERE endpoint_id = $1', [ep.id]);
      expect(rows[0].n).toBe(0);
    } finally {
      rx.release();
      await rx.close();
    }
  });
});
