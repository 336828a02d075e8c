// Event contracts end to end: registered types with versioned JSON Schemas, validation on
// POST /v1/events, deprecation warnings, and the unregistered-types setting — through the real
// API, outbox, relay, Temporal and an HTTP receiver.
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../src/api/app';
import { compileEventSchema, EventContractError, SCHEMA_MAX_BYTES, SCHEMA_MAX_DEPTH } from '../src/contracts';
import { createEndpoint, createHarness, sendEvent, startReceiver, waitFor, type Harness, type Receiver } from './helpers';

const INVOICE_V1 = {
  type: 'object',
  required: ['amount'],
  properties: { amount: { type: 'number' }, email: { type: 'string', format: 'email' } },
};
// v2: amounts became strings of minor units, and a currency is required.
const INVOICE_V2 = {
  type: 'object',
  required: ['amount', 'currency'],
  properties: { amount: { type: 'string', pattern: '^[0-9]+$' }, currency: { type: 'string', enum: ['EUR', 'USD'] } },
};

describe('event types', () => {
  let h: Harness;
  let rx: Receiver;

  beforeAll(async () => {
    h = await createHarness();
    rx = await startReceiver();
    await createEndpoint(h.app, { url: rx.url });
  });
  afterAll(async () => {
    await rx?.close();
    await h?.close();
  });

  const post = (url: string, payload: unknown, headers: Record<string, string> = {}) =>
    h.app.inject({ method: 'POST', url, payload: payload as any, headers });
  const patch = (name: string, payload: unknown) => h.app.inject({ method: 'PATCH', url: `/v1/event-types/${name}`, payload: payload as any });
  /** The envelope the receiver got for an event id. */
  const delivered = (id: string) =>
    waitFor(() => {
      const r = rx.requests.find((q) => q.headers['webhook-id'] === id);
      return r && JSON.parse(r.body);
    }, 30_000, `delivery of ${id}`);
  const eventCount = async () => (await h.pool.query('SELECT count(*)::int AS n FROM events')).rows[0].n as number;

  it('registers a type with a schema as version 1', async () => {
    const res = await post('/v1/event-types', { name: 'invoice.paid', description: 'An invoice was paid', schema: INVOICE_V1 });
    expect(res.statusCode).toBe(201);
    expect(res.json()).toMatchObject({
      name: 'invoice.paid',
      description: 'An invoice was paid',
      deprecated: false,
      deprecatedAt: null,
      latestVersion: 1,
      versions: [{ version: 1, schema: INVOICE_V1 }],
    });
    const read = await h.app.inject({ method: 'GET', url: '/v1/event-types/invoice.paid' });
    expect(read.statusCode).toBe(200);
    expect(read.json().versions).toHaveLength(1);
    const again = await post('/v1/event-types', { name: 'invoice.paid' });
    expect(again.statusCode).toBe(409);
    expect(again.json().message).toMatch(/^name:/);
  });

  it.each([
    [{ type: 'numbr' }, 'schema.type'],
    [{ type: 'object', properties: { a: { $ref: '#/definitions/missing' } } }, 'schema'],
    [{ $ref: 'https://example.com/remote.json' }, 'schema'],
    [{ type: 'string', pattern: '(' }, 'schema'],
    [{ $schema: 'http://json-schema.org/draft-04/schema#', type: 'object' }, 'schema.$schema'],
    [{ type: 'object', required: 'amount' }, 'schema.required'],
  ])('refuses an invalid JSON Schema %j with 422 naming schema', async (schema, path) => {
    const res = await post('/v1/event-types', { name: 'broken.schema', schema });
    expect(res.statusCode).toBe(422);
    expect(res.json()).toMatchObject({ code: 'invalid_schema', message: expect.stringMatching(new RegExp(`^${path.replace('$', '\\$')}[.:]`)) });
    expect(res.json().details[0].path.startsWith(path)).toBe(true);
    expect((await h.app.inject({ method: 'GET', url: '/v1/event-types/broken.schema' })).statusCode).toBe(404);
  });

  it('refuses a bad name or body with 400 naming the field, and unknown names with 404', async () => {
    const bad = await post('/v1/event-types', { name: 'has space' });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().message).toContain('body.name');
    const notObject = await post('/v1/event-types', { name: 'x.y', schema: 'string' });
    expect(notObject.statusCode).toBe(400);
    expect(notObject.json().message).toContain('body.schema');
    expect((await h.app.inject({ method: 'GET', url: '/v1/event-types/nope.nope' })).statusCode).toBe(404);
    const missing = await patch('nope.nope', { description: 'x' });
    expect(missing.statusCode).toBe(404);
    expect(missing.json().message).toContain('nope.nope');
  });

  it('answers 422 naming the failing path for a payload that breaks the schema, and records nothing', async () => {
    const before = await eventCount();
    const wrongType = await post('/v1/events', { type: 'invoice.paid', data: { amount: 'ten' } });
    expect(wrongType.statusCode).toBe(422);
    expect(wrongType.json()).toEqual({
      code: 'schema_violation',
      message: 'data.amount: must be number',
      details: [{ path: 'data.amount', message: 'must be number' }],
    });
    const missing = await post('/v1/events', { type: 'invoice.paid', data: {} });
    expect(missing.statusCode).toBe(422);
    expect(missing.json().details).toEqual([{ path: 'data.amount', message: 'is required' }]);
    const format = await post('/v1/events', { type: 'invoice.paid', data: { amount: 1, email: 'not-an-email' } });
    expect(format.statusCode).toBe(422);
    expect(format.json().message).toBe('data.email: must match format "email"');
    expect(await eventCount()).toBe(before);
  });

  it('delivers a valid event with its version in the envelope', async () => {
    const res = await post('/v1/events', { type: 'invoice.paid', data: { amount: 10, email: 'ada@example.com' } });
    expect(res.statusCode).toBe(202);
    expect(res.json()).toMatchObject({ type: 'invoice.paid', version: 1 });
    expect(res.headers.deprecation).toBeUndefined();
    const envelope = await delivered(res.json().id);
    expect(envelope).toMatchObject({ id: res.json().id, type: 'invoice.paid', version: 1, data: { amount: 10 } });
  });

  it('adds versions through PATCH; events default to the latest and may pin an older one', async () => {
    const v2 = await patch('invoice.paid', { schema: INVOICE_V2, description: 'Paid, amounts in minor units' });
    expect(v2.statusCode).toBe(200);
    expect(v2.json()).toMatchObject({ latestVersion: 2, description: 'Paid, amounts in minor units' });
    expect(v2.json().versions.map((v: any) => [v.version, v.schema])).toEqual([[1, INVOICE_V1], [2, INVOICE_V2]]);
    // Versions are immutable: the same schema again (keys reordered) is not a new version.
    const same = await patch('invoice.paid', { schema: { properties: INVOICE_V2.properties, required: INVOICE_V2.required, type: 'object' } });
    expect(same.json().latestVersion).toBe(2);
    const onlyDescription = await patch('invoice.paid', { description: 'Paid' });
    expect(onlyDescription.json()).toMatchObject({ latestVersion: 2, description: 'Paid' });

    // No version: the latest (v2) applies and is recorded.
    const v1Shape = await post('/v1/events', { type: 'invoice.paid', data: { amount: 10 } });
    expect(v1Shape.statusCode).toBe(422);
    // Validation stops at the first failing keyword (Ajv's advice for untrusted data).
    expect(v1Shape.json().details).toEqual([{ path: 'data.currency', message: 'is required' }]);
    const v1Amount = await post('/v1/events', { type: 'invoice.paid', data: { amount: 10, currency: 'EUR' } });
    expect(v1Amount.json().message).toBe('data.amount: must be string');
    const latest = await sendEvent(h.app, { type: 'invoice.paid', data: { amount: '1000', currency: 'EUR' } });
    expect(latest).toMatchObject({ version: 2 });
    const badEnum = await post('/v1/events', { type: 'invoice.paid', data: { amount: '1', currency: 'GBP' } });
    expect(badEnum.json().message).toBe('data.currency: must be equal to one of the allowed values: "EUR", "USD"');

    // Pinned to v1: checked against v1 and recorded as v1.
    const pinned = await sendEvent(h.app, { type: 'invoice.paid', version: 1, data: { amount: 10 } });
    expect(pinned).toMatchObject({ version: 1 });
    const pinnedBad = await post('/v1/events', { type: 'invoice.paid', version: 1, data: { amount: '1000', currency: 'EUR' } });
    expect(pinnedBad.statusCode).toBe(422);
    expect(pinnedBad.json().message).toBe('data.amount: must be number');

    const unknown = await post('/v1/events', { type: 'invoice.paid', version: 3, data: { amount: 1 } });
    expect(unknown.statusCode).toBe(422);
    expect(unknown.json()).toMatchObject({ code: 'unknown_event_version', message: expect.stringMatching(/^version: .*no version 3 \(latest is 2\)/) });

    expect(await delivered(latest.id)).toMatchObject({ version: 2, data: { amount: '1000', currency: 'EUR' } });
    expect(await delivered(pinned.id)).toMatchObject({ version: 1, data: { amount: 10 } });
  });

  it('keeps a producer-supplied id idempotent when the version was defaulted', async () => {
    const body = { id: 'inv-2001-paid', type: 'invoice.paid', data: { amount: '5', currency: 'USD' } };
    const a = await post('/v1/events', body);
    const b = await post('/v1/events', body);
    expect(a.statusCode).toBe(202);
    expect(b.statusCode).toBe(202);
    expect(b.json()).toEqual(a.json());
    const pinnedElsewhere = await post('/v1/events', { ...body, version: 1, data: { amount: 5 } });
    expect(pinnedElsewhere.statusCode).toBe(409);
  });

  it('accepts a type without a schema as is, and refuses a version for it', async () => {
    await post('/v1/event-types', { name: 'customer.created', description: 'no schema yet' });
    const ok = await sendEvent(h.app, { type: 'customer.created', data: { anything: [1, 2] } });
    expect(ok).toMatchObject({ version: null });
    const res = await post('/v1/events', { type: 'customer.created', version: 1, data: {} });
    expect(res.statusCode).toBe(422);
    expect(res.json().message).toMatch(/^version: .*no schema versions/);
    // The first PATCH with a schema makes version 1.
    const v1 = await patch('customer.created', { schema: { type: 'object', required: ['name'] } });
    expect(v1.json().latestVersion).toBe(1);
    expect((await post('/v1/events', { type: 'customer.created', data: {} })).json().message).toBe('data.name: is required');
  });

  it('supports the 2020-12 dialect when $schema asks for it', async () => {
    const schema = {
      $schema: 'https://json-schema.org/draft/2020-12/schema',
      type: 'object',
      properties: { line: { type: 'array', prefixItems: [{ type: 'string' }, { type: 'integer' }] } },
      unevaluatedProperties: false,
    };
    expect((await post('/v1/event-types', { name: 'invoice.line.added', schema })).statusCode).toBe(201);
    expect((await post('/v1/events', { type: 'invoice.line.added', data: { line: ['sku-1', 2] } })).statusCode).toBe(202);
    const bad = await post('/v1/events', { type: 'invoice.line.added', data: { line: ['sku-1', 'two'] } });
    expect(bad.json().message).toBe('data.line.1: must be integer');
    const extra = await post('/v1/events', { type: 'invoice.line.added', data: { line: [], note: 'x' } });
    expect(extra.json().details).toEqual([{ path: 'data.note', message: 'is not allowed' }]);
  });

  it('accepts a deprecated type with Deprecation and Warning headers and a warning field', async () => {
    const created = await post('/v1/event-types', { name: 'invoice.legacy', deprecated: true });
    expect(created.json()).toMatchObject({ deprecated: true, deprecatedAt: expect.any(String) });
    const res = await post('/v1/events', { type: 'invoice.legacy', data: { n: 1 } });
    expect(res.statusCode).toBe(202);
    const deprecatedAt = Math.floor(Date.parse(created.json().deprecatedAt) / 1000);
    expect(res.headers.deprecation).toBe(`@${deprecatedAt}`);
    expect(res.headers.warning).toBe('299 hookline "event type invoice.legacy is deprecated"');
    expect(res.json().warning).toBe('event type invoice.legacy is deprecated');
    expect(await delivered(res.json().id)).toMatchObject({ type: 'invoice.legacy', data: { n: 1 } });

    // Deprecating an existing type (with a schema) keeps validating it.
    await patch('invoice.paid', { deprecated: true });
    const stillChecked = await post('/v1/events', { type: 'invoice.paid', data: { amount: 1 } });
    expect(stillChecked.statusCode).toBe(422);
    const warned = await post('/v1/events', { type: 'invoice.paid', data: { amount: '1', currency: 'EUR' } });
    expect(warned.headers.deprecation).toMatch(/^@\d+$/);
    const undeprecated = await patch('invoice.paid', { deprecated: false });
    expect(undeprecated.json()).toMatchObject({ deprecated: false, deprecatedAt: null });
    const plain = await post('/v1/events', { type: 'invoice.paid', data: { amount: '1', currency: 'EUR' } });
    expect(plain.headers.deprecation).toBeUndefined();
    expect(plain.json()).not.toHaveProperty('warning');
  });

  it('accepts unregistered types by default, without a version', async () => {
    const ev = await sendEvent(h.app, { type: 'shipment.sent', data: { parcel: 'p-1' } });
    const envelope = await delivered(ev.id);
    expect(envelope).toMatchObject({ type: 'shipment.sent', data: { parcel: 'p-1' } });
    expect(envelope).not.toHaveProperty('version');
  });

  describe('with HOOKLINE_ACCEPT_UNREGISTERED_TYPES=false', () => {
    let strict: FastifyInstance;
    beforeAll(async () => {
      strict = await buildApp({ pool: h.pool, config: { ...h.config, HOOKLINE_ACCEPT_UNREGISTERED_TYPES: false }, temporal: null, logger: false });
    });
    afterAll(async () => {
      await strict?.close();
    });

    it('refuses an unregistered type with 422 naming type, and still accepts registered ones', async () => {
      const res = await strict.inject({ method: 'POST', url: '/v1/events', payload: { type: 'shipment.lost', data: {} } });
      expect(res.statusCode).toBe(422);
      expect(res.json()).toMatchObject({ code: 'unregistered_event_type', message: expect.stringMatching(/^type: event type shipment\.lost is not registered/) });
      expect(res.json().details).toEqual([{ path: 'type', message: expect.any(String) }]);
      const ok = await strict.inject({ method: 'POST', url: '/v1/events', payload: { type: 'customer.created', data: { name: 'Ada' } } });
      expect(ok.statusCode).toBe(202);
      expect(await delivered(ok.json().id)).toMatchObject({ type: 'customer.created', version: 1 });
    });

  });

  it('lists event types by name, paginated', async () => {
    const page1 = await h.app.inject({ method: 'GET', url: '/v1/event-types?limit=2' });
    expect(page1.statusCode).toBe(200);
    // Hookline's own hookline.* types (src/ops-events.ts) are listed in their place by name.
    expect(page1.json().data.map((t: any) => t.name)).toEqual(['customer.created', 'hookline.delivery.dead_lettered']);
    const rest = await h.app.inject({ method: 'GET', url: `/v1/event-types?limit=10&cursor=${page1.json().nextCursor}` });
    expect(rest.json()).toMatchObject({
      data: [
        { name: 'hookline.delivery.dropped' }, { name: 'hookline.endpoint.circuit_opened' }, { name: 'hookline.endpoint.disabled' },
        { name: 'hookline.endpoint.recovered' }, { name: 'hookline.event.start_refused' }, { name: 'invoice.legacy' }, { name: 'invoice.line.added' },
        { name: 'invoice.paid', latestVersion: 2 },
      ],
      nextCursor: null,
    });
  });

  // The submit path caches contracts for a short TTL; changes made through this process must
  // show at once, including a type it has just refused as unregistered.
  it('sees a registration, a new version and a deprecation at once, though it cached the type', async () => {
    const strict = await buildApp({ pool: h.pool, config: { ...h.config, HOOKLINE_ACCEPT_UNREGISTERED_TYPES: false }, temporal: null, logger: false });
    onTestFinished(() => strict.close());
    const submit = (data: unknown) => strict.inject({ method: 'POST', url: '/v1/events', payload: { type: 'parcel.lost', data } });
    expect((await submit({})).statusCode).toBe(422);
    expect((await post('/v1/event-types', { name: 'parcel.lost', schema: { type: 'object', required: ['parcel'] } })).statusCode).toBe(201);
    const first = await submit({ parcel: 'p-1' });
    expect(first.statusCode).toBe(202);
    expect(first.json()).toMatchObject({ version: 1 });
    expect((await patch('parcel.lost', { schema: { type: 'object', required: ['parcel', 'carrier'] } })).statusCode).toBe(200);
    const v2 = await submit({ parcel: 'p-2' });
    expect(v2.statusCode).toBe(422);
    expect(v2.json()).toMatchObject({ code: 'schema_violation', message: expect.stringMatching(/data\.carrier/) });
    expect((await patch('parcel.lost', { deprecated: true })).statusCode).toBe(200);
    const deprecated = await submit({ parcel: 'p-3', carrier: 'c' });
    expect(deprecated.statusCode).toBe(202);
    expect(deprecated.json()).toMatchObject({ version: 2, warning: expect.stringMatching(/deprecated/) });
  });
});

