// GET /v1/endpoints/:id/stats: one endpoint's health over a window — success rate, latency
// percentiles, its deliveries by status, the current failure streak and the last failures.
import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { getEndpoint } from '../../db/endpoints';
import { endpointStats } from '../../db/stats';
import { ApiError, notFound } from '../errors';
import { Duration, EndpointStatsOut } from '../schemas';

// The attempts index makes any window cheap to read; 90 days bounds what one request scans.
const MAX_WINDOW_MS = 90 * 24 * 60 * 60 * 1000;
const DEFAULT_WINDOW_MS = 24 * 60 * 60 * 1000;

export const statsRoutes: FastifyPluginAsync = async (fastify) => {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  const { pool } = app.hookline;

  app.get('/v1/endpoints/:id/stats', {
    schema: {
      tags: ['endpoints'],
      summary: "An endpoint's health: success rate, latency percentiles, failure streak, last failures",
      params: z.object({ id: z.string().max(128) }),
      querystring: z.object({ window: Duration.default(DEFAULT_WINDOW_MS).meta({ description: 'how far back, e.g. "1h", "24h", "7 days" or milliseconds; default 24h' }) }),
      response: { 200: EndpointStatsOut },
    },
  }, async (req) => {
    const windowMs = req.query.window;
    if (windowMs <= 0 || windowMs > MAX_WINDOW_MS) {
      throw new ApiError(400, 'validation_error', 'querystring.window: between 1 ms and 90 days');
    }
    if (!(await getEndpoint(pool, req.params.id))) throw notFound('endpoint', req.params.id);
    const since = new Date(Date.now() - windowMs);
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
};
