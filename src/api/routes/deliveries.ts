// /v1/deliveries and /v1/dead-letters: what happened to each event at each endpoint, every
// attempt, and replay of one delivery or every dead letter that matches a filter — always within
// req.tenantId (mounted per tenant, tenant-routes.ts).
import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { BadCursorError, deadLetterBatch, getDelivery, listAttempts, listDeliveries, type DeliveryFilter, type DeliveryRow } from '../../db/deliveries';
import { replay } from '../../replay';
import { getEndpoint } from '../../db/endpoints';
import { ApiError, notFound } from '../errors';
import { attemptOut, deliveryOut } from '../serialize';
import { AttemptOut, DeadLetterReplayIn, ErrorOut, DeadLetterReplayOut, DeliveryOut, DeliveryStatusEnum, PageQuery, pageOf, REPLAY_BATCH_DEFAULT } from '../schemas';

const DeliveryParams = z.object({ eventId: z.string().max(128), endpointId: z.string().max(128) });
const Since = z.iso.datetime({ offset: true });
// Signals in flight at once during a bulk replay: a batch of hundreds must not open hundreds of RPCs.
const REPLAY_CONCURRENCY = 16;

/** The dead letters of a batch by event: one replay signal per event names all its endpoints. */
function byEvent(rows: DeliveryRow[]): [string, { type: string; endpoints: string[] }][] {
  const events = new Map<string, { type: string; endpoints: string[] }>();
  for (const r of rows) {
    const entry = events.get(r.eventId) ?? { type: r.eventType, endpoints: [] };
    entry.endpoints.push(r.endpointId);
    events.set(r.eventId, entry);
  }
  return [...events.entries()];
}

