// `hookline listen` end to end: the CLI as a child process connects to a real API (listening on
// 127.0.0.1), a real worker delivers over its connection, and a real local app verifies each
// request with the `standardwebhooks` library, as a user's app would.
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Webhook } from 'standardwebhooks';
import { checkTargetUrl } from '../src/api/url-policy';
import { configureDataAtRest } from '../src/at-rest';
import { answerRequest, claimRequests, enqueueRequest, takeAnswer } from '../src/db/listen-requests';
import { takeSession } from '../src/db/listen-sessions';
import { sweepSessions } from '../src/listen/sessions';
import { createTargetPolicy } from '../src/net/address-policy';
import { findFreePort } from '../src/dev/processes';
import {
  createApiOnly, createEndpoint, createHarness, sendEvent, spawnRole, startReceiver, TEST_ENCRYPTION_KEY, waitFor, workflowHistoryText,
  type Harness, type Receiver,
} from './helpers';
import { raw, request } from './raw-http';

const CLI = path.join(__dirname, '../bin/hookline');

interface Listener {
  proc: ChildProcess;
  out: string[];
  err: string[];
  /** Resolves with the first stdout line matching `re`. */
  line(re: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  exited: Promise<number | null>;
}

const running = new Set<ChildProcess>();

function listen(args: string[], env: Record<string, string> = {}): Listener {
  const proc = spawn(CLI, ['listen', ...args], {
    env: { ...process.env, HOOKLINE_API_KEY: '', HOOKLINE_URL: '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(proc);
  const out: string[] = [];
  const err: string[] = [];
  const collect = (into: string[]) => {
    let partial = '';
    return (chunk: Buffer) => {
      const lines = (partial + chunk.toString('utf8')).split('\n');
      partial = lines.pop()!;
      into.push(...lines);
    };
  };
  proc.stdout!.on('data', collect(out));
  proc.stderr!.on('data', collect(err));
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => (running.delete(proc), resolve(code))));
  const line = (re: RegExp, timeoutMs = 60_000) =>
    waitFor(() => out.map((l) => l.match(re)).find(Boolean) ?? null, timeoutMs, `listener line ${re} (stdout: ${out.join(' | ')}; stderr: ${err.join(' | ')})`);
  return { proc, out, err, line, exited };
}

/** A local app that verifies every request with the standardwebhooks library. */
async function startLocalApp() {
  const rx = await startReceiver();
  // The secrets of every session opened so far: each verifies its own endpoint's deliveries.
  const state = { secrets: [] as string[], failFirst: new Set<string>(), delayMs: 0 };
  const verified: string[] = [];
  const rejected: string[] = [];
  const answered500 = new Set<string>();
  rx.respond = (req) => {
    const id = String(req.headers['webhook-id']);
    const verifies = (secret: string) => {
      try {
        new Webhook(secret).verify(req.body, req.headers as Record<string, string>);
        return true;
      } catch {
        return false;
      }
    };
    if (!state.secrets.some(verifies)) {
      rejected.push(id);
      return { status: 401 };
    }
    if (state.failFirst.has(id) && !answered500.has(id)) {
      answered500.add(id);
      return { status: 500, body: 'local app not ready' };
    }
    verified.push(id);
    return { status: 200, body: 'ok', delayMs: state.delayMs };
  };
  return Object.assign(rx, { state, verified, rejected });
}

describe('hookline listen', () => {
  let h: Harness;
  let base: string;
  let local: Awaited<ReturnType<typeof startLocalApp>>;

  beforeAll(async () => {
    h = await createHarness();
    local = await startLocalApp();
    await h.app.listen({ port: 0, host: '127.0.0.1' });
    base = `http://127.0.0.1:${(h.app.server.address() as AddressInfo).port}`;
  });
  afterEach(() => {
    for (const p of running) p.kill('SIGKILL');
  });
  afterAll(async () => {
    await local?.close();
    await h?.close();
  });

  const deliveryOf = async (eventId: string) => (await h.app.inject({ method: 'GET', url: `/v1/events/${eventId}` })).json().deliveries[0];
  const attemptsOf = async (eventId: string, endpointId: string) =>
    (await h.app.inject({ method: 'GET', url: `/v1/deliveries/${eventId}/${endpointId}/attempts` })).json().data as { statusCode: number | null; error: string | null }[];
  const delivered = (eventId: string) => async () => (await deliveryOf(eventId))?.status === 'delivered';
  /** What the Web UI shows for the event's workflow (its "current details"). */
  const currentDetails = async (eventId: string): Promise<string> =>
    ((await h.client.workflow.getHandle(eventId).query('__temporal_workflow_metadata')) as { currentDetails?: string }).currentDetails ?? '';

  it('forwards deliveries to the local app, which verifies them with standardwebhooks', async () => {
    const l = listen(['--forward-to', local.url, '--api', base, '--session', 'first', '--events', 'listen.*']);
    const secret = (await l.line(/^secret: (whsec_\S+)/))[1];
    local.state.secrets.push(secret);
    const endpointId = (await l.line(/^session first \(endpoint (ep_\w+)/))[1];
    await l.line(/^connected to /);

    const ep = (await h.app.inject({ method: 'GET', url: `/v1/endpoints/${endpointId}` })).json();
    expect(ep.url).toBe('listen://first');
    expect(ep.eventTypes).toEqual(['listen.*']);

    const ev = await sendEvent(h.app, { type: 'listen.created', data: { n: 1 } });
    const other = await sendEvent(h.app, { type: 'other.created', data: { n: 2 } });
    await waitFor(delivered(ev.id), 60_000, 'delivered over the listener');

    expect(local.verified).toContain(ev.id);
    expect(local.rejected).toEqual([]);
    const req = local.requests.find((r) => r.headers['webhook-id'] === ev.id)!;
    expect(JSON.parse(req.body)).toMatchObject({ id: ev.id, type: 'listen.created', data: { n: 1 } });
    expect(req.headers['user-agent']).toMatch(/^Hookline\//);
    expect(local.requests.some((r) => r.headers['webhook-id'] === other.id)).toBe(false);

    const attempts = await attemptsOf(ev.id, endpointId);
    expect(attempts.map((a) => a.statusCode)).toEqual([200]);
    await l.line(new RegExp(`${ev.id}  listen.created  -> 200`));
    // The secret reached the terminal once; never the workflow history.
    expect(await workflowHistoryText(h.client, ev.id)).not.toContain(secret);
    expect(l.out.filter((x) => x.includes(secret))).toHaveLength(1);
  });

  it('retries a 500 from the local app, then delivers', async () => {
    const l = listen(['--forward-to', local.url, '--api', base, '--session', 'first']);
    await l.line(/^resumed session first \(endpoint (ep_\w+)/);
    await l.line(/^connected to /);
    expect(l.out.some((x) => x.startsWith('secret:'))).toBe(false);

    const ev = await sendEvent(h.app, { type: 'listen.retried', data: {} });
    local.state.failFirst.add(ev.id);
    await waitFor(delivered(ev.id), 60_000, 'delivered after a retry');
    const d = await deliveryOf(ev.id);
    expect((await attemptsOf(ev.id, d.endpointId)).map((a) => a.statusCode)).toEqual([500, 200]);
  });

  it('killed mid-stream and started again with the same session: every accepted event arrives', async () => {
    const args = ['--forward-to', local.url, '--api', base, '--session', 'restart', '--events', 'restart.*'];
    let l = listen(args);
    const secret = (await l.line(/^secret: (whsec_\S+)/))[1];
    local.state.secrets.push(secret);
    const endpointId = (await l.line(/^session restart \(endpoint (ep_\w+)/))[1];
    await l.line(/^connected to /);
    local.state.delayMs = 100; // so the kill lands while requests are in flight

    const before: { id: string }[] = [];
    for (let i = 0; i < 10; i++) before.push(await sendEvent(h.app, { type: 'restart.tick', data: { i } }));
    await waitFor(() => before.filter((e) => local.verified.includes(e.id)).length >= 2, 60_000, 'some delivered before the kill');
    l.proc.kill('SIGKILL');
    await l.exited;
    const during: { id: string }[] = [];
    for (let i = 0; i < 5; i++) during.push(await sendEvent(h.app, { type: 'restart.tick', data: { i: 10 + i } }));
    // While nobody listens the endpoint is paused: the deliveries wait, none is dropped. (Requests
    // the killed listener held time out, and open no circuit: the pause is what holds them.)
    await waitFor(async () => /waiting: endpoint paused, hookline listen is disconnected/.test(await currentDetails(during[0].id)), 60_000, 'paused');

    l = listen(args);
    await l.line(/^resumed session restart /);
    const all = [...before, ...during];
    for (const e of all) await waitFor(delivered(e.id), 90_000, `${e.id} delivered after the restart`);
    const arrived = new Set(local.verified);
    expect(all.filter((e) => !arrived.has(e.id))).toEqual([]);
    expect(local.rejected).toEqual([]);
    local.state.delayMs = 0;
  });

  it('with nobody listening, the endpoint is paused: no attempt, and at its deadline a dead letter a replay delivers', async () => {
    const opened = (await h.app.inject({ method: 'POST', url: '/v1/listen/sessions', payload: { session: 'away', eventTypes: ['away.*'] } })).json();
    local.state.secrets.push(opened.secret);
    const retry = { initialInterval: '100ms', maximumInterval: '200ms', deadline: '3s' };
    expect((await h.app.inject({ method: 'PATCH', url: `/v1/endpoints/${opened.endpointId}`, payload: { retry } })).statusCode).toBe(200);
    const ev = await sendEvent(h.app, { type: 'away.sent', data: {} });
    await waitFor(async () => (await deliveryOf(ev.id))?.status === 'dead_lettered', 60_000, 'dead-lettered while offline');
    expect(await attemptsOf(ev.id, opened.endpointId)).toEqual([]);
    expect((await deliveryOf(ev.id)).reason).toMatch(/^deadline exceeded: waiting for the endpoint \(endpoint paused, hookline listen is disconnected\)/);
    const health = (await h.app.inject({ method: 'GET', url: `/v1/endpoints/${opened.endpointId}` })).json().health;
    expect(health).toMatchObject({ pausedReason: 'listener_offline', state: 'closed', consecutiveFailures: 0 });

    const l = listen(['--forward-to', local.url, '--api', base, '--session', 'away']);
    await l.line(/^connected to /);
    expect((await h.app.inject({ method: 'GET', url: `/v1/endpoints/${opened.endpointId}` })).json().health.pausedReason).toBeNull();
    const replay = await h.app.inject({ method: 'POST', url: `/v1/deliveries/${ev.id}/${opened.endpointId}/replay` });
    expect(replay.statusCode).toBe(202);
    await waitFor(delivered(ev.id), 60_000, 'delivered after the replay');
    expect(local.verified).toContain(ev.id);
  });

  it('events sent while the listener is away make no attempt, show it waits for the listener, and go once it reconnects', async () => {
    const args = ['--forward-to', local.url, '--api', base, '--session', 'paused', '--events', 'paused.*'];
    let l = listen(args);
    local.state.secrets.push((await l.line(/^secret: (whsec_\S+)/))[1]);
    const endpointId = (await l.line(/^session paused \(endpoint (ep_\w+)/))[1];
    await l.line(/^connected to /);
    l.proc.kill('SIGKILL');
    await l.exited;
    await waitFor(async () => (await h.app.inject({ method: 'GET', url: `/v1/endpoints/${endpointId}` })).json().health.pausedReason === 'listener_offline', 30_000, 'offline');

    const away: { id: string }[] = [];
    for (let i = 0; i < 3; i++) away.push(await sendEvent(h.app, { type: 'paused.tick', data: { i } }));
    for (const e of away) {
      await waitFor(async () => /\| delivering \| waiting: endpoint paused, hookline listen is disconnected; next try when the listener reconnects or in \d+ s/.test(await currentDetails(e.id)), 60_000, `${e.id} waiting for the listener`);
    }
    const attemptRows = async () => (await h.pool.query('SELECT count(*)::int AS n FROM attempts WHERE endpoint_id = $1', [endpointId])).rows[0].n;
    expect(await attemptRows()).toBe(0);

    l = listen(args);
    await l.line(/^resumed session paused /);
    // The paused deliveries sleep up to ~60 s on their own; the reconnect wakes them (a gateOpen
    // signal), so they arrive well before any of those timers could have fired.
    for (const e of away) await waitFor(delivered(e.id), 40_000, `${e.id} delivered after the reconnect`);
    for (const e of away) expect((await attemptsOf(e.id, endpointId)).map((a) => a.statusCode)).toEqual([200]);
    expect(await attemptRows()).toBe(3);
  });

  it('a tenant key listens on its own tenant only, receives only that tenant\'s events, and session ids do not cross tenants', async () => {
    for (const id of ['listen-a', 'listen-b']) expect((await h.app.inject({ method: 'POST', url: '/v1/tenants', payload: { id } })).statusCode).toBe(201);
    const mint = async (tenantId: string, scopes: string[]) =>
      (await h.app.inject({ method: 'POST', url: '/v1/api-keys', payload: { name: `listen ${tenantId}`, tenantId, scopes } })).json().key as string;
    const keyA = await mint('listen-a', ['manage']);
    const publishA = await mint('listen-a', ['publish']);
    const asKey = (key: string) => ({ authorization: `Bearer ${key}` });

    const args = ['--forward-to', local.url, '--api', base, '--session', 'shared-name', '--events', 'tenanted.*'];
    const l = listen([...args, '--tenant', 'listen-a'], { HOOKLINE_API_KEY: keyA });
    local.state.secrets.push((await l.line(/^secret: (whsec_\S+)/))[1]);
    const endpointId = (await l.line(/^session shared-name \(endpoint (ep_\w+)/))[1];
    await l.line(/^connected to /);
    // The endpoint is tenant A's, not the default tenant's.
    expect((await h.app.inject({ method: 'GET', url: `/v1/tenants/listen-a/endpoints/${endpointId}` })).json().url).toBe('listen://listen-a/shared-name');
    expect((await h.app.inject({ method: 'GET', url: `/v1/endpoints/${endpointId}` })).statusCode).toBe(404);

    // The same name in tenant B is another session with another endpoint.
    const inB = await h.app.inject({ method: 'POST', url: '/v1/tenants/listen-b/listen/sessions', payload: { session: 'shared-name', eventTypes: ['tenanted.*'] } });
    expect(inB.statusCode).toBe(201);
    expect(inB.json().endpointId).not.toBe(endpointId);
    // A's random session id answers 404 in tenant B and in the default tenant, even to the admin key.
    const random = (await h.app.inject({ method: 'POST', url: '/v1/tenants/listen-a/listen/sessions', payload: {}, headers: asKey(keyA) })).json().session;
    for (const t of ['/v1/tenants/listen-b', '/v1']) {
      expect((await h.app.inject({ method: 'GET', url: `${t}/listen/sessions/${random}/stream` })).statusCode).toBe(404);
      expect((await h.app.inject({ method: 'POST', url: `${t}/listen/sessions/${random}/results`, payload: { requestId: '1', status: 200 } })).statusCode).toBe(404);
      const other = { session: random, eventTypes: ['nothing.here'] };
      expect((await h.app.inject({ method: 'POST', url: `${t}/listen/sessions`, payload: other })).json().resumed).toBe(false);
    }
    // A's key cannot listen on B or on the default tenant.
    expect((await h.app.inject({ method: 'POST', url: '/v1/tenants/listen-b/listen/sessions', payload: {}, headers: asKey(keyA) })).statusCode).toBe(404);
    expect((await h.app.inject({ method: 'POST', url: '/v1/listen/sessions', payload: {}, headers: asKey(keyA) })).statusCode).toBe(404);
    const wrong = listen(args, { HOOKLINE_API_KEY: keyA });
    expect(await wrong.exited).toBe(1);
    expect(wrong.err.join('\n')).toMatch(/404 .*tenant default/);

    const send = async (prefix: string, n: number) =>
      (await h.app.inject({ method: 'POST', url: `${prefix}/events`, payload: { type: 'tenanted.sent', data: { n } } })).json() as { id: string };
    const elsewhere = [await send('/v1', 1), await send('/v1/tenants/listen-b', 2)];
    const mine = await send('/v1/tenants/listen-a', 3);
    await l.line(new RegExp(`${mine.id}  tenanted.sent  -> 200`));
    for (const e of elsewhere) {
      const deliveries = (await h.app.inject({ method: 'GET', url: `/v1/events/${e.id}` })).json().deliveries ?? [];
      expect(deliveries.map((d: { endpointId: string }) => d.endpointId)).not.toContain(endpointId);
      expect(l.out.join('\n')).not.toContain(e.id);
    }
    const ofB = (await h.app.inject({ method: 'GET', url: `/v1/tenants/listen-b/events/${elsewhere[1].id}` })).json().deliveries;
    expect(ofB.map((d: { endpointId: string }) => d.endpointId)).toEqual([inB.json().endpointId]);
    expect(l.out.join('\n')).toContain(mine.id);
  });

  it('serves both mounts from one hub: one LISTEN connection in the API for listeners on /v1 and on a tenant', async () => {
    const a = listen(['--forward-to', local.url, '--api', base, '--session', 'mount-default', '--events', 'nothing.here']);
    const b = listen(['--forward-to', local.url, '--api', base, '--session', 'mount-tenant', '--events', 'nothing.here', '--tenant', 'listen-a']);
    await a.line(/^connected to /);
    await b.line(/^connected to /);
    // The API's hub LISTENs on hookline_listen (the worker's transport on hookline_listen_answer);
    // a hub per mount would hold two.
    const { rows } = await h.pool.query(
      `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND query = 'LISTEN hookline_listen'`,
    );
    expect(rows[0].n).toBe(1);
  });

  it('a key without the manage scope cannot listen, on its own tenant either', async () => {
    const key = (await h.app.inject({ method: 'POST', url: '/v1/api-keys', payload: { name: 'publish only', tenantId: 'listen-a', scopes: ['publish', 'read'] } })).json().key as string;
    const l = listen(['--forward-to', local.url, '--api', base, '--tenant', 'listen-a'], { HOOKLINE_API_KEY: key });
    expect(await l.exited).toBe(1);
    expect(l.err.join('\n')).toMatch(/403 authorization: this route needs the manage scope/);
    const headers = { authorization: `Bearer ${key}` };
    expect((await h.app.inject({ method: 'POST', url: '/v1/tenants/listen-a/listen/sessions', payload: {}, headers })).statusCode).toBe(403);
    expect((await h.app.inject({ method: 'GET', url: '/v1/tenants/listen-a/listen/sessions/shared-name/stream', headers })).statusCode).toBe(403);
  });

  it('refuses a malformed --tenant before calling the API', async () => {
    const l = listen(['--forward-to', local.url, '--api', base, '--tenant', '../x']);
    expect(await l.exited).toBe(1);
    expect(l.err.join('\n')).toMatch(/--tenant: not a tenant id/);
  });

  it('a second listener on the same session takes it over; the first one stops', async () => {
    const args = ['--forward-to', local.url, '--api', base, '--session', 'first'];
    const a = listen(args);
    await a.line(/^connected to /);
    const b = listen(args);
    await b.line(/^connected to /);
    expect(await a.exited).toBe(1);
    expect(a.err.join('\n')).toMatch(/took over session first/);
    const ev = await sendEvent(h.app, { type: 'listen.after-takeover', data: {} });
    await waitFor(delivered(ev.id), 60_000, 'delivered through the second listener');
    await b.line(new RegExp(`${ev.id}  listen.after-takeover  -> 200`));
  });

  it('across API replicas: a listener on another API takes the session over, and deliveries follow it', async () => {
    const port = await findFreePort();
    const api2 = spawnRole(h, 'api', { PORT: String(port), HOOKLINE_LOG_LEVEL: 'silent' });
    const api2Exited = new Promise((resolve) => api2.on('exit', resolve));
    try {
      await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => null))?.ok, 60_000, 'second API up');
      const a = listen(['--forward-to', local.url, '--api', base, '--session', 'first']);
      await a.line(/^connected to /);
      const b = listen(['--forward-to', local.url, '--api', `http://127.0.0.1:${port}`, '--session', 'first']);
      await b.line(/^connected to /);
      // The first API learns of the takeover from the session row, at its next heartbeat.
      expect(await a.exited).toBe(1);
      expect(a.err.join('\n')).toMatch(/took over session first/);
      const ev = await sendEvent(h.app, { type: 'listen.replica', data: {} });
      await waitFor(delivered(ev.id), 60_000, 'delivered through the other API');
      await b.line(new RegExp(`${ev.id}  listen.replica  -> 200`));
    } finally {
      api2.kill('SIGTERM');
      await api2Exited;
    }
  });

  it('sweeps the endpoint of a session gone longer than the grace period, not a connected one', async () => {
    const gone = (await h.app.inject({ method: 'POST', url: '/v1/listen/sessions', payload: { session: 'gone' } })).json();
    const l = listen(['--forward-to', local.url, '--api', base, '--session', 'kept']);
    const kept = (await l.line(/^session kept \(endpoint (ep_\w+)/))[1];
    await l.line(/^connected to /);
    await new Promise((r) => setTimeout(r, 1_500));
    const removed = await sweepSessions(h.pool, 1_000);
    expect(removed).toContain(gone.endpointId);
    expect(removed).not.toContain(kept);
    expect((await h.app.inject({ method: 'GET', url: `/v1/endpoints/${gone.endpointId}` })).statusCode).toBe(404);
    expect((await h.app.inject({ method: 'GET', url: `/v1/endpoints/${kept}` })).statusCode).toBe(200);
  });

  it('stops the listener when its endpoint is deleted', async () => {
    const l = listen(['--forward-to', local.url, '--api', base, '--session', 'deleted']);
    const endpointId = (await l.line(/^session deleted \(endpoint (ep_\w+)/))[1];
    await l.line(/^connected to /);
    expect((await h.app.inject({ method: 'DELETE', url: `/v1/endpoints/${endpointId}` })).statusCode).toBe(204);
    expect(await l.exited).toBe(1);
    expect(l.err.join('\n')).toMatch(/session deleted was removed on the API/);
  });

  it('warns a resumed listener that its endpoint is disabled', async () => {
    const opened = (await h.app.inject({ method: 'POST', url: '/v1/listen/sessions', payload: { session: 'off', eventTypes: ['off.*'] } })).json();
    expect(opened.disabledReason).toBeNull();
    await h.app.inject({ method: 'PATCH', url: `/v1/endpoints/${opened.endpointId}`, payload: { disabled: true } });
    const l = listen(['--forward-to', local.url, '--api', base, '--session', 'off']);
    await l.line(/^connected to /);
    expect(l.err.join('\n')).toMatch(new RegExp(`warning: endpoint ${opened.endpointId} is disabled`));
  });

  it('refuses listen:// endpoints made by hand', async () => {
    const created = await h.app.inject({ method: 'POST', url: '/v1/endpoints', payload: { url: 'listen://first' } });
    expect(created.statusCode).toBe(400);
    expect(created.json().message).toMatch(/url/);
    const ep = await createEndpoint(h.app, { url: local.url, eventTypes: ['nothing.here'] });
    const patched = await h.app.inject({ method: 'PATCH', url: `/v1/endpoints/${ep.id}`, payload: { url: 'listen://first' } });
    expect(patched.statusCode).toBe(400);
    expect(patched.json().message).toMatch(/url/);
    // The URL policy refuses it too, whatever schema sits in front of it.
    await expect(checkTargetUrl('listen://first', 'url', createTargetPolicy(['loopback']))).rejects.toMatchObject({
      statusCode: 422, message: expect.stringMatching(/url: listen:\/\/ endpoints are made by `hookline listen` only/),
    });
    await expect(checkTargetUrl('ftp://127.0.0.1/x', 'url', createTargetPolicy(['loopback']))).rejects.toMatchObject({ statusCode: 422 });
  });

  it('answers hostile input to its routes with a 4xx that names the field, never a 5xx', async () => {
    const hostile = fc.oneof(fc.string({ maxLength: 80 }), fc.jsonValue({ maxDepth: 2 }), fc.constantFrom('', '\u0000', '../x', 'a'.repeat(65), '*', 'invoice.*', '1', '-1', '99999999999999999999'));
    const cases = [
      { url: '/v1/listen/sessions', fields: ['session', 'eventTypes'] },
      { url: '/v1/listen/sessions/first/results', fields: ['requestId', 'status', 'headers', 'bodyBase64', 'error'] },
    ];
    const started = new Date();
    for (const c of cases) {
      await fc.assert(
        fc.asyncProperty(fc.subarray(c.fields), fc.array(hostile, { minLength: 5, maxLength: 5 }), async (keys, values) => {
          const payload = Object.fromEntries(keys.map((k, i) => [k, values[i]]));
          const res = await h.app.inject({ method: 'POST', url: c.url, payload });
          const what = `${c.url} ${JSON.stringify(payload).slice(0, 200)} → ${res.statusCode} ${res.body.slice(0, 200)}`;
          expect(res.statusCode, what).toBeLessThan(500);
          if (res.statusCode >= 400 && res.statusCode !== 404) expect(res.json().message, what).toMatch(/^body\b/);
        }),
        { numRuns: 40 },
      );
    }
    // The sessions it opened would take every later event (they subscribe to all types).
    await h.pool.query(`DELETE FROM endpoints WHERE url LIKE 'listen://%' AND created_at >= $1`, [started]);
  });

  it('seals the payload and the answer in flight when HOOKLINE_ENCRYPT_PAYLOADS is on', async () => {
    configureDataAtRest({ HOOKLINE_ENCRYPTION_KEY: TEST_ENCRYPTION_KEY, HOOKLINE_ENCRYPT_PAYLOADS: true });
    try {
      expect((await h.app.inject({ method: 'POST', url: '/v1/listen/sessions', payload: { session: 'sealed' } })).statusCode).toBe(201);
      await takeSession(h.pool, 'sealed', 'test-stream');
      const body = JSON.stringify({ data: { word: 'plaintext-marker' } });
      const id = (await enqueueRequest(h.pool, 'sealed', { 'webhook-id': 'evt_sealed' }, body, 10_000))!;
      const stored = async () => (await h.pool.query('SELECT body, response_body FROM listen_requests WHERE id = $1', [id])).rows[0];
      expect((await stored()).body).not.toContain('plaintext-marker');
      const [claimed] = await claimRequests(h.pool, 'sealed', 'test-stream');
      expect(claimed.body).toBe(body);
      const answer = { status: 200, headers: {}, body: Buffer.from('echo plaintext-marker'), errorCode: null, errorMessage: null };
      expect(await answerRequest(h.pool, 'sealed', id, answer)).toBe(true);
      expect((await stored()).response_body.toString()).not.toContain('plaintext-marker');
      expect((await takeAnswer(h.pool, id))!.body!.toString()).toBe('echo plaintext-marker');
    } finally {
      configureDataAtRest({ HOOKLINE_ENCRYPTION_KEY: TEST_ENCRYPTION_KEY, HOOKLINE_ENCRYPT_PAYLOADS: false });
    }
  });
});

describe('hookline listen: who may connect', () => {
  const KEY = 'listen-test-admin-key-0123456789';
  const METRICS_TOKEN = 'listen-test-metrics-token-0123';
  let api: Awaited<ReturnType<typeof createApiOnly>>;
  let base: string;
  let local: Receiver;

  beforeAll(async () => {
    api = await createApiOnly({ HOOKLINE_API_KEY: KEY, HOOKLINE_METRICS_TOKEN: METRICS_TOKEN, HOOKLINE_LISTEN_GRACE_MS: '500' });
    local = await startReceiver();
    await api.app.listen({ port: 0, host: '127.0.0.1' });
    base = `http://127.0.0.1:${(api.app.server.address() as AddressInfo).port}`;
  });
  afterEach(() => {
    for (const p of running) p.kill('SIGKILL');
  });
  afterAll(async () => {
    await local?.close();
    await api?.close();
  });

  it('refuses no key and a key without the manage scope', async () => {
    for (const env of [{} as Record<string, string>, { HOOKLINE_API_KEY: METRICS_TOKEN }, { HOOKLINE_API_KEY: 'wrong-key-wrong-key-wrong' }]) {
      const l = listen(['--forward-to', local.url, '--api', base], env);
      expect(await l.exited).toBe(1);
      expect(l.err.join('\n')).toMatch(/401 authorization: send "Bearer </);
    }
    for (const auth of [undefined, `Bearer ${METRICS_TOKEN}`]) {
      const headers = auth ? { authorization: auth } : {};
      expect((await api.app.inject({ method: 'POST', url: '/v1/listen/sessions', payload: {}, headers })).statusCode).toBe(401);
      expect((await api.app.inject({ method: 'GET', url: '/v1/listen/sessions/x/stream', headers })).statusCode).toBe(401);
      expect((await api.app.inject({ method: 'POST', url: '/v1/listen/sessions/x/results', payload: { requestId: '1', status: 200 }, headers })).statusCode).toBe(401);
    }
  });

  it('connects with the admin key, and the sweep removes the session once it is gone past the grace', async () => {
    const l = listen(['--forward-to', local.url, '--api', base, '--session', 'keyed'], { HOOKLINE_API_KEY: KEY });
    const endpointId = (await l.line(/^session keyed \(endpoint (ep_\w+)/))[1];
    await l.line(/^connected to /);
    const get = () => api.app.inject({ method: 'GET', url: `/v1/endpoints/${endpointId}`, headers: { authorization: `Bearer ${KEY}` } });
    await new Promise((r) => setTimeout(r, 1_500)); // three grace periods: connected, so kept
    expect((await get()).statusCode).toBe(200);
    l.proc.kill('SIGKILL');
    await waitFor(async () => (await get()).statusCode === 404, 30_000, 'the endpoint swept after the grace period');
  });

  it('answers bad input with a 4xx naming the field', async () => {
    const headers = { authorization: `Bearer ${KEY}` };
    const bad = await api.app.inject({ method: 'POST', url: '/v1/listen/sessions', payload: { session: 'no spaces/here' }, headers });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().message).toMatch(/session/);
    const result = await api.app.inject({ method: 'POST', url: '/v1/listen/sessions/keyed/results', payload: { requestId: '1' }, headers });
    expect(result.statusCode).toBe(400);
    expect(result.json().message).toMatch(/status/);
    const unknown = await api.app.inject({ method: 'POST', url: '/v1/listen/sessions/nope/results', payload: { requestId: '1', status: 200 }, headers });
    expect(unknown.statusCode).toBe(404);
    expect((await api.app.inject({ method: 'GET', url: '/v1/listen/sessions/nope/stream', headers })).statusCode).toBe(404);
  });
});

describe('hookline listen: a web page cannot take a session over (issue 21 item 7)', () => {
  let api: Awaited<ReturnType<typeof createApiOnly>>;
  let port: number;

  beforeAll(async () => {
    // Keyless dev: loopback, no HOOKLINE_API_KEY, so only the cross-site check stands in the way.
    api = await createApiOnly({ HOOKLINE_ALLOWED_TARGETS: 'loopback' });
    await api.app.listen({ port: 0, host: '127.0.0.1' });
    port = (api.app.server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    await api?.close();
  });

  /** A held stream as the CLI holds it; `events` collects the SSE event names it got. */
  function openStream(session: string): Promise<{ events: string[]; close(): void }> {
    return new Promise((resolve, reject) => {
      const events: string[] = [];
      const req = http.get({ host: '127.0.0.1', port, path: `/v1/listen/sessions/${session}/stream`, headers: { accept: 'text/event-stream' } }, (res) => {
        if (res.statusCode !== 200) return reject(new Error(`stream: ${res.statusCode}`));
        res.on('data', (chunk: Buffer) => {
          for (const m of chunk.toString('utf8').matchAll(/^event: (\w+)$/gm)) events.push(m[1]);
          if (events.includes('ready')) resolve({ events, close: () => req.destroy() });
        });
      });
      req.on('error', () => {});
    });
  }

  it.each([
    [{ 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'no-cors', 'sec-fetch-dest': 'image' }], // <img src=…/stream>
    [{ 'sec-fetch-site': 'same-site' }],
    [{ origin: 'https://evil.example' }],
    [{ origin: 'null' }],
    [{ origin: 'http://127.0.0.1.evil.example' }],
    [{ accept: 'image/avif,image/webp,*/*' }], // the <img> of a browser that sends no Sec-Fetch-Site
    [{}],
  ])('refuses GET …/stream with %j and leaves the listener attached', async (headers) => {
    const session = `laptop-${Math.random().toString(36).slice(2, 8)}`;
    expect((await api.app.inject({ method: 'POST', url: '/v1/listen/sessions', payload: { session } })).statusCode).toBe(201);
    const held = await openStream(session);
    try {
      const browser = Object.keys(headers).some((k) => k.startsWith('sec-fetch') || k === 'origin');
      const res = await raw(port, request('GET', `/v1/listen/sessions/${session}/stream`, headers));
      expect(res.status, res.head).toBe(browser ? 403 : 406);
      expect(JSON.parse(res.body)).toMatchObject({ code: browser ? 'cross_site' : 'not_acceptable' });
      const head = await raw(port, request('HEAD', `/v1/listen/sessions/${session}/stream`, headers));
      expect(head.status, head.head).toBe(browser ? 403 : 406);
      // A real takeover (another CLI) still replaces it, so the listener was there all along and
      // the refused requests never reached the hub.
      const next = await openStream(session);
      await waitFor(() => held.events.includes('replaced'), 10_000, 'the held stream replaced by the second CLI');
      expect(held.events).toEqual(['ready', 'replaced']);
      next.close();
    } finally {
      held.close();
    }
  });
});
