// Unsafe by default no more: an API reachable from the network needs a key to start, answers
// only the Host names it was told (DNS-rebinding defence), and refuses state changes that a
// browser sends on behalf of another site, while API clients and the console keep working.
import { execFile } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkExposure } from '../src/api/access';
import { loadConfig } from '../src/config';
import type { Pool } from '../src/db/pool';
import { createApiOnly } from './helpers';
import { raw, request } from './raw-http';

const KEY = 'sk_test_0123456789abcdef';
const MAIN = path.join(__dirname, '../src/cli/main.ts');

/** `hookline <command>` as a child process with exactly this environment (plus PATH). */
async function hookline(command: string, env: Record<string, string>): Promise<{ code: number; stderr: string }> {
  try {
    await promisify(execFile)(process.execPath, ['--import', 'tsx', MAIN, command], {
      env: { PATH: process.env.PATH ?? '', HOOKLINE_LOG_LEVEL: 'silent', ...env },
      timeout: 30_000,
    });
    return { code: 0, stderr: '' };
  } catch (err) {
    const e = err as { code?: number; stderr?: string };
    return { code: e.code ?? -1, stderr: e.stderr ?? '' };
  }
}

describe('starting on a non-loopback HOST', () => {
  it.each(['0.0.0.0', '::', '192.168.1.10', 'api.internal'])('refuses HOST=%s without a key, naming HOOKLINE_API_KEY', (host) => {
    expect(() => checkExposure(loadConfig({ HOST: host }))).toThrow(/HOOKLINE_API_KEY/);
  });

  it('starts with a key, on loopback, or with the loud override', () => {
    expect(checkExposure(loadConfig({ HOST: '0.0.0.0', HOOKLINE_API_KEY: KEY }))).toEqual([]);
    for (const host of ['127.0.0.1', '127.0.0.2', '::1', 'localhost']) expect(checkExposure(loadConfig({ HOST: host }))).toEqual([]);
    const warnings = checkExposure(loadConfig({ HOST: '0.0.0.0', HOOKLINE_INSECURE_NO_AUTH: 'true' }));
    expect(warnings.join('\n')).toMatch(/WARNING.*HOOKLINE_INSECURE_NO_AUTH.*ANYONE/);
  });

  it('`hookline api` exits 1 before touching anything, and the override gets past that check', async () => {
    const refused = await hookline('api', { HOST: '0.0.0.0', PORT: '0' });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/refusing to serve the API on HOST=0\.0\.0\.0 without HOOKLINE_API_KEY/);
    // Past the exposure check it stops at the next one (no DATABASE_URL), after the warning.
    const overridden = await hookline('api', { HOST: '0.0.0.0', PORT: '0', HOOKLINE_INSECURE_NO_AUTH: 'true' });
    expect(overridden.code).toBe(1);
    expect(overridden.stderr).toMatch(/WARNING: HOOKLINE_INSECURE_NO_AUTH=true/);
    expect(overridden.stderr).toMatch(/needs DATABASE_URL/);
  });

  it('`hookline dev` refuses too, before starting Postgres or Temporal', async () => {
    const refused = await hookline('dev', { HOST: '0.0.0.0', HOOKLINE_DATA_DIR: '/nonexistent/hookline-never-created' });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/without HOOKLINE_API_KEY/);
  });
});

