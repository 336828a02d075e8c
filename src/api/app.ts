// buildApp(): the Fastify application with every route, never listening (server.ts listens;
// tests use app.inject). Shared resources come in as `deps` and are reachable as app.hookline.
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyPluginAsync } from 'fastify';
import type { Client } from '@temporalio/client';
import { validatorCompiler } from 'fastify-type-provider-zod';
import type { Config } from '../config';
import type { Pool } from '../db/pool';
import { createLogger } from '../logger';
import { createApiMetrics, registerApiMetrics } from '../metrics';
import { VERSION } from '../version';
import { registerAccessControl } from './access';
import { frameworkErrors, registerErrorHandling } from './errors';
import { registerInputChecks } from './input';
import { requestLogger } from './request-logger';
import { serializerCompiler } from './response-serializer';
import { endpointRoutes } from './routes/endpoints';
import { eventRoutes } from './routes/events';
import { eventTypeRoutes } from './routes/event-types';
import { deliveryRoutes } from './routes/deliveries';
import { statsRoutes } from './routes/stats';
import { tenantRoutes } from './routes/tenants';
import { apiKeyRoutes } from './routes/api-keys';
import { portalSessionInfoRoutes, portalSessionRoutes } from './routes/portal-sessions';
import { registerTenantRoutes } from './tenant-routes';
import { uiRoutes } from './routes/ui';
import { registerListenRoutes } from './routes/listen';
import { portalRoutes } from './routes/portal';
import { registerDocs } from './docs';
import { registerRequestSpans } from '../telemetry';

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
  const app = createFastify(deps);
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  app.decorate('hookline', deps);
  // JSON only: anything else gets a clear 415 instead of a confusing validation error.
  app.removeContentTypeParser('text/plain');
  registerErrorHandling(app);
  registerInputChecks(app);

  // Before any route: every route is added with its auth level (see access.ts).
  registerAccessControl(app, deps.config, deps.pool);
  await app.register(healthRoutes);

  // Before the routes: the OpenAPI document and the request metrics must see every one of them.
  await registerDocs(app, deps.config);
  registerApiMetrics(app, createApiMetrics(deps.pool));
  // A span per /v1 request when tracing is on (OTEL_EXPORTER_OTLP_ENDPOINT); nothing otherwise.
  registerRequestSpans(app);
  await registerRoutes(app);
  return app;
}

function createFastify(deps: AppDeps): FastifyInstance {
  return Fastify({
    // Fastify logs every request at info; that is debug material for a webhook API under load,
    // so the API process logs requests only when HOOKLINE_LOG_LEVEL is debug or trace.
    ...(deps.logger === false
      ? { logger: false }
      : {
          loggerInstance: createLogger({
            HOOKLINE_LOG_LEVEL: ['debug', 'trace'].includes(deps.config.HOOKLINE_LOG_LEVEL) ? deps.config.HOOKLINE_LOG_LEVEL : 'warn',
            HOOKLINE_LOG_FORMAT: deps.config.HOOKLINE_LOG_FORMAT,
          }, 'api') as FastifyBaseLogger,
          childLoggerFactory: requestLogger,
        }),
    // The events route sets its own limit (HOOKLINE_MAX_EVENT_BYTES); this covers the rest.
    bodyLimit: 1024 * 1024,
    frameworkErrors,
    // Forwarded headers count only from the configured proxies (HOOKLINE_TRUST_PROXY).
    trustProxy: deps.config.HOOKLINE_TRUST_PROXY ?? false,
  });
}

/** Liveness and readiness, public. */
const healthRoutes: FastifyPluginAsync = async (app) => {
  const { pool, temporal } = app.hookline;
  app.get('/healthz', { schema: { hide: true }, config: { auth: 'public' } }, async () => ({ status: 'ok', version: VERSION }));
  // Public, so it says whether each dependency answers, not why not (addresses, user names):
  // the reason goes to the log.
  app.get('/readyz', { schema: { hide: true }, config: { auth: 'public' } }, async (req, reply) => {
    const checks: Record<string, string> = {};
    const check = async (name: string, probe: () => Promise<unknown>) => {
      try {
        await probe();
        checks[name] = 'ok';
      } catch (err) {
        checks[name] = 'unavailable';
        req.log.warn({ err: (err as Error).message }, `readiness: ${name} unavailable`);
      }
    };
    await check('database', () => pool.query('SELECT 1'));
    if (temporal) await check('temporal', () => temporal.client.workflowService.getSystemInfo({}));
    const ready = Object.values(checks).every((v) => v === 'ok');
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not_ready', checks });
  });
};

async function registerRoutes(app: FastifyInstance): Promise<void> {
  // A tenant's data: each route under /v1 (the default tenant) and /v1/tenants/:tenantId.
  await registerTenantRoutes(app, [endpointRoutes, eventRoutes, deliveryRoutes, statsRoutes, portalSessionRoutes]);
  await app.register(tenantRoutes);
  await app.register(apiKeyRoutes);
  await app.register(portalSessionInfoRoutes);
  await app.register(eventTypeRoutes);
  await app.register(uiRoutes);
  await registerListenRoutes(app);
  await app.register(portalRoutes);
}