// Pure: the schema compiler's bounds and quirks, no database.
describe('compileEventSchema', () => {
  const refusal = (schema: unknown) => {
    try {
      compileEventSchema(schema);
    } catch (err) {
      expect(err).toBeInstanceOf(EventContractError);
      return (err as EventContractError).message;
    }
    throw new Error('expected a refusal');
  };

  it('bounds size and depth before compiling', () => {
    expect(refusal({ description: 'x'.repeat(SCHEMA_MAX_BYTES) })).toMatch(/^schema: larger than/);
    let deep: Record<string, unknown> = { type: 'object' };
    for (let i = 0; i < SCHEMA_MAX_DEPTH; i++) deep = { type: 'object', properties: { a: deep } };
    expect(refusal(deep)).toMatch(/^schema: nested deeper than/);
    expect(refusal([])).toBe('schema: must be a JSON Schema object');
  });

  it('compiles two schemas with the same $id (each compile has its own Ajv)', () => {
    const schema = { $id: 'https://example.com/invoice', type: 'object', required: ['a'] };
    expect(compileEventSchema(schema)({ a: 1 })).toBe(true);
    expect(compileEventSchema({ ...schema, required: ['b'] })({ a: 1 })).toBe(false);
  });

  it('ignores unknown keywords, as JSON Schema says', () => {
    expect(compileEventSchema({ type: 'object', 'x-owner': 'billing', examples: [{}] })({})).toBe(true);
  });
});
