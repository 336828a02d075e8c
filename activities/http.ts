// One webhook POST on the wire: no redirects followed, a hard total timeout, the response body
// read up to a cap, the target address checked after DNS resolution (see address-policy), and
// connections kept alive and reused per origin.
//
// Connection reuse. A new TCP (and TLS) connection per POST costs a handshake on both sides;
// Node's own keep-alive http/https Agents reuse sockets per origin (host, port, TLS options).
// Chosen over undici's Agent because they are in core, take the same `lookup` hook the address
// policy needs, and never retry a POST on their own (undici retries only idempotent methods
// anyway; the one retry we want is written out below, where it can be reasoned about).
//   - The address policy runs for EVERY new socket: the agent's `lookup` is fixed in the agent's
//     own options, which Node gives precedence over the request's, and IP-literal URLs (which
//     skip DNS) are checked before any request is made. A reused socket was checked when it
//     was opened, and the policy of its agent is the policy of the request (one agent pair per
//     policy).
//   - A socket that timed out, errored, or whose response was cut at the body cap is destroyed,
//     never returned to the pool.
import http from 'node:http';
import https from 'node:https';
import dns from 'node:dns';
import type { LookupFunction } from 'node:net';
import { isIP } from 'node:net';
import { isLocalHostname, type TargetPolicy } from '../src/net/address-policy';
import { tracedPost } from '../src/telemetry';

/** Sockets per origin: enough for a busy endpoint, bounded so one origin cannot take every fd. */
export const MAX_SOCKETS_PER_ORIGIN = 64;
/** Idle sockets kept per origin between bursts; the rest close once their request is done. */
export const MAX_IDLE_SOCKETS_PER_ORIGIN = 16;
/** All sockets of one agent (per protocol and policy), across origins. */
const MAX_SOCKETS_TOTAL = 1024;
/**
 * An idle socket closes after this. Shorter than the shortest common server keep-alive (Node's
 * http server and Apache: 5 s; nginx 75 s; cloud load balancers 60 s), so the receiver is not
 * the one closing it just as a request goes out on it. A server that announces
 * `Keep-Alive: timeout=N` is honoured too (Node closes at N − 1 s when that is sooner).
 */
export const IDLE_SOCKET_MS = 4_000;

export interface PostOptions {
  url: string;
  headers: Record<string, string>;
  body: string;
  timeoutMs: number;
  /** Bound on DNS + TCP connect of a new connection, within timeoutMs (a reused socket skips it). */
  connectTimeoutMs?: number;
  maxResponseBytes: number;
  /** Which addresses may be reached (src/net/address-policy). */
  targetPolicy: TargetPolicy;
  /** false: a fresh connection for this request, closed after it (the bench's comparison). */
  reuseConnection?: boolean;
}

export type PostResult =
  // The body as bytes: a receiver may answer with NUL, gzip or any binary (stored as it came).
  | { kind: 'response'; status: number; headers: http.IncomingHttpHeaders; body: Buffer; latencyMs: number }
  | { kind: 'error'; code: string; message: string; latencyMs: number };

export class PrivateTargetError extends Error {
  override name = 'PrivateTargetError';
  readonly code = 'EPRIVATETARGET';
}

/**
 * The address policy, in one place: why `host` (a hostname or an IP address) may not be reached,
 * or null when it may. Applied to the URL's host before a request and to every address DNS
 * returns for a new connection.
 */
export function targetRefusal(host: string, policy: TargetPolicy): string | null {
  if (isIP(host)) return policy.allows(host) ? null : `${host} is not a public address`;
  return isLocalHostname(host) && !policy.allows('127.0.0.1') ? `${host} is not a public address` : null;
}

function guardedLookup(policy: TargetPolicy): LookupFunction {
  return (hostname, options, callback) => {
    dns.lookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err, '', 0);
      const list = addresses as dns.LookupAddress[];
      for (const a of list) {
        if (targetRefusal(a.address, policy)) {
          // The address stays out of the message: attempts are readable through the API.
          return callback(new PrivateTargetError(`${hostname} resolves to an address outside HOOKLINE_ALLOWED_TARGETS`), '', 0);
        }
      }
      if ((options as dns.LookupOptions).all) return (callback as any)(null, list);
      callback(null, list[0].address, list[0].family);
    });
  };
}

interface AgentPair {
  http: http.Agent;
  https: https.Agent;
}

// One pair per policy, so a socket opened under one policy never serves another.
const agents = new Map<TargetPolicy, AgentPair>();

function agentFor(protocol: string, policy: TargetPolicy): http.Agent {
  let pair = agents.get(policy);
  if (!pair) {
    const options = {
      keepAlive: true,
      maxSockets: MAX_SOCKETS_PER_ORIGIN,
      maxFreeSockets: MAX_IDLE_SOCKETS_PER_ORIGIN,
      maxTotalSockets: MAX_SOCKETS_TOTAL,
      timeout: IDLE_SOCKET_MS,
      // Oldest idle socket first would hand out the one most likely to be closed by the server.
      scheduling: 'lifo' as const,
      lookup: guardedLookup(policy),
    };
    pair = { http: new http.Agent(options), https: new https.Agent(options) };
    agents.set(policy, pair);
  }
  return protocol === 'https:' ? pair.https : pair.http;
}

