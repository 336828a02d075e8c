// The isolation phase of `npm run bench`: one endpoint whose receiver accepts connections and
// never answers, with hundreds of deliveries queued for it, beside the healthy e2e endpoint.
// Measures the healthy endpoint's submit→receipt latency meanwhile (issue #12: p99 ≤ 1 s), and
// how many connections the hanging receiver held at most (the endpoint's maxInFlight).
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createEndpoint, submitBurst, submitPaced, type Submitted } from './producer';
import type { BenchReceiver } from './receiver';
import { sleep } from './procs';

const SETTLE_MS = 5_000;

export interface IsolationOptions {
  api: string;
  /** Deliveries queued for the hanging endpoint. */
  backlog: number;
  /** Healthy events, sent at `ratePerSecond` while the backlog waits. */
  healthyEvents: number;
  ratePerSecond: number;
  concurrency: number;
  payload: Record<string, unknown>;
  rx: BenchReceiver;
  /** The healthy endpoint's path on rx (subscribed to bench.e2e). */
  healthyPath: string;
  /** Waits until `count()` reaches `target`. */
  waitCount(what: string, count: () => number, target: number): Promise<void>;
}

export interface IsolationResult {
  backlog: number;
  hangingMaxOpen: number;
  hangingReceived: number;
  /** The same healthy load with nothing hanging, just before: the baseline on this (busy) box. */
  alone: Submitted[];
  healthy: Submitted[];
}

export async function runIsolationPhase(o: IsolationOptions): Promise<IsolationResult> {
  const start = o.rx.distinct.get(o.healthyPath) ?? 0;
  const alone = await submitPaced(o.api, 'bench.e2e', o.healthyEvents, o.ratePerSecond, o.payload);
  await o.waitCount('isolation baseline', () => o.rx.distinct.get(o.healthyPath) ?? 0, start + alone.length);
  let open = 0;
  let maxOpen = 0;
  let received = 0;
  const hanging = http.createServer((req) => {
    received += 1;
    open += 1;
    maxOpen = Math.max(maxOpen, open);
    req.socket.on('close', () => (open -= 1));
    req.resume();
  });
  await new Promise<void>((r) => hanging.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(hanging.address() as AddressInfo).port}/hang`;
  // A long response timeout: during the phase nothing to the hanging receiver ever times out,
  // so every healthy delivery is measured while the hanging one holds its slots.
  const ep = await createEndpoint(o.api, { url, eventTypes: ['bench.hang'], timeouts: { response: '60s' }, retry: { deadline: '1 hour' } });
  try {
    const queued = await submitBurst(o.api, 'bench.hang', o.backlog, o.concurrency, o.payload);
    // Measure once the backlog is queued at the endpoint (every workflow started), not while the
    // relay is still starting it: the relay's own throughput is the e2e phase's subject.
    const until = Date.now() + 120_000;
    while (queued.length > 0 && Date.now() < until && !(await relayed(o.api, queued))) await sleep(250);
    while (queued.length > 0 && received === 0 && Date.now() < until) await sleep(100);
    // Steady state: the backlog's first attempts (one workflow task each) are done and its
    // waiters asleep, as with an endpoint that has been hanging for a while.
    await sleep(SETTLE_MS);
    const before = o.rx.distinct.get(o.healthyPath) ?? 0;
    const healthy = await submitPaced(o.api, 'bench.e2e', o.healthyEvents, o.ratePerSecond, o.payload);
    await o.waitCount('isolation', () => o.rx.distinct.get(o.healthyPath) ?? 0, before + healthy.length);
    return { backlog: o.backlog, hangingMaxOpen: maxOpen, hangingReceived: received, alone, healthy };
  } finally {
    // Its waiting deliveries dead-letter on their next wake-up instead of running into later phases.
    await patch(`${o.api}/v1/endpoints/${ep.id}`, { disabled: true }).catch(() => {});
    hanging.closeAllConnections();
    await new Promise<void>((r) => hanging.close(() => r()));
  }
}

/** Every queued event has left the outbox (its workflow started). */
async function relayed(api: string, queued: Submitted[]): Promise<boolean> {
  for (const q of [queued[queued.length - 1], ...queued]) {
    const r = await get(`${api}/v1/events/${q.id}`);
    if (!r?.relayed) return false;
  }
  return true;
}

function get(url: string): Promise<any> {
  return new Promise((resolve, reject) => {
    http.get(url, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve(res.statusCode === 200 ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : null));
    }).on('error', reject);
  });
}

function patch(url: string, body: unknown): Promise<number> {
  const payload = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'PATCH', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(payload);
  });
}
