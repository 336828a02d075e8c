// The replay routes and the event read as the API answers them (issue 21): a replay of an event
// the relay has not started is refused instead of starting its workflow for one endpoint; bulk
// replay signals one bounded batch per request and says how to go on; GET /v1/events/:id shows
// a bounded number of deliveries with a link to the rest. Real Temporal and Postgres; no relay
// and no worker, so delivery rows stay exactly as each test writes them (as the relay would).
import { WorkflowNotFoundError } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureDeliveries } from '../src/db/deliveries';
import { createEndpoint, createHarness, sendEvent, type Harness } from './helpers';

describe('replay and event reads: bounded, and never before the relay', () => {
  let h: Harness;
  const started: string[] = [];

  beforeAll(async () => {
    h = await createHarness({ noRelay: true, noWorker: true });
  });
  afterAll(async () => {
    // Workflows these tests started on a queue no worker polls: ended, not left on the server.
    await Promise.all(started.map((id) => h.client.workflow.getHandle(id).terminate('test done').catch(() => {})));
    await h?.close();
  });

  const workflowExists = async (id: string) => {
    try {
      await h.client.workflow.getHandle(id).describe();
      started.push(id);
      return true;
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) return false;
      throw err;
    }
  };
  /** An event the relay has taken (its outbox row gone), with dead-lettered deliveries at `endpointIds`. */
  async function deadLettered(endpointIds: string[], type = 'replay.batch') {
    const ev = await sendEvent(h.app, { type, data: {} });
    await h.pool.query('DELETE FROM outbox WHERE event_id = $1', [ev.id]);
    await ensureDeliveries(h.pool, ev.id, type, endpointIds);
    await h.pool.query("UPDATE deliveries SET status = 'dead_lettered', dead_lettered_at = now() WHERE event_id = $1", [ev.id]);
    return ev.id;
  }
  const bulk = (payload: object) => h.app.inject({ method: 'POST', url: '/v1/dead-letters/replay', payload });

  it('refuses to replay a delivery whose event is not relayed yet: 409 naming the state, no workflow', async () => {
    const [a, b] = [await createEndpoint(h.app, { url: 'http://127.0.0.1:9/a' }), await createEndpoint(h.app, { url: 'http://127.0.0.1:9/b' })];
    const ev = await sendEvent(h.app, { type: 'replay.early', data: {} });
    // The relay planned the event (delivery rows written) and stopped before starting it.
    await ensureDeliveries(h.pool, ev.id, 'replay.early', [a.id, b.id]);
    const res = await h.app.inject({ method: 'POST', url: `/v1/deliveries/${ev.id}/${a.id}/replay` });
    expect(res.statusCode, res.body).toBe(409);
    expect(res.json()).toMatchObject({ code: 'not_relayed', message: expect.stringMatching(/^eventId: .*not relayed yet \(delivery pending\)/) });
    expect(await workflowExists(ev.id)).toBe(false);
    // Bulk replay passes it over too, even with a row that reads dead-lettered.
    await h.pool.query("UPDATE deliveries SET status = 'dead_lettered', dead_lettered_at = now() WHERE event_id = $1", [ev.id]);
    expect((await bulk({ eventType: 'replay.early' })).json()).toEqual({ replayed: 0 });
    expect(await workflowExists(ev.id)).toBe(false);
    // Once relayed, the same replay is accepted.
    await h.pool.query('DELETE FROM outbox WHERE event_id = $1', [ev.id]);
    expect((await h.app.inject({ method: 'POST', url: `/v1/deliveries/${ev.id}/${a.id}/replay` })).statusCode).toBe(202);
    expect(await workflowExists(ev.id)).toBe(true);
  });

  it('replays dead letters one bounded batch per request, and a loop over nextCursor ends', async () => {
    const eps = [await createEndpoint(h.app, { url: 'http://127.0.0.1:9/c' }), await createEndpoint(h.app, { url: 'http://127.0.0.1:9/d' })];
    const events: string[] = [];
    for (let i = 0; i < 4; i++) events.push(await deadLettered(eps.map((e) => e.id))); // 8 dead letters
    const answers: { replayed: number; remaining?: number; nextCursor?: string }[] = [];
    let cursor: string | undefined;
    do {
      const res = await bulk({ eventType: 'replay.batch', limit: 3, ...(cursor ? { cursor } : {}) });
      expect(res.statusCode, res.body).toBe(202);
      answers.push(res.json());
      cursor = res.json().nextCursor;
    } while (cursor && answers.length < 10);
    // No worker changes the rows: they still read dead-lettered, and the cursor still moves on.
    expect(answers.map((a) => [a.replayed, a.remaining])).toEqual([[3, 5], [3, 2], [2, undefined]]);
    // The last batch answers exactly the contract's {replayed}.
    expect(answers.at(-1)).toEqual({ replayed: 2 });
    // A batch that ends exactly at the last match says so too: no cursor to an empty batch.
    const exact = await bulk({ eventType: 'replay.batch', limit: 8 });
    expect(exact.json()).toEqual({ replayed: 8 });
    for (const id of events) expect(await workflowExists(id), id).toBe(true);
  });

  it('answers a bad batch request with 400 naming the field', async () => {
    for (const [payload, field] of [[{ limit: 0 }, 'body.limit'], [{ limit: 501 }, 'body.limit'], [{ cursor: 'garbage' }, 'body.cursor'],
      [{ cursor: Buffer.from(JSON.stringify(['evt_\u0000', 'ep_x'])).toString('base64url') }, 'body.cursor']] as const) {
      const res = await bulk(payload);
      expect(res.statusCode, JSON.stringify(payload)).toBe(400);
      expect(res.json().message).toMatch(new RegExp(`^${field.replace('.', '\\.')}`));
    }
  });

  it('shows the first 100 deliveries of an event with their total and a link to the rest', async () => {
    const ids = Array.from({ length: 240 }, (_, i) => `ep_fan${String(i).padStart(3, '0')}`);
    const ev = await sendEvent(h.app, { type: 'replay.fan', data: {} });
    await ensureDeliveries(h.pool, ev.id, 'replay.fan', ids);
    const res = await h.app.inject({ method: 'GET', url: `/v1/events/${ev.id}` });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body.deliveries.map((d: { endpointId: string }) => d.endpointId)).toEqual(ids.slice(0, 100));
    expect(body).toMatchObject({ deliveriesTotal: 240, deliveriesNext: `/v1/deliveries?eventId=${ev.id}` });
    // The link lists this event's deliveries only, all of them, page by page.
    const seen = new Set<string>();
    for (let url: string | null = `${body.deliveriesNext}&limit=100`; url;) {
      const page: { data: { eventId: string; endpointId: string }[]; nextCursor: string | null } = (await h.app.inject({ method: 'GET', url })).json();
      for (const d of page.data) {
        expect(d.eventId).toBe(ev.id);
        seen.add(d.endpointId);
      }
      url = page.nextCursor ? `${body.deliveriesNext}&limit=100&cursor=${page.nextCursor}` : null;
    }
    expect(seen.size).toBe(240);
    // Under a tenant prefix the link keeps it; a small event has no link.
    const tenant = (await h.app.inject({ method: 'GET', url: `/v1/tenants/default/events/${ev.id}` })).json();
    expect(tenant.deliveriesNext).toBe(`/v1/tenants/default/deliveries?eventId=${ev.id}`);
    const small = await sendEvent(h.app, { type: 'replay.small', data: {} });
    await ensureDeliveries(h.pool, small.id, 'replay.small', ['ep_one']);
    expect((await h.app.inject({ method: 'GET', url: `/v1/events/${small.id}` })).json()).toMatchObject({ deliveriesTotal: 1, deliveriesNext: null });
  });
});
