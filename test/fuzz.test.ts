// Property-based fuzzing of every /v1 route (fast-check): random and hostile bodies, path
// parameters, query strings and headers against the real API and Postgres. For every request:
// never a 5xx, an answer within 2 s (a liveness bound, not a timing assertion), errors shaped
// {code, message} with the message naming where the problem is, and a refused request leaves
// every table as it was. Bounded runs keep it to seconds.
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEndpoint, createHarness, sendEvent, type Harness } from './helpers';

/** Strings that once broke something somewhere (issue 10), mixed into every arbitrary. */
const HOSTILE_STRINGS = [
  '', '\u0000', 'a\u0000b', '\ud800', 'x\udc00', '\ud83d\ude00', '%00', '%2e%2e%2f', '../../etc/passwd', '/./', '//',
  "'; DROP TABLE events; --", '__proto__', 'constructor', 'prototype', '*', 'invoice.*', 'a.b', '280000 years',
  '1e400', '-1', '0', '9007199254740993', 'x'.repeat(5000), '😀'.repeat(100), '\t\r\n', 'null', 'true', '{}', '[]',
  'http://127.0.0.1:1/x', 'https://user:pass@example.com/', 'https://example.com/\u0000', 'whsec_AAAA', '500ms', '5s', '3 days',
];
const HOSTILE_NUMBERS = [0, -1, 1, 0.5, 2147483647, 2147483648, Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER, 1e21, 1e308];
/** Raw bodies JSON.stringify cannot produce: numbers past double range, deep nesting, lone escapes. */
const HOSTILE_RAW_BODIES = [
  '{"type":"a.b","data":{"n":1e400}}',
  '{"type":"a.b","data":{"n":-1e400}}',
  '{"type":"a.b","data":{"n":9007199254740993}}',
  '{"type":"a.b","data":{"x":"\\ud800"}}',
  '{"type":"a.b","data":{"x":"\\u0000"}}',
  `{"type":"a.b","data":{"x":${'['.repeat(5000)}${']'.repeat(5000)}}}`,
  `{"type":"a.b","data":${'{"a":'.repeat(2000)}1${'}'.repeat(2000)}}`,
  '{"__proto__":{"polluted":true}}',
  '{"constructor":{"prototype":{"polluted":true}}}',
  '{"url":"https://example.com/h","retry":{"schedule":[0]}}',
  '{"url":"https://example.com/h","retry":{"initialInterval":"5s","maximumInterval":"1s"}}',
  '{"expireOldAfter":"280000 years"}',
  '{"name":"a.b","schema":{"$id":"x","$ref":"x"}}',
  '{"name":"a.c","schema":{"type":"object","properties":{"x":{"pattern":"^(a+)+$"}}}}',
  '', ' ', 'null', '[]', '"x"', '{', '{"a":1}x', '\u0000',
];

const hostileString = fc.oneof(fc.constantFrom(...HOSTILE_STRINGS), fc.string({ maxLength: 40 }), fc.string({ unit: 'binary', maxLength: 20 }));
const hostileValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 3, arbitrary: hostileString },
  { weight: 2, arbitrary: fc.constantFrom(...HOSTILE_NUMBERS) },
  { weight: 1, arbitrary: fc.constantFrom(null, true, false) },
  { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
  { weight: 1, arbitrary: fc.dictionary(hostileString, fc.oneof(hostileString, fc.integer()), { maxKeys: 4 }) },
);
/** An object with the route's own field names (so validation goes past "unknown key") plus noise. */
const shaped = (fields: string[]) =>
  fc.tuple(fc.subarray(fields), fc.array(hostileValue, { minLength: fields.length, maxLength: fields.length }), fc.dictionary(hostileString, hostileValue, { maxKeys: 2 }))
    .map(([keys, values, extra]) => ({ ...(Math.random() < 0.2 ? extra : {}), ...Object.fromEntries(keys.map((k, i) => [k, values[i]])) }));
