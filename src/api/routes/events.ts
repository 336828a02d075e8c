// /v1/events: the producer's door. Records the event and its outbox row in one transaction and
// answers 202; it never calls Temporal — the relay does. An event is published to req.tenantId
// (mounted per tenant, tenant-routes.ts) and only that tenant's endpoints receive it.
import { createHash } from 'node:crypto';
import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { checkEventContract, EventContractError, type ContractResult } from '../../contracts';
import { ValidationUnavailableError } from '../../schema-pool';
import type { Config } from '../../config';
import type { ClientBase } from 'pg';
import { withTransaction, type Pool } from '../../db/pool';
import { lookupEventContractCached } from '../../db/event-types';
import { notifyOutbox } from '../../db/outbox-notify';
import { requestTraceContext } from '../../telemetry';
import { claimIdempotencyKey, getEvent, publishEvent, type EventRow } from '../../db/events';
import { deliveriesForEvent } from '../../db/deliveries';
import { isOperationalId, newEventId, OPERATIONAL_ID_PREFIX } from '../../ids';
import { isOperationalType, OPERATIONAL_PREFIX } from '../../ops-events';
import { ApiError, notFound } from '../errors';
import { deliveryOut, eventOut } from '../serialize';
import { ErrorOut, EventIn, EventOut, EventWithDeliveriesOut, TestEventIn } from '../schemas';
import { getEndpoint } from '../../db/endpoints';
import { takeTestEventSlot } from '../../db/test-event-rate';

/** What a test event is called when the caller names no type. */
const TEST_EVENT_TYPE = 'webhook.test';
// GET /v1/events/:id shows this many deliveries (a fan-out can have thousands) and links to the
// deliveries list for the rest.
const EVENT_DELIVERIES_SHOWN = 100;
/** The window HOOKLINE_TEST_EVENTS_PER_MINUTE counts in. */
const TEST_EVENT_WINDOW_MS = 60_000;

const IDEMPOTENCY_KEY_PATTERN = /^[\x21-\x7e]{1,255}$/;
// An Idempotency-Key is remembered for HOOKLINE_IDEMPOTENCY_TTL_HOURS (default 24 h, as Stripe):
// within that window a repeat returns the first event; after it the key is free and names a new one.

/** What makes two submissions "the same request" for idempotency. */
function requestHash(body: z.output<typeof EventIn>): string {
  const canonical = JSON.stringify([body.type, body.id ?? null, body.version ?? null, body.channels ?? null, body.data]);
  return createHash('sha256').update(canonical).digest('hex');
}

function sameEvent(stored: { type: string; data: unknown; version: number | null; channels: string[] | null }, b: z.output<typeof EventIn>) {
  return (
    stored.type === b.type &&
    // No version asked for means "the latest", which is what was stored.
    (b.version === undefined || stored.version === b.version) &&
    JSON.stringify(stored.channels ?? null) === JSON.stringify(b.channels ?? null) &&
    canonicalJson(stored.data) === canonicalJson(b.data)
  );
}

/** JSON with object keys sorted, so jsonb's key reordering does not count as a change. */
function canonicalJson(v: unknown): string {
  return JSON.stringify(v, (_k, value) =>
    value && typeof value === 'object' && !Array.isArray(value)
      ? Object.fromEntries(Object.keys(value).sort().map((k) => [k, (value as Record<string, unknown>)[k]]))
      : value,
  );
}

/** A contract failure as the API answers it: 422, or 503 when the validation pool is saturated. */
function contractError(err: unknown): unknown {
  if (err instanceof ValidationUnavailableError) return new ApiError(503, 'unavailable', `data: ${err.message}`);
  return err instanceof EventContractError ? new ApiError(422, err.code, err.message, err.details) : err;
}

type TraceContext = Record<string, string> | null;
type Recorded = { event: EventRow; contract: ContractResult | null };
type Verdict = { result: ContractResult } | { err: unknown };

/**
 * The event type's contract, looked up through the short-TTL cache (see db/event-types). Checked
 * before any transaction: a validation that runs in a worker (up to its deadline) must not hold a
 * database connection meanwhile. Its verdict is applied where the event is recorded.
 */
async function checkContract(config: Config, db: ContractDb, b: z.output<typeof EventIn>): Promise<Verdict> {
  try {
    return { result: await checkEventContract(db.pool, b, { acceptUnregistered: config.HOOKLINE_ACCEPT_UNREGISTERED_TYPES, lookup: db.lookup }) };
  } catch (err) {
    return { err: contractError(err) };
  }
}

/** The pool, and its cached contract lookup (made once, not per request). */
interface ContractDb {
  pool: Pool;
  lookup: (via: Pool | ClientBase, name: string, version: number | null) => ReturnType<typeof lookupEventContractCached>;
}

