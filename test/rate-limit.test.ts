// One endpoint's rate limit and in-flight cap hold across worker PROCESSES: two `hookline worker`
// children share the gate in Postgres. The bounds asserted are the gate's guarantees (upper
// bounds): no more than rateLimit + 1 requests (the burst) in any one-second window at the
// receiver, never more than maxInFlight requests open at once, the mean no more than 10 % over.
// The mean achieved is printed, not asserted: 9.4-9.8/s on a busy two-core box in 9 of 10 runs,
// but it needs CPU — with the box several times oversubscribed (load average ~10) it fell to
// 5.7-7.8/s, the workers starved and the in-flight cap of 4 reached: a lower bound is flaky.
import http from 'node:http';
import type { ChildProcess } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import { inject } from 'vitest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasPollers } from '../bench/lib/stack';
import { createEndpoint, createHarness, FAST_RETRY, sendEvent, spawnRole, waitFor, type Harness } from './helpers';

const RATE = 10;
const BURST = 1;
const MAX_IN_FLIGHT = 4;
const EVENTS = 220;

describe('rate limit across two worker processes', () => {
  let h: Harness;
  const workers: ChildProcess[] = [];
  let server: http.Server;
  const arrivals: Array<{ at: number; id: string }> = [];
  let open = 0;
  let maxOpen = 0;

  beforeAll(async () => {
    h = await createHarness({ noWorker: true });
    // Each answer takes 100–300 ms, so a worker would happily run several at once.
    server = http.createServer((req, res) => {
      arrivals.push({ at: Date.now(), id: String(req.headers['webhook-id']) });
      open += 1;
      maxOpen = Math.max(maxOpen, open);
      req.resume();
      setTimeout(() => {
        open -= 1;
        res.end('ok');
      }, 100 + Math.random() * 200);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    for (let i = 0; i < 2; i++) {
      const child = spawnRole(h, 'worker', { HOOKLINE_WORKFLOW_BUNDLE: inject('workflowBundlePath'), HOOKLINE_LOG_LEVEL: 'warn' });
      workers.push(child);
      await waitFor(async () => {
        if (child.exitCode !== null) throw new Error(`worker exited with ${child.exitCode}`);
        return hasPollers(h.client, h.taskQueue, child.pid);
      }, 90_000, 'worker ready');
    }
  });
  afterAll(async () => {
    for (const w of workers) w.kill('SIGKILL');
    server?.closeAllConnections();
    await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
    await h?.close();
  });

  it(`never lets more than ${RATE}+${BURST} requests a second or ${MAX_IN_FLIGHT} at once reach the receiver`, async () => {
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/limited`;
    const ep = await createEndpoint(h.app, { url, eventTypes: ['limited.test'], rateLimit: RATE, maxInFlight: MAX_IN_FLIGHT, retry: { ...FAST_RETRY, deadline: '10 minutes' } });
    // Submitted 20 at a time, so the producer is not what limits the rate.
    for (let i = 0; i < EVENTS; i += 20) {
      await Promise.all(Array.from({ length: Math.min(20, EVENTS - i) }, (_, k) => sendEvent(h.app, { type: 'limited.test', data: { i: i + k } })));
    }
    await waitFor(async () => {
      const { rows } = await h.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM deliveries WHERE endpoint_id = $1 AND status = 'delivered'`, [ep.id]);
      return rows[0].n === EVENTS;
    }, 110_000, 'all delivered');

    expect(arrivals).toHaveLength(EVENTS);
    const times = arrivals.map((a) => a.at).sort((a, b) => a - b);
    let worst = 0;
    for (let i = 0, j = 0; i < times.length; i++) {
      while (times[i] - times[j] >= 1_000) j++;
      worst = Math.max(worst, i - j + 1);
    }
    expect(worst).toBeLessThanOrEqual(RATE + BURST);
    expect(maxOpen).toBeLessThanOrEqual(MAX_IN_FLIGHT);
    // Refusals are waits, not attempts: one attempt per delivery.
    const { rows } = await h.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM attempts WHERE endpoint_id = $1`, [ep.id]);
    expect(rows[0].n).toBe(EVENTS);
    const spanS = (times[times.length - 1] - times[0]) / 1000;
    // Reported, not asserted (a busy box may be slower): the rate achieved over the whole run.
    const perSecond = Array.from({ length: Math.ceil(spanS) }, (_, k) => times.filter((t) => t >= times[0] + k * 1000 && t < times[0] + (k + 1) * 1000).length);
    console.log(`per second: ${perSecond.join(' ')}`);
    console.log(`rate limit ${RATE}/s: ${EVENTS} requests in ${spanS.toFixed(1)} s = ${(EVENTS / spanS).toFixed(2)}/s; worst 1 s window ${worst}; max in flight ${maxOpen}`);
    expect(EVENTS / spanS).toBeLessThanOrEqual(RATE * 1.1);
  });
});
