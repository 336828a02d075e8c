// buildApp(): the Fastify application with every route, never listening (server.ts listens;
// tests use app.inject). Shared resources come in as `deps` and are reachable as app.hookline.
import Fastify, { type FastifyInstance } from 'fastify';
import type { Client } from '@temporalio/client';
import { serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod';
import type { Config } from '../config';
import type { Pool } from '../db/pool';
import { REDACT_PATHS } from '../logger';
import { safeEqual } from '../signing';
import { VERSION } from '../version';
import { ApiError, registerErrorHandling } from './errors';
import { endpointRoutes } from './routes/endpoints';
import { eventRoutes } from './routes/events';
import { deliveryRoutes } from './routes/deliveries';

export interface AppDeps {
  pool: Pool;
  config: Config;
  /** Null when this process only records (no replay possible). */
  temporal: { client: Client; taskQueue: string } | null;
  /** Pass false in tests to keep output quiet. */
  logger?: boolean;
}

declare module 'fastify' {
  interface FastifyInstance {
    hookline: AppDeps;
  }
}

export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const app = Fastify({
    // Fastify logs every request at info; that is debug material for a webhook API under load,
    // so the API process logs requests only when HOOKLINE_LOG_LEVEL is debug or trace.
    logger:
      deps.logger === false
        ? false
        : { level: ['debug', 'trace'].includes(deps.config.HOOKLINE_LOG_LEVEL) ? deps.config.HOOKLINE_LOG_LEVEL : 'warn', redact: REDACT_PATHS },
    // The events route sets its own limit (HOOKLINE_MAX_EVENT_BYTES); this covers the rest.
    bodyLimit: 1024 * 1024,
  });
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  app.decorate('hookline', deps);
  // JSON only: anything else gets a clear 415 instead of a confusing validation error.
  app.removeContentTypeParser('text/plain');
  registerErrorHandling(app);

  const apiKey = deps.config.HOOKLINE_API_KEY;
  if (apiKey) {
    app.addHook('onRequest', async (req) => {
      if (!req.url.startsWith('/v1/') && req.url !== '/v1') return;
      const header = req.headers.authorization ?? '';
      const token = header.startsWith('Bearer ') ? header.slice(7) : '';
      if (!safeEqual(token, apiKey)) {
        throw new ApiError(401, 'unauthorized', 'authorization: send "Bearer <HOOKLINE_API_KEY>"');
      }
    });
  }

  app.get('/healthz', { schema: { hide: true } }, async () => ({ status: 'ok', version: VERSION }));
  app.get('/readyz', { schema: { hide: true } }, async (_req, reply) => {
    const checks: Record<string, string> = {};
    try {
      await deps.pool.query('SELECT 1');
      checks.database = 'ok';
    } catch (err) {
      checks.database = (err as Error).message;
    }
    if (deps.temporal) {
      try {
        await deps.temporal.client.workflowService.getSystemInfo({});
        checks.temporal = 'ok';
      } catch (err) {
        checks.temporal = (err as Error).message;
      }
    }
    const ready = Object.values(checks).every((v) => v === 'ok');
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not_ready', checks });
  });

  await app.register(endpointRoutes);
  await app.register(eventRoutes);
  await app.register(deliveryRoutes);
  return app;
}
