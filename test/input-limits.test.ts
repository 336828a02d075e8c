// Inputs that once reached Postgres or a stack and came back as a 500 (issue 10): each now gets a
// 4xx naming the field, and a refused request changes nothing. Real Postgres, no Temporal.
import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import type { Pool } from '../src/db/pool';
import { buildApp } from '../src/api/app';
import { registerErrorHandling } from '../src/api/errors';
import { createApiOnly } from './helpers';

describe('input limits', () => {
  let app: FastifyInstance;
  let pool: Pool;
  let close: () => Promise<void>;
  let endpointId: string;

  beforeAll(async () => {
    // The production floor for retry intervals, not the test suite's shortcut.
    ({ app, pool, close } = await createApiOnly({ HOOKLINE_MIN_RETRY_INTERVAL_MS: '1000' }));
    const res = await app.inject({ method: 'POST', url: '/v1/endpoints', payload: { url: 'https://example.com/hook' } });
    endpointId = res.json().id;
  });
  afterAll(async () => {
    await close?.();
  });

  const rawPost = (url: string, body: string | Buffer) =>
    app.inject({ method: 'POST', url, payload: body, headers: { 'content-type': 'application/json' } });

  function expectRefused(res: { statusCode: number; json(): any }, status: number, field: string) {
    expect(res.statusCode, JSON.stringify(res.json())).toBe(status);
    expect(res.json()).toMatchObject({ code: expect.any(String), message: expect.stringContaining(field) });
  }

  it.each([
    ['/v1/events', { type: 'a.b', data: { note: 'x\u0000y' } }, 'body.data.note'],
    ['/v1/events', { type: 'a.b', data: { 'k\u0000': 1 } }, 'body.data'],
    ['/v1/endpoints', { url: 'https://example.com/h', description: 'a\u0000b' }, 'body.description'],
    ['/v1/endpoints', { url: 'https://example.com/h', metadata: { team: '\u0000' } }, 'body.metadata.team'],
    ['/v1/endpoints', { url: 'https://example.com/\u0000' }, 'body.url'],
  ])('refuses \\u0000 in %s %j', async (url, payload, field) => {
    expectRefused(await rawPost(url, JSON.stringify(payload)), 400, field);
  });

  it('refuses a lone surrogate instead of storing U+FFFD', async () => {
    expectRefused(await rawPost('/v1/events', '{"type":"a.b","data":{"x":"\\ud800"}}'), 400, 'body.data.x');
    expectRefused(await rawPost('/v1/events', '{"type":"a.b","data":{"x":"\\udc00 tail"}}'), 400, 'body.data.x');
    // A proper pair is fine.
    const ok = await rawPost('/v1/events', '{"type":"a.b","data":{"x":"\\ud83d\\ude00"}}');
    expect(ok.statusCode).toBe(202);
    expect(ok.json().data.x).toBe('😀');
  });

  it('refuses bytes that are not UTF-8', async () => {
    const body = Buffer.concat([Buffer.from('{"type":"a.b","data":{"x":"'), Buffer.from([0xff, 0xfe]), Buffer.from('"}}')]);
    expectRefused(await rawPost('/v1/events', body), 400, 'body');
  });

  it.each([
    ['/v1/endpoints/%00', 'params.id'],
    ['/v1/events/%00', 'params.id'],
    ['/v1/deliveries/%00/ep_x/attempts', 'params.eventId'],
    ['/v1/deliveries?endpointId=%00', 'querystring.endpointId'],
    ['/v1/endpoints?cursor=%00', 'querystring.cursor'],
    ['/v1/event-types?cursor=a%00', 'querystring.cursor'],
    ['/v1/event-types/%00', 'params.name'],
  ])('refuses \\u0000 in %s', async (url, field) => {
    expectRefused(await app.inject({ method: 'GET', url }), 400, field);
  });

  it('refuses a version Postgres cannot store', async () => {
    expectRefused(await rawPost('/v1/events', JSON.stringify({ type: 'a.b', data: {}, version: 2147483648 })), 400, 'body.version');
  });

  it('refuses data nested 5,000 levels deep that fits the size limit', async () => {
    const body = `{"type":"a.b","data":{"x":${'['.repeat(5000)}${']'.repeat(5000)}}}`;
    expect(body.length).toBeLessThan(256 * 1024);
    expectRefused(await rawPost('/v1/events', body), 400, 'body.data.x');
  });

  it.each([
    ['1e400', 'out of range'],
    ['-1e400', 'out of range'],
    ['9007199254740993', '2^53'],
  ])('refuses %s instead of storing null or a rounded number', async (n, why) => {
    const res = await rawPost('/v1/events', `{"type":"a.b","data":{"n":${n}}}`);
    expectRefused(res, 400, 'body.data.n');
    expect(res.json().message).toContain(why);
  });

  it.each([
    Buffer.from('garbage').toString('base64url'),
    Buffer.from(JSON.stringify(['not a time', 'evt_a', 'ep_b'])).toString('base64url'),
    Buffer.from(JSON.stringify(['2026-13-45T99:00:00.000Z', 'evt_a', 'ep_b'])).toString('base64url'),
    Buffer.from(JSON.stringify(['2026-01-01T00:00:00.000Z', 'evt_\u0000', 'ep_b'])).toString('base64url'),
  ])('refuses a delivery cursor that decodes to garbage (%s)', async (cursor) => {
    expectRefused(await app.inject({ method: 'GET', url: `/v1/deliveries?cursor=${cursor}` }), 400, 'querystring.cursor');
    expectRefused(await app.inject({ method: 'GET', url: `/v1/dead-letters?cursor=${cursor}` }), 400, 'querystring.cursor');
  });

  it('checks expireOldAfter before writing a new secret', async () => {
    const count = async () => (await pool.query('SELECT count(*)::int AS n FROM endpoint_secrets WHERE endpoint_id = $1', [endpointId])).rows[0].n;
    const before = await count();
    for (const expireOldAfter of ['280000 years', '31 days', 1e15]) {
      const res = await rawPost(`/v1/endpoints/${endpointId}/secret/rotate`, JSON.stringify({ expireOldAfter }));
      expectRefused(res, 400, 'body.expireOldAfter');
    }
    expect(await count()).toBe(before);
  });

  it('takes a bodyless POST with content-type: application/json as {}', async () => {
    const res = await rawPost(`/v1/endpoints/${endpointId}/secret/rotate`, '');
    expect(res.statusCode).toBe(200);
    expect(res.json().secret).toMatch(/^whsec_/);
  });

  it('names the route’s own body limit in a 413', async () => {
    const events = await rawPost('/v1/events', JSON.stringify({ type: 'a.b', data: { blob: 'x'.repeat(300 * 1024) } }));
    expect(events.statusCode).toBe(413);
    expect(events.json().message).toContain('262144');
    const endpoints = await rawPost('/v1/endpoints', JSON.stringify({ url: 'https://example.com/h', description: 'x'.repeat(1100 * 1024) }));
    expect(endpoints.statusCode).toBe(413);
    expect(endpoints.json().message).toContain('1048576');
  });

  it('holds a test event to the event size limit (issue 21: 900 KB went through)', async () => {
    const events = async () => (await pool.query('SELECT count(*)::int AS n FROM events')).rows[0].n;
    const before = await events();
    const res = await rawPost(`/v1/endpoints/${endpointId}/test`, JSON.stringify({ data: { blob: 'x'.repeat(900 * 1024) } }));
    expectRefused(res, 413, 'body');
    expect(res.json().message).toContain('262144');
    expect(await events()).toBe(before);
  });

  it.each([
    [{ initialInterval: '5s', maximumInterval: '2s' }, 'body.retry.maximumInterval'],
    [{ maximumInterval: '2s' }, 'body.retry.maximumInterval'], // below the default initialInterval (5 s)
    [{ initialInterval: '2 days' }, 'body.retry.initialInterval'], // above the default maximumInterval (24 h)
    [{ initialInterval: 0 }, 'body.retry.initialInterval'],
    [{ initialInterval: '500ms' }, 'body.retry.initialInterval'],
    [{ schedule: [0] }, 'body.retry.schedule.0'],
    [{ schedule: ['5s', '10ms'] }, 'body.retry.schedule.1'],
    [{ deadline: 0 }, 'body.retry.deadline'],
    [{ deadline: '1 year' }, 'body.retry.deadline'],
    [{ deadLetterRetention: '1 year' }, 'body.retry.deadLetterRetention'],
  ])('refuses a retry policy Temporal would reject: %j', async (retry, field) => {
    const res = await rawPost('/v1/endpoints', JSON.stringify({ url: 'https://example.com/h', retry }));
    expectRefused(res, 422, field);
    expect(res.json().code).toBe('invalid_retry');
    const patch = await app.inject({ method: 'PATCH', url: `/v1/endpoints/${endpointId}`, payload: { retry } });
    expectRefused(patch, 422, field);
  });

  it('accepts the retry policies it documents', async () => {
    for (const retry of [{ schedule: ['1s', '5m'] }, { initialInterval: '1s', maximumInterval: '1h', deadline: '30 days' }, { deadLetterRetention: '90 days' }]) {
      const res = await rawPost('/v1/endpoints', JSON.stringify({ url: 'https://example.com/h', retry }));
      expect(res.statusCode, res.body).toBe(201);
    }
  });

  it('maps a Postgres data exception (class 22) to 400, never 500', async () => {
    // A stand-in route that lets a bad value reach SQL, as a missed input check would.
    const bare = Fastify();
    registerErrorHandling(bare);
    bare.get('/cast', async () => (await pool.query("SELECT 'not a number'::int")).rows);
    bare.get('/nul', async () => (await pool.query('SELECT $1::text', ['a\u0000b'])).rows);
    for (const url of ['/cast', '/nul']) {
      const res = await bare.inject({ method: 'GET', url });
      expect(res.statusCode).toBe(400);
      expect(res.json().code).toBe('invalid_value');
    }
    await bare.close();
  });
});

