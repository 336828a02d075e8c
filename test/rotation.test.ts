// Secret rotation without downtime, verified by receivers built with the kit, and the promise
// that secrets never reach Temporal history.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Webhook as SvixWebhook } from 'svix';
import { verifyWebhook } from '../src/receiver';
import {
  createEndpoint, createHarness, FAST_RETRY, sendEvent, startReceiver, startVerifyingReceiver, waitFor, workflowHistoryText,
  type Harness, type Receiver,
} from './helpers';

describe('secret rotation', () => {
  let h: Harness;
  const receivers: Receiver[] = [];

  beforeAll(async () => {
    h = await createHarness();
  });
  afterAll(async () => {
    for (const r of receivers) await r.close();
    await h?.close();
  });

  const delivered = (eventId: string, endpointId: string) => async () => {
    const res = await h.app.inject({ method: 'GET', url: `/v1/events/${eventId}` });
    return res.json().deliveries?.find((d: any) => d.endpointId === endpointId)?.status === 'delivered';
  };

  it('keeps old and new secrets signing during the overlap, then only the new one', async () => {
    let receiverSecrets: string[] = [];
    const rx = await startVerifyingReceiver(() => receiverSecrets);
    receivers.push(rx);
    const ep = await createEndpoint(h.app, { url: rx.url, eventTypes: ['rotation.test'], retry: FAST_RETRY });
    const oldSecret = ep.secret;
    receiverSecrets = [oldSecret];

    const e1 = await sendEvent(h.app, { type: 'rotation.test', data: { n: 1 } });
    await waitFor(delivered(e1.id, ep.id), 30_000, 'e1 delivered');

    const rotated = await h.app.inject({ method: 'POST', url: `/v1/endpoints/${ep.id}/secret/rotate`, payload: { expireOldAfter: '1 hour' } });
    expect(rotated.statusCode).toBe(200);
    const newSecret = rotated.json().secret as string;
    expect(newSecret).toMatch(/^whsec_/);
    expect(newSecret).not.toBe(oldSecret);

    // During the overlap: a receiver still on the old secret and one already on the new both verify.
    const e2 = await sendEvent(h.app, { type: 'rotation.test', data: { n: 2 } });
    await waitFor(delivered(e2.id, ep.id), 30_000, 'e2 delivered with the old secret');
    const overlap = rx.requests[rx.requests.length - 1];
    expect(String(overlap.headers['webhook-signature']).split(' ')).toHaveLength(2);
    expect(() => verifyWebhook({ headers: overlap.headers, rawBody: overlap.body, secrets: newSecret })).not.toThrow();
    // The svix library (receivers that use it) accepts the two-signature header too.
    expect(() => new SvixWebhook(newSecret).verify(overlap.body, overlap.headers as Record<string, string>)).not.toThrow();

    receiverSecrets = [newSecret];
    const e3 = await sendEvent(h.app, { type: 'rotation.test', data: { n: 3 } });
    await waitFor(delivered(e3.id, ep.id), 30_000, 'e3 delivered with the new secret');
    expect(rx.verdicts.every((v) => v.ok)).toBe(true);

    // Expire the old secrets now: only the newest signs, and the old one no longer verifies.
    const again = await h.app.inject({ method: 'POST', url: `/v1/endpoints/${ep.id}/secret/rotate`, payload: { expireOldAfter: 0 } });
    const newest = again.json().secret as string;
    receiverSecrets = [newest];
    const e4 = await sendEvent(h.app, { type: 'rotation.test', data: { n: 4 } });
    await waitFor(delivered(e4.id, ep.id), 30_000, 'e4 delivered');
    const last = rx.requests[rx.requests.length - 1];
    expect(String(last.headers['webhook-signature']).split(' ')).toHaveLength(1);
    expect(() => verifyWebhook({ headers: last.headers, rawBody: last.body, secrets: [oldSecret, newSecret] })).toThrow();
    expect(rx.verdicts.every((v) => v.ok)).toBe(true);
  });

  it('never puts a secret into workflow history, and never shows it again after create', async () => {
    const rx = await startReceiver();
    receivers.push(rx);
    const ep = await createEndpoint(h.app, { url: rx.url, eventTypes: ['secret.test'], retry: FAST_RETRY });
    const ev = await sendEvent(h.app, { type: 'secret.test', data: { n: 1 } });
    await waitFor(delivered(ev.id, ep.id), 30_000, 'delivered');
    // Every string and payload byte in the history, decoded — what the Web UI would show.
    const text = await workflowHistoryText(h.client, ev.id);
    expect(text).toContain(ep.id); // the history is readable here…
    expect(text).not.toContain(ep.secret.slice(6)); // …and holds no secret
    const read = await h.app.inject({ method: 'GET', url: `/v1/endpoints/${ep.id}` });
    expect(read.body).not.toContain(ep.secret.slice(6));
  });

  it('rejects a bad rotation request with the field named', async () => {
    const ep = await createEndpoint(h.app, { url: 'http://127.0.0.1:9/x', eventTypes: ['none.test'] });
    const res = await h.app.inject({ method: 'POST', url: `/v1/endpoints/${ep.id}/secret/rotate`, payload: { expireOldAfter: 'later' } });
    expect(res.statusCode).toBe(400);
    expect(res.json().message).toContain('body.expireOldAfter');
    const missing = await h.app.inject({ method: 'POST', url: '/v1/endpoints/ep_nope/secret/rotate', payload: {} });
    expect(missing.statusCode).toBe(404);
  });
});
