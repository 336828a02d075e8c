// /v1/deliveries and /v1/dead-letters: what happened to each event at each endpoint, every
// attempt, and replay of one delivery or every dead letter that matches a filter — always within
// req.tenantId (mounted per tenant, tenant-routes.ts).
import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { allDeadLetters, BadCursorError, getDelivery, listAttempts, listDeliveries, type DeliveryFilter } from '../../db/deliveries';
import { replay } from '../../replay';
import { getEndpoint } from '../../db/endpoints';
import { ApiError, notFound } from '../errors';
import { attemptOut, deliveryOut } from '../serialize';
import { AttemptOut, DeliveryOut, DeliveryStatusEnum, PageQuery, ReplayFilterIn, pageOf } from '../schemas';

const DeliveryParams = z.object({ eventId: z.string().max(128), endpointId: z.string().max(128) });
const Since = z.iso.datetime({ offset: true });

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
      response: { 202: z.object({ eventId: z.string(), endpointId: z.string(), status: z.string() }) },
    },
  }, async (req, reply) => {
    const { eventId, endpointId } = req.params;
    const delivery = await getDelivery(pool, eventId, endpointId, req.tenantId);
    if (!delivery) throw notFound('delivery', `${eventId}/${endpointId}`);
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
      summary: 'Replay every dead letter matching the filter',
      body: ReplayFilterIn.optional(),
      response: { 202: z.object({ replayed: z.number() }) },
    },
  }, async (req, reply) => {
    const f = req.body ?? {};
    const t = temporalClient();
    // Dead letters of deleted or disabled endpoints would only dead-letter again: skipped.
    const rows = await allDeadLetters(pool, { tenantId: req.tenantId, endpointId: f.endpointId, eventType: f.eventType, since: f.since ? new Date(f.since) : undefined, activeEndpointsOnly: true });
    const byEvent = new Map<string, { type: string; endpoints: string[] }>();
    for (const r of rows) {
      const entry = byEvent.get(r.eventId) ?? { type: r.eventType, endpoints: [] };
      entry.endpoints.push(r.endpointId);
      byEvent.set(r.eventId, entry);
    }
    let replayed = 0;
    // Bounded concurrency: a bulk replay of thousands must not open thousands of RPCs at once.
    const queue = [...byEvent.entries()];
    await Promise.all(
      Array.from({ length: Math.min(16, queue.length) }, async () => {
        for (let next = queue.shift(); next; next = queue.shift()) {
          const [eventId, { type, endpoints }] = next;
          await replay(t.client, t.taskQueue, eventId, type, endpoints, req.tenantId);
          replayed += endpoints.length;
        }
      }),
    );
    return reply.code(202).send({ replayed });
  });
};
