// Endpoint isolation on the real stack: a receiver that accepts and never answers, with hundreds
// of deliveries queued for it, must not delay another endpoint; it never sees more than its
// maxInFlight requests at once; connect and response timeouts are separate; the API takes and
// shows the settings and the endpoint's health.
import http from 'node:http';
import net from 'node:net';
import { spawn, type ChildProcess } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { post } from '../activities/http';
import { targetPolicyFromConfig } from '../src/net/address-policy';
import { createEndpoint, createHarness, FAST_RETRY, sendEvent, startReceiver, waitFor, type Harness, type Receiver } from './helpers';

/** Accepts every request and never answers; counts what is open at once. */
async function startHangingReceiver() {
  const state = { received: 0, open: 0, maxOpen: 0, closedByClient: 0 };
  const server = http.createServer((req) => {
    state.received += 1;
    state.open += 1;
    state.maxOpen = Math.max(state.maxOpen, state.open);
    req.socket.on('close', () => {
      state.open -= 1;
      state.closedByClient += 1;
    });
    req.resume();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return Object.assign(state, {
    url: `http://127.0.0.1:${port}/hang`,
    close: () => new Promise<void>((r) => (server.closeAllConnections(), server.close(() => r()))),
  });
}

async function deliveryStatuses(h: Harness, endpointId: string): Promise<string[]> {
  const { rows } = await h.pool.query('SELECT status FROM deliveries WHERE endpoint_id = $1', [endpointId]);
  return rows.map((r) => r.status);
}

describe('endpoint isolation', () => {
  let h: Harness;
  const closers: Array<() => Promise<void>> = [];

  beforeAll(async () => {
    h = await createHarness();
  });
  afterAll(async () => {
    for (const c of closers) await c();
    await h?.close();
  });

  it('delivers to a healthy endpoint while another hangs with 200 queued, holding at most maxInFlight connections', async () => {
    const hanging = await startHangingReceiver();
    closers.push(hanging.close);
    const healthy = await startReceiver();
    closers.push(healthy.close);
    const MAX_IN_FLIGHT = 4;
    // A long response timeout: nothing to the hanging receiver can time out during this test.
    const bad = await createEndpoint(h.app, {
      url: hanging.url, eventTypes: ['hang.test'], maxInFlight: MAX_IN_FLIGHT, timeouts: { response: '60s' }, retry: { ...FAST_RETRY, deadline: '10 minutes' },
    });
    const good = await createEndpoint(h.app, { url: healthy.url, eventTypes: ['healthy.test'], retry: FAST_RETRY });

    for (let i = 0; i < 200; i++) await sendEvent(h.app, { type: 'hang.test', data: { i } });
    await waitFor(() => hanging.received >= MAX_IN_FLIGHT, 30_000, 'the hanging receiver holding requests');
    const sent: string[] = [];
    for (let i = 0; i < 20; i++) sent.push((await sendEvent(h.app, { type: 'healthy.test', data: { i } })).id);

    // Liveness bound only: every healthy delivery arrives while no hanging request has ended,
    // i.e. before the hanging endpoint's 60 s timeout could have freed anything.
    await waitFor(async () => (await deliveryStatuses(h, good.id)).filter((s) => s === 'delivered').length === 20, 50_000, 'healthy delivered');
    expect(new Set(healthy.requests.map((r) => r.headers['webhook-id']))).toEqual(new Set(sent));
    expect(hanging.closedByClient).toBe(0);
    expect(hanging.maxOpen).toBeLessThanOrEqual(MAX_IN_FLIGHT);
    expect(hanging.received).toBe(MAX_IN_FLIGHT);
    // The waiting deliveries burned no attempt: only the ones in flight were tried.
    const { rows } = await h.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM attempts WHERE endpoint_id = $1', [bad.id]);
    expect(rows[0].n).toBe(0);

    const res = await h.app.inject({ method: 'GET', url: `/v1/endpoints/${bad.id}` });
    expect(res.json().health).toMatchObject({ state: 'closed', inFlight: MAX_IN_FLIGHT });
    await h.app.inject({ method: 'PATCH', url: `/v1/endpoints/${bad.id}`, payload: { disabled: true } });
  });

  it('takes a delivery that gave up while queued for an in-flight slot out of the queue', async () => {
    const hanging = await startHangingReceiver();
    closers.push(hanging.close);
    const ep = await createEndpoint(h.app, {
      url: hanging.url, eventTypes: ['queue.test'], maxInFlight: 1, timeouts: { response: '60s' }, retry: { ...FAST_RETRY, deadline: '3 seconds' },
    });
    await sendEvent(h.app, { type: 'queue.test', data: { i: 0 } });
    await waitFor(() => hanging.received === 1, 30_000, 'the one slot held');
    const queued = await sendEvent(h.app, { type: 'queue.test', data: { i: 1 } });
    const inQueue = async () => (await h.pool.query('SELECT 1 FROM gate_waiters WHERE endpoint_id = $1 AND workflow_id = $2', [ep.id, queued.id])).rowCount;
    await waitFor(async () => (await inQueue()) === 1, 30_000, 'queued for the slot');
    // Its deadline passes while the slot is held: a dead letter, and out of the queue — else the
    // release that pops it would hold the freed slot 5 s for a workflow that stopped waiting.
    await waitFor(async () => {
      const { rows } = await h.pool.query('SELECT status FROM deliveries WHERE event_id = $1 AND endpoint_id = $2', [queued.id, ep.id]);
      return rows[0]?.status === 'dead_lettered';
    }, 30_000, 'dead-lettered while queued');
    await waitFor(async () => (await inQueue()) === 0, 10_000, 'out of the queue');
    expect(hanging.received).toBe(1);
    await h.app.inject({ method: 'PATCH', url: `/v1/endpoints/${ep.id}`, payload: { disabled: true } });
  });

  it('takes the isolation settings on create and PATCH, and names the field it refuses', async () => {
    const rx = await startReceiver();
    closers.push(rx.close);
    const ep = await createEndpoint(h.app, { url: rx.url, eventTypes: ['settings.test'], rateLimit: 2.5, timeouts: { connect: '1s' } });
    const read = (await h.app.inject({ method: 'GET', url: `/v1/endpoints/${ep.id}` })).json();
    expect(read).toMatchObject({ maxInFlight: 10, rateLimit: 2.5, timeouts: { connect: 1000, response: 3000 } });
    expect(read.health).toEqual({
      state: 'closed', since: null, consecutiveFailures: 0, nextProbeAt: null, failingSince: null, lastSuccessAt: null, inFlight: 0, pausedUntil: null, pausedReason: null,
    });

    const patched = await h.app.inject({ method: 'PATCH', url: `/v1/endpoints/${ep.id}`, payload: { maxInFlight: 3, rateLimit: null, timeouts: { response: '20s' } } });
    expect(patched.statusCode).toBe(200);
    // timeouts merge: connect keeps its value.
    expect(patched.json()).toMatchObject({ maxInFlight: 3, rateLimit: null, timeouts: { connect: 1000, response: 20000 } });

    for (const [payload, field] of [
      [{ maxInFlight: 0 }, 'maxInFlight'],
      [{ maxInFlight: 500 }, 'maxInFlight'],
      [{ rateLimit: -1 }, 'rateLimit'],
      [{ timeouts: { connect: '5 minutes' } }, 'timeouts.connect'],
      [{ timeouts: { response: 'soon' } }, 'timeouts.response'],
      [{ timeouts: { read: '1s' } }, 'timeouts'],
    ] as const) {
      const res = await h.app.inject({ method: 'PATCH', url: `/v1/endpoints/${ep.id}`, payload });
      expect(res.statusCode, JSON.stringify(payload)).toBe(400);
      expect(res.body).toContain(field);
    }
    const created = await h.app.inject({ method: 'POST', url: '/v1/endpoints', payload: { url: rx.url, rateLimit: 'fast' } });
    expect(created.statusCode).toBe(400);
    expect(created.body).toContain('rateLimit');
  });

  describe('connect timeout', () => {
    let blocked: ChildProcess | null = null;
    const fillers: net.Socket[] = [];
    afterAll(() => {
      for (const s of fillers) s.destroy();
      blocked?.kill();
    });

    /** A port whose listener never accepts: its backlog is full, so a new connect hangs. */
    async function unacceptingPort(): Promise<number> {
      // A child whose main thread is blocked (without burning CPU) never runs accept().
      blocked = spawn(process.execPath, ['-e', `
        const s = require('net').createServer();
        s.listen({ port: 0, host: '127.0.0.1', backlog: 1 }, () => {
          console.log(s.address().port);
          setTimeout(() => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 120000), 50);
        });`], { stdio: ['ignore', 'pipe', 'inherit'] });
      const port = await new Promise<number>((r) => blocked!.stdout!.once('data', (d) => r(Number(String(d).trim()))));
      await new Promise((r) => setTimeout(r, 200));
      // Two connections fill a backlog of 1 (the kernel completes them; nobody accepts).
      for (let i = 0; i < 2; i++) {
        const s = net.connect(port, '127.0.0.1');
        fillers.push(s);
        await new Promise((r) => s.once('connect', r));
      }
      return port;
    }

    it('fails a connection that cannot be made at the connect timeout, long before the response timeout', async () => {
      const port = await unacceptingPort();
      const policy = targetPolicyFromConfig(h.config);
      const base = { url: `http://127.0.0.1:${port}/x`, headers: {}, body: '{}', maxResponseBytes: 1024, targetPolicy: policy };
      const r = await post({ ...base, timeoutMs: 60_000, connectTimeoutMs: 300 });
      expect(r).toMatchObject({ kind: 'error', code: 'ECONNECTTIMEOUT' });

      // A receiver that connects and never answers is the response timeout's, not the connect's.
      const hanging = await startHangingReceiver();
      closers.push(hanging.close);
      const slow = await post({ ...base, url: hanging.url, timeoutMs: 1_000, connectTimeoutMs: 300 });
      expect(slow).toMatchObject({ kind: 'error', code: 'ETIMEDOUT' });
    });

    it('uses the endpoint timeouts: the attempt records the connect timeout', async () => {
      const rx: Receiver = await startReceiver();
      closers.push(rx.close);
      const port = fillers.length > 0 ? (fillers[0].remotePort as number) : await unacceptingPort();
      const ep = await createEndpoint(h.app, {
        url: `http://127.0.0.1:${port}/x`, eventTypes: ['connect.test'], timeouts: { connect: '300ms', response: '60s' }, retry: { ...FAST_RETRY, maxAttempts: 1 },
      });
      const ev = await sendEvent(h.app, { type: 'connect.test', data: {} });
      // Dead-lettered while the 60 s response timeout could not have fired.
      await waitFor(async () => (await deliveryStatuses(h, ep.id))[0] === 'dead_lettered', 30_000, 'dead-lettered');
      const attempts = (await h.app.inject({ method: 'GET', url: `/v1/deliveries/${ev.id}/${ep.id}/attempts` })).json().data;
      expect(attempts).toHaveLength(1);
      expect(attempts[0].error).toMatch(/^ECONNECTTIMEOUT: connect timed out after 300 ms/);
    });
  });
});
