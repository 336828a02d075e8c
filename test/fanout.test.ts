// Long lives and wide fan-outs: a large fan-out splits into child workflows, and a delivery
// replayed many times continues as new instead of growing one history without bound.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WorkflowIdReusePolicy } from '@temporalio/common';
import { FANOUT_CHILD_BATCH } from '../workflows/deliver-event';
import { createEndpoint, createHarness, FAST_RETRY, sendEvent, startReceiver, waitFor, type Harness, type Receiver } from './helpers';

describe('fan-out and long lives', () => {
  let h: Harness;
  let rx: Receiver;

  beforeAll(async () => {
    h = await createHarness();
    rx = await startReceiver();
  });
  afterAll(async () => {
    await rx?.close();
    await h?.close();
  });

  it('delivers one event to 120 endpoints through child workflows, and replays through the parent', async () => {
    const n = 120;
    const eps: { id: string }[] = [];
    for (let i = 0; i < n; i++) eps.push(await createEndpoint(h.app, { url: `${rx.url}/${i}`, eventTypes: ['wide.event'], retry: FAST_RETRY }));
    rx.respond = (req) => ({ status: 200, body: req.headers['webhook-id'] as string });
    const ev = await sendEvent(h.app, { type: 'wide.event', data: { big: true } });

    await waitFor(async () => (await h.client.workflow.getHandle(ev.id).describe()).status.name === 'COMPLETED', 120_000, 'fan-out done');
    const byId = rx.requests.filter((r) => r.headers['webhook-id'] === ev.id);
    expect(byId).toHaveLength(n);
    // The event's view shows the first 100 deliveries and the total; the list has them all.
    const res = await h.app.inject({ method: 'GET', url: `/v1/events/${ev.id}` });
    expect(res.json()).toMatchObject({ deliveriesTotal: n });
    expect(res.json().deliveries.every((d: any) => d.status === 'delivered')).toBe(true);
    const { rows } = await h.pool.query(`SELECT count(*)::int AS n FROM deliveries WHERE event_id = $1 AND status = 'delivered'`, [ev.id]);
    expect(rows[0].n).toBe(n);

    // Children: ceil(120 / 50) = 3, each with its own small history and search attributes.
    const children = Math.ceil(n / FANOUT_CHILD_BATCH);
    for (let i = 1; i <= children; i++) {
      const child = await h.client.workflow.getHandle(`${ev.id}/${i}`).describe();
      expect(child.status.name).toBe('COMPLETED');
      expect((child.searchAttributes.EndpointIds as string[]).length).toBeLessThanOrEqual(FANOUT_CHILD_BATCH);
    }

    // A replay of one endpoint goes through the event's workflow id, as for any event.
    const target = eps[n - 1].id;
    const replay = await h.app.inject({ method: 'POST', url: `/v1/deliveries/${ev.id}/${target}/replay` });
    expect(replay.statusCode).toBe(202);
    await waitFor(() => rx.requests.filter((r) => r.headers['webhook-id'] === ev.id).length === n + 1, 30_000, 'resent');
  });

  it('continues as new while parked through many replays, and still delivers at the end', async () => {
    let healthy = false;
    const local = await startReceiver();
    try {
      local.respond = () => ({ status: healthy ? 200 : 400 });
      const ep = await createEndpoint(h.app, { url: local.url, eventTypes: ['long.life'], retry: FAST_RETRY });
      // Produce the event without the relay so the test can start it with a tiny history limit.
      await h.relay.stop();
      const ev = await sendEvent(h.app, { type: 'long.life', data: {} });
      await h.pool.query('DELETE FROM outbox WHERE event_id = $1', [ev.id]);
      await h.relay.start();
      const handle = await h.client.workflow.start('deliverEvent', {
        workflowId: ev.id,
        taskQueue: h.taskQueue,
        args: [{ eventId: ev.id, historyLimit: 40 }],
        workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
      });
      const firstRun = handle.firstExecutionRunId;
      const status = async () => (await h.app.inject({ method: 'GET', url: `/v1/events/${ev.id}` })).json().deliveries[0]?.status;

      for (let i = 0; i < 6; i++) {
        await waitFor(async () => (await status()) === 'dead_lettered', 30_000, `dead letter ${i}`);
        const before = local.requests.length;
        await h.app.inject({ method: 'POST', url: `/v1/deliveries/${ev.id}/${ep.id}/replay` });
        await waitFor(() => local.requests.length > before, 30_000, `replay ${i} attempted`);
      }
      await waitFor(async () => (await status()) === 'dead_lettered', 30_000, 'parked again');
      await waitFor(async () => (await h.client.workflow.getHandle(ev.id).describe()).runId !== firstRun, 30_000, 'continued as new');

      healthy = true;
      await h.app.inject({ method: 'POST', url: `/v1/deliveries/${ev.id}/${ep.id}/replay` });
      await waitFor(async () => (await status()) === 'delivered', 30_000, 'delivered');
      const desc = await h.client.workflow.getHandle(ev.id).describe();
      expect(desc.runId).not.toBe(firstRun);
      await waitFor(async () => (await h.client.workflow.getHandle(ev.id).describe()).status.name === 'COMPLETED', 15_000, 'closed');
      // Every attempt of every run is still readable.
      const attempts = (await h.app.inject({ method: 'GET', url: `/v1/deliveries/${ev.id}/${ep.id}/attempts` })).json().data;
      expect(attempts).toHaveLength(8);
      expect(attempts.at(-1)).toMatchObject({ statusCode: 200, outcome: 'delivered' });
    } finally {
      await local.close();
    }
  });
});
