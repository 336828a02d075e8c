// End to end on the real parts: API → outbox → relay → Temporal → worker → signed POST.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Webhook } from 'standardwebhooks';
import { createEndpoint, createHarness, sendEvent, startReceiver, waitFor, type Harness, type Receiver } from './helpers';

describe('pipeline', () => {
  let h: Harness;
  let invoices: Receiver;
  let everything: Receiver;

  beforeAll(async () => {
    h = await createHarness();
    invoices = await startReceiver();
    everything = await startReceiver();
  });
  afterAll(async () => {
    await invoices?.close();
    await everything?.close();
    await h?.close();
  });

  it('delivers each event to exactly the endpoints subscribed to its type, signed', async () => {
    const inv = await createEndpoint(h.app, { url: invoices.url, eventTypes: ['invoice.*'] });
    const all = await createEndpoint(h.app, { url: everything.url });
    expect(inv.secret).toMatch(/^whsec_/);

    const sent = [
      await sendEvent(h.app, { type: 'invoice.paid', data: { amount: 100 } }),
      await sendEvent(h.app, { type: 'invoice.voided', data: { amount: 7 } }),
      await sendEvent(h.app, { type: 'customer.created', data: { name: 'Ada' } }),
    ];

    await waitFor(() => invoices.requests.length >= 2 && everything.requests.length >= 3, 30_000, 'deliveries');
    // Let any stray duplicate arrive before counting.
    await new Promise((r) => setTimeout(r, 500));

    const ids = (rx: Receiver) => rx.requests.map((r) => r.headers['webhook-id']).sort();
    expect(ids(invoices)).toEqual([sent[0].id, sent[1].id].sort());
    expect(ids(everything)).toEqual(sent.map((s) => s.id).sort());

    for (const [rx, secret] of [[invoices, inv.secret], [everything, all.secret]] as const) {
      const wh = new Webhook(secret);
      for (const req of rx.requests) {
        const payload = wh.verify(req.body, {
          'webhook-id': req.headers['webhook-id'] as string,
          'webhook-timestamp': req.headers['webhook-timestamp'] as string,
          'webhook-signature': req.headers['webhook-signature'] as string,
        }) as { id: string; type: string; data: unknown; timestamp: string };
        expect(payload.id).toBe(req.headers['webhook-id']);
        expect(req.headers['content-type']).toBe('application/json');
        expect(req.headers['user-agent']).toMatch(/^Hookline\//);
        expect(sent.map((s) => s.type)).toContain(payload.type);
      }
    }

    const paid = JSON.parse(invoices.requests.find((r) => r.headers['webhook-id'] === sent[0].id)!.body);
    expect(paid).toMatchObject({ id: sent[0].id, type: 'invoice.paid', data: { amount: 100 } });

    const res = await h.app.inject({ method: 'GET', url: `/v1/events/${sent[0].id}` });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body.relayed).toBe(true);
    expect(body.deliveries.map((d: any) => [d.endpointId, d.status]).sort()).toEqual(
      [[inv.id, 'delivered'], [all.id, 'delivered']].sort(),
    );

    const attempts = await h.app.inject({ method: 'GET', url: `/v1/deliveries/${sent[0].id}/${inv.id}/attempts` });
    expect(attempts.json().data).toHaveLength(1);
    expect(attempts.json().data[0]).toMatchObject({ attempt: 1, statusCode: 200, outcome: 'delivered' });
  });

  it('starts one workflow per event with the event id as workflow id', async () => {
    const ev = await sendEvent(h.app, { type: 'order.created', data: { n: 1 } });
    const handle = h.client.workflow.getHandle(ev.id);
    await waitFor(async () => (await handle.describe()).status.name === 'COMPLETED', 30_000, 'workflow completion');
    const desc = await handle.describe();
    expect(desc.workflowId).toBe(ev.id);
    expect(desc.typedSearchAttributes.get({ name: 'EventType', type: 'KEYWORD' } as any)).toBe('order.created');
  });
});
