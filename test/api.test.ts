// The API's contract for bad input: a 4xx that names the field, never a 500; plus auth,
// pagination and idempotent submission.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPool, type Pool } from '../src/db/pool';
import { buildApp } from '../src/api/app';
import { loadConfig } from '../src/config';
import { createApiOnly } from './helpers';
import type { FastifyInstance } from 'fastify';

describe('API', () => {
  let app: FastifyInstance;
  let pool: Pool;
  let close: () => Promise<void>;

  beforeAll(async () => {
    ({ app, pool, close } = await createApiOnly({ HOOKLINE_ALLOW_PRIVATE_TARGETS: 'false', HOOKLINE_MAX_EVENT_BYTES: '2048' }));
  });
  afterAll(async () => {
    await close?.();
  });

  const post = (url: string, payload: unknown, headers: Record<string, string> = {}) =>
    app.inject({ method: 'POST', url, payload: payload as any, headers });

  it('rejects a body that is not JSON', async () => {
    const res = await app.inject({ method: 'POST', url: '/v1/events', payload: '{"type": ', headers: { 'content-type': 'application/json' } });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ code: 'invalid_json', message: expect.stringMatching(/^body/) });
  });

  it('rejects a non-JSON content type', async () => {
    const res = await app.inject({ method: 'POST', url: '/v1/events', payload: 'type=x', headers: { 'content-type': 'text/plain' } });
    expect(res.statusCode).toBe(415);
    expect(res.json().code).toBe('unsupported_media_type');
  });

  it.each([
    [{ data: {} }, 'body.type'],
    [{ type: 42, data: {} }, 'body.type'],
    [{ type: 'has space', data: {} }, 'body.type'],
    [{ type: 'a.b' }, 'body.data'],
    [{ type: 'a.b', data: 'str' }, 'body.data'],
    [{ type: 'a.b', data: {}, id: 'bad id' }, 'body.id'],
    [{ type: 'a.b', data: {}, extra: 1 }, 'body'],
  ])('names the field in a bad event %j', async (payload, field) => {
    const res = await post('/v1/events', payload);
    expect(res.statusCode).toBe(400);
    expect(res.json().code).toBe('validation_error');
    expect(res.json().message).toContain(field);
  });

  it('answers 413 past the event size limit', async () => {
    const res = await post('/v1/events', { type: 'big.event', data: { blob: 'x'.repeat(4096) } });
    expect(res.statusCode).toBe(413);
    expect(res.json().code).toBe('payload_too_large');
  });

  it.each([
    [{ url: 'not a url' }, 'body.url'],
    [{ url: 'ftp://example.com/x' }, 'body.url'],
    [{ url: 'https://example.com/x', eventTypes: ['in valid'] }, 'body.eventTypes'],
    [{ url: 'https://example.com/x', secret: 'nope' }, 'body.secret'],
    [{ url: 'https://example.com/x', retry: { deadline: 'soon' } }, 'body.retry.deadline'],
    [{ url: 'https://example.com/x', retry: { backoffCoefficient: 0.5 } }, 'body.retry.backoffCoefficient'],
  ])('names the field in a bad endpoint %j', async (payload, field) => {
    const res = await post('/v1/endpoints', payload);
    expect(res.statusCode).toBe(400);
    expect(res.json().message).toContain(field);
  });

  it('refuses private targets unless allowed', async () => {
    for (const url of ['http://127.0.0.1:8080/x', 'http://localhost/x', 'http://169.254.169.254/latest', 'http://10.1.2.3/x', 'http://[::1]/x']) {
      const res = await post('/v1/endpoints', { url });
      expect(res.statusCode, url).toBe(422);
      expect(res.json()).toMatchObject({ code: 'private_target', message: expect.stringMatching(/^url:/) });
    }
  });

  it('answers 404 naming an unknown endpoint id', async () => {
    for (const method of ['GET', 'PATCH', 'DELETE'] as const) {
      const res = await app.inject({ method, url: '/v1/endpoints/ep_missing', ...(method === 'PATCH' ? { payload: { description: 'x' } } : {}) });
      expect(res.statusCode).toBe(404);
      expect(res.json().message).toContain('ep_missing');
    }
  });

  it('creates, reads, updates, lists and deletes endpoints', async () => {
    const created = await post('/v1/endpoints', { url: 'https://example.com/a', eventTypes: ['invoice.*'], retry: { deadline: '2 hours', initialInterval: 500 } });
    expect(created.statusCode).toBe(201);
    const ep = created.json();
    expect(ep.id).toMatch(/^ep_/);
    expect(ep.retry).toMatchObject({ deadline: 7_200_000, initialInterval: 500, schedule: null });
    const read = await app.inject({ method: 'GET', url: `/v1/endpoints/${ep.id}` });
    expect(read.json()).not.toHaveProperty('secret');
    const patched = await app.inject({ method: 'PATCH', url: `/v1/endpoints/${ep.id}`, payload: { eventTypes: null, description: 'all' } });
    expect(patched.json()).toMatchObject({ eventTypes: null, description: 'all' });
    await post('/v1/endpoints', { url: 'https://example.com/b' });
    await post('/v1/endpoints', { url: 'https://example.com/c' });
    const page1 = await app.inject({ method: 'GET', url: '/v1/endpoints?limit=2' });
    expect(page1.json().data).toHaveLength(2);
    const page2 = await app.inject({ method: 'GET', url: `/v1/endpoints?limit=2&cursor=${page1.json().nextCursor}` });
    expect(page2.json().data.map((e: any) => e.id)).not.toContain(page1.json().data[0].id);
    const del = await app.inject({ method: 'DELETE', url: `/v1/endpoints/${ep.id}` });
    expect(del.statusCode).toBe(204);
    expect((await app.inject({ method: 'GET', url: `/v1/endpoints/${ep.id}` })).statusCode).toBe(404);
  });

  it('records the event and its outbox row together, and returns 202 with the id', async () => {
    const res = await post('/v1/events', { type: 'invoice.paid', data: { amount: 1 } });
    expect(res.statusCode).toBe(202);
    const { id } = res.json();
    expect(id).toMatch(/^evt_/);
    const { rows } = await pool.query('SELECT e.id, o.event_id FROM events e LEFT JOIN outbox o ON o.event_id = e.id WHERE e.id = $1', [id]);
    expect(rows).toEqual([{ id, event_id: id }]);
  });

  it('returns the first result for a repeated Idempotency-Key, even concurrently', async () => {
    const body = { type: 'order.created', data: { n: 1 } };
    const results = await Promise.all(Array.from({ length: 20 }, () => post('/v1/events', body, { 'idempotency-key': 'key-123' })));
    expect(results.every((r) => r.statusCode === 202)).toBe(true);
    expect(new Set(results.map((r) => r.json().id)).size).toBe(1);
    const { rows } = await pool.query("SELECT count(*)::int AS n FROM events WHERE type = 'order.created'");
    expect(rows[0].n).toBe(1);
    const other = await post('/v1/events', { ...body, data: { n: 2 } }, { 'idempotency-key': 'key-123' });
    expect(other.statusCode).toBe(409);
    expect(other.json().message).toMatch(/idempotency-key/);
  });

  it('forgets an Idempotency-Key after HOOKLINE_IDEMPOTENCY_TTL_HOURS (24 h by default)', async () => {
    const body = { type: 'order.refunded', data: { n: 1 } };
    const headers = { 'idempotency-key': 'key-expiring' };
    const age = (hours: number) =>
      pool.query("UPDATE idempotency_keys SET created_at = now() - make_interval(hours => $1) WHERE key = 'key-expiring'", [hours]);
    const first = (await post('/v1/events', body, headers)).json().id;
    await age(23);
    expect((await post('/v1/events', body, headers)).json().id).toBe(first);
    await age(25);
    const renewed = await post('/v1/events', body, headers);
    expect(renewed.statusCode).toBe(202);
    expect(renewed.json().id).not.toBe(first);
    // The key now names the new event, for a new window.
    expect((await post('/v1/events', body, headers)).json().id).toBe(renewed.json().id);
    const { rows } = await pool.query("SELECT count(*)::int AS n FROM events WHERE type = 'order.refunded'");
    expect(rows[0].n).toBe(2);
  });

  it('treats a producer-supplied id as idempotent, and a conflicting reuse as 409', async () => {
    const a = await post('/v1/events', { id: 'order-77', type: 'order.paid', data: { total: 5, currency: 'EUR' } });
    const b = await post('/v1/events', { id: 'order-77', type: 'order.paid', data: { currency: 'EUR', total: 5 } });
    expect(a.statusCode).toBe(202);
    expect(b.statusCode).toBe(202);
    expect(b.json().timestamp).toBe(a.json().timestamp);
    const c = await post('/v1/events', { id: 'order-77', type: 'order.paid', data: { total: 6 } });
    expect(c.statusCode).toBe(409);
    expect(c.json().message).toMatch(/^id:/);
  });

  it('pages deliveries and dead letters newest first, with filters', async () => {
    // Rows as the worker would have written them (this app has no Temporal).
    for (let i = 0; i < 5; i++) {
      const id = `evt_page_${i}`;
      await pool.query(`INSERT INTO events (id, type, data, created_at) VALUES ($1, 'page.test', '{}', now() - make_interval(mins => $2))`, [id, 10 - i]);
      await pool.query(
        `INSERT INTO deliveries (event_id, endpoint_id, event_type, status, created_at, dead_lettered_at)
         VALUES ($1, 'ep_page', 'page.test', $2, now() - make_interval(mins => $3), CASE WHEN $2 = 'dead_lettered' THEN now() END)`,
        [id, i % 2 === 0 ? 'dead_lettered' : 'delivered', 10 - i],
      );
    }
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const res: any = await app.inject({ method: 'GET', url: `/v1/deliveries?endpointId=ep_page&limit=2${cursor ? `&cursor=${cursor}` : ''}` });
      expect(res.statusCode).toBe(200);
      seen.push(...res.json().data.map((d: any) => d.eventId));
      cursor = res.json().nextCursor;
    } while (cursor);
    expect(seen).toEqual(['evt_page_4', 'evt_page_3', 'evt_page_2', 'evt_page_1', 'evt_page_0']);
    const dead = await app.inject({ method: 'GET', url: '/v1/dead-letters?eventType=page.test' });
    expect(dead.json().data.map((d: any) => d.eventId)).toEqual(['evt_page_4', 'evt_page_2', 'evt_page_0']);
    const delivered = await app.inject({ method: 'GET', url: '/v1/deliveries?status=delivered&eventType=page.test' });
    expect(delivered.json().data.map((d: any) => d.eventId)).toEqual(['evt_page_3', 'evt_page_1']);
    const later = await app.inject({ method: 'GET', url: `/v1/dead-letters?since=${encodeURIComponent(new Date(Date.now() + 60_000).toISOString())}` });
    expect(later.json().data).toEqual([]);
  });

  it('validates list filters', async () => {
    const res = await app.inject({ method: 'GET', url: '/v1/deliveries?status=bogus' });
    expect(res.statusCode).toBe(400);
    expect(res.json().message).toContain('querystring.status');
    const cur = await app.inject({ method: 'GET', url: '/v1/deliveries?cursor=zzz' });
    expect(cur.statusCode).toBe(400);
    expect(cur.json().message).toContain('cursor');
  });
});

