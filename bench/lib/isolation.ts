// The isolation phase of `npm run bench`: one endpoint whose receiver accepts connections and
// never answers, with hundreds of deliveries queued for it, beside the healthy e2e endpoint.
// Measures the healthy endpoint's submit→receipt latency meanwhile (issue #12: p99 ≤ 1 s), and
// how many connections the hanging receiver held at most (the endpoint's maxInFlight).
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createEndpoint, submitBurst, submitPaced, type Submitted } from './producer';
import type { BenchReceiver } from './receiver';
import { sleep } from './procs';

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
  healthy: Submitted[];
}

export async function runIsolationPhase(o: IsolationOptions): Promise<IsolationResult> {
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
    await submitBurst(o.api, 'bench.hang', o.backlog, o.concurrency, o.payload);
    const until = Date.now() + 30_000;
    while (received === 0 && Date.now() < until) await sleep(100);
    const before = o.rx.distinct.get(o.healthyPath) ?? 0;
    const healthy = await submitPaced(o.api, 'bench.e2e', o.healthyEvents, o.ratePerSecond, o.payload);
    await o.waitCount('isolation', () => o.rx.distinct.get(o.healthyPath) ?? 0, before + healthy.length);
    return { backlog: o.backlog, hangingMaxOpen: maxOpen, hangingReceived: received, healthy };
  } finally {
    // Its waiting deliveries dead-letter on their next wake-up instead of running into later phases.
    await patch(`${o.api}/v1/endpoints/${ep.id}`, { disabled: true }).catch(() => {});
    hanging.closeAllConnections();
    await new Promise<void>((r) => hanging.close(() => r()));
  }
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
