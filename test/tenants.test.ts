// Tenants on the real parts: lifecycle, fan-out that never crosses tenants, every read scoped to
// the tenant in the path (another tenant's ids are 404), the default tenant behind the routes
// without one, per-tenant Idempotency-Keys, the TenantId search attribute, per-tenant stats.
import { Validator } from '@seriousme/openapi-schema-validator';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EndpointRow } from '../src/db/endpoints';
import { OPERATOR_TENANT } from '../src/db/tenants';
import { enqueueEvent } from '../src/producer';
import { FANOUT_CHILD_BATCH } from '../workflows/deliver-event';
import { subscribersOf } from '../src/subscriptions';
import { createHarness, FAST_RETRY, startReceiver, waitFor, type Harness, type Receiver } from './helpers';

describe('subscribersOf', () => {
  it('never matches an endpoint of another tenant, whatever it subscribes to', () => {
    const ep = (id: string, tenantId: string): EndpointRow =>
      ({ id, tenantId, url: 'https://example.com/', eventTypes: null, channels: null, disabled: false } as EndpointRow);
    const active = [ep('ep_a', 'acme'), ep('ep_b', 'globex'), ep('ep_d', 'default')];
    expect(subscribersOf(active, { tenantId: 'acme', type: 'order.created', channels: null }).map((e) => e.id)).toEqual(['ep_a']);
    expect(subscribersOf(active, { tenantId: 'default', type: 'order.created', channels: null }).map((e) => e.id)).toEqual(['ep_d']);
    expect(subscribersOf(active, { tenantId: 'nobody', type: 'order.created', channels: null })).toEqual([]);
    // A test event: its one endpoint, and never one of another tenant under the same id.
    expect(subscribersOf(active, { tenantId: 'acme', onlyEndpointId: 'ep_a', type: 'x.y', channels: null }).map((e) => e.id)).toEqual(['ep_a']);
    expect(subscribersOf(active, { tenantId: 'acme', onlyEndpointId: 'ep_b', type: 'x.y', channels: null })).toEqual([]);
  });
});

