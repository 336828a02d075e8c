// One webhook POST on the wire: no redirects followed, a hard timeout, the response body read
// up to a cap, and the target address checked after DNS resolution (see address-policy).
import http from 'node:http';
import https from 'node:https';
import dns from 'node:dns';
import type { LookupFunction } from 'node:net';
import { isIP } from 'node:net';
import { isLocalHostname, type TargetPolicy } from '../src/net/address-policy';

export interface PostOptions {
  url: string;
  headers: Record<string, string>;
  body: string;
  timeoutMs: number;
  maxResponseBytes: number;
  /** Which addresses may be reached (src/net/address-policy). */
  targetPolicy: TargetPolicy;
}

export type PostResult =
  | { kind: 'response'; status: number; headers: http.IncomingHttpHeaders; body: string; latencyMs: number }
  | { kind: 'error'; code: string; message: string; latencyMs: number };

export class PrivateTargetError extends Error {
  override name = 'PrivateTargetError';
  readonly code = 'EPRIVATETARGET';
}

function guardedLookup(policy: TargetPolicy): LookupFunction {
  return (hostname, options, callback) => {
    dns.lookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err, '', 0);
      const list = addresses as dns.LookupAddress[];
      const bad = list.find((a) => !policy.allows(a.address));
      if (bad) {
        // The address stays out of the message: attempts are readable through the API.
        return callback(new PrivateTargetError(`${hostname} resolves to an address outside HOOKLINE_ALLOWED_TARGETS`), '', 0);
      }
      if ((options as dns.LookupOptions).all) return (callback as any)(null, list);
      callback(null, list[0].address, list[0].family);
    });
  };
}

export function post(opts: PostOptions): Promise<PostResult> {
  const started = performance.now();
  const latency = () => Math.round(performance.now() - started);
  return new Promise((resolve) => {
    let url: URL;
    try {
      url = new URL(opts.url);
    } catch {
      return resolve({ kind: 'error', code: 'EINVALIDURL', message: 'invalid URL', latencyMs: 0 });
    }
    const host = url.hostname.replace(/^\[|\]$/g, '');
    const refused = isIP(host) ? !opts.targetPolicy.allows(host) : isLocalHostname(host) && !opts.targetPolicy.allows('127.0.0.1');
    if (refused) {
      return resolve({ kind: 'error', code: 'EPRIVATETARGET', message: `${host} is not a public address`, latencyMs: 0 });
    }
    const client = url.protocol === 'https:' ? https : http;
    let settled = false;
    const finish = (r: PostResult) => {
      if (!settled) {
        settled = true;
        resolve(r);
      }
    };
    const req = client.request(
      url,
      {
        method: 'POST',
        headers: { ...opts.headers, 'content-length': Buffer.byteLength(opts.body).toString() },
        lookup: guardedLookup(opts.targetPolicy),
        timeout: opts.timeoutMs,
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          if (size < opts.maxResponseBytes) {
            chunks.push(chunk.subarray(0, opts.maxResponseBytes - size));
          }
          size += chunk.length;
          if (size >= opts.maxResponseBytes) res.destroy();
        });
        const done = () =>
          finish({
            kind: 'response',
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString('utf8'),
            latencyMs: latency(),
          });
        res.on('end', done);
        res.on('close', done);
        res.on('error', done);
      },
    );
    // The whole exchange, not just socket idleness, is bounded by timeoutMs.
    const timer = setTimeout(() => req.destroy(Object.assign(new Error(`timed out after ${opts.timeoutMs} ms`), { code: 'ETIMEDOUT' })), opts.timeoutMs);
    req.on('timeout', () => req.destroy(Object.assign(new Error(`timed out after ${opts.timeoutMs} ms`), { code: 'ETIMEDOUT' })));
    req.on('error', (err: NodeJS.ErrnoException) => {
      finish({ kind: 'error', code: err.code ?? (err instanceof PrivateTargetError ? err.code : 'EREQUEST'), message: err.message, latencyMs: latency() });
    });
    req.on('close', () => clearTimeout(timer));
    req.end(opts.body);
  });
}