function contractOf(verdict: Verdict): ContractResult {
  if ('err' in verdict) throw verdict.err;
  return verdict.result;
}

/**
 * Without an Idempotency-Key: the event and its outbox row are one INSERT statement, atomic on
 * its own, so no BEGIN/COMMIT round trips around it; publishEvent wakes the relays after it.
 */
async function recordEvent(
  pool: Pool, tenantId: string, b: z.output<typeof EventIn>, verdict: Verdict, traceContext: TraceContext, onlyEndpointId?: string,
): Promise<Recorded> {
  const contract = contractOf(verdict);
  const id = b.id ?? newEventId();
  const { event, created } = await publishEvent(pool, { id, tenantId, onlyEndpointId, type: b.type, data: b.data, channels: b.channels, version: contract.version, traceContext });
  if (!created && (event.tenantId !== tenantId || !sameEvent(event, b))) throw eventIdConflict(id);
  return { event, contract };
}

/**
 * With an Idempotency-Key: the key claim and the insert commit together or not at all. The
 * caller wakes the relays after the commit (a NOTIFY inside it would serialise commits).
 */
async function recordEventOnce(
  pool: Pool, config: Config, tenantId: string, b: z.output<typeof EventIn>, key: string, verdict: Verdict, traceContext: TraceContext,
): Promise<Recorded> {
  const hash = requestHash(b);
  return withTransaction(pool, async (db): Promise<Recorded> => {
    const id = b.id ?? newEventId();
    const claim = await claimIdempotencyKey(db, tenantId, key, hash, id, config.HOOKLINE_IDEMPOTENCY_TTL_HOURS);
    if (!claim.claimed) {
      if (claim.requestHash !== hash) {
        throw new ApiError(409, 'idempotency_key_reused', 'idempotency-key: already used for a different request');
      }
      const first = await getEvent(db, claim.eventId, tenantId);
      if (!first) throw new ApiError(409, 'idempotency_key_reused', 'idempotency-key: its event no longer exists');
      return { event: first, contract: null };
    }
    // After the key claim, so a repeated key returns the first event even if the type changed since.
    const contract = contractOf(verdict);
    const { event, created } = await publishEvent(db, { id, tenantId, type: b.type, data: b.data, channels: b.channels, version: contract.version, traceContext }, 'after-commit');
    if (!created && (event.tenantId !== tenantId || !sameEvent(event, b))) throw eventIdConflict(id);
    return { event, contract };
  });
}

/** Only Hookline emits hookline.* events (src/ops-events.ts): an operator must be able to trust them. */
const reservedType = () => {
  const message = `type: the ${OPERATIONAL_PREFIX} prefix is reserved for Hookline's own events`;
  return new ApiError(400, 'validation_error', `body.${message}`, [{ path: 'body.type', message: message.slice('type: '.length) }]);
};

/** Hookline's own events' ids (src/ids.ts): a producer taking one first would silence that event. */
const reservedId = () => {
  const message = `the ${OPERATIONAL_ID_PREFIX} id prefix is reserved for Hookline's own events`;
  return new ApiError(400, 'validation_error', `body.id: ${message}`, [{ path: 'body.id', message }]);
};

// Event ids are global (each is a workflow id): an id another tenant used conflicts too, with the
// same words, so the answer shows neither that tenant nor its content.
const eventIdConflict = (id: string) => new ApiError(409, 'event_id_conflict', `id: event ${id} already exists with different content`);