const RETRY_FIELDS = ['initialInterval', 'backoffCoefficient', 'maximumInterval', 'deadline', 'maxAttempts', 'deadLetterRetention', 'schedule'];
const retryValue = fc.oneof(hostileValue, shaped(RETRY_FIELDS), fc.record({ schedule: fc.array(fc.oneof(fc.integer({ min: -5, max: 5000 }), hostileString), { maxLength: 5 }) }));

type Body = { kind: 'json'; value: unknown } | { kind: 'raw'; text: string } | { kind: 'none' };
const bodyOf = (fields: string[], extra: Record<string, fc.Arbitrary<unknown>> = {}): fc.Arbitrary<Body> =>
  fc.oneof(
    { weight: 4, arbitrary: fc.tuple(shaped(fields), fc.record(extra, { requiredKeys: [] })).map(([a, b]) => ({ kind: 'json' as const, value: { ...a, ...b } })) },
    { weight: 1, arbitrary: hostileValue.map((value) => ({ kind: 'json' as const, value })) },
    { weight: 2, arbitrary: fc.constantFrom(...HOSTILE_RAW_BODIES).map((text) => ({ kind: 'raw' as const, text })) },
    { weight: 1, arbitrary: fc.constant({ kind: 'none' as const }) },
  );

interface RouteCase {
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE';
  path: string;
  body?: fc.Arbitrary<Body>;
  query?: string[];
}

const ROUTES: RouteCase[] = [
  { method: 'POST', path: '/v1/endpoints', body: bodyOf(['url', 'eventTypes', 'channels', 'description', 'secret', 'disabled', 'metadata'], { retry: retryValue }) },
  { method: 'GET', path: '/v1/endpoints', query: ['limit', 'cursor'] },
  { method: 'GET', path: '/v1/endpoints/:id' },
  { method: 'PATCH', path: '/v1/endpoints/:id', body: bodyOf(['url', 'eventTypes', 'channels', 'description', 'disabled', 'metadata'], { retry: retryValue }) },
  { method: 'DELETE', path: '/v1/endpoints/:id' },
  { method: 'POST', path: '/v1/endpoints/:id/secret/rotate', body: bodyOf(['expireOldAfter', 'secret']) },
  { method: 'GET', path: '/v1/endpoints/:id/stats', query: ['window'] },
  { method: 'POST', path: '/v1/events', body: bodyOf(['type', 'data', 'id', 'channels', 'version'], { data: fc.dictionary(hostileString, hostileValue, { maxKeys: 4 }) }) },
  { method: 'GET', path: '/v1/events/:id' },
  { method: 'POST', path: '/v1/event-types', body: bodyOf(['name', 'description', 'schema', 'deprecated'], { schema: fc.oneof(hostileValue, fc.record({ type: fc.constantFrom('object', 'string', 'bogus'), pattern: hostileString, uniqueItems: fc.boolean() }, { requiredKeys: [] })) }) },
  { method: 'GET', path: '/v1/event-types', query: ['limit', 'cursor'] },
  { method: 'GET', path: '/v1/event-types/:name' },
  { method: 'PATCH', path: '/v1/event-types/:name', body: bodyOf(['description', 'deprecated', 'schema']) },
  { method: 'GET', path: '/v1/deliveries', query: ['limit', 'cursor', 'status', 'endpointId', 'eventType'] },
  { method: 'GET', path: '/v1/deliveries/:eventId/:endpointId/attempts' },
  { method: 'POST', path: '/v1/deliveries/:eventId/:endpointId/replay' },
  { method: 'GET', path: '/v1/dead-letters', query: ['limit', 'cursor', 'endpointId', 'eventType', 'since'] },
  { method: 'POST', path: '/v1/dead-letters/replay', body: bodyOf(['endpointId', 'eventType', 'since']) },
  // Added with isolation, tenants, keys, portal sessions and hookline listen.
  { method: 'POST', path: '/v1/endpoints', body: bodyOf(['url', 'maxInFlight', 'rateLimit', 'timeouts'], { timeouts: fc.oneof(hostileValue, shaped(['connect', 'response'])) }) },
  { method: 'PATCH', path: '/v1/endpoints/:id', body: bodyOf(['maxInFlight', 'rateLimit', 'timeouts'], { timeouts: fc.oneof(hostileValue, shaped(['connect', 'response'])) }) },
  { method: 'POST', path: '/v1/endpoints/:id/test', body: bodyOf(['eventType', 'data']) },
  { method: 'POST', path: '/v1/tenants', body: bodyOf(['id', 'name', 'metadata']) },
  { method: 'GET', path: '/v1/tenants', query: ['limit', 'cursor'] },
  { method: 'PATCH', path: '/v1/tenants/:tenantId', body: bodyOf(['name', 'metadata']) },
  { method: 'DELETE', path: '/v1/tenants/:tenantId' },
  { method: 'POST', path: '/v1/tenants/:tenantId/endpoints', body: bodyOf(['url', 'eventTypes', 'description']) },
  { method: 'GET', path: '/v1/tenants/:tenantId/stats', query: ['window'] },
  { method: 'POST', path: '/v1/api-keys', body: bodyOf(['name', 'tenantId', 'all', 'scopes']) },
  { method: 'DELETE', path: '/v1/api-keys/:id' },
  { method: 'POST', path: '/v1/portal-sessions', body: bodyOf(['readOnly', 'ttlSeconds', 'branding'], { branding: fc.oneof(hostileValue, shaped(['title', 'logoUrl', 'accentColor'])) }) },
  { method: 'POST', path: '/v1/listen/sessions', body: bodyOf(['session', 'eventTypes']) },
  // Added with issue 21: bounded bulk replay, the deliveries of one event, portal revocation.
  { method: 'POST', path: '/v1/dead-letters/replay', body: bodyOf(['endpointId', 'eventType', 'since', 'limit', 'cursor'], { limit: fc.oneof(fc.integer({ min: -2, max: 600 }), hostileValue) }) },
  { method: 'POST', path: '/v1/tenants/:tenantId/dead-letters/replay', body: bodyOf(['limit', 'cursor']) },
  { method: 'GET', path: '/v1/deliveries', query: ['eventId', 'limit', 'cursor'] },
  { method: 'POST', path: '/v1/tenants/:tenantId/endpoints/:id/test', body: bodyOf(['eventType', 'data']) },
  { method: 'DELETE', path: '/v1/portal-sessions/:sessionId' },
  { method: 'DELETE', path: '/v1/tenants/:tenantId/portal-sessions/:sessionId' },
  { method: 'DELETE', path: '/v1/portal-sessions' },
  { method: 'DELETE', path: '/v1/tenants/:tenantId/portal-sessions' },
];

