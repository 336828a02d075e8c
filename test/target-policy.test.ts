// The target policy (src/net/address-policy) on every address form the security review listed:
// only global unicast is public, embedded IPv4 is judged by what it embeds, and
// HOOKLINE_ALLOWED_TARGETS widens it by CIDR or shorthand.
import { lookup } from 'node:dns/promises';
import { hostname } from 'node:os';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTargetPolicy, embeddedIpv4, isGlobalUnicast, targetPolicyFromConfig } from '../src/net/address-policy';
import type { Pool } from '../src/db/pool';
import { createApiOnly } from './helpers';
import { loadConfig } from '../src/config';
import { devTargetDefaults } from '../src/cli/dev';

const NOT_GLOBAL: [string, string][] = [
  ['0.0.0.0', 'this network'],
  ['127.0.0.1', 'loopback'],
  ['127.255.255.254', 'loopback'],
  ['10.1.2.3', 'private'],
  ['172.16.5.4', 'private'],
  ['192.168.1.1', 'private'],
  ['100.64.0.1', 'CGNAT'],
  ['169.254.169.254', 'link-local (cloud metadata)'],
  ['192.0.0.8', 'IETF protocol assignments'],
  ['192.0.2.1', 'TEST-NET-1'],
  ['198.51.100.7', 'TEST-NET-2'],
  ['203.0.113.9', 'TEST-NET-3'],
  ['198.18.0.1', 'benchmarking'],
  ['198.19.255.255', 'benchmarking'],
  ['192.88.99.1', '6to4 relay anycast'],
  ['224.0.0.1', 'multicast'],
  ['240.0.0.1', 'reserved'],
  ['255.255.255.255', 'broadcast'],
  ['::', 'unspecified'],
  ['::1', 'loopback'],
  ['::ffff:127.0.0.1', 'IPv4-mapped loopback'],
  ['::ffff:7f00:1', 'IPv4-mapped loopback, hex'],
  ['::ffff:169.254.169.254', 'IPv4-mapped metadata'],
  ['::7f00:1', 'IPv4-compatible loopback'],
  ['::127.0.0.1', 'IPv4-compatible loopback, dotted'],
  ['::a00:1', 'IPv4-compatible private'],
  ['::ffff:0:7f00:1', 'IPv4-translated loopback'],
  ['::ffff:0:10.0.0.1', 'IPv4-translated private'],
  ['2002:7f00:1::', '6to4 of loopback'],
  ['2002:a9fe:a9fe::1', '6to4 of metadata'],
  ['2002:c0a8:101::', '6to4 of 192.168.1.1'],
  ['64:ff9b::7f00:1', 'NAT64 of loopback'],
  ['64:ff9b::169.254.169.254', 'NAT64 of metadata'],
  ['64:ff9b:1::808:808', 'local-use NAT64'],
  ['64:ff9b:1::8.8.8.8', 'local-use NAT64, dotted'],
  ['fc00::1', 'unique local'],
  ['fd00::1', 'unique local'],
  ['fe80::1', 'link-local'],
  ['fe80::1%eth0', 'link-local with zone'],
  ['fec0::1', 'site-local (deprecated)'],
  ['ff02::1', 'multicast'],
  ['100::1', 'discard-only'],
  ['2001:db8::1', 'documentation'],
  ['3fff::1', 'documentation (RFC 9637)'],
  ['2001::1', 'Teredo'],
  ['2001:2::1', 'benchmarking'],
  ['2001:10::1', 'ORCHID (deprecated)'],
  ['4000::1', 'outside 2000::/3'],
  ['localhost', 'not an address'],
  ['', 'empty'],
];

const GLOBAL = [
  '8.8.8.8', '1.1.1.1', '93.184.216.34', '192.0.0.9', '100.128.0.1', '172.32.0.1', '198.20.0.1',
  '2606:4700:4700::1111', '2001:4860:4860::8888', '2a00:1450::1', '2001:3::1', '2001:20::1',
  '::ffff:8.8.8.8', '2002:808:808::1', '64:ff9b::8.8.8.8',
];

describe('isGlobalUnicast', () => {
  it.each(NOT_GLOBAL)('refuses %s (%s)', (address) => expect(isGlobalUnicast(address)).toBe(false));
  it.each(GLOBAL)('allows %s', (address) => expect(isGlobalUnicast(address)).toBe(true));
});

describe('embeddedIpv4', () => {
  it.each([
    ['::ffff:1.2.3.4', '1.2.3.4'],
    ['::ffff:0102:0304', '1.2.3.4'],
    ['::ffff:0:1.2.3.4', '1.2.3.4'],
    ['::0102:0304', '1.2.3.4'],
    ['2002:0102:0304:5::6', '1.2.3.4'],
    ['64:ff9b::0102:0304', '1.2.3.4'],
  ])('finds the IPv4 address in %s', (v6, v4) => expect(embeddedIpv4(v6)).toBe(v4));
  it.each(['::', '::1', '2606:4700::1', '1.2.3.4', 'nope'])('finds none in %s', (a) => expect(embeddedIpv4(a)).toBeNull());
});