describe('tenants', () => {
  let h: Harness;
  let rxA: Receiver;
  let rxB: Receiver;
  let rxDefault: Receiver;

  const call = async (method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, payload?: unknown, headers: Record<string, string> = {}) => {
    const res = await h.app.inject({ method, url, payload: payload as never, headers });
    return { status: res.statusCode, body: res.body ? res.json() : null };
  };
  const mustCreate = async (url: string, payload: unknown) => {
    const r = await call('POST', url, payload);
    if (r.status !== 201) throw new Error(`${url}: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body;
  };

  beforeAll(async () => {
    h = await createHarness();
    [rxA, rxB, rxDefault] = await Promise.all([startReceiver(), startReceiver(), startReceiver()]);
  });
  afterAll(async () => {
    for (const r of [rxA, rxB, rxDefault]) await r?.close();
    await h?.close();
  });

  it('creates, reads, lists, changes and deletes tenants; ids are chosen or generated, never reused', async () => {
    const chosen = await mustCreate('/v1/tenants', { id: 'cust-42', name: 'Customer 42', metadata: { plan: 'pro' } });
    expect(chosen).toMatchObject({ id: 'cust-42', name: 'Customer 42', metadata: { plan: 'pro' } });
    const generated = await mustCreate('/v1/tenants', { name: 'Generated' });
    expect(generated.id).toMatch(/^tn_[0-9A-Z]{26}$/);

    expect((await call('POST', '/v1/tenants', { id: 'cust-42' })).status).toBe(409);
    expect((await call('POST', '/v1/tenants', { id: 'default' })).status).toBe(409);
    for (const bad of ['has space', 'tn_forged', '-lead', 'a/b', 'x'.repeat(65)]) {
      const r = await call('POST', '/v1/tenants', { id: bad });
      expect(r.status, bad).toBe(400);
      expect(r.body.message).toMatch(/^body\.id: /);
    }

    expect((await call('GET', '/v1/tenants/cust-42')).body.name).toBe('Customer 42');
    const listed = (await call('GET', '/v1/tenants?limit=250')).body.data.map((t: { id: string }) => t.id);
    expect(listed).toEqual(expect.arrayContaining(['default', 'cust-42', generated.id]));

    const patched = await call('PATCH', '/v1/tenants/cust-42', { name: 'Renamed', metadata: { plan: 'team' } });
    expect(patched.body).toMatchObject({ name: 'Renamed', metadata: { plan: 'team' } });

    expect((await call('DELETE', '/v1/tenants/default')).status).toBe(409);
    expect((await call('DELETE', `/v1/tenants/${generated.id}`)).status).toBe(204);
    expect((await call('GET', `/v1/tenants/${generated.id}`)).status).toBe(404);
    expect((await call('GET', `/v1/tenants/${generated.id}/endpoints`)).status).toBe(404);
    expect((await call('DELETE', `/v1/tenants/${generated.id}`)).status).toBe(404);
    expect((await call('POST', '/v1/tenants', { id: 'cust-42' })).status).toBe(409);
    expect((await call('GET', '/v1/tenants/nobody/endpoints')).status).toBe(404);
  });

  // Issue #21 item 3: the cross-tenant feed of operational events is a tenant only the admin reaches.
  it('keeps the operator tenant to the admin key: no tenant, key or portal session can be made for it', async () => {
    const bearer = (key: string) => ({ authorization: `Bearer ${key}` });
    // The admin (here: the open loopback API) reads and manages it like any tenant.
    expect((await call('GET', `/v1/tenants/${OPERATOR_TENANT}/endpoints`)).status).toBe(200);
    expect((await call('DELETE', `/v1/tenants/${OPERATOR_TENANT}`)).status).toBe(409);

    const created = await call('POST', '/v1/tenants', { id: OPERATOR_TENANT });
    expect(created.status).toBe(400);
    expect(created.body.message).toMatch(/^body\.id: /);
    const key = await call('POST', '/v1/api-keys', { name: 'op', tenantId: OPERATOR_TENANT, scopes: ['read'] });
    expect(key.status).toBe(422);
    expect(key.body.message).toMatch(/^body\.tenantId: /);
    const portal = await call('POST', `/v1/tenants/${OPERATOR_TENANT}/portal-sessions`, {});
    expect(portal.status).toBe(403);
    expect(portal.body.message).toMatch(/^tenantId: /);

    // A key for every tenant is still not the admin: the feed names every tenant's internals.
    const all = await call('POST', '/v1/api-keys', { name: 'all', all: true, scopes: ['read', 'manage'] });
    expect(all.status).toBe(201);
    for (const url of [`/v1/tenants/${OPERATOR_TENANT}`, `/v1/tenants/${OPERATOR_TENANT}/endpoints`, `/v1/tenants/${OPERATOR_TENANT}/deliveries`]) {
      expect((await call('GET', url, undefined, bearer(all.body.key))).status, url).toBe(404);
    }
    expect((await call('POST', `/v1/tenants/${OPERATOR_TENANT}/portal-sessions`, {}, bearer(all.body.key))).status).toBe(404);
  });

  it('fans out within the tenant only; every other tenant reads its ids as absent', async () => {
    await mustCreate('/v1/tenants', { id: 'acme' });
    await mustCreate('/v1/tenants', { id: 'globex' });
    // The same event type everywhere: only the tenant decides who gets it.
    const epA = await mustCreate('/v1/tenants/acme/endpoints', { url: rxA.url, eventTypes: ['order.*'], retry: FAST_RETRY });
    const epB = await mustCreate('/v1/tenants/globex/endpoints', { url: rxB.url, retry: FAST_RETRY });
    const epD = await mustCreate('/v1/endpoints', { url: rxDefault.url, retry: FAST_RETRY });

    const ev = (await call('POST', '/v1/tenants/acme/events', { type: 'order.created', data: { n: 1 } })).body;
    expect(ev.id).toMatch(/^evt_/);
    await waitFor(() => rxA.requests.some((r) => r.headers['webhook-id'] === ev.id), 30_000, 'acme delivery');
    await waitFor(async () => (await h.client.workflow.getHandle(ev.id).describe()).status.name === 'COMPLETED', 30_000, 'workflow done');
    expect(rxB.requests.filter((r) => r.headers['webhook-id'] === ev.id)).toHaveLength(0);
    expect(rxDefault.requests.filter((r) => r.headers['webhook-id'] === ev.id)).toHaveLength(0);

    const read = (await call('GET', `/v1/tenants/acme/events/${ev.id}`)).body;
    expect(read.deliveries.map((d: { endpointId: string }) => d.endpointId)).toEqual([epA.id]);

    // Another tenant, and the default tenant behind the unprefixed routes, see none of it.
    for (const url of [
      `/v1/tenants/globex/events/${ev.id}`, `/v1/events/${ev.id}`,
      `/v1/tenants/globex/endpoints/${epA.id}`, `/v1/endpoints/${epA.id}`,
      `/v1/tenants/globex/endpoints/${epA.id}/stats`,
      `/v1/tenants/globex/deliveries/${ev.id}/${epA.id}/attempts`, `/v1/deliveries/${ev.id}/${epA.id}/attempts`,
      `/v1/tenants/acme/endpoints/${epB.id}`, `/v1/tenants/acme/endpoints/${epD.id}`,
    ]) {
      const r = await call('GET', url);
      expect(r.status, url).toBe(404);
      expect(JSON.stringify(r.body)).not.toContain('order.created');
    }
    for (const [method, url, payload] of [
      ['PATCH', `/v1/tenants/globex/endpoints/${epA.id}`, { description: 'taken over' }],
      ['DELETE', `/v1/tenants/globex/endpoints/${epA.id}`, undefined],
      ['POST', `/v1/tenants/globex/endpoints/${epA.id}/secret/rotate`, {}],
      ['POST', `/v1/tenants/globex/deliveries/${ev.id}/${epA.id}/replay`, undefined],
      ['PATCH', `/v1/endpoints/${epA.id}`, { description: 'taken over' }],
    ] as const) {
      expect((await call(method, url, payload)).status, `${method} ${url}`).toBe(404);
    }
    expect((await call('GET', `/v1/tenants/acme/endpoints/${epA.id}`)).body.description).toBe('');

    const ids = async (url: string, key: string) => (await call('GET', url)).body.data.map((x: Record<string, string>) => x[key]);
    expect(await ids('/v1/tenants/acme/endpoints', 'id')).toEqual([epA.id]);
    expect(await ids('/v1/tenants/globex/endpoints', 'id')).toEqual([epB.id]);
    expect(await ids('/v1/endpoints', 'id')).toEqual([epD.id]);
    expect(await ids('/v1/tenants/acme/deliveries', 'eventId')).toEqual([ev.id]);
    expect(await ids('/v1/tenants/globex/deliveries', 'eventId')).toEqual([]);
    expect(await ids('/v1/deliveries', 'eventId')).toEqual([]);

    // The Web UI can filter by customer: the relay set TenantId when it started the workflow.
    const described = await h.client.workflow.getHandle(ev.id).describe();
    expect(described.searchAttributes.TenantId).toEqual(['acme']);
    expect(described.searchAttributes.DeliveryStatus).toEqual(['delivered']);
  });

  it('carries TenantId to the child workflows of a wide fan-out', async () => {
    await mustCreate('/v1/tenants', { id: 'wide-co' });
    const rx = await startReceiver();
    try {
      const n = FANOUT_CHILD_BATCH + 1;
      for (let i = 0; i < n; i++) await mustCreate('/v1/tenants/wide-co/endpoints', { url: `${rx.url}/${i}`, retry: FAST_RETRY });
      const ev = (await call('POST', '/v1/tenants/wide-co/events', { type: 'wide.event', data: {} })).body;
      await waitFor(async () => (await h.client.workflow.getHandle(ev.id).describe()).status.name === 'COMPLETED', 60_000, 'fan-out done');
      expect(rx.requests).toHaveLength(n);
      for (const id of [ev.id, `${ev.id}/1`, `${ev.id}/2`]) {
        expect((await h.client.workflow.getHandle(id).describe()).searchAttributes.TenantId, id).toEqual(['wide-co']);
      }
    } finally {
      await rx.close();
    }
  });

  it('publishes to the default tenant through the routes without one, as before tenants', async () => {
    const ev = (await call('POST', '/v1/events', { type: 'legacy.event', data: {} })).body;
    await waitFor(() => rxDefault.requests.some((r) => r.headers['webhook-id'] === ev.id), 30_000, 'default delivery');
    expect((await call('GET', `/v1/tenants/default/events/${ev.id}`)).status).toBe(200);
    expect((await call('GET', `/v1/events/${ev.id}`)).status).toBe(200);
    expect((await call('GET', `/v1/tenants/acme/events/${ev.id}`)).status).toBe(404);
    const described = await h.client.workflow.getHandle(ev.id).describe();
    expect(described.searchAttributes.TenantId).toEqual(['default']);
  });

  it('publishes to a tenant from the producer library too, in the caller\'s transaction', async () => {
    const client = await h.pool.connect();
    try {
      await client.query('BEGIN');
      const { id } = await enqueueEvent(client, { type: 'order.created', data: { via: 'producer' }, tenantId: 'acme' });
      await client.query('COMMIT');
      await waitFor(() => rxA.requests.some((r) => r.headers['webhook-id'] === id), 30_000, 'acme delivery from the producer');
      await waitFor(async () => (await h.client.workflow.getHandle(id).describe()).status.name === 'COMPLETED', 30_000, 'done');
      expect(rxB.requests.some((r) => r.headers['webhook-id'] === id)).toBe(false);
      expect(rxDefault.requests.some((r) => r.headers['webhook-id'] === id)).toBe(false);
      await client.query('BEGIN');
      await expect(enqueueEvent(client, { type: 'x.y', data: {}, tenantId: 'no/such' })).rejects.toThrow(/^tenantId: /);
      await client.query('ROLLBACK');
    } finally {
      client.release();
    }
  });

  it('keeps Idempotency-Keys and producer-chosen event ids apart between tenants', async () => {
    const headers = { 'idempotency-key': 'same-key-1' };
    const a = await call('POST', '/v1/tenants/acme/events', { type: 'order.created', data: { who: 'a' } }, headers);
    const b = await call('POST', '/v1/tenants/globex/events', { type: 'order.created', data: { who: 'b' } }, headers);
    expect(a.status).toBe(202);
    expect(b.status).toBe(202);
    expect(b.body.id).not.toBe(a.body.id);
    expect(b.body.data).toEqual({ who: 'b' });
    // A repeat within one tenant still returns that tenant's first event.
    const again = await call('POST', '/v1/tenants/globex/events', { type: 'order.created', data: { who: 'b' } }, headers);
    expect(again.body.id).toBe(b.body.id);

    // Event ids are global (they name workflows): an id acme used is a conflict for globex, and
    // the answer carries nothing of acme's event.
    const mine = await call('POST', '/v1/tenants/acme/events', { id: 'order-1001', type: 'order.created', data: { secret: 'acme-only' } });
    expect(mine.status).toBe(202);
    const theirs = await call('POST', '/v1/tenants/globex/events', { id: 'order-1001', type: 'order.created', data: { secret: 'acme-only' } });
    expect(theirs.status).toBe(409);
    expect(JSON.stringify(theirs.body)).not.toContain('acme');
  });

  it("deletes a tenant's endpoints with it, so nothing more is delivered to them, and keeps its history", async () => {
    await mustCreate('/v1/tenants', { id: 'leaving' });
    const rx = await startReceiver();
    try {
      const ep = await mustCreate('/v1/tenants/leaving/endpoints', { url: rx.url, retry: FAST_RETRY });
      const ev = (await call('POST', '/v1/tenants/leaving/events', { type: 'bye.now', data: {} })).body;
      await waitFor(() => rx.requests.length === 1, 30_000, 'first delivery');
      expect((await call('DELETE', '/v1/tenants/leaving')).status).toBe(204);
      expect((await call('POST', '/v1/tenants/leaving/events', { type: 'bye.now', data: {} })).status).toBe(404);
      const left = await h.pool.query('SELECT count(*)::int AS n FROM endpoints WHERE id = $1', [ep.id]);
      expect(left.rows[0].n).toBe(0);
      // Events and deliveries stay for the retention to delete.
      const kept = await h.pool.query('SELECT count(*)::int AS n FROM deliveries WHERE event_id = $1 AND tenant_id = $2', [ev.id, 'leaving']);
      expect(kept.rows[0].n).toBe(1);
    } finally {
      await rx.close();
    }
  });

  it("reports a tenant's figures over a window, and only that tenant's", async () => {
    await mustCreate('/v1/tenants', { id: 'stats-co' });
    const rx = await startReceiver();
    try {
      rx.respond = (_req, n) => ({ status: n === 0 ? 500 : 200 });
      await mustCreate('/v1/tenants/stats-co/endpoints', { url: rx.url, retry: FAST_RETRY });
      await mustCreate('/v1/tenants/stats-co/endpoints', { url: `${rx.url}/off`, eventTypes: ['never.sent'], disabled: true });
      const ev = (await call('POST', '/v1/tenants/stats-co/events', { type: 'stat.event', data: {} })).body;
      await waitFor(async () => (await call('GET', `/v1/tenants/stats-co/events/${ev.id}`)).body.deliveries[0]?.status === 'delivered', 30_000, 'delivered');
      const s = await call('GET', '/v1/tenants/stats-co/stats?window=1h');
      expect(s.status).toBe(200);
      expect(s.body).toMatchObject({
        tenantId: 'stats-co',
        window: 3_600_000,
        endpoints: { total: 2, disabled: 1 },
        events: 1,
        attempts: { total: 2, succeeded: 1, failed: 1 },
        successRate: 0.5,
        deliveries: { delivered: 1, pending: 0, deadLettered: 0 },
        deadLettersOpen: 0,
      });
      expect(s.body.latencyMs.p50).toBeGreaterThanOrEqual(0);
      await mustCreate('/v1/tenants', { id: 'quiet-co' });
      const other = await call('GET', '/v1/tenants/quiet-co/stats');
      expect(other.body).toMatchObject({ events: 0, attempts: { total: 0 }, endpoints: { total: 0 }, successRate: null });
      expect((await call('GET', '/v1/tenants/stats-co/stats?window=100%20days')).status).toBe(400);
    } finally {
      await rx.close();
    }
  });

  it('sends a test event to one endpoint only, whatever it subscribes to', async () => {
    await mustCreate('/v1/tenants', { id: 'tester' });
    const [one, other] = [await startReceiver(), await startReceiver()];
    try {
      const target = await mustCreate('/v1/tenants/tester/endpoints', { url: one.url, eventTypes: ['never.this'], retry: FAST_RETRY });
      await mustCreate('/v1/tenants/tester/endpoints', { url: other.url, retry: FAST_RETRY });
      const sent = await call('POST', `/v1/tenants/tester/endpoints/${target.id}/test`, { eventType: 'invoice.paid', data: { example: true } });
      expect(sent.status).toBe(202);
      expect(sent.body).toMatchObject({ type: 'invoice.paid', data: { example: true } });
      await waitFor(() => one.requests.some((r) => r.headers['webhook-id'] === sent.body.id), 30_000, 'test delivery');
      await waitFor(async () => (await h.client.workflow.getHandle(sent.body.id).describe()).status.name === 'COMPLETED', 30_000, 'done');
      expect(other.requests).toHaveLength(0);
      expect(JSON.parse(one.requests[0].body)).toMatchObject({ type: 'invoice.paid', data: { example: true } });
      const reserved = await call('POST', `/v1/tenants/tester/endpoints/${target.id}/test`, { eventType: 'hookline.endpoint.disabled' });
      expect(reserved.status).toBe(400);
      expect(reserved.body.message).toMatch(/^body\.eventType: /);
      const dflt = await call('POST', `/v1/tenants/tester/endpoints/${target.id}/test`);
      expect(dflt.body.type, JSON.stringify(dflt.body)).toBe('webhook.test');
      // Another tenant's endpoint cannot be tested from here.
      expect((await call('POST', `/v1/tenants/acme/endpoints/${target.id}/test`)).status).toBe(404);
    } finally {
      await one.close();
      await other.close();
    }
  });

  it('documents every tenant route in a valid OpenAPI document', async () => {
    const doc = (await h.app.inject({ method: 'GET', url: '/docs/json' })).json();
    const result = await new Validator().validate(doc);
    expect(result.errors ?? []).toEqual([]);
    for (const [p, method] of [
      ['/v1/tenants', 'post'], ['/v1/tenants', 'get'], ['/v1/tenants/{tenantId}', 'patch'], ['/v1/tenants/{tenantId}', 'delete'],
      ['/v1/tenants/{tenantId}/endpoints', 'post'], ['/v1/tenants/{tenantId}/endpoints/{id}', 'get'],
      ['/v1/tenants/{tenantId}/endpoints/{id}/secret/rotate', 'post'], ['/v1/tenants/{tenantId}/events', 'post'],
      ['/v1/tenants/{tenantId}/events/{id}', 'get'], ['/v1/tenants/{tenantId}/deliveries', 'get'],
      ['/v1/tenants/{tenantId}/deliveries/{eventId}/{endpointId}/attempts', 'get'],
      ['/v1/tenants/{tenantId}/dead-letters', 'get'], ['/v1/tenants/{tenantId}/dead-letters/replay', 'post'],
      ['/v1/tenants/{tenantId}/stats', 'get'], ['/v1/tenants/{tenantId}/portal-sessions', 'post'],
      ['/v1/tenants/{tenantId}/endpoints/{id}/test', 'post'],
      ['/v1/endpoints', 'post'], ['/v1/events', 'post'], ['/v1/stats', 'get'],
      ['/v1/api-keys', 'post'], ['/v1/api-keys/{id}', 'delete'], ['/v1/portal/session', 'get'],
    ]) {
      expect(doc.paths[p]?.[method], `${method} ${p}`).toBeDefined();
    }
    const params = doc.paths['/v1/tenants/{tenantId}/endpoints/{id}'].get.parameters.map((x: { name: string; in: string }) => `${x.in}:${x.name}`);
    expect(params.sort()).toEqual(['path:id', 'path:tenantId']);
    expect(doc.paths['/v1/endpoints/{id}'].get.parameters.map((x: { name: string }) => x.name)).toEqual(['id']);
  });
});