/** Where an error message must point: a request part, or a field the route documents. */
const NAMED_FIELD = /^(body|params|querystring|headers|content-type|idempotency-key|authorization|request|data|schema|type|version|id|name|url|endpointId|no route)\b/;
const TABLES = [
  'endpoints', 'endpoint_secrets', 'events', 'outbox', 'deliveries', 'attempts', 'event_types', 'event_type_versions', 'idempotency_keys',
  'test_event_windows', 'portal_session_revocations', 'portal_tenant_revocations',
];
const LIVENESS_MS = 2_000;
// HOOKLINE_FUZZ_RUNS raises it for a longer hunt by hand; the suite's default keeps `npm test` quick.
const RUNS_PER_ROUTE = Number(process.env.HOOKLINE_FUZZ_RUNS ?? 25);

describe('fuzz: every route, hostile input', () => {
  let h: Harness;
  const known: Record<string, string[]> = { id: [], eventId: [], endpointId: [], name: [], tenantId: ['default'], sessionId: [] };

  beforeAll(async () => {
    // Temporal is there (replay routes answer), but no relay or worker changes rows behind our back.
    h = await createHarness({ noRelay: true, noWorker: true });
    const ep = await createEndpoint(h.app, { url: 'https://example.com/fuzz' });
    const ev = await sendEvent(h.app, { type: 'fuzz.seed', data: { a: 1 } });
    await h.app.inject({ method: 'POST', url: '/v1/event-types', payload: { name: 'fuzz.seed', schema: { type: 'object' } } });
    const portal = (await h.app.inject({ method: 'POST', url: '/v1/portal-sessions', payload: {} })).json();
    Object.assign(known, { id: [ep.id], eventId: [ev.id], endpointId: [ep.id], name: ['fuzz.seed'], sessionId: [portal.id, crypto.randomUUID()] });
  });
  afterAll(async () => {
    await h?.close();
  });

  const counts = async () =>
    (await h.pool.query(`SELECT ${TABLES.map((t) => `(SELECT count(*) FROM ${t})::int AS ${t}`).join(', ')}`)).rows[0];

  const param = (name: string) => fc.oneof(fc.constantFrom(...(known[name] ?? ['x'])), hostileString);
  /** Percent-encodes a path segment; a lone surrogate goes out as the bytes an attacker would send (WTF-8). */
  const segment = (s: string) =>
    s === ''
      ? '%20'
      : [...s].map((ch) => {
          const c = ch.charCodeAt(0);
          if (ch.length > 1 || c < 0xd800 || c > 0xdfff) return encodeURIComponent(ch);
          return [0xe0 | (c >> 12), 0x80 | ((c >> 6) & 0x3f), 0x80 | (c & 0x3f)].map((b) => `%${b.toString(16).toUpperCase()}`).join('');
        }).join('');

  function requestOf(route: RouteCase) {
    const params = [...route.path.matchAll(/:(\w+)/g)].map((m) => m[1]);
    return fc.record({
      params: fc.tuple(...params.map(param)) as fc.Arbitrary<string[]>,
      query: fc.dictionary(fc.constantFrom(...(route.query ?? ['x'])), fc.oneof(hostileString, fc.constantFrom('1', '250', '251', '24h', 'delivered', '2026-01-01T00:00:00Z')), { maxKeys: 3 }),
      body: route.body ?? fc.constant<Body>({ kind: 'none' }),
      contentType: fc.constantFrom('application/json', 'application/json; charset=utf-8', 'text/plain', 'application/x-www-form-urlencoded', undefined),
      idempotencyKey: fc.option(fc.oneof(hostileString.filter((s) => /^[\x20-\x7e]*$/.test(s)), fc.constantFrom('key-1', 'key-1')), { nil: undefined }),
    }).map((r) => {
      let i = 0;
      const url = route.path.replace(/:(\w+)/g, () => segment(r.params[i++]));
      const qs = new URLSearchParams(r.query).toString();
      return { ...r, url: qs ? `${url}?${qs}` : url };
    });
  }

  for (const route of ROUTES) {
    it(`${route.method} ${route.path}`, async () => {
      await fc.assert(
        fc.asyncProperty(requestOf(route), async (r) => {
          const headers: Record<string, string> = {};
          if (r.contentType && r.body.kind !== 'none') headers['content-type'] = r.contentType;
          if (r.idempotencyKey !== undefined) headers['idempotency-key'] = r.idempotencyKey;
          const payload = r.body.kind === 'json' ? JSON.stringify(r.body.value) : r.body.kind === 'raw' ? r.body.text : undefined;
          const before = await counts();
          let timer!: NodeJS.Timeout;
          const res = await Promise.race([
            h.app.inject({ method: route.method, url: r.url, headers, ...(payload !== undefined ? { payload } : {}) }),
            new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer within ${LIVENESS_MS} ms`)), LIVENESS_MS))),
          ]).finally(() => clearTimeout(timer));
          const what = `${route.method} ${r.url} ${payload?.slice(0, 200)} → ${res.statusCode} ${res.body.slice(0, 300)}`;
          expect(res.statusCode, what).toBeLessThan(500);
          if (res.statusCode >= 400) {
            const body = res.json();
            expect(body, what).toMatchObject({ code: expect.any(String), message: expect.any(String) });
            if (res.statusCode !== 404 && res.statusCode !== 409) expect(body.message, what).toMatch(NAMED_FIELD);
            expect(await counts(), `${what}: a refused request changed the database`).toEqual(before);
          }
        }),
        { numRuns: RUNS_PER_ROUTE, endOnFailure: true },
      );
    });
  }
});