describe('createTargetPolicy', () => {
  it('with no entries allows only global unicast', () => {
    const p = createTargetPolicy([]);
    expect(p.allows('8.8.8.8')).toBe(true);
    expect(p.allows('127.0.0.1')).toBe(false);
    expect(p.listed('8.8.8.8')).toBe(false);
  });

  it('`loopback` is 127.0.0.0/8 and ::1, in every form the stack maps to them, and nothing else', () => {
    const p = createTargetPolicy(['loopback']);
    for (const a of ['127.0.0.1', '127.9.9.9', '::1', '::ffff:127.0.0.1', '::ffff:0:7f00:1', '::7f00:1']) expect(p.allows(a), a).toBe(true);
    for (const a of ['169.254.169.254', '10.0.0.1', '192.168.1.1', 'fd00::1', '0.0.0.0', '::', '2002:7f00:1::', '64:ff9b::7f00:1']) {
      expect(p.allows(a), a).toBe(false);
    }
  });

  it('`private` (the old boolean) covers the private ranges but not documentation or multicast', () => {
    const p = createTargetPolicy(['private']);
    for (const a of ['127.0.0.1', '10.0.0.1', '172.16.0.1', '192.168.0.1', '100.64.0.1', '169.254.169.254', 'fd00::1', 'fe80::1']) {
      expect(p.allows(a), a).toBe(true);
    }
    for (const a of ['192.0.2.1', '224.0.0.1', '2001:db8::1']) expect(p.allows(a), a).toBe(false);
  });

  it('takes CIDRs and single addresses of either family', () => {
    const p = createTargetPolicy(['10.20.0.0/16', 'fd12:3456::/32', '192.168.7.7']);
    expect(p.allows('10.20.3.4')).toBe(true);
    expect(p.allows('10.21.0.1')).toBe(false);
    expect(p.allows('fd12:3456::9')).toBe(true);
    expect(p.allows('fd12:3457::9')).toBe(false);
    expect(p.allows('192.168.7.7')).toBe(true);
    expect(p.allows('192.168.7.8')).toBe(false);
    expect(p.listed('::ffff:10.20.0.1')).toBe(true);
  });
});

describe('configuration', () => {
  it('reads HOOKLINE_ALLOWED_TARGETS as a comma-separated list', () => {
    const c = loadConfig({ HOOKLINE_ALLOWED_TARGETS: 'loopback, 10.0.0.0/8,,fd00::/8' });
    expect(c.HOOKLINE_ALLOWED_TARGETS).toEqual(['loopback', '10.0.0.0/8', 'fd00::/8']);
    expect(targetPolicyFromConfig(c).allows('10.9.9.9')).toBe(true);
  });

  it('keeps HOOKLINE_ALLOW_PRIVATE_TARGETS=true as an alias of `private`', () => {
    const p = targetPolicyFromConfig(loadConfig({ HOOKLINE_ALLOW_PRIVATE_TARGETS: 'true' }));
    expect(p.allows('192.168.1.1')).toBe(true);
    expect(targetPolicyFromConfig(loadConfig({})).allows('192.168.1.1')).toBe(false);
  });

  it.each(['10.0.0.0/33', 'example.com', '10.0.0.0/8/1', 'fd00::/129', '10.0.0.0/x'])('names the variable for a bad entry %s', (entry) => {
    expect(() => loadConfig({ HOOKLINE_ALLOWED_TARGETS: entry })).toThrow(/HOOKLINE_ALLOWED_TARGETS/);
  });
});

describe('hookline dev', () => {
  it('lets deliveries reach loopback only, unless the user chose a policy', () => {
    const env = devTargetDefaults({});
    expect(env).toEqual({ HOOKLINE_ALLOWED_TARGETS: 'loopback' });
    const p = targetPolicyFromConfig(loadConfig(env));
    expect(p.allows('127.0.0.1')).toBe(true);
    expect(p.allows('169.254.169.254')).toBe(false);
    expect(p.allows('10.0.0.1')).toBe(false);
    expect(devTargetDefaults({ HOOKLINE_ALLOWED_TARGETS: '10.0.0.0/8' })).toEqual({});
    // The old boolean widens dev's default; set to false it does not take loopback away.
    const widened = targetPolicyFromConfig(loadConfig({ ...devTargetDefaults({}), HOOKLINE_ALLOW_PRIVATE_TARGETS: 'true' }));
    expect(widened.allows('10.0.0.1')).toBe(true);
    const narrowed = targetPolicyFromConfig(loadConfig({ ...devTargetDefaults({ HOOKLINE_ALLOW_PRIVATE_TARGETS: 'false' }), HOOKLINE_ALLOW_PRIVATE_TARGETS: 'false' }));
    expect(narrowed.allows('127.0.0.1')).toBe(true);
  });
});

