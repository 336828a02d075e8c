// Operational webhooks on the real stack: Hookline's own hookline.* events (a dead letter, a drop,
// an endpoint disabled by a 410) reach an operator endpoint subscribed to `hookline.*`, signed
// like any delivery and inspectable like any event; a catch-all endpoint never gets them; a
// producer cannot publish them; the loop guard and the storm cap hold.
import pg from 'pg';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Ajv from 'ajv';
import addFormats from 'ajv-formats';
import { enqueueEvent } from '../src/producer';
import { matchesEventType } from '../src/matching';
import { disabledEventId, OperationalEventTypes, OPERATOR_TENANT, redactReason } from '../src/ops-events';
import type { DeliveryStatusReport } from '../activities';
import {
  createEndpoint, createHarness, FAST_RETRY, sendEvent, startReceiver, startVerifyingReceiver, waitFor,
  type Harness, type Receiver,
} from './helpers';

/** Small so a storm is a few events; long so a slow box never sees a window end mid-test. */
const LIMIT = { perWindow: 3, windowMs: 60 * 60_000 };
/** One request as the operator's receiver saw it, verified with the standardwebhooks library. */
type OpsEvent = { id: string; type: string; timestamp: string; data: Record<string, any> };

describe('operational webhooks', () => {
  let h: Harness;
  let operator: Awaited<ReturnType<typeof startVerifyingReceiver>>;
  let operatorSecret = '';
  let operatorEp: { id: string };
  let catchAll: Receiver;
  let star: Receiver;
  const receivers: Receiver[] = [];
  /** Event ids whose first markDelivery fails after its writes, so Temporal retries it. */
  const failStatusOnce = new Set<string>();
  const statusReports: DeliveryStatusReport[] = [];

  beforeAll(async () => {
    h = await createHarness({
      activities: {
        opsEventLimit: LIMIT,
        onDeliveryStatus: (s) => {
          statusReports.push(s);
          if (s.status === 'dead_lettered' && failStatusOnce.delete(s.eventId)) throw new Error('worker lost after the writes');
        },
      },
    });
    operator = await startVerifyingReceiver(() => [operatorSecret]);
    receivers.push(operator);
    operatorEp = await createEndpoint(h.app, { url: operator.url, eventTypes: ['hookline.*'], retry: FAST_RETRY });
    operatorSecret = (operatorEp as any).secret;
    // Two catch-alls: no eventTypes at all, and `*`.
    catchAll = await startReceiver();
    star = await startReceiver();
    receivers.push(catchAll, star);
    await createEndpoint(h.app, { url: catchAll.url });
    await createEndpoint(h.app, { url: star.url, eventTypes: ['*'] });
  });
  afterAll(async () => {
    for (const r of receivers) await r.close();
    await h?.close();
  });

  /** What the operator received, each request verified by the standardwebhooks library. */
  function received(): OpsEvent[] {
    const wh = new Webhook(operatorSecret);
    return operator.requests.map((r) => wh.verify(r.body, {
      'webhook-id': r.headers['webhook-id'] as string,
      'webhook-timestamp': r.headers['webhook-timestamp'] as string,
      'webhook-signature': r.headers['webhook-signature'] as string,
    }) as OpsEvent);
  }
  const about = (type: string, pred: (d: Record<string, any>) => boolean) => () => received().filter((e) => e.type === type && pred(e.data));
  const waitOne = async (type: string, pred: (d: Record<string, any>) => boolean, what: string) =>
    (await waitFor(() => about(type, pred)()[0], 60_000, what));

  /** An endpoint whose receiver answers `status` to everything, for `types`. */
  async function failing(status: number, types: string[], retry: Record<string, unknown> = {}) {
    const rx = await startReceiver();
    receivers.push(rx);
    rx.respond = () => ({ status });
    const ep = await createEndpoint(h.app, { url: rx.url, eventTypes: types, retry: { ...FAST_RETRY, maxAttempts: 1, ...retry } });
    return { rx, ep };
  }

  /** Operational events stored about `eventId`'s deliveries in `tenant` (payloads are not encrypted in tests). */
  const storedAbout = async (type: string, eventId: string, tenant = 'default') =>
    (await h.pool.query("SELECT id FROM events WHERE type = $1 AND data->>'eventId' = $2 AND tenant_id = $3", [type, eventId, tenant])).rows.map((r) => r.id as string);

  it('sends hookline.delivery.dead_lettered, signed, inspectable in the API and the Web UI as any event', async () => {
    const { ep } = await failing(400, ['ops.dead']);
    const ev = await sendEvent(h.app, { type: 'ops.dead', data: { card: 'PAYLOAD-SECRET-4242' } });
    const got = await waitOne('hookline.delivery.dead_lettered', (d) => d.eventId === ev.id, 'the dead-letter event');

    expect(got.data).toMatchObject({ eventId: ev.id, eventType: 'ops.dead', endpointId: ep.id, attempts: 1, lastStatusCode: 400 });
    expect(got.data.reason).toMatch(/400/);
    expect(Date.parse(got.data.deadLetteredAt)).not.toBeNaN();
    // Ids, type, reason, timestamps — never the payload or a secret.
    const raw = operator.requests.find((r) => r.headers['webhook-id'] === got.id)!.body;
    expect(raw).not.toContain('PAYLOAD-SECRET-4242');
    expect(raw).not.toMatch(/whsec_/);
    expect(operator.verdicts.find((v) => v.id === got.id)?.ok).toBe(true);

    // The event's data follows the schema its catalogue entry publishes.
    const listed = await h.app.inject({ method: 'GET', url: '/v1/event-types?limit=100' });
    const entry = listed.json().data.find((t: any) => t.name === 'hookline.delivery.dead_lettered');
    const ajv = new Ajv({ strict: false });
    addFormats(ajv);
    expect(ajv.validate(entry.versions[0].schema, got.data)).toBe(true);

    // Inspectable like any event: GET /v1/events/:id and its workflow, found by type in the Web UI.
    const res = await h.app.inject({ method: 'GET', url: `/v1/events/${got.id}` });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ id: got.id, type: 'hookline.delivery.dead_lettered' });
    await waitFor(async () => (await h.app.inject({ method: 'GET', url: `/v1/events/${got.id}` })).json()
      .deliveries.some((d: any) => d.endpointId === operatorEp.id && d.status === 'delivered'), 30_000, 'delivered status');
    const desc = await h.client.workflow.getHandle(got.id).describe();
    expect(desc.searchAttributes.EventType).toEqual(['hookline.delivery.dead_lettered']);
  });

  it('sends hookline.delivery.dropped when a dead letter outlives its retention', async () => {
    const { ep } = await failing(400, ['ops.drop'], { deadLetterRetention: '1s' });
    const ev = await sendEvent(h.app, { type: 'ops.drop', data: {} });
    const dropped = await waitOne('hookline.delivery.dropped', (d) => d.eventId === ev.id, 'the drop event');
    expect(dropped.data).toMatchObject({ eventId: ev.id, eventType: 'ops.drop', endpointId: ep.id });
    expect(Date.parse(dropped.data.droppedAt)).not.toBeNaN();
    expect(about('hookline.delivery.dead_lettered', (d) => d.eventId === ev.id)()).toHaveLength(1);
  });

  it('sends hookline.endpoint.disabled with the reason when a 410 disables an endpoint', async () => {
    const { ep } = await failing(410, ['ops.gone'], { maxAttempts: 5 });
    const ev = await sendEvent(h.app, { type: 'ops.gone', data: {} });
    const got = await waitOne('hookline.endpoint.disabled', (d) => d.endpointId === ep.id, 'the disabled event');
    expect(got.data).toMatchObject({ endpointId: ep.id, reason: 'receiver answered 410 Gone', statusCode: 410, eventId: ev.id });
    expect(Date.parse(got.data.disabledAt)).not.toBeNaN();
    const row = await h.app.inject({ method: 'GET', url: `/v1/endpoints/${ep.id}` });
    expect(row.json().disabled).toBe(true);
    // The delivery the 410 ended is a dead letter too, and says why.
    const dl = await waitOne('hookline.delivery.dead_lettered', (d) => d.eventId === ev.id, 'its dead letter');
    expect(dl.data.reason).toMatch(/EndpointGone/);
  });

  it('emits one event per transition when markDelivery is retried after its writes', async () => {
    const { ep } = await failing(400, ['ops.retried']);
    const ev = { id: `evt_retried_${Date.now()}` };
    failStatusOnce.add(ev.id);
    await sendEvent(h.app, { type: 'ops.retried', id: ev.id, data: {} });
    await waitOne('hookline.delivery.dead_lettered', (d) => d.eventId === ev.id, 'the dead-letter event');
    // The activity ran twice (the first failed after writing status and event)…
    await waitFor(() => statusReports.filter((s) => s.eventId === ev.id && s.status === 'dead_lettered').length === 2, 30_000, 'the retry');
    // …and the second found its event written: one in the database, one at the receiver.
    expect(await storedAbout('hookline.delivery.dead_lettered', ev.id)).toHaveLength(1);
    expect(await storedAbout('hookline.delivery.dead_lettered', ev.id, OPERATOR_TENANT)).toHaveLength(1);
    expect(about('hookline.delivery.dead_lettered', (d) => d.eventId === ev.id && d.endpointId === ep.id)()).toHaveLength(1);
  });

  it('keeps hookline.* events from catch-all endpoints, and keeps producers from publishing them', async () => {
    // By now every earlier test's events went to the catch-alls; none of Hookline's own did.
    expect(received().length).toBeGreaterThan(0);
    for (const rx of [catchAll, star]) {
      expect(rx.requests.length).toBeGreaterThan(0);
      expect(rx.requests.filter((r) => JSON.parse(r.body).type.startsWith('hookline.'))).toEqual([]);
    }
    expect(matchesEventType(null, 'hookline.delivery.dropped')).toBe(false);
    expect(matchesEventType(['*'], 'hookline.delivery.dropped')).toBe(false);
    expect(matchesEventType(['hookline.delivery.*'], 'hookline.delivery.dropped')).toBe(true);
    expect(matchesEventType(['hookline.endpoint.disabled'], 'hookline.endpoint.disabled')).toBe(true);

    for (const type of ['hookline.delivery.dead_lettered', 'hookline.anything']) {
      const res = await h.app.inject({ method: 'POST', url: '/v1/events', payload: { type, data: {} } });
      expect(res.statusCode).toBe(400);
      expect(res.json()).toMatchObject({ code: 'validation_error', details: [{ path: 'body.type' }] });
      expect(res.json().message).toMatch(/^body\.type: .*reserved/);
    }
    const db = new pg.Client({ connectionString: h.config.DATABASE_URL });
    await db.connect();
    try {
      await db.query('BEGIN');
      await expect(enqueueEvent(db, { type: 'hookline.endpoint.disabled', data: {} })).rejects.toThrow(/^type: .*reserved/);
      await db.query('ROLLBACK');
    } finally {
      await db.end();
    }
    const reg = await h.app.inject({ method: 'POST', url: '/v1/event-types', payload: { name: 'hookline.mine', description: 'x' } });
    expect(reg.statusCode).toBe(400);
    expect(reg.json().details[0].path).toBe('body.name');
    const patch = await h.app.inject({ method: 'PATCH', url: '/v1/event-types/hookline.delivery.dropped', payload: { deprecated: true } });
    expect(patch.statusCode).toBe(400);
  });

  it('lists every operational type in the catalogue with a description and a schema', async () => {
    await h.app.inject({ method: 'POST', url: '/v1/event-types', payload: { name: 'zeta.thing', description: 'after hookline' } });
    await h.app.inject({ method: 'POST', url: '/v1/event-types', payload: { name: 'alpha.thing', description: 'before hookline' } });
    // Paged two at a time, so the built-ins merge into the registered ones across pages.
    const names: string[] = [];
    for (let cursor: string | null = ''; cursor !== null;) {
      const res: { statusCode: number; json(): any } = await h.app.inject({ method: 'GET', url: `/v1/event-types?limit=2${cursor ? `&cursor=${cursor}` : ''}` });
      expect(res.statusCode).toBe(200);
      names.push(...res.json().data.map((t: any) => t.name));
      cursor = res.json().nextCursor;
    }
    expect(names).toEqual(['alpha.thing', ...[...OperationalEventTypes].sort(), 'zeta.thing']);
    for (const name of OperationalEventTypes) {
      const t = (await h.app.inject({ method: 'GET', url: `/v1/event-types/${name}` })).json();
      expect(t.description.length).toBeGreaterThan(20);
      // Each is about an endpoint or, for a refused start, an event.
      const about = name === 'hookline.event.start_refused' ? 'eventId' : 'endpointId';
      expect(t.versions[0]).toMatchObject({ version: 1, schema: { type: 'object', required: expect.arrayContaining([about]) } });
    }
  });

  it('loop guard: an operator endpoint that fails its own events generates nothing more', async () => {
    // A second operator endpoint that rejects everything it gets.
    const { ep: broken } = await failing(400, ['hookline.*']);
    const { ep } = await failing(400, ['ops.loop']);
    const ev = await sendEvent(h.app, { type: 'ops.loop', data: {} });
    const first = await waitOne('hookline.delivery.dead_lettered', (d) => d.eventId === ev.id, 'the dead-letter event');
    expect(first.data.endpointId).toBe(ep.id);
    // The broken operator endpoint dead-letters that event; wait until its markDelivery finished.
    await waitFor(() => markDeliveryDone(h, first.id), 60_000, "the operator endpoint's dead letter");
    const dl = await h.app.inject({ method: 'GET', url: `/v1/dead-letters?endpointId=${broken.id}` });
    expect(dl.json().data.map((d: any) => d.eventId)).toContain(first.id);
    // Nothing was emitted about it: no event about a hookline.* delivery exists at all.
    const { rows } = await h.pool.query("SELECT id FROM events WHERE type LIKE 'hookline.%' AND data->>'eventType' LIKE 'hookline.%'");
    expect(rows).toEqual([]);
    expect(await storedAbout('hookline.delivery.dead_lettered', first.id)).toEqual([]);
  });

  // Issue #21 item 3: an operational event lands in the tenant it concerns, with a reason that
  // names no host or address; the full one goes only to the reserved operator tenant.
  it('emits each operational event in its own tenant with a redacted reason, and in full only to the operator feed', async () => {
    expect((await h.app.inject({ method: 'POST', url: '/v1/tenants', payload: { id: 'acme-ops' } })).statusCode).toBe(201);
    const acmeOps = await startReceiver();
    const feed = await startReceiver();
    receivers.push(acmeOps, feed);
    const create = async (tenant: string, body: Record<string, unknown>) => {
      const res = await h.app.inject({ method: 'POST', url: `/v1/tenants/${tenant}/endpoints`, payload: body });
      expect(res.statusCode, `${tenant}: ${res.body}`).toBe(201);
      return res.json() as { id: string };
    };
    await create('acme-ops', { url: acmeOps.url, eventTypes: ['hookline.*'], retry: FAST_RETRY });
    await create(OPERATOR_TENANT, { url: feed.url, eventTypes: ['hookline.*'], retry: FAST_RETRY });
    const broken = await create('acme-ops', { url: 'http://hooks.acme-internal.invalid/in', eventTypes: ['ops.tenant'], retry: { ...FAST_RETRY, maxAttempts: 1 } });
    const sent = await h.app.inject({ method: 'POST', url: '/v1/tenants/acme-ops/events', payload: { type: 'ops.tenant', data: {} } });
    const ev = sent.json() as { id: string };

    const bodies = (rx: Receiver) => rx.requests.map((r) => JSON.parse(r.body) as OpsEvent);
    const mine = (rx: Receiver) => bodies(rx).find((e) => e.type === 'hookline.delivery.dead_lettered' && e.data.eventId === ev.id);
    const own = await waitFor(() => mine(acmeOps), 60_000, "the tenant's own dead-letter event");
    const full = await waitFor(() => mine(feed), 60_000, 'the operator feed copy');
    expect(own.data).toMatchObject({ endpointId: broken.id, tenantId: 'acme-ops' });
    expect(own.data.reason).toMatch(/ENOTFOUND/);
    expect(own.data.reason).not.toMatch(/acme-internal|\.invalid/);
    expect(full.data).toMatchObject({ endpointId: broken.id, tenantId: 'acme-ops' });
    expect(full.data.reason).toContain('hooks.acme-internal.invalid');
    expect(full.id).not.toBe(own.id);

    // Stored once in each of the two tenants, never in `default`: a default-tenant key, portal
    // session or hookline.* endpoint sees nothing of it.
    const { rows } = await h.pool.query(
      "SELECT id, tenant_id FROM events WHERE type = 'hookline.delivery.dead_lettered' AND data->>'eventId' = $1 ORDER BY tenant_id", [ev.id],
    );
    expect(rows.map((r) => r.tenant_id)).toEqual([OPERATOR_TENANT, 'acme-ops'].sort());
    expect(bodies(operator).filter((e) => e.data.eventId === ev.id)).toEqual([]);
    expect((await h.app.inject({ method: 'GET', url: `/v1/events/${own.id}` })).statusCode).toBe(404);
    expect((await h.app.inject({ method: 'GET', url: `/v1/tenants/acme-ops/events/${own.id}` })).statusCode).toBe(200);
    expect((await h.app.inject({ method: 'GET', url: `/v1/tenants/acme-ops/events/${full.id}` })).statusCode).toBe(404);
  });

  // Issue #21 item 4: a producer that computes the id of a coming transition cannot publish it
  // first and so suppress the operator's hookline.endpoint.disabled.
  it('refuses operational ids on submit, and never takes a stored event of another type for the one it emits', async () => {
    const { ep } = await failing(410, ['ops.squat']);
    const loaded = (await h.app.inject({ method: 'GET', url: `/v1/endpoints/${ep.id}` })).json();
    const updatedAt = new Date(loaded.updatedAt);
    const squat = disabledEventId(ep.id, updatedAt);
    const res = await h.app.inject({ method: 'POST', url: '/v1/events', payload: { id: squat, type: 'ops.squat', data: {} } });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ code: 'validation_error', details: [{ path: 'body.id' }] });
    const db = new pg.Client({ connectionString: h.config.DATABASE_URL });
    await db.connect();
    try {
      await db.query('BEGIN');
      await expect(enqueueEvent(db, { id: squat, type: 'ops.squat', data: {} })).rejects.toThrow(/^id: /);
      await db.query('ROLLBACK');
    } finally {
      await db.end();
    }
    // A row that holds the id anyway (written before this release, or by hand) is not taken for
    // the transition: the event is still emitted.
    await h.pool.query("INSERT INTO events (id, type, data) VALUES ($1, 'ops.squat', '{}')", [squat]);
    await sendEvent(h.app, { type: 'ops.squat', data: {} });
    const got = await waitOne('hookline.endpoint.disabled', (d) => d.endpointId === ep.id, 'the disabled event');
    expect(got.id).not.toBe(squat);
    expect(got.id).toMatch(/^evt_op_/);
  });

  it('storm cap: a burst of dead letters on one endpoint sends perWindow events, then counts the rest', async () => {
    const { ep } = await failing(400, ['ops.storm']);
    const burst = 8;
    for (let i = 0; i < burst; i++) await sendEvent(h.app, { type: 'ops.storm', data: { i } });
    const window = async () => (await h.pool.query(
      "SELECT seen, suppressed FROM ops_event_windows WHERE endpoint_id = $1 AND type = 'hookline.delivery.dead_lettered'", [ep.id],
    )).rows[0];
    const mine = about('hookline.delivery.dead_lettered', (d) => d.endpointId === ep.id);
    // All counted, and the ones let through arrived (suppressed ones are never written).
    await waitFor(async () => (await window())?.seen === burst && mine().length >= LIMIT.perWindow, 60_000, 'the burst');
    // One copy in the endpoint's tenant and one in the operator feed per event let through.
    const stored = await h.pool.query(
      "SELECT tenant_id, count(*)::int AS n FROM events WHERE type = 'hookline.delivery.dead_lettered' AND data->>'endpointId' = $1 GROUP BY 1 ORDER BY 1", [ep.id],
    );
    expect(stored.rows).toEqual([{ tenant_id: OPERATOR_TENANT, n: LIMIT.perWindow }, { tenant_id: 'default', n: LIMIT.perWindow }]);
    expect(await window()).toEqual({ seen: burst, suppressed: burst - LIMIT.perWindow });
    expect(mine()).toHaveLength(LIMIT.perWindow);
    // The last one the window allows says more are held back.
    expect(mine().filter((e) => e.data.moreSuppressedUntil)).toHaveLength(1);
    // Every dead letter itself is still listed.
    const dl = await h.app.inject({ method: 'GET', url: `/v1/dead-letters?endpointId=${ep.id}` });
    expect(dl.json().data).toHaveLength(burst);

    // When the window ends, the next event carries the count held back.
    await h.pool.query("UPDATE ops_event_windows SET window_start = now() - interval '2 hours' WHERE endpoint_id = $1", [ep.id]);
    const next = await sendEvent(h.app, { type: 'ops.storm', data: { i: burst } });
    const got = await waitOne('hookline.delivery.dead_lettered', (d) => d.eventId === next.id, 'the next window');
    expect(got.data.suppressedSinceLast).toBe(burst - LIMIT.perWindow);
    expect(await window()).toEqual({ seen: 1, suppressed: 0 });
  });
});

