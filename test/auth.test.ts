// Authentication is a property of the route, not of the URL string: requests written as an
// attacker would write them, over a raw socket so no client normalises the target first, against
// a listening API with HOOKLINE_API_KEY set. None may read data or create anything.
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Pool } from '../src/db/pool';
import { createApiOnly } from './helpers';
import { raw, request } from './raw-http';

const KEY = 'sk_test_0123456789abcdef';
const METRICS_TOKEN = 'mt_test_0123456789abcdef';

// Every spelling of /v1/endpoints a router, a proxy or a client might treat differently.
const TARGETS = [
  '/v1/endpoints',
  '/%761/endpoints',
  '/%76%31/endpoints',
  '/v1/%65ndpoints',
  '/v1%2Fendpoints',
  '/v1%2fendpoints',
  '//v1/endpoints',
  '/v1//endpoints',
  '/./v1/endpoints',
  '/v1/./endpoints',
  '/%2e/v1/endpoints',
  '/x/../v1/endpoints',
  '/x/%2e%2e/v1/endpoints',
  '/v1/endpoints/',
  '/v1/endpoints;x',
  '/V1/endpoints',
  '/v1/ENDPOINTS',
  '/v1/endpoints?api_key=' + KEY,
  '/v1/endpoints?token=' + KEY,
  'http://127.0.0.1/v1/endpoints',
  'http://other.example/v1/endpoints',
  'HTTP://127.0.0.1/%761/endpoints',
  'https://127.0.0.1:1/v1/endpoints',
];
// Targets Node's HTTP parser refuses before any route runs (400, no body to leak).
const UNPARSEABLE = ['*v1/endpoints', '/v1/endpoints\x00', '/v1/end points', '/%zz/v1/endpoints', '/v1/endpoints%'];

const NO_KEY: Record<string, string>[] = [
  {},
  { authorization: 'Bearer wrong-key-0123456789' },
  { authorization: `Bearer ${KEY}x` },
  { authorization: `Bearer ${KEY.slice(0, -1)}` },
  { authorization: `Basic ${Buffer.from(`admin:${KEY}`).toString('base64')}` },
  { authorization: KEY },
  { authorization: 'Bearer' },
  { 'x-api-key': KEY },
  { cookie: `api_key=${KEY}` },
];