describe('endpoint URLs at the API', () => {
  let app: FastifyInstance;
  let pool: Pool;
  let close: () => Promise<void>;
  beforeAll(async () => {
    ({ app, pool, close } = await createApiOnly({ HOOKLINE_ALLOWED_TARGETS: '10.20.0.0/16' }));
  });
  afterAll(async () => {
    await close?.();
  });
  const create = (url: string) => app.inject({ method: 'POST', url: '/v1/endpoints', payload: { url } });
  const count = async () => (await pool.query('SELECT count(*)::int AS n FROM endpoints')).rows[0].n as number;

  it.each([
    'http://[::7f00:1]/x', 'http://[::ffff:0:7f00:1]/x', 'http://[::ffff:127.0.0.1]/x', 'http://[2002:a9fe:a9fe::]/x',
    'http://[64:ff9b::a9fe:a9fe]/x', 'http://[64:ff9b:1::808:808]/x', 'http://[fec0::1]/x', 'http://[100::1]/x',
    'http://[2001:db8::1]/x', 'http://192.0.2.10/x', 'http://198.51.100.1/x', 'http://203.0.113.5/x', 'http://198.18.0.1/x',
    'http://169.254.169.254/latest', 'http://0x7f.1/x', 'http://2130706433/x', 'http://localhost/x', 'http://10.21.0.1/x',
  ])('refuses %s with 422 naming url, and stores nothing', async (url) => {
    const before = await count();
    const res = await create(url);
    expect(res.statusCode).toBe(422);
    expect(res.json()).toMatchObject({ code: 'private_target', message: expect.stringMatching(/^url: /) });
    expect(await count()).toBe(before);
  });

  it('does not tell the caller what an internal name resolves to', async () => {
    const name = hostname();
    const resolved = (await lookup(name, { all: true })).map((a) => a.address);
    expect(resolved.length).toBeGreaterThan(0);
    expect(resolved.every((a) => !isGlobalUnicast(a))).toBe(true); // precondition: the host's own name is internal
    const res = await create(`http://${name}:8080/hook`);
    expect(res.statusCode).toBe(422);
    expect(res.json().message).toMatch(/^url: /);
    for (const a of resolved) expect(res.body).not.toContain(a);
  });

  it('refuses credentials in the URL', async () => {
    for (const url of ['https://user:pass@example.com/x', 'https://user@example.com/x', 'https://:pass@example.com/x']) {
      const res = await create(url);
      expect(res.statusCode, url).toBe(422);
      expect(res.json()).toMatchObject({ code: 'invalid_url', message: expect.stringMatching(/^url: credentials/) });
      expect(res.body).not.toContain('pass@');
    }
  });

  it('refuses ports other than 80, 443 and 1024-65535 unless the target is listed', async () => {
    for (const url of ['https://93.184.216.34:22/x', 'http://93.184.216.34:25/x', 'http://93.184.216.34:1023/x', 'http://93.184.216.34:0/x']) {
      const res = await create(url);
      expect(res.statusCode, url).toBe(422);
      expect(res.json()).toMatchObject({ code: 'invalid_url', message: expect.stringMatching(/^url: port/) });
    }
    for (const url of ['http://93.184.216.34:80/x', 'https://93.184.216.34:443/x', 'http://93.184.216.34:1024/x', 'http://93.184.216.34:65535/x', 'http://10.20.1.1:22/x']) {
      expect((await create(url)).statusCode, url).toBe(201);
    }
  });

  it('stores the normalised URL, on create and on change', async () => {
    const res = await create('HTTPS://93.184.216.34:443/a/../b?x=1#frag');
    expect(res.statusCode).toBe(201);
    expect(res.json().url).toBe('https://93.184.216.34/b?x=1#frag');
    const patched = await app.inject({ method: 'PATCH', url: `/v1/endpoints/${res.json().id}`, payload: { url: 'http://[2606:4700:4700:0::1111]:8080/./c' } });
    expect(patched.statusCode).toBe(200);
    expect(patched.json().url).toBe('http://[2606:4700:4700::1111]:8080/c');
    const refused = await app.inject({ method: 'PATCH', url: `/v1/endpoints/${res.json().id}`, payload: { url: 'http://[::ffff:7f00:1]/x' } });
    expect(refused.statusCode).toBe(422);
    const { rows } = await pool.query('SELECT url FROM endpoints WHERE id = $1', [res.json().id]);
    expect(rows[0].url).toBe('http://[2606:4700:4700::1111]:8080/c');
  });
});
