// GET /v1/endpoints/:id/stats: one endpoint's health over a window — success rate, latency
// percentiles, its deliveries by status, the current failure streak and the last failures.
// GET /v1/stats: the same kind of figures for a whole tenant (mounted per tenant, tenant-routes.ts).
import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { getEndpoint } from '../../db/endpoints';
import { endpointStats } from '../../db/stats';
import { tenantStats } from '../../db/tenants';
import { ApiError, notFound } from '../errors';
import { Duration, EndpointStatsOut, TenantStatsOut } from '../schemas';

// The attempts index makes any window cheap to read; 90 days bounds what one request scans.
const MAX_WINDOW_MS = 90 * 24 * 60 * 60 * 1000;
const DEFAULT_WINDOW_MS = 24 * 60 * 60 * 1000;

export const statsRoutes: FastifyPluginAsync = async (fastify) => {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  const { pool } = app.hookline;

  const WindowQuery = z.object({ window: Duration.default(DEFAULT_WINDOW_MS).meta({ description: 'how far back, e.g. "1h", "24h", "7 days" or milliseconds; default 24h' }) });
  const windowOf = (windowMs: number) => {
    if (windowMs <= 0 || windowMs > MAX_WINDOW_MS) {
      throw new ApiError(400, 'validation_error', 'querystring.window: between 1 ms and 90 days');
    }
    return new Date(Date.now() - windowMs);
  };

  app.get('/endpoints/:id/stats', {
    config: { auth: 'read' },
    schema: {
      tags: ['endpoints'],
      summary: "An endpoint's health: success rate, latency percentiles, failure streak, last failures",
      params: z.object({ id: z.string().max(128) }),
      querystring: WindowQuery,
      response: { 200: EndpointStatsOut },
    },
  }, async (req) => {
    const windowMs = req.query.window;
    const since = windowOf(windowMs);
    if (!(await getEndpoint(pool, req.params.id, req.tenantId))) throw notFound('endpoint', req.params.id);
    const s = await endpointStats(pool, req.params.id, since);
    return {
      endpointId: req.params.id,
      window: windowMs,
      since: since.toISOString(),
      attempts: s.attempts,
      successRate: s.successRate,
      latencyMs: s.latencyMs,
      deliveries: s.deliveries,
      consecutiveFailures: s.consecutiveFailures,
      lastSuccessAt: s.lastSuccessAt ? s.lastSuccessAt.toISOString() : null,
      lastFailures: s.lastFailures.map((f) => ({ ...f, startedAt: f.startedAt.toISOString() })),
    };
  });

  app.get('/stats', {
    config: { auth: 'read' },
    schema: {
      tags: ['tenants'],
      summary: "A tenant's figures over a window: endpoints, events, attempts (success rate, latency), deliveries by status, open dead letters",
      querystring: WindowQuery,
      response: { 200: TenantStatsOut },
    },
  }, async (req) => {
    const since = windowOf(req.query.window);
    const s = await tenantStats(pool, req.tenantId, since);
    return { tenantId: req.tenantId, window: req.query.window, since: since.toISOString(), ...s };
  });
};
