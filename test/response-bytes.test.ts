// A receiver's answer is bytes, not text: a 200 whose body holds a NUL or gzip must be recorded
// as delivered after one POST (it once failed to record, retried, and dead-lettered a webhook
// the receiver had taken). Real receivers on 127.0.0.1, real Temporal and Postgres.
import http from 'node:http';
import { gzipSync } from 'node:zlib';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createActivities, toAttemptRecord } from '../activities';
import { recordAttempt, ensureDeliveries, listAttempts } from '../src/db/deliveries';
import { createTargetPolicy } from '../src/net/address-policy';
import { createEndpoint, createHarness, FAST_RETRY, sendEvent, waitFor, type Harness } from './helpers';

/** A receiver that answers every POST with 200 and these exact bytes. */
async function bytesReceiver(body: Buffer, headers: Record<string, string> = {}) {
  let posts = 0;
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      posts++;
      res.writeHead(200, { 'content-type': 'application/octet-stream', ...headers });
      res.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    posts: () => posts,
    close: () => new Promise<void>((resolve) => (server.closeAllConnections(), server.close(() => resolve()))),
  };
}

describe('receiver response bytes', () => {
  let h: Harness;

  beforeAll(async () => {
    h = await createHarness();
  });
  afterAll(async () => {
    await h?.close();
  });

  const deliveryOf = async (eventId: string, endpointId: string) =>
    (await h.app.inject({ method: 'GET', url: `/v1/events/${eventId}` })).json().deliveries?.find((d: any) => d.endpointId === endpointId);

  it.each([
    ['a NUL', Buffer.from('ok\u0000done'), {}],
    ['gzip', gzipSync(Buffer.from('{"ok":true}')), { 'content-encoding': 'gzip' }],
    ['arbitrary binary', Buffer.from([0x00, 0xff, 0xfe, 0x80, 0xc3, 0x28]), {}],
  ])('a 200 with %s in its body is delivered after one POST', async (_what, body, headers) => {
    const rx = await bytesReceiver(body, headers);
    try {
      const type = `bytes.t${Math.random().toString(36).slice(2, 8)}`;
      const ep = await createEndpoint(h.app, { eventTypes: [type], url: rx.url, retry: FAST_RETRY });
      const ev = await sendEvent(h.app, { type, data: {} });
      const d = await waitFor(async () => {
        const x = await deliveryOf(ev.id, ep.id);
        return x && ['delivered', 'dead_lettered'].includes(x.status) ? x : null;
      }, 30_000, 'a final status');
      expect(d.status).toBe('delivered');
      expect(rx.posts()).toBe(1);
      const attempts = (await h.app.inject({ method: 'GET', url: `/v1/deliveries/${ev.id}/${ep.id}/attempts` })).json().data;
      expect(attempts).toHaveLength(1);
      expect(attempts[0]).toMatchObject({ statusCode: 200, outcome: 'delivered', responseBodyEncoding: expect.stringMatching(/^(utf8|base64)$/) });
      if (_what === 'a NUL') expect(attempts[0]).toMatchObject({ responseBody: 'ok\u0000done', responseBodyEncoding: 'utf8' });
    } finally {
      await rx.close();
    }
  });

  it('keeps the exact bytes it is given and shows non-UTF-8 as base64', async () => {
    const ev = await sendEvent(h.app, { type: 'bytes.direct', data: {} });
    await ensureDeliveries(h.pool, ev.id, 'bytes.direct', ['ep_bytes']);
    const gz = gzipSync(Buffer.from('hello'));
    const base = { eventId: ev.id, endpointId: 'ep_bytes', startedAt: new Date(), latencyMs: 1, statusCode: 502, outcome: 'retrying' as const };
    await recordAttempt(h.pool, { ...base, error: 'HTTP 502 \u0000 from upstream', responseBody: gz });
    await recordAttempt(h.pool, { ...base, error: null, responseBody: 'plain text é' });
    await recordAttempt(h.pool, { ...base, error: null, responseBody: null });
    const [binary, text, none] = await listAttempts(h.pool, ev.id, 'ep_bytes');
    expect(binary).toMatchObject({ responseBody: gz.toString('base64'), responseBodyEncoding: 'base64', error: 'HTTP 502 \ufffd from upstream' });
    expect(Buffer.from(binary.responseBody!, 'base64').equals(gz)).toBe(true);
    expect(text).toMatchObject({ responseBody: 'plain text é', responseBodyEncoding: 'utf8' });
    expect(none).toMatchObject({ responseBody: null, responseBodyEncoding: null });
    const api = await h.app.inject({ method: 'GET', url: `/v1/deliveries/${ev.id}/ep_bytes/attempts` });
    expect(api.statusCode).toBe(200);
    expect(api.json().data[0]).toMatchObject({ responseBodyEncoding: 'base64', responseBody: gz.toString('base64') });
  });

  it('a delivered attempt recorded late (through the workflow, as JSON) keeps its bytes', async () => {
    const ev = await sendEvent(h.app, { type: 'bytes.late', data: {} });
    await ensureDeliveries(h.pool, ev.id, 'bytes.late', ['ep_late']);
    const bytes = Buffer.from([0, 1, 0xff, 0x1f, 0x8b]);
    const record = toAttemptRecord({
      eventId: ev.id, endpointId: 'ep_late', startedAt: new Date(), latencyMs: 1, statusCode: 200, error: null,
      outcome: 'delivered', responseBody: bytes,
    });
    const activities = createActivities({ pool: h.pool, requestTimeoutMs: 1_000, responseBodyMaxBytes: 1_024, targetPolicy: createTargetPolicy([]) });
    // What the workflow hands back: the record after Temporal's JSON payload converter.
    await activities.recordLateAttempt(JSON.parse(JSON.stringify(record)));
    const [late] = await listAttempts(h.pool, ev.id, 'ep_late');
    expect(late).toMatchObject({ statusCode: 200, outcome: 'delivered', responseBodyEncoding: 'base64', responseBody: bytes.toString('base64') });
  });
});