/** Closes every pooled connection (worker shutdown, tests). */
export function closeIdleConnections(): void {
  for (const pair of agents.values()) {
    pair.http.destroy();
    pair.https.destroy();
  }
  agents.clear();
}

/** One POST; with tracing on, in a client span whose traceparent the receiver gets (src/telemetry). */
export function post(opts: PostOptions): Promise<PostResult> {
  return tracedPost(opts, send);
}

async function send(opts: PostOptions): Promise<PostResult> {
  const started = performance.now();
  let url: URL;
  try {
    url = new URL(opts.url);
  } catch {
    return { kind: 'error', code: 'EINVALIDURL', message: 'invalid URL', latencyMs: 0 };
  }
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const refusal = targetRefusal(host, opts.targetPolicy);
  if (refusal) return { kind: 'error', code: 'EPRIVATETARGET', message: refusal, latencyMs: 0 };
  const deadline = started + opts.timeoutMs;
  const first = await exchange(url, opts, deadline, opts.reuseConnection !== false);
  // A pooled socket the receiver closed while it sat idle fails at once with ECONNRESET (or
  // EPIPE) before a single response byte: the request was never read, because a receiver
  // reads a request only on a connection it keeps. It is resent once, on a fresh connection,
  // within the same deadline. Should a receiver have read it and then died without answering,
  // the resend is a duplicate delivery — which webhooks allow (at-least-once; receivers
  // deduplicate on webhook-id), and which a failed attempt would cause anyway on its retry.
  const result =
    first.retryOnFreshSocket && performance.now() < deadline ? await exchange(url, opts, deadline, false) : first;
  return { ...result.result, latencyMs: Math.round(performance.now() - started) };
}

interface Exchange {
  result: PostResult;
  /** The request failed on a reused socket before any response byte arrived. */
  retryOnFreshSocket: boolean;
}

function timeoutError(ms: number): NodeJS.ErrnoException {
  return Object.assign(new Error(`timed out after ${ms} ms`), { code: 'ETIMEDOUT' });
}

/** One request on one socket (pooled when `reuse`), bounded by `deadline`. */
function exchange(url: URL, opts: PostOptions, deadline: number, reuse: boolean): Promise<Exchange> {
  return new Promise((resolve) => {
    let settled = false;
    const finish = (result: PostResult, retryOnFreshSocket = false) => {
      if (settled) return;
      settled = true;
      resolve({ result, retryOnFreshSocket });
    };
    const req = (url.protocol === 'https:' ? https : http).request(
      url,
      {
        method: 'POST',
        headers: { ...opts.headers, 'content-length': Buffer.byteLength(opts.body).toString() },
        timeout: opts.timeoutMs,
        ...(reuse ? { agent: agentFor(url.protocol, opts.targetPolicy) } : { agent: false, lookup: guardedLookup(opts.targetPolicy) }),
      },
      (res) => readCapped(res, opts.maxResponseBytes, finish),
    );
    let bytesReadAtStart = -1;
    req.on('socket', (socket) => {
      bytesReadAtStart = socket.bytesRead;
      // An unreachable host fails at the connect timeout, not the whole request's.
      if (opts.connectTimeoutMs && socket.connecting) {
        const connectTimer = setTimeout(() => req.destroy(Object.assign(new Error(`connect timed out after ${opts.connectTimeoutMs} ms`), { code: 'ECONNECTTIMEOUT' })), opts.connectTimeoutMs);
        socket.once('connect', () => clearTimeout(connectTimer));
        req.once('close', () => clearTimeout(connectTimer));
      }
    });
    // The whole exchange, not just socket idleness, is bounded by the deadline. destroy() also
    // destroys the socket, so a hanging receiver's connection is never handed out again.
    const timer = setTimeout(() => req.destroy(timeoutError(opts.timeoutMs)), Math.max(0, deadline - performance.now()));
    req.on('timeout', () => req.destroy(timeoutError(opts.timeoutMs)));
    req.on('error', (err: NodeJS.ErrnoException) => {
      const silent = req.reusedSocket && req.socket !== null && req.socket.bytesRead === bytesReadAtStart;
      const stale = silent && (err.code === 'ECONNRESET' || err.code === 'EPIPE');
      finish({ kind: 'error', code: err.code ?? 'EREQUEST', message: err.message, latencyMs: 0 }, stale);
    });
    req.on('close', () => clearTimeout(timer));
    req.end(opts.body);
  });
}

/** Reads the response body up to `max` bytes; past that the connection is cut (not reused). */
function readCapped(res: http.IncomingMessage, max: number, finish: (r: PostResult) => void): void {
  const chunks: Buffer[] = [];
  let size = 0;
  res.on('data', (chunk: Buffer) => {
    if (size < max) chunks.push(chunk.subarray(0, max - size));
    size += chunk.length;
    if (size >= max) res.destroy();
  });
  const done = () =>
    finish({ kind: 'response', status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), latencyMs: 0 });
  res.on('end', done);
  res.on('close', done);
  res.on('error', done);
}