describe('Host allowlist', () => {
  let app: FastifyInstance;
  let close: () => Promise<void>;
  let port: number;
  beforeAll(async () => {
    ({ app, close } = await createApiOnly({}));
    await app.listen({ port: 0, host: '127.0.0.1' });
    port = (app.server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    await close?.();
  });

  const withHost = (host: string, target = '/v1/endpoints') =>
    raw(port, request('GET', target).replace('host: 127.0.0.1', host === '' ? '' : `host: ${host}`).replace('\r\n\r\n\r\n', '\r\n\r\n'));

  it('answers the loopback names on a loopback HOST without a key (dev)', async () => {
    for (const host of ['127.0.0.1', `127.0.0.1:${port}`, 'localhost', `LOCALHOST:${port}`, `[::1]:${port}`, 'localhost.']) {
      expect((await withHost(host)).status, host).toBe(200);
    }
  });

  it('refuses any other Host with 421 and the error shape, even on /healthz: a rebinding page gets nothing', async () => {
    for (const host of ['rebind.attacker.example', `rebind.attacker.example:${port}`, '10.0.0.5', 'evil.localhost', '127.0.0.1.attacker.example']) {
      for (const target of ['/v1/endpoints', '/healthz', '/ui/config.json']) {
        const res = await withHost(host, target);
        expect(res.status, `${host} ${target}`).toBe(421);
        expect(JSON.parse(res.body)).toMatchObject({ code: 'host_not_allowed', message: expect.stringMatching(/^host: /) });
      }
    }
  });

  it('refuses a body sent without a content-type (415), as a no-cors browser request would send it', async () => {
    const body = JSON.stringify({ url: 'https://93.184.216.34/hook' });
    for (const m of ['POST /v1/endpoints', 'PATCH /v1/endpoints/ep_x', 'DELETE /v1/endpoints/ep_x']) {
      const res = await raw(port, `${m} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\ncontent-length: ${body.length}\r\n\r\n${body}`);
      expect(res.status, m).toBe(415);
      expect(JSON.parse(res.body).code).toBe('unsupported_media_type');
    }
  });

  it('takes HOOKLINE_ALLOWED_HOSTS as given, with or without a port', async () => {
    const { app: listed, close: closeListed } = await createApiOnly({ HOOKLINE_ALLOWED_HOSTS: 'hooks.example.com, api.internal:8080' });
    try {
      const get = (host: string) => listed.inject({ method: 'GET', url: '/healthz', headers: { host } });
      expect((await get('hooks.example.com')).statusCode).toBe(200);
      expect((await get('hooks.example.com:443')).statusCode).toBe(200);
      expect((await get('api.internal:8080')).statusCode).toBe(200);
      expect((await get('api.internal:9090')).statusCode).toBe(421);
      expect((await get('localhost')).statusCode).toBe(421);
    } finally {
      await closeListed();
    }
  });

  it('answers any Host on a non-loopback HOST (the key guards it) unless the list says otherwise', async () => {
    const { app: open, close: closeOpen } = await createApiOnly({ HOST: '0.0.0.0', HOOKLINE_API_KEY: KEY });
    try {
      expect((await open.inject({ method: 'GET', url: '/healthz', headers: { host: 'hooks.example.com' } })).statusCode).toBe(200);
    } finally {
      await closeOpen();
    }
    expect(() => loadConfig({ HOOKLINE_ALLOWED_HOSTS: 'bad host/name' })).toThrow(/HOOKLINE_ALLOWED_HOSTS/);
  });
});

describe('cross-site browser requests', () => {
  let app: FastifyInstance;
  let pool: Pool;
  let close: () => Promise<void>;
  beforeAll(async () => {
    ({ app, pool, close } = await createApiOnly({}));
  });
  afterAll(async () => {
    await close?.();
  });
  const count = async () => (await pool.query('SELECT count(*)::int AS n FROM endpoints')).rows[0].n as number;
  const create = (headers: Record<string, string>, payload: string = JSON.stringify({ url: 'https://93.184.216.34/hook' })) =>
    app.inject({ method: 'POST', url: '/v1/endpoints', headers: { host: 'localhost:3000', 'content-type': 'application/json', ...headers }, payload });

  it.each([
    [{ origin: 'https://evil.example' }],
    [{ origin: 'http://localhost:4000' }], // another local app is another origin
    [{ origin: 'null' }],
    [{ 'sec-fetch-site': 'cross-site' }],
    [{ 'sec-fetch-site': 'same-site' }],
    [{ 'sec-fetch-site': 'cross-site', origin: 'http://localhost:3000' }],
  ])('refuses a state change sent with %j (403) and stores nothing', async (headers) => {
    const before = await count();
    const res = await create(headers);
    expect(res.statusCode).toBe(403);
    expect(res.json()).toMatchObject({ code: 'cross_site' });
    expect(await count()).toBe(before);
    const del = await app.inject({ method: 'DELETE', url: '/v1/endpoints/ep_x', headers: { host: 'localhost:3000', ...headers } });
    expect(del.statusCode).toBe(403);
  });

  it('lets the same origin through, and every API client that sends no Origin', async () => {
    expect((await create({ origin: 'http://localhost:3000', 'sec-fetch-site': 'same-origin' })).statusCode).toBe(201);
    expect((await create({ 'sec-fetch-site': 'none' })).statusCode).toBe(201);
    expect((await create({})).statusCode).toBe(201);
    // Reads are not state changes: a cross-site GET is left to CORS (none is granted) and the key.
    expect((await app.inject({ method: 'GET', url: '/v1/endpoints', headers: { host: 'localhost:3000', origin: 'https://evil.example' } })).statusCode).toBe(200);
  });

  it('behind a proxy, takes the public name listed in HOOKLINE_ALLOWED_HOSTS as the own origin, never `*`', async () => {
    const payload = { url: 'https://93.184.216.34/hook' };
    const proxied = await createApiOnly({ HOOKLINE_ALLOWED_HOSTS: 'hooks.example.com,127.0.0.1' });
    try {
      const post = (origin: string) =>
        proxied.app.inject({ method: 'POST', url: '/v1/endpoints', headers: { host: '127.0.0.1:3000', origin }, payload });
      expect((await post('https://hooks.example.com')).statusCode).toBe(201);
      expect((await post('https://evil.example')).statusCode).toBe(403);
    } finally {
      await proxied.close();
    }
    const any = await createApiOnly({ HOOKLINE_ALLOWED_HOSTS: '*' });
    try {
      const res = await any.app.inject({ method: 'POST', url: '/v1/endpoints', headers: { host: 'x.example', origin: 'https://evil.example' }, payload });
      expect(res.statusCode).toBe(403);
    } finally {
      await any.close();
    }
  });

  it('lets bodyless POSTs from API clients through (no content-type needed)', async () => {
    // Reaches the handler (404: no such delivery), not a 403 or 415 from the checks.
    const res = await app.inject({ method: 'POST', url: '/v1/deliveries/evt_none/ep_none/replay', headers: { host: 'localhost:3000' } });
    expect(res.statusCode).toBe(404);
    expect(res.json()).toMatchObject({ code: 'not_found', message: expect.stringContaining('evt_none/ep_none') });
  });

  it('takes only JSON bodies, so an HTML form cannot post one', async () => {
    const before = await count();
    for (const type of ['application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'text/plain']) {
      const res = await create({ 'content-type': type }, 'url=https://93.184.216.34/hook');
      expect(res.statusCode, type).toBe(415);
    }
    expect(await count()).toBe(before);
  });
});
