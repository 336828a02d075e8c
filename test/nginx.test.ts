// The shipped nginx config (deploy/nginx/hookline.conf) run by Debian's real nginx in front of a
// real `hookline api` child process: TLS and HTTP/2 end to end, the client address the API logs,
// the proxy's body limit, /metrics kept private, and the per-client rate limit on submissions
// losing nothing it accepted. Only ports, file paths and the rate (made small so a flood is short)
// differ from the shipped file; each substitution must match or the test fails, so the file and
// the test cannot drift apart silently.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config';
import { findFreePort } from '../src/dev/processes';
import { enqueueRequest, takeAnswer } from '../src/db/listen-requests';
import { createHarness, spawnRole, waitFor, type Harness } from './helpers';

const SHIPPED = path.join(__dirname, '../deploy/nginx/hookline.conf');
const API_KEY = `test-key-${randomBytes(12).toString('hex')}`;
// Client addresses: all of 127.0.0.0/8 is loopback on Linux, so the test can be several clients.
const VIA_PROXY = '127.0.0.2';
const DIRECT = '127.0.0.3';
const FLOODER = '127.0.0.5';
const SPOOFED = '203.0.113.9';

/** Debian installs nginx in /usr/sbin, which a non-root PATH may lack. */
function findNginx(): string {
  for (const dir of [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/usr/local/sbin']) {
    const candidate = path.join(dir, 'nginx');
    if (dir && existsSync(candidate)) return candidate;
  }
  throw new Error('nginx is not installed: `apt-get install -y nginx` (.ci/run installs it); this test needs the real server');
}

interface Ports { https: number; http: number; api: number }

/** The shipped config with the test's ports, paths and a small rate; every swap must hit. */
function renderConfig(dir: string, ports: Ports): string {
  const swaps: Array<[string, string]> = [
    ['server 127.0.0.1:3000;', `server 127.0.0.1:${ports.api};`],
    ['listen 443 ssl http2;', `listen 127.0.0.1:${ports.https} ssl http2;`],
    ['listen [::]:443 ssl http2;', ''],
    ['listen 80;', `listen 127.0.0.1:${ports.http};`],
    ['listen [::]:80;', ''],
    ['/etc/ssl/hookline/fullchain.pem', path.join(dir, 'cert.pem')],
    ['/etc/ssl/hookline/privkey.pem', path.join(dir, 'key.pem')],
    ['/var/log/nginx/hookline.access.log', path.join(dir, 'access.log')],
    ['rate=100r/s', 'rate=2r/s'],
    ['burst=200', 'burst=10'],
  ];
  let conf = readFileSync(SHIPPED, 'utf8');
  for (const [from, to] of swaps) {
    if (!conf.includes(from)) throw new Error(`${SHIPPED} no longer contains "${from}": update test/nginx.test.ts`);
    conf = conf.split(from).join(to);
  }
  return conf;
}

/** A main nginx.conf that keeps every file nginx writes inside `dir`. */
function mainConfig(dir: string): string {
  const temp = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => {
    const p = path.join(dir, `${t}_temp`);
    mkdirSync(p);
    chmodSync(p, 0o777); // workers run as nobody when the master is root
    return `  ${t}_temp_path ${p};`;
  });
  return ['worker_processes 1;', 'events { worker_connections 512; }', 'http {', ...temp,
    `  include ${path.join(dir, 'hookline.conf')};`, '}', ''].join('\n');
}

async function waitForPort(port: number, what: string, child: ChildProcess, errorLog?: string): Promise<void> {
  await waitFor(async () => {
    if (child.exitCode !== null) {
      throw new Error(`${what} exited (${child.exitCode})${errorLog && existsSync(errorLog) ? `: ${readFileSync(errorLog, 'utf8')}` : ''}`);
    }
    return await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => { s.destroy(); resolve(true); });
      s.on('error', () => resolve(false));
    });
  }, 30_000, `${what} on port ${port}`);
}