export const eventRoutes: FastifyPluginAsync = async (fastify) => {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  const { pool, config } = app.hookline;
  const contractDb: ContractDb = { pool, lookup: (via, name, version) => lookupEventContractCached(pool, name, version, via) };

  app.post('/events', {
    config: { auth: 'publish' },
    bodyLimit: config.HOOKLINE_MAX_EVENT_BYTES,
    schema: {
      tags: ['events'],
      summary: 'Submit an event for delivery',
      headers: z.object({ 'idempotency-key': z.string().optional() }),
      body: EventIn,
      response: { 202: EventOut },
      description:
        'A registered type checks `data` against the JSON Schema of `version` (default: the latest) and answers 422 ' +
        'when it breaks it. A deprecated type is still accepted; the answer then carries `Deprecation` (RFC 9745) ' +
        'and `Warning: 299` headers and a `warning` field. The `hookline.` type prefix and the `evt_op_` id prefix are ' +
        'reserved for Hookline\'s own operational events (400 naming `type` or `id`).',
    },
  }, async (req, reply) => {
    const b = req.body;
    if (isOperationalType(b.type)) throw reservedType();
    if (b.id !== undefined && isOperationalId(b.id)) throw reservedId();
    const key = req.headers['idempotency-key'];
    if (key !== undefined && !IDEMPOTENCY_KEY_PATTERN.test(key)) {
      throw new ApiError(400, 'validation_error', 'headers.idempotency-key: 1–255 printable ASCII characters');
    }
    const verdict = await checkContract(config, contractDb, b);
    // The request's trace context rides with the outbox row, so the relay's span joins its trace.
    const trace = requestTraceContext(req);
    let recorded: Recorded;
    if (key === undefined) recorded = await recordEvent(pool, req.tenantId, b, verdict, trace);
    else {
      recorded = await recordEventOnce(pool, config, req.tenantId, b, key, verdict, trace);
      notifyOutbox(pool);
    }
    const { event, contract } = recorded;
    const deprecatedAt = contract?.deprecatedAt;
    if (deprecatedAt) {
      const warning = `event type ${event.type} is deprecated`;
      reply.header('deprecation', `@${Math.floor(deprecatedAt.getTime() / 1000)}`).header('warning', `299 hookline "${warning}"`);
      return reply.code(202).send({ ...eventOut(event), warning });
    }
    return reply.code(202).send(eventOut(event));
  });

  app.get('/events/:id', {
    config: { auth: 'read' },
    schema: {
      tags: ['events'],
      summary: 'Read an event with one delivery status per endpoint',
      params: z.object({ id: z.string().max(128) }),
      response: { 200: EventWithDeliveriesOut },
    },
  }, async (req) => {
    const event = await getEvent(pool, req.params.id, req.tenantId);
    if (!event) throw notFound('event', req.params.id);
    const [deliveries, outbox] = await Promise.all([
      deliveriesForEvent(pool, event.id, EVENT_DELIVERIES_SHOWN),
      pool.query('SELECT 1 FROM outbox WHERE event_id = $1', [event.id]),
    ]);
    // The mount the route was reached on (/v1 or /v1/tenants/:tenantId), never the raw URL.
    const prefix = req.routeOptions.config.tenancy === 'path' ? `/v1/tenants/${encodeURIComponent(req.tenantId)}` : '/v1';
    return {
      ...eventOut(event),
      relayed: outbox.rowCount === 0,
      deliveries: deliveries.data.map(deliveryOut),
      deliveriesTotal: deliveries.total,
      deliveriesNext: deliveries.total > deliveries.data.length ? `${prefix}/deliveries?eventId=${encodeURIComponent(event.id)}` : null,
    };
  });

  // The portal's (and the console's) "send a test event": a real event through the real
  // pipeline — outbox, relay, workflow, signature — that only this endpoint receives.
  app.post('/endpoints/:id/test', {
    config: { auth: 'manage' },
    // The same limit as POST /events: a test event is a real event through the same pipeline.
    bodyLimit: config.HOOKLINE_MAX_EVENT_BYTES,
    schema: {
      tags: ['endpoints'],
      summary: 'Send a test event to this endpoint only (its event-type filter does not apply); 202 with the event. The body limit of POST /events applies; at most HOOKLINE_TEST_EVENTS_PER_MINUTE per endpoint (429 with Retry-After)',
      params: z.object({ id: z.string().max(128) }),
      body: TestEventIn.nullish(),
      response: { 202: EventOut, 429: ErrorOut },
    },
  }, async (req, reply) => {
    const endpoint = await getEndpoint(pool, req.params.id, req.tenantId);
    if (!endpoint) throw notFound('endpoint', req.params.id);
    if (endpoint.disabled) throw new ApiError(409, 'endpoint_disabled', `id: endpoint ${endpoint.id} is disabled; enable it (PATCH disabled: false) to test it`);
    const b = { type: req.body?.eventType ?? TEST_EVENT_TYPE, data: req.body?.data ?? {} };
    // Hookline's own operational events (hookline.*) are never sent by anyone else, not even as a test.
    if (b.type.startsWith('hookline.')) {
      throw new ApiError(400, 'validation_error', 'body.eventType: the hookline. prefix is reserved for Hookline\'s own events');
    }
    // Counted only once the request is valid, so a refused one does not use up the window.
    const retryMs = await takeTestEventSlot(pool, endpoint.id, config.HOOKLINE_TEST_EVENTS_PER_MINUTE, TEST_EVENT_WINDOW_MS);
    if (retryMs !== null) {
      const seconds = Math.ceil(retryMs / 1000);
      return reply.code(429).header('retry-after', String(seconds)).send({
        code: 'rate_limited',
        message: `id: endpoint ${endpoint.id} takes at most ${config.HOOKLINE_TEST_EVENTS_PER_MINUTE} test events a minute (HOOKLINE_TEST_EVENTS_PER_MINUTE); retry in ${seconds} s`,
      });
    }
    // publishEvent on the pool wakes the relays itself.
    const { event } = await recordEvent(pool, req.tenantId, b, await checkContract(config, contractDb, b), requestTraceContext(req), endpoint.id);
    return reply.code(202).send(eventOut(event));
  });
};
