// /v1/api-keys: keys minted by the admin (HOOKLINE_API_KEY only), scoped to one tenant or all and
// to publish / read / manage. A key is shown once, at creation; revoking it is immediate.
import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import * as apiKeys from '../../db/api-keys';
import { OPERATOR_TENANT, tenantExists } from '../../db/tenants';
import { ApiError, notFound } from '../errors';
import { ApiKeyIn, ApiKeyOut, ApiKeyWithSecretOut, PageQuery, pageOf } from '../schemas';

const IdParams = z.object({ id: z.string().max(128) });
const iso = (d: Date | null) => (d ? d.toISOString() : null);

const apiKeyOut = (k: apiKeys.ApiKeyRow) => ({
  id: k.id, name: k.name, tenantId: k.tenantId, scopes: k.scopes, keyPrefix: k.keyPrefix,
  createdAt: k.createdAt.toISOString(), lastUsedAt: iso(k.lastUsedAt), revokedAt: iso(k.revokedAt),
});

export const apiKeyRoutes: FastifyPluginAsync = async (fastify) => {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  const { pool } = app.hookline;

  app.post('/v1/api-keys', {
    config: { auth: 'admin', tenancy: 'global' },
    schema: {
      tags: ['api keys'],
      summary: 'Mint an API key for one tenant (tenantId) or every tenant (all: true); the key is in this answer only',
      body: ApiKeyIn,
      response: { 201: ApiKeyWithSecretOut },
    },
  }, async (req, reply) => {
    const b = req.body;
    if ((b.tenantId === undefined) === (b.all === undefined)) {
      throw new ApiError(422, 'validation_error', 'body.tenantId: give a tenantId, or all: true for every tenant (one of the two)');
    }
    // Only the admin key opens the operator feed (access.ts); a key bound to it would be a copy.
    if (b.tenantId === OPERATOR_TENANT) {
      throw new ApiError(422, 'validation_error', `body.tenantId: ${OPERATOR_TENANT} is the operator feed; only HOOKLINE_API_KEY acts on it`);
    }
    if (b.tenantId !== undefined && !(await tenantExists(pool, b.tenantId))) {
      throw new ApiError(422, 'validation_error', `body.tenantId: tenant ${b.tenantId} does not exist`);
    }
    const { row, key } = await apiKeys.createApiKey(pool, { name: b.name, tenantId: b.tenantId ?? null, scopes: [...new Set(b.scopes)] });
    return reply.code(201).send({ ...apiKeyOut(row), key });
  });

  app.get('/v1/api-keys', {
    config: { auth: 'admin', tenancy: 'global' },
    schema: {
      tags: ['api keys'],
      summary: 'List API keys, newest first (never the keys themselves)',
      querystring: PageQuery.extend({ tenantId: z.string().max(64).optional() }),
      response: { 200: pageOf(ApiKeyOut) },
    },
  }, async (req) => {
    const rows = await apiKeys.listApiKeys(pool, req.query.limit + 1, req.query.cursor, req.query.tenantId);
    const data = rows.slice(0, req.query.limit).map(apiKeyOut);
    return { data, nextCursor: rows.length > req.query.limit ? data[data.length - 1].id : null };
  });

  app.get('/v1/api-keys/:id', {
    config: { auth: 'admin', tenancy: 'global' },
    schema: { tags: ['api keys'], summary: 'Read an API key (its scopes, last use, revocation)', params: IdParams, response: { 200: ApiKeyOut } },
  }, async (req) => {
    const row = await apiKeys.getApiKey(pool, req.params.id);
    if (!row) throw notFound('API key', req.params.id);
    return apiKeyOut(row);
  });

  app.delete('/v1/api-keys/:id', {
    config: { auth: 'admin', tenancy: 'global' },
    schema: { tags: ['api keys'], summary: 'Revoke an API key: the next request with it is a 401', params: IdParams, response: { 200: ApiKeyOut } },
  }, async (req) => {
    const row = await apiKeys.revokeApiKey(pool, req.params.id);
    if (!row) throw notFound('API key', req.params.id);
    return apiKeyOut(row);
  });
};