export const deliveryRoutes: FastifyPluginAsync = async (fastify) => {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  const { pool, temporal } = app.hookline;

  async function page(filter: DeliveryFilter, limit: number, cursor?: string) {
    try {
      const p = await listDeliveries(pool, filter, limit, cursor);
      return { data: p.data.map(deliveryOut), nextCursor: p.nextCursor };
    } catch (err) {
      if (err instanceof BadCursorError) throw new ApiError(400, 'validation_error', `querystring.cursor: ${err.message}`);
      throw err;
    }
  }

  function temporalClient() {
    if (!temporal) throw new ApiError(503, 'temporal_unavailable', 'this API process has no Temporal connection');
    return temporal;
  }

  app.get('/deliveries', {
    config: { auth: 'read' },
    schema: {
      tags: ['deliveries'],
      summary: 'Deliveries, newest first',
      querystring: PageQuery.extend({ status: DeliveryStatusEnum.optional(), eventId: z.string().max(128).optional(), endpointId: z.string().optional(), eventType: z.string().optional() }),
      response: { 200: pageOf(DeliveryOut) },
    },
  }, async (req) => {
    const q = req.query;
    return page({ tenantId: req.tenantId, status: q.status, eventId: q.eventId, endpointId: q.endpointId, eventType: q.eventType }, q.limit, q.cursor);
  });

  app.get('/deliveries/:eventId/:endpointId/attempts', {
    config: { auth: 'read' },
    schema: {
      tags: ['deliveries'],
      summary: 'Every attempt of one delivery, oldest first',
      params: DeliveryParams,
      response: { 200: z.object({ data: z.array(AttemptOut) }) },
    },
  }, async (req) => {
    const { eventId, endpointId } = req.params;
    if (!(await getDelivery(pool, eventId, endpointId, req.tenantId))) throw notFound('delivery', `${eventId}/${endpointId}`);
    return { data: (await listAttempts(pool, eventId, endpointId)).map(attemptOut) };
  });

  app.get('/dead-letters', {
    config: { auth: 'read' },
    schema: {
      tags: ['dead letters'],
      summary: 'Deliveries that gave up and wait for a replay',
      querystring: PageQuery.extend({ endpointId: z.string().optional(), eventType: z.string().optional(), since: Since.optional() }),
      response: { 200: pageOf(DeliveryOut) },
    },
  }, async (req) => {
    const q = req.query;
    return page(
      { tenantId: req.tenantId, status: 'dead_lettered', endpointId: q.endpointId, eventType: q.eventType, since: q.since ? new Date(q.since) : undefined },
      q.limit,
      q.cursor,
    );
  });

  app.post('/deliveries/:eventId/:endpointId/replay', {
    config: { auth: 'manage' },
    schema: {
      tags: ['deliveries'],
      summary: 'Replay one delivery: a dead letter starts again with a fresh deadline; a delivered one is resent',
      params: DeliveryParams,
      response: { 202: z.object({ eventId: z.string(), endpointId: z.string(), status: z.string() }), 409: ErrorOut },
    },
  }, async (req, reply) => {
    const { eventId, endpointId } = req.params;
    const delivery = await getDelivery(pool, eventId, endpointId, req.tenantId);
    if (!delivery) throw notFound('delivery', `${eventId}/${endpointId}`);
    // Not relayed yet (its outbox row is still there): no workflow exists, and signalWithStart
    // would start one for this endpoint only, so the relay's start (a duplicate) would drop the
    // event for every other endpoint. The relay delivers it anyway; nothing to replay yet.
    if ((await pool.query('SELECT 1 FROM outbox WHERE event_id = $1', [eventId])).rowCount) {
      throw new ApiError(409, 'not_relayed', `eventId: ${eventId} is not relayed yet (delivery ${delivery.status}); it will be delivered without a replay`);
    }
    const endpoint = await getEndpoint(pool, endpointId, req.tenantId);
    if (!endpoint) throw new ApiError(409, 'endpoint_deleted', `endpointId: ${endpointId} was deleted; its deliveries cannot be replayed`);
    if (endpoint.disabled) throw new ApiError(409, 'endpoint_disabled', `endpointId: ${endpointId} is disabled; enable it (PATCH disabled: false) before replaying`);
    const t = temporalClient();
    await replay(t.client, t.taskQueue, eventId, delivery.eventType, [endpointId], req.tenantId);
    return reply.code(202).send({ eventId, endpointId, status: 'replaying' });
  });

  app.post('/dead-letters/replay', {
    config: { auth: 'manage' },
    schema: {
      tags: ['dead letters'],
      summary: 'Replay the dead letters matching the filter, one batch per request (at most `limit`, default 100); while the answer has nextCursor, send it as cursor for the next batch',
      body: DeadLetterReplayIn.optional(),
      response: { 202: DeadLetterReplayOut },
    },
  }, async (req, reply) => {
    const f = req.body ?? {};
    const t = temporalClient();
    // Dead letters of deleted or disabled endpoints would only dead-letter again: skipped.
    const filter = { tenantId: req.tenantId, endpointId: f.endpointId, eventType: f.eventType, since: f.since ? new Date(f.since) : undefined, activeEndpointsOnly: true };
    const batch = await deadLetterBatch(pool, filter, f.limit ?? REPLAY_BATCH_DEFAULT, f.cursor).catch((err) => {
      if (err instanceof BadCursorError) throw new ApiError(400, 'validation_error', `body.cursor: ${err.message}`);
      throw err;
    });
    let replayed = 0;
    const queue = byEvent(batch.data);
    await Promise.all(
      Array.from({ length: Math.min(REPLAY_CONCURRENCY, queue.length) }, async () => {
        for (let next = queue.shift(); next; next = queue.shift()) {
          const [eventId, { type, endpoints }] = next;
          await replay(t.client, t.taskQueue, eventId, type, endpoints, req.tenantId);
          replayed += endpoints.length;
        }
      }),
    );
    const more = batch.nextCursor === null ? {} : { remaining: batch.remaining, nextCursor: batch.nextCursor };
    return reply.code(202).send({ replayed, ...more });
  });
};