describe('API key', () => {
  let app: FastifyInstance;
  let close: () => Promise<void>;
  beforeAll(async () => {
    ({ app, close } = await createApiOnly({ HOOKLINE_API_KEY: 'sk_test_0123456789abcdef' }));
  });
  afterAll(async () => {
    await close?.();
  });

  it('guards /v1 with a bearer token and leaves /healthz open', async () => {
    expect((await app.inject({ method: 'GET', url: '/v1/endpoints' })).statusCode).toBe(401);
    expect((await app.inject({ method: 'GET', url: '/v1/endpoints', headers: { authorization: 'Bearer wrong' } })).statusCode).toBe(401);
    expect((await app.inject({ method: 'GET', url: '/v1/endpoints', headers: { authorization: 'Bearer sk_test_0123456789abcdef' } })).statusCode).toBe(200);
    expect((await app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
  });
});

describe('API with its database down', () => {
  it('answers 503 with Retry-After, not 500', async () => {
    // A pool pointed at a closed port: every query fails to connect.
    const dead = createPool('postgres://postgres@127.0.0.1:1/none', 1);
    const app = await buildApp({ pool: dead, config: loadConfig({}), temporal: null, logger: false });
    try {
      const res = await app.inject({ method: 'POST', url: '/v1/events', payload: { type: 'a.b', data: {} } });
      expect(res.statusCode).toBe(503);
      expect(res.headers['retry-after']).toBe('5');
      expect(res.json().code).toBe('unavailable');
      const ready = await app.inject({ method: 'GET', url: '/readyz' });
      expect(ready.statusCode).toBe(503);
      // /readyz is public: it says what is down, not the address or error behind it.
      expect(ready.json().checks).toEqual({ database: 'unavailable' });
    } finally {
      await app.close();
      await dead.end();
    }
  });
});
