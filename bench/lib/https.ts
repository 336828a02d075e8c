// The bench's `https` phase: what connection reuse saves when every delivery is TLS.
//
// An HTTPS receiver on 127.0.0.1 with a self-signed certificate made at run time (openssl CLI),
// trusted by the senders through NODE_EXTRA_CA_CERTS, counting TLS connections. Two parts:
//   client   N POSTs through the worker's HTTP client (activities/http.ts) in a child process,
//            once with connection reuse and once with a fresh connection per POST, same
//            concurrency as the worker's activity slots: POSTs/s and CPU ms per POST on both
//            sides (sender process, receiver = this process), and the ratios.
//   e2e      Hookline's own worker delivering events to the HTTPS receiver (its roles started
//            with the certificate trusted): events/s and how many TLS connections it opened.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import { findFreePort } from '../../src/dev/processes';
import { sleep, spawnNode } from './procs';
import { createEndpoint, samplePayload, submitBurst } from './producer';
import { createDatabase, HooklineRoles } from './stack';
import { round } from './stats';

interface TlsReceiver {
  url: string;
  connections: number;
  requests: number;
  close(): Promise<void>;
}

/** A self-signed certificate for 127.0.0.1 (key and cert PEM files in `dir`). */
function selfSignedCertificate(dir: string): { keyFile: string; certFile: string } {
  const keyFile = path.join(dir, 'key.pem');
  const certFile = path.join(dir, 'cert.pem');
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', keyFile, '-out', certFile, '-days', '1', '-subj', '/CN=127.0.0.1',
    '-addext', 'subjectAltName=IP:127.0.0.1',
  ], { stdio: 'ignore' });
  return { keyFile, certFile };
}

async function tlsReceiver(keyFile: string, certFile: string): Promise<TlsReceiver> {
  const server = https.createServer({ key: readFileSync(keyFile), cert: readFileSync(certFile) }, (req, res) => {
    r.requests++;
    req.resume();
    req.on('end', () => res.end('ok'));
  });
  server.keepAliveTimeout = 5_000; // Node's default, and Apache's
  const r: TlsReceiver = {
    url: '', connections: 0, requests: 0,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
  server.on('secureConnection', () => r.connections++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  r.url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return r;
}

async function clientRun(rx: TlsReceiver, o: HttpsPhaseOptions, caFile: string, reuse: boolean) {
  const connections0 = rx.connections;
  const cpu0 = process.cpuUsage();
  const child = spawnNode({
    name: `https-post-${reuse ? 'reuse' : 'fresh'}`, script: path.join(__dirname, 'https-post.ts'),
    args: [`${rx.url}/client`, String(o.posts), String(o.concurrency), String(o.payloadBytes), reuse ? '1' : '0'],
    env: { ...process.env, NODE_EXTRA_CA_CERTS: caFile }, logFile: path.join(o.logDir, `https-post-${reuse ? 'reuse' : 'fresh'}.log`),
  });
  const exit = await child.exited;
  const receiverCpu = process.cpuUsage(cpu0);
  const line = readFileSync(child.logFile, 'utf8').trim().split('\n').pop()!;
  if (exit.code !== 0) throw new Error(`https-post failed: ${line}`);
  const r = JSON.parse(line) as { n: number; failed: number; firstError: string; elapsedMs: number; cpuMs: number };
  if (r.failed > 0) throw new Error(`https-post: ${r.failed} of ${r.n} failed (${r.firstError})`);
  return {
    postsPerSecond: round(r.n / (r.elapsedMs / 1000), 0),
    senderCpuMsPerPost: round(r.cpuMs / r.n, 3),
    receiverCpuMsPerPost: round((receiverCpu.user + receiverCpu.system) / 1000 / r.n, 3),
    tlsConnections: rx.connections - connections0,
  };
}

async function e2eRun(rx: TlsReceiver, o: HttpsPhaseOptions, caFile: string) {
  const db = await createDatabase(o.adminUrl, 'hookline_bench');
  const roles = new HooklineRoles({
    databaseUrl: db.url, temporalAddress: o.temporalAddress, logDir: o.logDir,
    settings: { apiPort: await findFreePort(), env: { NODE_EXTRA_CA_CERTS: caFile, HOOKLINE_LOG_LEVEL: process.env.HOOKLINE_LOG_LEVEL ?? 'info' } },
  });
  try {
    await roles.startAll(o.client);
    await createEndpoint(roles.apiUrl, { url: `${rx.url}/e2e`, eventTypes: ['bench.https'] });
    const requests0 = rx.requests;
    const connections0 = rx.connections;
    const started = Date.now();
    await submitBurst(roles.apiUrl, 'bench.https', o.e2eEvents, o.concurrency, samplePayload(o.payloadBytes));
    while (rx.requests - requests0 < o.e2eEvents) {
      if (Date.now() - started > 300_000) throw new Error(`https e2e: ${rx.requests - requests0}/${o.e2eEvents} after 5 min`);
      await sleep(50);
    }
    const seconds = (Date.now() - started) / 1000;
    return { events: o.e2eEvents, perSecond: round(o.e2eEvents / seconds, 1), tlsConnections: rx.connections - connections0 };
  } finally {
    await roles.stopAll();
    await db.drop().catch(() => {});
  }
}

export interface HttpsPhaseOptions {
  posts: number;
  e2eEvents: number;
  concurrency: number;
  payloadBytes: number;
  logDir: string;
  adminUrl: string;
  temporalAddress: string;
  client: Client;
}

export async function runHttpsPhase(o: HttpsPhaseOptions) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'hookline-bench-tls-'));
  const { keyFile, certFile } = selfSignedCertificate(dir);
  const rx = await tlsReceiver(keyFile, certFile);
  try {
    const fresh = await clientRun(rx, o, certFile, false);
    const reuse = await clientRun(rx, o, certFile, true);
    const e2e = o.e2eEvents > 0 ? await e2eRun(rx, o, certFile) : null;
    return {
      client: { posts: o.posts, concurrency: o.concurrency, reuse, fresh },
      reuseSpeedup: round(reuse.postsPerSecond / fresh.postsPerSecond, 2),
      senderCpuRatio: round(reuse.senderCpuMsPerPost / fresh.senderCpuMsPerPost, 2),
      receiverCpuRatio: round(reuse.receiverCpuMsPerPost / fresh.receiverCpuMsPerPost, 2),
      e2e,
    };
  } finally {
    await rx.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