/** True once the workflow `workflowId` has completed a markDelivery activity. */
async function markDeliveryDone(h: Harness, workflowId: string): Promise<boolean> {
  const history = await h.client.workflow.getHandle(workflowId).fetchHistory();
  const scheduled = new Set<string>();
  for (const e of history.events ?? []) {
    if (e.activityTaskScheduledEventAttributes?.activityType?.name === 'markDelivery') scheduled.add(String(e.eventId));
    const done = e.activityTaskCompletedEventAttributes;
    if (done && scheduled.has(String(done.scheduledEventId))) return true;
  }
  return false;
}

describe('redactReason', () => {
  it('keeps the failure and drops every host, address and port', () => {
    const cases: [string, RegExp, RegExp][] = [
      ['attempts exhausted: ENOTFOUND: getaddrinfo ENOTFOUND hooks.acme-internal.invalid', /^attempts exhausted: ENOTFOUND/, /acme|invalid/],
      ['attempts exhausted: ECONNREFUSED: connect ECONNREFUSED 10.1.2.3:8443', /^attempts exhausted: ECONNREFUSED/, /10\.1|8443/],
      ['deadline exceeded: ECONNRESET: read ECONNRESET [fd00::1]:443', /^deadline exceeded: ECONNRESET/, /fd00|443/],
      ['EndpointGone: HTTP 410 from api.internal.corp:9000: endpoint disabled', /^EndpointGone: HTTP 410/, /internal|9000/],
      ['PrivateTarget: EPRIVATETARGET: db.svc.cluster.local resolves to an address outside HOOKLINE_ALLOWED_TARGETS', /^PrivateTarget: EPRIVATETARGET/, /svc|cluster/],
      ['attempts exhausted: EREQUEST: request to http://user@10.0.0.7/x failed, fe80::1%eth0 unreachable', /^attempts exhausted: EREQUEST/, /10\.0|fe80|user@/],
    ];
    for (const [reason, keeps, drops] of cases) {
      const shown = redactReason(reason);
      expect(shown, reason).toMatch(keeps);
      expect(shown, reason).not.toMatch(drops);
    }
    expect(redactReason('attempts exhausted: HTTP 503')).toBe('attempts exhausted: HTTP 503');
    expect(redactReason('PermanentFailure: HTTP 400')).toBe('PermanentFailure: HTTP 400');
    expect(redactReason('attempts exhausted: ETIMEDOUT: timed out after 3000 ms')).toMatch(/^attempts exhausted: ETIMEDOUT/);
    expect(redactReason(null)).toBeNull();
  });
});