describe('test events: a rate limit per endpoint, across API processes', () => {
  let app: FastifyInstance;
  let other: FastifyInstance;
  let pool: Pool;
  let close: () => Promise<void>;

  beforeAll(async () => {
    ({ app, pool, close } = await createApiOnly({ HOOKLINE_TEST_EVENTS_PER_MINUTE: '3' }));
    // A second API process on the same database: the limit is the endpoint's, not a process's.
    other = await buildApp({ pool, config: app.hookline.config, temporal: null, logger: false });
  });
  afterAll(async () => {
    await other?.close();
    await close?.();
  });

  const endpoint = async () => (await app.inject({ method: 'POST', url: '/v1/endpoints', payload: { url: 'https://example.com/t' } })).json().id as string;
  const test = (via: FastifyInstance, id: string) => via.inject({ method: 'POST', url: `/v1/endpoints/${id}/test`, payload: {} });

  it('answers 429 with Retry-After past the limit, counts every process, and frees the endpoint when its window passes', async () => {
    const [a, b] = [await endpoint(), await endpoint()];
    expect((await test(app, a)).statusCode).toBe(202);
    expect((await test(other, a)).statusCode).toBe(202);
    expect((await test(app, a)).statusCode).toBe(202);
    const events = (await pool.query('SELECT count(*)::int AS n FROM events')).rows[0].n;
    for (const via of [app, other]) {
      const refused = await test(via, a);
      expect(refused.statusCode, refused.body).toBe(429);
      expect(refused.json()).toMatchObject({ code: 'rate_limited', message: expect.stringMatching(/^id: .*HOOKLINE_TEST_EVENTS_PER_MINUTE/) });
      const retryAfter = Number(refused.headers['retry-after']);
      expect(retryAfter).toBeGreaterThanOrEqual(1);
      expect(retryAfter).toBeLessThanOrEqual(60);
    }
    expect((await pool.query('SELECT count(*)::int AS n FROM events')).rows[0].n).toBe(events);
    // Another endpoint has a window of its own.
    expect((await test(other, b)).statusCode).toBe(202);
    // The window moved into the past (no waiting on the clock): the endpoint takes tests again.
    await pool.query("UPDATE test_event_windows SET window_start = window_start - interval '61 seconds' WHERE endpoint_id = $1", [a]);
    expect((await test(app, a)).statusCode).toBe(202);
  });

  it('does not count a refused test event against the window', async () => {
    const a = await endpoint();
    for (let i = 0; i < 5; i++) {
      expect((await app.inject({ method: 'POST', url: `/v1/endpoints/${a}/test`, payload: { eventType: 'hookline.x' } })).statusCode).toBe(400);
    }
    expect((await test(app, a)).statusCode).toBe(202);
  });
});
