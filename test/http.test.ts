// The delivery HTTP client (activities/http.ts) against real receivers on 127.0.0.1: connections
// reused per origin, the address policy on every new connection, timeouts that do not leave a
// socket behind, and the one resend after a stale pooled socket.
import dns from 'node:dns/promises';
import http from 'node:http';
import os from 'node:os';
import type { AddressInfo, Socket } from 'node:net';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { closeIdleConnections, MAX_SOCKETS_PER_ORIGIN, post, type PostOptions } from '../activities/http';
import { createTargetPolicy, isGlobalUnicast } from '../src/net/address-policy';

const PRIVATE_ALLOWED = createTargetPolicy(['private']);
const PUBLIC_ONLY = createTargetPolicy([]);

interface Receiver {
  url: string;
  port: number;
  connections: number;
  requests: number;
  /** Server-side sockets still open. */
  open: Set<Socket>;
  close(): Promise<void>;
}

/** A receiver whose handler decides per request; counts TCP connections and requests. */
async function receiver(handler: (req: http.IncomingMessage, res: http.ServerResponse, n: number) => void): Promise<Receiver> {
  const server = http.createServer((req, res) => {
    r.requests++;
    handler(req, res, r.requests);
  });
  const r: Receiver = {
    url: '', port: 0, connections: 0, requests: 0, open: new Set(),
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
  server.on('connection', (socket: Socket) => {
    r.connections++;
    r.open.add(socket);
    socket.on('close', () => r.open.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  r.port = (server.address() as AddressInfo).port;
  r.url = `http://127.0.0.1:${r.port}`;
  receivers.push(r);
  return r;
}

const receivers: Receiver[] = [];
const ok = (req: http.IncomingMessage, res: http.ServerResponse) => {
  req.resume();
  req.on('end', () => res.end('ok'));
};

function opts(url: string, extra: Partial<PostOptions> = {}): PostOptions {
  return { url, headers: { 'content-type': 'application/json' }, body: '{"n":1}', timeoutMs: 5_000, maxResponseBytes: 1024, targetPolicy: PRIVATE_ALLOWED, ...extra };
}

async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
  expect(cond()).toBe(true);
}

afterEach(async () => {
  // Each test starts with an empty pool, so connection counts are its own.
  closeIdleConnections();
  await Promise.all(receivers.splice(0).map((r) => r.close()));
});
afterAll(() => closeIdleConnections());

describe('connection reuse', () => {
  it('sends several POSTs to one origin over one connection', async () => {
    const rx = await receiver(ok);
    for (let i = 0; i < 5; i++) {
      const r = await post(opts(`${rx.url}/hook/${i}`));
      expect(r).toMatchObject({ kind: 'response', status: 200, body: Buffer.from('ok') });
    }
    expect(rx.requests).toBe(5);
    expect(rx.connections).toBe(1);
  });

  it('opens a fresh connection per POST when reuse is off', async () => {
    const rx = await receiver(ok);
    for (let i = 0; i < 3; i++) expect(await post(opts(rx.url, { reuseConnection: false }))).toMatchObject({ status: 200 });
    expect(rx.connections).toBe(3);
  });

  it('bounds the connections to one origin', async () => {
    const rx = await receiver(ok);
    const n = MAX_SOCKETS_PER_ORIGIN + 36;
    const results = await Promise.all(Array.from({ length: n }, () => post(opts(rx.url))));
    expect(results.every((r) => r.kind === 'response' && r.status === 200)).toBe(true);
    expect(rx.connections).toBeLessThanOrEqual(MAX_SOCKETS_PER_ORIGIN);
  });

  it('does not reuse the socket of a receiver that timed out', async () => {
    const rx = await receiver((req, res) => {
      req.resume();
      if (req.url !== '/hang') req.on('end', () => res.end('ok'));
    });
    expect(await post(opts(`${rx.url}/warm`))).toMatchObject({ status: 200 });
    const hung = await post(opts(`${rx.url}/hang`, { timeoutMs: 300 }));
    expect(hung).toMatchObject({ kind: 'error', code: 'ETIMEDOUT' });
    // The client closed the connection the hanging request was on…
    await until(() => rx.open.size === 0);
    // …so the next POST gets a new one.
    expect(await post(opts(`${rx.url}/after`))).toMatchObject({ status: 200 });
    expect(rx.connections).toBe(2);
  });

  it('does not reuse a connection whose response went over the body cap', async () => {
    const rx = await receiver((req, res) => {
      req.resume();
      req.on('end', () => res.end('x'.repeat(10_000)));
    });
    const r = await post(opts(rx.url, { maxResponseBytes: 100 }));
    expect(r).toMatchObject({ kind: 'response', status: 200 });
    expect(r.kind === 'response' && r.body.length).toBe(100);
    await until(() => rx.open.size === 0);
    expect(await post(opts(rx.url, { maxResponseBytes: 100 }))).toMatchObject({ status: 200 });
    expect(rx.connections).toBe(2);
  });
});

describe('a pooled connection the receiver dropped', () => {
  it('is resent once on a fresh connection when no response byte came back', async () => {
    // The second request arrives on the kept connection and the receiver drops it unread, as a
    // server closing an idle connection at that instant does.
    const rx = await receiver((req, res, n) => {
      if (n === 2) return req.socket.destroy();
      ok(req, res);
    });
    expect(await post(opts(`${rx.url}/1`))).toMatchObject({ status: 200 });
    expect(await post(opts(`${rx.url}/2`))).toMatchObject({ kind: 'response', status: 200 });
    expect(rx.requests).toBe(3);
    expect(rx.connections).toBe(2);
  });

  it('is not resent when the reset comes on a fresh connection', async () => {
    const rx = await receiver((req) => req.socket.destroy());
    expect(await post(opts(rx.url))).toMatchObject({ kind: 'error', code: 'ECONNRESET' });
    expect(rx.requests).toBe(1);
  });

  it('is not resent once the response has started', async () => {
    const rx = await receiver((req, res, n) => {
      req.resume();
      if (n === 1) return req.on('end', () => res.end('ok'));
      // Headers and part of a body, then the connection drops.
      res.writeHead(200, { 'content-length': '100' });
      res.write('partial');
      setTimeout(() => req.socket.destroy(), 20);
    });
    expect(await post(opts(rx.url))).toMatchObject({ status: 200 });
    const r = await post(opts(rx.url));
    expect(r.kind === 'response' ? r.status : r.code).toBe(200);
    expect(rx.requests).toBe(2);
  });
});

describe('address policy', () => {
  it('refuses loopback names and addresses before connecting when private targets are not allowed', async () => {
    const rx = await receiver(ok);
    for (const url of [`http://localhost:${rx.port}/`, `http://127.0.0.1:${rx.port}/`, `http://[::1]:${rx.port}/`, `http://api.localhost:${rx.port}/`]) {
      expect(await post(opts(url, { targetPolicy: PUBLIC_ONLY })), url).toMatchObject({ kind: 'error', code: 'EPRIVATETARGET' });
    }
    expect(rx.connections).toBe(0);
  });

  it('checks the resolved address of every new connection, and never lends a socket across policies', async () => {
    // This machine's own name resolves to a private or loopback address (hosts file or DNS);
    // it is not a name the URL check knows, so only the connect-time lookup can refuse it.
    const name = os.hostname();
    const { address } = await dns.lookup(name);
    expect(isGlobalUnicast(address)).toBe(false);
    const rx = await receiver(ok);
    const url = `http://${name}:${rx.port}/`;
    // Allowed: a pooled connection to this origin now exists…
    expect(await post(opts(url, { targetPolicy: PRIVATE_ALLOWED }))).toMatchObject({ status: 200 });
    // …but a request under the stricter policy does not get it: its own lookup refuses.
    expect(await post(opts(url, { targetPolicy: PUBLIC_ONLY }))).toMatchObject({ kind: 'error', code: 'EPRIVATETARGET' });
    expect(rx.requests).toBe(1);
  });
});
