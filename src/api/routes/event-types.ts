// /v1/event-types: the catalogue of event types and their versioned JSON Schemas. A schema is
// compiled and tried (in a worker, under a deadline) before it is stored, so an event is never
// checked against one that cannot work.
import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { assertUsableSchema, EventContractError } from '../../contracts';
import * as eventTypes from '../../db/event-types';
import { withTransaction } from '../../db/pool';
import { ApiError, notFound } from '../errors';
import { eventTypeOut } from '../serialize';
import { EventTypeIn, EventTypeOut, EventTypePatch, PageQuery, pageOf } from '../schemas';

const NameParams = z.object({ name: z.string().max(255) });

async function assertValidSchema(schema: unknown): Promise<void> {
  try {
    await assertUsableSchema(schema, 'schema');
  } catch (err) {
    if (err instanceof EventContractError) throw new ApiError(422, err.code, err.message, err.details);
    throw err;
  }
}

export const eventTypeRoutes: FastifyPluginAsync = async (fastify) => {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  const { pool } = app.hookline;

  // The catalogue is global: every tenant reads it, changes need a key for all tenants.
  app.post('/v1/event-types', {
    config: { auth: 'manage', tenancy: 'global' },
    schema: {
      tags: ['event types'],
      summary: 'Register an event type, optionally with the JSON Schema of its version 1',
      body: EventTypeIn,
      response: { 201: EventTypeOut },
    },
  }, async (req, reply) => {
    const b = req.body;
    if (b.schema !== undefined) await assertValidSchema(b.schema);
    const row = await withTransaction(pool, (db) =>
      eventTypes.insertEventType(db, { name: b.name, description: b.description ?? '', deprecated: b.deprecated ?? false, schema: b.schema }),
    );
    eventTypes.invalidateEventContracts(); // after the commit: the submit path's cache must see it
    if (!row) throw new ApiError(409, 'event_type_exists', `name: event type ${b.name} already exists (PATCH it to add a version)`);
    return reply.code(201).send(eventTypeOut(row));
  });

  app.get('/v1/event-types', {
    config: { auth: 'read', tenancy: 'shared' },
    schema: {
      tags: ['event types'],
      summary: 'List event types by name',
      querystring: PageQuery,
      response: { 200: pageOf(EventTypeOut) },
    },
  }, async (req) => {
    const rows = await eventTypes.listEventTypes(pool, req.query.limit + 1, req.query.cursor);
    const data = rows.slice(0, req.query.limit).map(eventTypeOut);
    return { data, nextCursor: rows.length > req.query.limit ? data[data.length - 1].name : null };
  });

  app.get('/v1/event-types/:name', {
    config: { auth: 'read', tenancy: 'shared' },
    schema: { tags: ['event types'], summary: 'Read an event type with every schema version', params: NameParams, response: { 200: EventTypeOut } },
  }, async (req) => {
    const row = await eventTypes.getEventType(pool, req.params.name);
    if (!row) throw notFound('event type', req.params.name);
    return eventTypeOut(row);
  });

  app.patch('/v1/event-types/:name', {
    config: { auth: 'manage', tenancy: 'global' },
    schema: {
      tags: ['event types'],
      summary: 'Change the description or deprecation; a schema adds the next version (unless it equals the latest)',
      params: NameParams,
      body: EventTypePatch,
      response: { 200: EventTypeOut },
    },
  }, async (req) => {
    const b = req.body;
    if (b.schema !== undefined) await assertValidSchema(b.schema);
    const row = await withTransaction(pool, (db) => eventTypes.updateEventType(db, req.params.name, b));
    eventTypes.invalidateEventContracts(); // after the commit: the submit path's cache must see it
    if (!row) throw notFound('event type', req.params.name);
    return eventTypeOut(row);
  });
};
