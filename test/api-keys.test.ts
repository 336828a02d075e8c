// Scoped API keys and portal sessions against the API on a database of its own, with
// HOOKLINE_API_KEY set: what each credential may do, on which tenant, and that another tenant's
// anything answers exactly as if it did not exist.
import { createHash } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Pool } from '../src/db/pool';
import { createApiOnly } from './helpers';

const ADMIN = 'sk_admin_0123456789abcdef';
const PORTAL_SECRET = 'portal-secret-for-tests-0123456789abcdef';

describe('scoped API keys and portal sessions', () => {
  let app: FastifyInstance;
  let pool: Pool;
  let close: () => Promise<void>;
  const ids: Record<string, string> = {};

  const call = async (key: string | null, method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, payload?: unknown) => {
    const res = await app.inject({ method, url, payload: payload as never, headers: key ? { authorization: `Bearer ${key}` } : {} });
    const json = res.headers['content-type']?.toString().startsWith('application/json') && res.body;
    return { status: res.statusCode, body: json ? res.json() : null, raw: res.body };
  };
  const mint = async (body: Record<string, unknown>) => {
    const r = await call(ADMIN, 'POST', '/v1/api-keys', body);
    if (r.status !== 201) throw new Error(`mint: ${r.status} ${r.raw}`);
    return r.body as { id: string; key: string; tenantId: string | null; scopes: string[] };
  };
  const portal = async (key: string, tenantId: string, body: Record<string, unknown> = {}) => {
    const r = await call(key, 'POST', `/v1/tenants/${tenantId}/portal-sessions`, body);
    if (r.status !== 201) throw new Error(`portal session: ${r.status} ${r.raw}`);
    return r.body as { url: string; token: string; expiresAt: string };
  };

  beforeAll(async () => {
    ({ app, pool, close } = await createApiOnly({ HOOKLINE_API_KEY: ADMIN, HOOKLINE_PORTAL_SECRET: PORTAL_SECRET, HOOKLINE_ALLOWED_TARGETS: 'loopback' }));
    for (const t of ['acme', 'globex']) expect((await call(ADMIN, 'POST', '/v1/tenants', { id: t })).status).toBe(201);
    for (const [name, t] of [['epAcme', 'acme'], ['epGlobex', 'globex']]) {
      const r = await call(ADMIN, 'POST', `/v1/tenants/${t}/endpoints`, { url: `http://127.0.0.1:9/${t}-hook` });
      ids[name] = r.body.id;
    }
    ids.evAcme = (await call(ADMIN, 'POST', '/v1/tenants/acme/events', { type: 'invoice.paid', data: { amount: 'acme-payload' } })).body.id;
    ids.evGlobex = (await call(ADMIN, 'POST', '/v1/tenants/globex/events', { type: 'invoice.paid', data: { amount: 'globex-payload' } })).body.id;
    // Delivery rows as the relay would write them, so the delivery routes have something to hide.
    await pool.query(
      `INSERT INTO deliveries (event_id, endpoint_id, event_type, status, tenant_id) VALUES ($1, $2, 'invoice.paid', 'dead_lettered', 'acme'), ($3, $4, 'invoice.paid', 'dead_lettered', 'globex')`,
      [ids.evAcme, ids.epAcme, ids.evGlobex, ids.epGlobex],
    );
  });
  afterAll(async () => {
    await close?.();
  });

  it('mints keys with the admin key only, shows each once and stores only its SHA-256', async () => {
    const k = await mint({ name: 'acme publisher', tenantId: 'acme', scopes: ['publish'] });
    expect(k.key).toMatch(/^hk_[A-Za-z0-9_-]{43}$/);
    expect(k).toMatchObject({ tenantId: 'acme', scopes: ['publish'], lastUsedAt: null, revokedAt: null });
    const stored = await pool.query('SELECT * FROM api_keys WHERE id = $1', [k.id]);
    expect(JSON.stringify(stored.rows)).not.toContain(k.key);
    expect(stored.rows[0].key_hash).toBe(createHash('sha256').update(k.key).digest('hex'));
    const read = await call(ADMIN, 'GET', `/v1/api-keys/${k.id}`);
    expect(read.raw).not.toContain(k.key);
    expect(read.body.keyPrefix).toBe(k.key.slice(0, 10));
    expect((await call(ADMIN, 'GET', '/v1/api-keys')).raw).not.toContain(k.key);

    // Only the admin mints: not even a manage key for all tenants.
    const all = await mint({ name: 'ops', all: true, scopes: ['manage'] });
    expect((await call(all.key, 'POST', '/v1/api-keys', { name: 'x', all: true, scopes: ['manage'] })).status).toBe(403);
    expect((await call(k.key, 'GET', '/v1/api-keys')).status).toBe(403);
    expect((await call(null, 'POST', '/v1/api-keys', { name: 'x', all: true, scopes: ['read'] })).status).toBe(401);

    for (const [body, field] of [
      [{ name: 'both', tenantId: 'acme', all: true, scopes: ['read'] }, 'body.tenantId'],
      [{ name: 'neither', scopes: ['read'] }, 'body.tenantId'],
      [{ name: 'ghost', tenantId: 'nobody', scopes: ['read'] }, 'body.tenantId'],
      [{ name: 'bad scope', all: true, scopes: ['root'] }, 'body.scopes'],
      [{ name: 'no scope', all: true, scopes: [] }, 'body.scopes'],
    ] as const) {
      const r = await call(ADMIN, 'POST', '/v1/api-keys', body);
      expect([400, 422], JSON.stringify(body)).toContain(r.status);
      expect(r.body.message).toContain(field);
    }
  });

  it('lets a publish-only key publish, and nothing else: no payloads, no endpoint list, no rotation', async () => {
    const { key } = await mint({ name: 'publisher', tenantId: 'acme', scopes: ['publish'] });
    expect((await call(key, 'POST', '/v1/tenants/acme/events', { type: 'invoice.paid', data: { n: 1 } })).status).toBe(202);
    for (const [method, url, payload] of [
      ['GET', `/v1/tenants/acme/events/${ids.evAcme}`, undefined],
      ['GET', '/v1/tenants/acme/endpoints', undefined],
      ['GET', `/v1/tenants/acme/endpoints/${ids.epAcme}`, undefined],
      ['POST', `/v1/tenants/acme/endpoints/${ids.epAcme}/secret/rotate`, {}],
      ['POST', '/v1/tenants/acme/endpoints', { url: 'http://127.0.0.1:9/mine' }],
      ['PATCH', `/v1/tenants/acme/endpoints/${ids.epAcme}`, { url: 'http://127.0.0.1:9/stolen' }],
      ['DELETE', `/v1/tenants/acme/endpoints/${ids.epAcme}`, undefined],
      ['GET', '/v1/tenants/acme/deliveries', undefined],
      ['GET', '/v1/tenants/acme/dead-letters', undefined],
      ['POST', '/v1/tenants/acme/dead-letters/replay', {}],
      ['POST', '/v1/tenants/acme/portal-sessions', {}],
    ] as const) {
      const r = await call(key, method, url, payload);
      expect(r.status, `${method} ${url}`).toBe(403);
      expect(r.raw).not.toContain('acme-payload');
      expect(r.raw).not.toContain('127.0.0.1:9');
    }
    expect((await call(ADMIN, 'GET', `/v1/tenants/acme/endpoints/${ids.epAcme}`)).body.url).toBe('http://127.0.0.1:9/acme-hook');
  });

  it("never shows a tenant key another tenant's anything: 404 exactly as for what does not exist", async () => {
    const { key } = await mint({ name: 'acme all', tenantId: 'acme', scopes: ['publish', 'read', 'manage'] });
    // Its own tenant works.
    expect((await call(key, 'GET', '/v1/tenants/acme/endpoints')).body.data.map((e: { id: string }) => e.id)).toEqual([ids.epAcme]);
    expect((await call(key, 'GET', `/v1/tenants/acme/events/${ids.evAcme}`)).status).toBe(200);
    expect((await call(key, 'GET', '/v1/tenants/acme')).status).toBe(200);

    const probes = (t: string, ep: string, ev: string) => [
      ['GET', `/v1/tenants/${t}`], ['GET', `/v1/tenants/${t}/endpoints`], ['GET', `/v1/tenants/${t}/endpoints/${ep}`],
      ['GET', `/v1/tenants/${t}/events/${ev}`], ['GET', `/v1/tenants/${t}/deliveries`], ['GET', `/v1/tenants/${t}/stats`],
      ['GET', `/v1/tenants/${t}/deliveries/${ev}/${ep}/attempts`], ['POST', `/v1/tenants/${t}/events`],
      ['POST', `/v1/tenants/${t}/endpoints/${ep}/secret/rotate`], ['DELETE', `/v1/tenants/${t}/endpoints/${ep}`],
      ['POST', `/v1/tenants/${t}/portal-sessions`],
    ] as const;
    const seen = (t: string, ep: string, ev: string) =>
      Promise.all(probes(t, ep, ev).map(async ([method, url]) => {
        const payload = method === 'POST' ? (url.endsWith('/events') ? { type: 'x.y', data: {} } : {}) : undefined;
        const r = await call(key, method, url, payload);
        return `${method} ${r.status} ${r.raw.replaceAll(t, 'T').replaceAll(ep, 'EP').replaceAll(ev, 'EV')}`;
      }));
    const other = await seen('globex', ids.epGlobex, ids.evGlobex);
    const ghost = await seen('no-such-co', 'ep_01JNOSUCHENDPOINT000000000', 'evt_01JNOSUCHEVENT000000000000');
    for (const line of other) expect(line).toMatch(/^\w+ 404 /);
    expect(other).toEqual(ghost);
    expect(other.join('\n')).not.toContain('globex-payload');

    // Guessed ids of another tenant under its own tenant's path: absent too.
    for (const url of [`/v1/tenants/acme/endpoints/${ids.epGlobex}`, `/v1/tenants/acme/events/${ids.evGlobex}`,
      `/v1/tenants/acme/deliveries/${ids.evGlobex}/${ids.epGlobex}/attempts`]) {
      expect((await call(key, 'GET', url)).status, url).toBe(404);
    }
    expect((await call(key, 'POST', `/v1/tenants/acme/deliveries/${ids.evGlobex}/${ids.epGlobex}/replay`)).status).toBe(404);
    const dead = await call(key, 'GET', '/v1/tenants/acme/dead-letters');
    expect(dead.body.data.map((d: { eventId: string }) => d.eventId)).toEqual([ids.evAcme]);

    // The routes without a tenant act on `default`, which is another tenant for this key.
    expect((await call(key, 'GET', '/v1/endpoints')).status).toBe(404);
    expect((await call(key, 'POST', '/v1/events', { type: 'x.y', data: {} })).status).toBe(404);
    // Routes over every tenant are not for it; the global catalogue is.
    expect((await call(key, 'GET', '/v1/tenants')).status).toBe(403);
    expect((await call(key, 'POST', '/v1/tenants', { id: 'mine' })).status).toBe(403);
    expect((await call(key, 'DELETE', '/v1/tenants/globex')).status).toBe(403);
    expect((await call(key, 'POST', '/v1/event-types', { name: 'acme.own' })).status).toBe(403);
    expect((await call(key, 'GET', '/v1/event-types')).status).toBe(200);
  });

  it('lets a key for all tenants act on each, within its scopes', async () => {
    const { key } = await mint({ name: 'reader', all: true, scopes: ['read'] });
    expect((await call(key, 'GET', `/v1/tenants/globex/events/${ids.evGlobex}`)).body.data).toEqual({ amount: 'globex-payload' });
    expect((await call(key, 'GET', `/v1/tenants/acme/events/${ids.evAcme}`)).status).toBe(200);
    expect((await call(key, 'GET', '/v1/endpoints')).status).toBe(200);
    expect((await call(key, 'GET', '/v1/tenants')).status).toBe(200);
    expect((await call(key, 'POST', '/v1/tenants/acme/events', { type: 'x.y', data: {} })).status).toBe(403);
    expect((await call(key, 'PATCH', `/v1/tenants/acme/endpoints/${ids.epAcme}`, { description: 'x' })).status).toBe(403);
  });

  it('refuses a revoked key at once, and one that was never minted', async () => {
    const k = await mint({ name: 'short-lived', tenantId: 'acme', scopes: ['read'] });
    expect((await call(k.key, 'GET', '/v1/tenants/acme/endpoints')).status).toBe(200);
    const revoked = await call(ADMIN, 'DELETE', `/v1/api-keys/${k.id}`);
    expect(revoked.status).toBe(200);
    expect(revoked.body.revokedAt).not.toBeNull();
    const after = await call(k.key, 'GET', '/v1/tenants/acme/endpoints');
    expect(after.status).toBe(401);
    expect(after.body.code).toBe('unauthorized');
    const forged = `hk_${'A'.repeat(43)}`;
    expect((await call(forged, 'GET', '/v1/tenants/acme/endpoints')).status).toBe(401);
  });

  it('records when a key was last used, without a write per request', async () => {
    const k = await mint({ name: 'busy', tenantId: 'acme', scopes: ['read'] });
    const lastUsed = async () => (await pool.query('SELECT last_used_at FROM api_keys WHERE id = $1', [k.id])).rows[0].last_used_at as Date | null;
    expect(await lastUsed()).toBeNull();
    await call(k.key, 'GET', '/v1/tenants/acme/endpoints');
    const first = await waitForValue(lastUsed);
    for (let i = 0; i < 5; i++) await call(k.key, 'GET', '/v1/tenants/acme/endpoints');
    expect((await lastUsed())?.getTime()).toBe(first.getTime());
    // Once it is older than the interval, the next use writes again.
    await pool.query(`UPDATE api_keys SET last_used_at = now() - interval '2 minutes' WHERE id = $1`, [k.id]);
    const stale = (await lastUsed())!.getTime();
    await call(k.key, 'GET', '/v1/tenants/acme/endpoints');
    await waitForValue(async () => ((await lastUsed())!.getTime() > stale ? true : null));
    expect((await call(ADMIN, 'GET', `/v1/api-keys/${k.id}`)).body.lastUsedAt).not.toBeNull();
  });

  it("labels the API's per-endpoint gauges with the endpoint's tenant (no new series), and /metrics is not a tenant's", async () => {
    const { key } = await mint({ name: 'metrics?', tenantId: 'acme', scopes: ['read'] });
    expect((await call(key, 'GET', '/metrics')).status).toBe(401);
    const text = (await call(ADMIN, 'GET', '/metrics')).raw;
    const lines = text.split('\n').filter((l) => l.startsWith('hookline_dead_letters_open{'));
    expect(lines).toContain(`hookline_dead_letters_open{tenant_id="acme",endpoint_id="${ids.epAcme}"} 1`);
    expect(lines).toContain(`hookline_dead_letters_open{tenant_id="globex",endpoint_id="${ids.epGlobex}"} 1`);
  });

  describe('portal sessions', () => {
    it('are started by the admin or a manage key of the tenant, never by a read key or another tenant', async () => {
      const s = await portal(ADMIN, 'acme', { branding: { title: 'Acme webhooks', accentColor: '#ff5500', logoUrl: 'https://acme.example/logo.png' } });
      expect(s.url).toBe(`http://localhost:80/portal#token=${s.token}`);
      expect(Date.parse(s.expiresAt) - Date.now()).toBeGreaterThan(3500_000);
      expect(Date.parse(s.expiresAt) - Date.now()).toBeLessThanOrEqual(3600_000);
      const manage = await mint({ name: 'acme manage', tenantId: 'acme', scopes: ['manage'] });
      await portal(manage.key, 'acme');
      // No body at all: every field has a default.
      const bare = await app.inject({ method: 'POST', url: '/v1/tenants/acme/portal-sessions', headers: { authorization: `Bearer ${ADMIN}` } });
      expect(bare.statusCode, bare.body).toBe(201);
      expect((await call(manage.key, 'POST', '/v1/tenants/globex/portal-sessions', {})).status).toBe(404);
      const reader = await mint({ name: 'acme read', tenantId: 'acme', scopes: ['read'] });
      expect((await call(reader.key, 'POST', '/v1/tenants/acme/portal-sessions', {})).status).toBe(403);
      for (const [body, field] of [
        [{ ttlSeconds: 10 }, 'body.ttlSeconds'], [{ ttlSeconds: 90_000 }, 'body.ttlSeconds'],
        [{ branding: { accentColor: 'red' } }, 'body.branding.accentColor'],
        [{ branding: { logoUrl: 'javascript:alert(1)' } }, 'body.branding.logoUrl'],
        [{ branding: { logoUrl: 'http://acme.example/logo.png' } }, 'body.branding.logoUrl'],
      ] as const) {
        const r = await call(ADMIN, 'POST', '/v1/tenants/acme/portal-sessions', body);
        expect(r.status, JSON.stringify(body)).toBe(400);
        expect(r.body.message).toContain(field);
      }
    });

    it("open their tenant's routes only, and say who they are", async () => {
      const s = await portal(ADMIN, 'acme', { branding: { title: 'Acme webhooks' } });
      const me = await call(s.token, 'GET', '/v1/portal/session');
      expect(me.body).toMatchObject({ tenantId: 'acme', readOnly: false, expiresAt: s.expiresAt, branding: { title: 'Acme webhooks' } });
      expect((await call(s.token, 'GET', '/v1/tenants/acme/endpoints')).body.data).toHaveLength(1);
      expect((await call(s.token, 'GET', '/v1/event-types')).status).toBe(200);
      const created = await call(s.token, 'POST', '/v1/tenants/acme/endpoints', { url: 'http://127.0.0.1:9/from-portal' });
      expect(created.status).toBe(201);
      expect((await call(s.token, 'POST', `/v1/tenants/acme/endpoints/${created.body.id}/secret/rotate`, {})).status).toBe(200);
      expect((await call(s.token, 'DELETE', `/v1/tenants/acme/endpoints/${created.body.id}`)).status).toBe(204);

      for (const url of ['/v1/tenants/globex/endpoints', `/v1/tenants/globex/events/${ids.evGlobex}`, '/v1/endpoints', `/v1/tenants/acme/endpoints/${ids.epGlobex}`]) {
        expect((await call(s.token, 'GET', url)).status, url).toBe(404);
      }
      // Not the sender's powers: no publishing, no new sessions, no tenants, no keys.
      expect((await call(s.token, 'POST', '/v1/tenants/acme/events', { type: 'x.y', data: {} })).status).toBe(403);
      expect((await call(s.token, 'POST', '/v1/tenants/acme/portal-sessions', {})).status).toBe(403);
      expect((await call(s.token, 'GET', '/v1/tenants')).status).toBe(403);
      expect((await call(s.token, 'GET', '/v1/tenants/acme')).status).toBe(403); // the sender's metadata
      expect((await call(s.token, 'GET', '/v1/api-keys')).status).toBe(403);
      expect((await call(ADMIN, 'GET', '/v1/portal/session')).status).toBe(403);
    });

    it('change nothing when read-only', async () => {
      const s = await portal(ADMIN, 'acme', { readOnly: true });
      expect((await call(s.token, 'GET', '/v1/tenants/acme/endpoints')).status).toBe(200);
      expect((await call(s.token, 'GET', '/v1/tenants/acme/dead-letters')).status).toBe(200);
      for (const [method, url, payload] of [
        ['POST', '/v1/tenants/acme/endpoints', { url: 'http://127.0.0.1:9/ro' }],
        ['PATCH', `/v1/tenants/acme/endpoints/${ids.epAcme}`, { description: 'ro' }],
        ['DELETE', `/v1/tenants/acme/endpoints/${ids.epAcme}`, undefined],
        ['POST', `/v1/tenants/acme/endpoints/${ids.epAcme}/secret/rotate`, {}],
        ['POST', `/v1/tenants/acme/deliveries/${ids.evAcme}/${ids.epAcme}/replay`, undefined],
        ['POST', '/v1/tenants/acme/dead-letters/replay', {}],
      ] as const) {
        expect((await call(s.token, method, url, payload)).status, `${method} ${url}`).toBe(403);
      }
      expect((await call(ADMIN, 'GET', `/v1/tenants/acme/endpoints/${ids.epAcme}`)).body.description).toBe('');
    });

    it('refuse an expired, altered or foreign token, and end with their tenant', async () => {
      const key = new TextEncoder().encode(PORTAL_SECRET);
      const token = (claims: Record<string, unknown>, exp: number, k = key, alg = 'HS256') =>
        new SignJWT(claims).setProtectedHeader({ alg }).setIssuer('hookline').setAudience('hookline-portal')
          .setSubject('acme').setJti('t').setIssuedAt(exp - 60).setExpirationTime(exp).sign(k);
      const now = Math.floor(Date.now() / 1000);
      const good = await token({ ro: false }, now + 60);
      expect((await call(good, 'GET', '/v1/tenants/acme/endpoints')).status).toBe(200);

      const expired = await token({ ro: false }, now - 1);
      const wrongKey = await token({ ro: false }, now + 60, new TextEncoder().encode('another-secret-0123456789abcdef-xyz'));
      const [h, p, sig] = good.split('.');
      const widened = `${h}.${Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(p, 'base64url').toString()), sub: 'globex' })).toString('base64url')}.${sig}`;
      const none = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${p}.`;
      for (const [name, t] of [['expired', expired], ['wrong key', wrongKey], ['altered', widened], ['alg none', none]]) {
        const r = await call(t, 'GET', '/v1/tenants/acme/endpoints');
        expect(r.status, name).toBe(401);
        expect(r.body.code).toBe('unauthorized');
      }

      expect((await call(ADMIN, 'POST', '/v1/tenants', { id: 'short-co' })).status).toBe(201);
      const s = await portal(ADMIN, 'short-co');
      expect((await call(s.token, 'GET', '/v1/tenants/short-co/endpoints')).status).toBe(200);
      expect((await call(ADMIN, 'DELETE', '/v1/tenants/short-co')).status).toBe(204);
      expect((await call(s.token, 'GET', '/v1/tenants/short-co/endpoints')).status).toBe(404);
    });
  });
});

describe('scoped credentials on a loopback API without HOOKLINE_API_KEY (dev)', () => {
  it('still refuses a revoked key and an expired portal token instead of treating them as the admin', async () => {
    const { app, close } = await createApiOnly({ HOOKLINE_PORTAL_SECRET: PORTAL_SECRET });
    try {
      const get = (token: string | null, url: string) =>
        app.inject({ method: 'GET', url, headers: token ? { authorization: `Bearer ${token}` } : {} }).then((r) => r.statusCode);
      expect(await get(null, '/v1/endpoints')).toBe(200);
      await app.inject({ method: 'POST', url: '/v1/tenants', payload: { id: 'dev-co' } });
      const minted = (await app.inject({ method: 'POST', url: '/v1/api-keys', payload: { name: 'dev', tenantId: 'dev-co', scopes: ['read'] } })).json();
      expect(await get(minted.key, '/v1/endpoints')).toBe(404);
      expect(await get(minted.key, '/v1/tenants/dev-co/endpoints')).toBe(200);
      await app.inject({ method: 'DELETE', url: `/v1/api-keys/${minted.id}` });
      expect(await get(minted.key, '/v1/tenants/dev-co/endpoints')).toBe(401);

      const expired = await new SignJWT({ ro: true }).setProtectedHeader({ alg: 'HS256' }).setIssuer('hookline').setAudience('hookline-portal')
        .setSubject('dev-co').setJti('x').setExpirationTime(Math.floor(Date.now() / 1000) - 5).sign(new TextEncoder().encode(PORTAL_SECRET));
      expect(await get(expired, '/v1/tenants/dev-co/endpoints')).toBe(401);
      const session = (await app.inject({ method: 'POST', url: '/v1/tenants/dev-co/portal-sessions', payload: { readOnly: true } })).json();
      expect(await get(session.token, '/v1/tenants/dev-co/endpoints')).toBe(200);
      expect(await get(session.token, '/v1/endpoints')).toBe(404);
    } finally {
      await close();
    }
  });
});

async function waitForValue<T>(fn: () => Promise<T | null>): Promise<NonNullable<T>> {
  for (let i = 0; i < 100; i++) {
    const v = await fn();
    if (v) return v as NonNullable<T>;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('timed out');
}