describe('route-level authentication, over raw sockets', () => {
  let app: FastifyInstance;
  let pool: Pool;
  let close: () => Promise<void>;
  let port: number;
  let secretUrl: string;

  beforeAll(async () => {
    ({ app, pool, close } = await createApiOnly({ HOOKLINE_API_KEY: KEY, HOOKLINE_METRICS_TOKEN: METRICS_TOKEN }));
    await app.listen({ port: 0, host: '127.0.0.1' });
    port = (app.server.address() as AddressInfo).port;
    // Something worth stealing: a 200 for any bypass would contain this URL.
    secretUrl = 'https://93.184.216.34/secret-hook-path';
    const res = await raw(port, request('POST', '/v1/endpoints', { authorization: `Bearer ${KEY}` }, JSON.stringify({ url: secretUrl })));
    expect(res.status).toBe(201);
  });
  afterAll(async () => {
    await close?.();
  });

  const endpointCount = async () => (await pool.query('SELECT count(*)::int AS n FROM endpoints')).rows[0].n as number;
  const eventCount = async () => (await pool.query('SELECT count(*)::int AS n FROM events')).rows[0].n as number;

  it.each(TARGETS)('GET %s without the key reads nothing', async (target) => {
    for (const headers of NO_KEY) {
      const res = await raw(port, request('GET', target, headers));
      expect([401, 404], `${target} ${JSON.stringify(headers)}: ${res.head}`).toContain(res.status);
      expect(res.body).not.toContain('secret-hook-path');
      expect(res.body).toMatch(/"code":"/); // the one error shape
    }
  });

  it.each(TARGETS)('POST %s without the key creates nothing', async (target) => {
    const before = await endpointCount();
    const events = await eventCount();
    for (const headers of NO_KEY) {
      const ep = await raw(port, request('POST', target, headers, JSON.stringify({ url: 'https://93.184.216.34/evil' })));
      expect([401, 404], `${target}: ${ep.head}`).toContain(ep.status);
      const evTarget = target.replace(/endpoints/i, 'events');
      const ev = await raw(port, request('POST', evTarget, headers, JSON.stringify({ type: 'evil.event', data: {} })));
      expect([401, 404], `${evTarget}: ${ev.head}`).toContain(ev.status);
    }
    expect(await endpointCount()).toBe(before);
    expect(await eventCount()).toBe(events);
  });

  it.each(UNPARSEABLE)('refuses %j before routing', async (target) => {
    const res = await raw(port, request('GET', target));
    expect([400, 401, 404], res.head).toContain(res.status);
    expect(res.body).not.toContain('secret-hook-path');
  });

  it('guards the HEAD twin of every GET route', async () => {
    expect((await raw(port, request('HEAD', '/v1/endpoints'))).status).toBe(401);
    expect((await raw(port, request('HEAD', '/%761/endpoints'))).status).toBe(401);
    expect((await raw(port, request('HEAD', '/v1/endpoints', { authorization: `Bearer ${KEY}` }))).status).toBe(200);
  });

  it('answers every route with the key, whatever spelling the router accepts', async () => {
    for (const target of ['/v1/endpoints', '/%761/endpoints', 'http://127.0.0.1/v1/endpoints']) {
      const res = await raw(port, request('GET', target, { authorization: `Bearer ${KEY}` }));
      expect(res.status, target).toBe(200);
      expect(res.body).toContain('secret-hook-path');
    }
    // The scheme is case-insensitive (RFC 9110 11.1).
    expect((await raw(port, request('GET', '/v1/endpoints', { authorization: `bearer ${KEY}` }))).status).toBe(200);
  });

  it('refuses the key in a query string even with a valid header: URLs end up in logs', async () => {
    for (const q of ['api_key', 'apikey', 'api-key', 'access_token', 'token', 'Authorization']) {
      const res = await raw(port, request('GET', `/v1/endpoints?${q}=${KEY}`, { authorization: `Bearer ${KEY}` }));
      expect(res.status, q).toBe(401);
      expect(JSON.parse(res.body)).toMatchObject({ code: 'key_in_query', message: expect.stringMatching(new RegExp(`^${q}: `)) });
    }
  });

  it('keeps the public list public and nothing else', async () => {
    for (const target of ['/healthz', '/readyz', '/ui', '/ui/', '/ui/app.js', '/ui/style.css', '/ui/config.json', '/docs', '/docs/json']) {
      const res = await raw(port, request('GET', target));
      expect([200, 302, 503], `${target}: ${res.head}`).toContain(res.status);
      expect(res.body).not.toContain('secret-hook-path');
    }
    for (const target of ['/metrics', '/v1/stats', '/v1/event-types', '/v1/dead-letters', '/nope', '/', '/ui/../v1/endpoints', '/healthz/../v1/endpoints']) {
      const res = await raw(port, request('GET', target));
      expect([401, 404], `${target}: ${res.head}`).toContain(res.status);
      expect(res.body).not.toContain('secret-hook-path');
    }
  });

  it('never lets a public wildcard route (the docs static files) reach another route', async () => {
    for (const target of ['/docs/static/../../v1/endpoints', '/docs/static/%2e%2e/%2e%2e/v1/endpoints', '/docs/static/..%2f..%2fv1%2fendpoints', '/ui/..%2fv1/endpoints']) {
      const res = await raw(port, request('GET', target));
      expect(res.status, `${target}: ${res.head}`).not.toBe(200);
      expect(res.body).not.toContain('secret-hook-path');
    }
  });

  it('answers an unknown route 401 without the key, so routes cannot be probed, and 404 with it', async () => {
    expect((await raw(port, request('GET', '/v1/nope'))).status).toBe(401);
    const found = await raw(port, request('GET', '/v1/nope', { authorization: `Bearer ${KEY}` }));
    expect(found.status).toBe(404);
    expect(JSON.parse(found.body).code).toBe('not_found');
  });

  it('guards the routes issue 21 added like every other: no key, no change; a browser from elsewhere, no change', async () => {
    const revocations = async () => (await pool.query('SELECT (SELECT count(*) FROM portal_session_revocations) + (SELECT count(*) FROM portal_tenant_revocations) AS n')).rows[0].n;
    const before = await revocations();
    const targets: [string, string, string?][] = [
      ['DELETE', `/v1/portal-sessions/${crypto.randomUUID()}`],
      ['DELETE', '/v1/portal-sessions'],
      ['DELETE', '/%761/portal-sessions'],
      ['POST', '/v1/dead-letters/replay', JSON.stringify({ limit: 1 })],
      ['GET', '/v1/deliveries?eventId=evt_x'],
      ['GET', '/v1/listen/sessions/laptop/stream'],
    ];
    for (const [method, target, body] of targets) {
      for (const headers of NO_KEY) {
        const res = await raw(port, request(method, target, headers, body));
        expect([401, 404], `${method} ${target} ${JSON.stringify(headers)}: ${res.head}`).toContain(res.status);
      }
      // With the key, from a foreign page: refused before the route runs (the GET is the listen stream).
      if (method !== 'GET' || target.includes('/stream')) {
        for (const browser of [{ origin: 'https://evil.example' }, { origin: 'null' }, { 'sec-fetch-site': 'cross-site' }] as Record<string, string>[]) {
          const res = await raw(port, request(method, target, { authorization: `Bearer ${KEY}`, ...browser }, body));
          expect(res.status, `${method} ${target} ${JSON.stringify(browser)}: ${res.head}`).toBe(403);
          expect(JSON.parse(res.body).code).toBe('cross_site');
        }
      }
    }
    expect(await revocations()).toBe(before);
  });

  it('serves /metrics to the admin key or the metrics token only', async () => {
    expect((await raw(port, request('GET', '/metrics'))).status).toBe(401);
    expect((await raw(port, request('GET', '/metrics', { authorization: 'Bearer wrong-token-0123456789' }))).status).toBe(401);
    expect((await raw(port, request('GET', '/metrics', { authorization: `Bearer ${KEY}` }))).status).toBe(200);
    const scraped = await raw(port, request('GET', '/metrics', { authorization: `Bearer ${METRICS_TOKEN}` }));
    expect(scraped.status).toBe(200);
    expect(scraped.body).toContain('# HELP');
    // The metrics token opens /metrics and nothing else.
    expect((await raw(port, request('GET', '/v1/endpoints', { authorization: `Bearer ${METRICS_TOKEN}` }))).status).toBe(401);
  });
});

describe('authentication settings', () => {
  /** Runs `fn` against an API built with `env`, then tears it down. */
  const withApi = async (env: Record<string, string>, fn: (app: FastifyInstance) => Promise<void>) => {
    const { app, close } = await createApiOnly(env);
    try {
      await fn(app);
    } finally {
      await close();
    }
  };
  const status = async (app: FastifyInstance, url: string) => (await app.inject({ method: 'GET', url })).statusCode;

  it('makes /metrics public with HOOKLINE_METRICS_PUBLIC=true, and only /metrics', () =>
    withApi({ HOOKLINE_API_KEY: KEY, HOOKLINE_METRICS_PUBLIC: 'true' }, async (app) => {
      expect(await status(app, '/metrics')).toBe(200);
      expect(await status(app, '/v1/endpoints')).toBe(401);
    }));

  it('needs no key on a loopback API without HOOKLINE_API_KEY (dev), /metrics included', () =>
    withApi({}, async (app) => {
      expect(await status(app, '/v1/endpoints')).toBe(200);
      expect(await status(app, '/metrics')).toBe(200);
    }));

  it('refuses a route that declares an unknown auth level when the app is built', () =>
    withApi({}, async (app) => {
      expect(() => app.get('/typo', { config: { auth: 'pubic' as never } }, async () => ({}))).toThrow(/config\.auth must be one of/);
    }));
});

describe('tenant-scoped credentials, over raw sockets', () => {
  let app: FastifyInstance;
  let close: () => Promise<void>;
  let port: number;
  let acmeKey: string;

  beforeAll(async () => {
    ({ app, close } = await createApiOnly({ HOOKLINE_API_KEY: KEY, HOOKLINE_ALLOWED_TARGETS: 'loopback' }));
    await app.listen({ port: 0, host: '127.0.0.1' });
    port = (app.server.address() as AddressInfo).port;
    const admin = { authorization: `Bearer ${KEY}` };
    for (const id of ['acme', 'globex']) {
      expect((await raw(port, request('POST', '/v1/tenants', admin, JSON.stringify({ id })))).status).toBe(201);
    }
    const ep = await raw(port, request('POST', '/v1/tenants/globex/endpoints', admin, JSON.stringify({ url: 'http://127.0.0.1:9/globex-secret-path' })));
    expect(ep.status).toBe(201);
    const minted = await raw(port, request('POST', '/v1/api-keys', admin, JSON.stringify({ name: 'acme', tenantId: 'acme', scopes: ['read', 'manage'] })));
    acmeKey = JSON.parse(minted.body).key;
  });
  afterAll(async () => {
    await close?.();
  });

  // Every spelling that might reach globex's endpoints from a path that starts with acme's, or
  // name globex in a way a check on the raw URL would miss.
  const SPELLINGS = [
    '/v1/tenants/globex/endpoints',
    '/v1/tenants/%67lobex/endpoints',
    '/v1/tenants/GLOBEX/endpoints',
    '/v1/tenants/acme/../globex/endpoints',
    '/v1/tenants/acme/%2e%2e/globex/endpoints',
    '/v1/tenants/acme%2f..%2fglobex/endpoints',
    '/v1/tenants/acme/endpoints/../../globex/endpoints',
    '/v1/tenants//globex/endpoints',
    '/v1/tenants/globex%00/endpoints',
    '/v1/tenants/acme,globex/endpoints',
    '/v1/tenants/globex/endpoints?tenantId=acme',
    '/v1/tenants/acme/endpoints?tenantId=globex',
    '/v1/endpoints?tenantId=globex',
    'http://127.0.0.1/v1/tenants/globex/endpoints',
  ];

  it.each(SPELLINGS)('%s with an acme key shows nothing of globex', async (target) => {
    const res = await raw(port, request('GET', target, { authorization: `Bearer ${acmeKey}` }));
    expect([200, 400, 404], `${target}: ${res.head}`).toContain(res.status);
    expect(res.body).not.toContain('globex-secret-path');
    if (res.status === 200) expect(JSON.parse(res.body).data).toEqual([]); // acme's own (empty) list
  });
});

describe('portal session tokens: forged, bent and revoked (issue 21)', () => {
  const PORTAL_SECRET = 'auth-test-portal-secret-0123456789abcdef';
  const portalKey = new TextEncoder().encode(PORTAL_SECRET);
  let app: FastifyInstance;
  let close: () => Promise<void>;

  const get = async (token: string, url = '/v1/tenants/acme/endpoints') =>
    (await app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${token}` } })).statusCode;
  const call = (token: string, method: 'POST' | 'DELETE', url: string, payload?: object) =>
    app.inject({ method, url, payload, headers: { authorization: `Bearer ${token}` } });
  const mint = async (tenantId: string) => {
    const res = await call(KEY, 'POST', `/v1/tenants/${tenantId}/portal-sessions`, {});
    expect(res.statusCode, res.body).toBe(201);
    return res.json() as { id: string; token: string };
  };
  /** A token as mintPortalToken makes one, with `change` applied: one thing broken per case. */
  const forge = (change: { alg?: string; claims?: Record<string, unknown>; aud?: string; iss?: string; jti?: string | null; nbf?: number; exp?: number } = {}) => {
    const now = Math.floor(Date.now() / 1000);
    let jwt = new SignJWT({ ro: false, ...change.claims }).setProtectedHeader({ alg: change.alg ?? 'HS256' })
      .setIssuer(change.iss ?? 'hookline').setAudience(change.aud ?? 'hookline-portal').setSubject('acme')
      .setIssuedAt(now).setExpirationTime(change.exp ?? now + 300);
    if (change.jti !== null) jwt = jwt.setJti(change.jti ?? crypto.randomUUID());
    if (change.nbf !== undefined) jwt = jwt.setNotBefore(change.nbf);
    return jwt.sign(portalKey);
  };

  beforeAll(async () => {
    ({ app, close } = await createApiOnly({ HOOKLINE_API_KEY: KEY, HOOKLINE_PORTAL_SECRET: PORTAL_SECRET }));
    for (const id of ['acme', 'globex']) expect((await call(KEY, 'POST', '/v1/tenants', { id })).statusCode).toBe(201);
  });
  afterAll(async () => {
    await close?.();
  });

  it('refuses every token that is not exactly one of ours', async () => {
    const now = Math.floor(Date.now() / 1000);
    expect(await get(await forge())).toBe(200); // the baseline the cases below break
    const good = await forge();
    const globex = await forge({ claims: { sub: 'globex' } });
    const [h, p, sig] = good.split('.');
    const cases: [string, string][] = [
      ['HS384', await forge({ alg: 'HS384' })],
      ['HS512', await forge({ alg: 'HS512' })],
      ['alg none', `${Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url')}.${p}.`],
      ['swapped payload', `${h}.${globex.split('.')[1]}.${sig}`],
      ['expired', await forge({ exp: now - 1 })],
      ['not yet valid (nbf)', await forge({ nbf: now + 600 })],
      ['another audience', await forge({ aud: 'hookline-console' })],
      ['another issuer', await forge({ iss: 'someone-else' })],
      ['no jti', await forge({ jti: null })],
      ['ro not a boolean', await forge({ claims: { ro: 'false' } })],
    ];
    for (const [name, token] of cases) {
      const res = await app.inject({ method: 'GET', url: '/v1/tenants/acme/endpoints', headers: { authorization: `Bearer ${token}` } });
      expect(res.statusCode, name).toBe(401);
      expect(res.json().code, name).toBe('unauthorized');
    }
  });

  it('ends one session by its id, at once, and leaves the others', async () => {
    const [a, b] = [await mint('acme'), await mint('acme')];
    expect([await get(a.token), await get(b.token)]).toEqual([200, 200]);
    // Another tenant's routes cannot end acme's session, even knowing its id.
    expect((await call(KEY, 'DELETE', `/v1/tenants/globex/portal-sessions/${a.id}`)).statusCode).toBe(204);
    expect(await get(a.token)).toBe(200);
    expect((await call(KEY, 'DELETE', `/v1/tenants/acme/portal-sessions/${a.id}`)).statusCode).toBe(204);
    expect(await get(a.token)).toBe(401);
    expect(await get(a.token, '/v1/portal/session')).toBe(401);
    expect(await get(b.token)).toBe(200);
    // Idempotent; an id that is not one we mint is a 400 naming it.
    expect((await call(KEY, 'DELETE', `/v1/tenants/acme/portal-sessions/${a.id}`)).statusCode).toBe(204);
    const bad = await call(KEY, 'DELETE', '/v1/tenants/acme/portal-sessions/not-a-session');
    expect(bad.statusCode).toBe(400);
    expect(bad.json().message).toMatch(/^params\.sessionId/);
  });

  it("ends all of a tenant's sessions started until then; later ones and other tenants' work", async () => {
    const [a, b, other] = [await mint('acme'), await mint('acme'), await mint('globex')];
    expect((await call(KEY, 'DELETE', '/v1/tenants/acme/portal-sessions')).statusCode).toBe(204);
    expect([await get(a.token), await get(b.token)]).toEqual([401, 401]);
    expect(await get(other.token, '/v1/tenants/globex/endpoints')).toBe(200);
    const later = await mint('acme'); // possibly within the same second as the revocation
    expect(await get(later.token)).toBe(200);
  });

  it('lets only the sender end sessions: not a session, not a read key, not another tenant\'s key', async () => {
    const s = await mint('acme');
    const keyFor = async (tenantId: string, scopes: string[]) =>
      (await call(KEY, 'POST', '/v1/api-keys', { name: 'k', tenantId, scopes })).json().key as string;
    const [reader, globexManager, acmeManager] = [await keyFor('acme', ['read']), await keyFor('globex', ['manage']), await keyFor('acme', ['manage'])];
    expect((await call(s.token, 'DELETE', `/v1/tenants/acme/portal-sessions/${s.id}`)).statusCode).toBe(403);
    expect((await call(s.token, 'DELETE', '/v1/tenants/acme/portal-sessions')).statusCode).toBe(403);
    expect((await call(reader, 'DELETE', '/v1/tenants/acme/portal-sessions')).statusCode).toBe(403);
    expect((await call(globexManager, 'DELETE', '/v1/tenants/acme/portal-sessions')).statusCode).toBe(404);
    expect((await call('', 'DELETE', '/v1/tenants/acme/portal-sessions')).statusCode).toBe(401);
    expect(await get(s.token)).toBe(200);
    expect((await call(acmeManager, 'DELETE', `/v1/tenants/acme/portal-sessions/${s.id}`)).statusCode).toBe(204);
    expect(await get(s.token)).toBe(401);
  });

  it('never turns a revoked session into the admin on a keyless dev API', async () => {
    const { app: dev, close: closeDev } = await createApiOnly({ HOOKLINE_PORTAL_SECRET: PORTAL_SECRET });
    try {
      const s = (await dev.inject({ method: 'POST', url: '/v1/portal-sessions', payload: {} })).json();
      const read = async () => (await dev.inject({ method: 'GET', url: '/v1/endpoints', headers: { authorization: `Bearer ${s.token}` } })).statusCode;
      expect(await read()).toBe(200);
      expect((await dev.inject({ method: 'DELETE', url: `/v1/portal-sessions/${s.id}` })).statusCode).toBe(204);
      expect(await read()).toBe(401);
    } finally {
      await closeDev();
    }
  });
});