interface Answer { status: number; headers: http.IncomingHttpHeaders; body: string }

function request(opts: https.RequestOptions & { body?: string; tls?: boolean }): Promise<Answer> {
  const { body, tls = true, ...options } = opts;
  return new Promise((resolve, reject) => {
    const req = (tls ? https : http).request({ host: '127.0.0.1', agent: false, ...options }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('nginx in front of the API (deploy/nginx/hookline.conf)', () => {
  let h: Harness;
  let api: ChildProcess;
  let nginx: ChildProcess;
  let dir: string;
  let ca: Buffer;
  let ports: Ports;
  /** The API's JSON log lines (HOOKLINE_LOG_LEVEL=debug logs every request with req.ip). */
  const apiLog: any[] = [];

  const viaProxy = (o: https.RequestOptions & { body?: string }) => request({
    port: ports.https, ca, servername: 'localhost', localAddress: VIA_PROXY, ...o,
    headers: { host: `localhost:${ports.https}`, authorization: `Bearer ${API_KEY}`, ...o.headers },
  });
  const loggedRequest = (marker: string) => waitFor(
    () => apiLog.find((l) => l.msg === 'incoming request' && String(l.req?.url).includes(marker)),
    10_000, `the API's log line for ${marker}`,
  );

  beforeAll(async () => {
    const nginxBin = findNginx();
    h = await createHarness({ noRelay: true, noWorker: true });
    ports = { https: await findFreePort(), http: await findFreePort(), api: await findFreePort() };
    api = spawnRole(h, 'api', {
      PORT: String(ports.api), HOST: '127.0.0.1', HOOKLINE_API_KEY: API_KEY,
      HOOKLINE_TRUST_PROXY: '127.0.0.1', HOOKLINE_LOG_LEVEL: 'debug', HOOKLINE_LOG_FORMAT: 'json',
    }, ['ignore', 'pipe', 'inherit']);
    createInterface({ input: api.stdout! }).on('line', (line) => {
      try { apiLog.push(JSON.parse(line)); } catch { /* not JSON: ignore */ }
    });
    await waitForPort(ports.api, 'hookline api', api);

    dir = mkdtempSync(path.join(tmpdir(), 'hookline-nginx-'));
    chmodSync(dir, 0o755);
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem'), '-days', '1',
      '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'], { stdio: 'pipe' });
    ca = readFileSync(path.join(dir, 'cert.pem'));
    writeFileSync(path.join(dir, 'hookline.conf'), renderConfig(dir, ports));
    writeFileSync(path.join(dir, 'nginx.conf'), mainConfig(dir));
    const errorLog = path.join(dir, 'error.log');
    nginx = spawn(nginxBin, ['-p', dir, '-e', errorLog, '-c', path.join(dir, 'nginx.conf'),
      '-g', `daemon off; pid ${path.join(dir, 'nginx.pid')}; error_log ${errorLog} warn;`], { stdio: ['ignore', 'inherit', 'inherit'] });
    await waitForPort(ports.https, 'nginx', nginx, errorLog);
  });

  afterAll(async () => {
    const exited = (c?: ChildProcess) => c && c.exitCode === null ? new Promise((r) => c.once('exit', r)) : Promise.resolve();
    nginx?.kill('SIGTERM');
    api?.kill('SIGTERM');
    await Promise.all([exited(nginx), exited(api)]);
    await h?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('serves the API over TLS with HTTP/2, verified against the test CA', async () => {
    const res = await viaProxy({ path: '/healthz' });
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body).status).toBe('ok');
    expect(res.headers['strict-transport-security']).toMatch(/max-age=/);

    const session = http2.connect(`https://127.0.0.1:${ports.https}`, { ca, servername: 'localhost' });
    try {
      await new Promise<void>((resolve, reject) => session.once('connect', () => resolve()).once('error', reject));
      expect(session.alpnProtocol).toBe('h2');
    } finally {
      session.close();
    }
    // Without the CA the certificate is refused: the test really checks TLS.
    await expect(request({ port: ports.https, path: '/healthz', servername: 'localhost' })).rejects.toThrow(/self.signed/i);
    // Plain HTTP only redirects to HTTPS.
    const plain = await request({ tls: false, port: ports.http, path: '/healthz', headers: { host: 'localhost' } });
    expect(plain.status).toBe(308);
    expect(plain.headers.location).toBe('https://localhost/healthz');
  });

  it('the API logs the real client address: forwarded headers count only from the proxy', async () => {
    // Through nginx, with a forged X-Forwarded-For: nginx replaces it with the peer address.
    const proxied = `probe-${randomBytes(4).toString('hex')}`;
    expect((await viaProxy({ path: `/healthz?${proxied}`, headers: { 'x-forwarded-for': SPOOFED } })).status).toBe(200);
    const line = await loggedRequest(proxied);
    expect(line.req.remoteAddress).toBe(VIA_PROXY);
    expect(line.req.host).toBe(`localhost:${ports.https}`);

    // Straight to the API from an address that is not the proxy: its X-Forwarded-For is ignored.
    const direct = `probe-${randomBytes(4).toString('hex')}`;
    const res = await request({ tls: false, port: ports.api, path: `/healthz?${direct}`, localAddress: DIRECT,
      headers: { 'x-forwarded-for': SPOOFED, 'x-forwarded-host': 'evil.example' } });
    expect(res.status).toBe(200);
    const directLine = await loggedRequest(direct);
    expect(directLine.req.remoteAddress).toBe(DIRECT);
    expect(directLine.req.host).not.toBe('evil.example');
  });

  it('refuses a body far over the events limit in nginx, before the API sees it', async () => {
    const marker = `big-${randomBytes(4).toString('hex')}`;
    const body = JSON.stringify({ type: 'big.event', data: { pad: 'x'.repeat(400 * 1024) } });
    const res = await viaProxy({ method: 'POST', path: `/v1/events?${marker}`, body, headers: { 'content-type': 'application/json' } });
    expect(res.status).toBe(413);
    expect(JSON.parse(res.body)).toMatchObject({ code: 'payload_too_large', message: expect.stringContaining('proxy') });
    // A request the proxy let through would be logged by now; this one never was.
    const after = `after-${randomBytes(4).toString('hex')}`;
    await viaProxy({ path: `/healthz?${after}` });
    await loggedRequest(after);
    expect(apiLog.some((l) => String(l.req?.url).includes(marker))).toBe(false);
  });

  it('does not expose /metrics through the proxy (the API itself still serves it)', async () => {
    for (const p of ['/metrics', '/metrics/', '/%6Detrics', '//metrics?x=1']) {
      const res = await viaProxy({ path: p });
      expect({ path: p, status: res.status }).toEqual({ path: p, status: 404 });
      expect(res.body).not.toContain('hookline_');
    }
    // Through nginx not even the admin key opens it; straight to the API the key does.
    const direct = await request({ tls: false, port: ports.api, path: '/metrics', headers: { authorization: `Bearer ${API_KEY}` } });
    expect(direct.status).toBe(200);
    expect(direct.body).toContain('hookline_outbox_backlog');
  });

  it('carries a hookline listen stream and its answers (Server-Sent Events, not buffered)', async () => {
    const received: string[] = [];
    const local = http.createServer((req, res) => {
      received.push(String(req.headers['webhook-id']));
      req.resume().on('end', () => res.end('ok'));
    });
    await new Promise<void>((resolve) => local.listen(0, '127.0.0.1', resolve));
    const cli = spawn(path.join(__dirname, '../bin/hookline'), [
      'listen', '--api', `https://localhost:${ports.https}`, '--session', 'via-nginx',
      '--forward-to', `http://127.0.0.1:${(local.address() as net.AddressInfo).port}/hook`,
    ], { env: { ...process.env, HOOKLINE_API_KEY: API_KEY, NODE_EXTRA_CA_CERTS: path.join(dir, 'cert.pem') }, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    cli.stdout!.on('data', (c) => (out += c));
    try {
      await waitFor(() => out.includes('connected to'), 30_000, 'the listener connected through nginx');
      // What a worker does for a listen:// attempt; the answer comes back through nginx too.
      const id = await enqueueRequest(h.pool, 'via-nginx', { 'webhook-id': 'evt_via_nginx', 'content-type': 'application/json' }, '{}', 10_000);
      expect(id).not.toBeNull();
      const answer = await waitFor(() => takeAnswer(h.pool, id!), 15_000, 'the answer through nginx');
      expect(answer.status).toBe(200);
      expect(received).toEqual(['evt_via_nginx']);
    } finally {
      cli.kill('SIGKILL');
      local.close();
    }
  });

  it('throttles a flood of submissions with 429, and every accepted event is stored exactly once', async () => {
    // One HTTP/2 connection from the flooder's own address (its own rate-limit bucket).
    const session = http2.connect(`https://127.0.0.1:${ports.https}`, {
      createConnection: () => tls.connect({
        socket: net.connect({ host: '127.0.0.1', port: ports.https, localAddress: FLOODER }),
        ca, servername: 'localhost', ALPNProtocols: ['h2'],
      }),
    });
    const submit = (i: number) => new Promise<{ status: number; body: string; retryAfter?: string }>((resolve, reject) => {
      const stream = session.request({
        ':method': 'POST', ':path': '/v1/events', 'content-type': 'application/json', authorization: `Bearer ${API_KEY}`,
      });
      let status = 0;
      let retryAfter: string | undefined;
      const chunks: Buffer[] = [];
      stream.on('response', (hdrs) => { status = Number(hdrs[':status']); retryAfter = hdrs['retry-after'] as string | undefined; });
      stream.on('data', (c) => chunks.push(c));
      stream.on('end', () => resolve({ status, body: Buffer.concat(chunks).toString('utf8'), retryAfter }));
      stream.on('error', reject);
      stream.end(JSON.stringify({ type: 'flood.test', data: { i } }));
    });
    let answers: Array<{ status: number; body: string; retryAfter?: string }>;
    try {
      answers = await Promise.all(Array.from({ length: 60 }, (_, i) => submit(i)));
    } finally {
      session.close();
    }
    const accepted = answers.filter((a) => a.status === 202).map((a) => JSON.parse(a.body).id as string);
    const throttled = answers.filter((a) => a.status === 429);
    expect(accepted.length + throttled.length).toBe(answers.length);
    expect(accepted.length).toBeGreaterThan(0);
    expect(throttled.length).toBeGreaterThan(0);
    expect(JSON.parse(throttled[0].body).code).toBe('rate_limited');
    expect(throttled[0].retryAfter).toBe('1');

    const { rows } = await h.pool.query<{ id: string }>(`SELECT id FROM events WHERE type = 'flood.test'`);
    expect(new Set(accepted).size).toBe(accepted.length);
    expect(rows.map((r) => r.id).sort()).toEqual([...accepted].sort());
  });
});

describe('HOOKLINE_TRUST_PROXY', () => {
  it('takes IPs, CIDRs and named ranges, and refuses "trust everyone" or junk naming the variable', () => {
    expect(loadConfig({}).HOOKLINE_TRUST_PROXY).toBeUndefined();
    expect(loadConfig({ HOOKLINE_TRUST_PROXY: '127.0.0.1, 10.0.0.0/8,::1,loopback' }).HOOKLINE_TRUST_PROXY)
      .toEqual(['127.0.0.1', '10.0.0.0/8', '::1', 'loopback']);
    for (const bad of ['true', '*', '10.0.0.0/33', 'proxy.example', ' , ']) {
      expect(() => loadConfig({ HOOKLINE_TRUST_PROXY: bad })).toThrow(/HOOKLINE_TRUST_PROXY/);
    }
  });
});
