// The OpenAPI document, generated from the routes' zod schemas: GET /docs (Swagger UI),
// /docs/json and /docs/yaml, public. Registered before the routes so it sees every one of them.
import type { FastifyInstance } from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { jsonSchemaTransform } from 'fastify-type-provider-zod';
import type { Config } from '../config';
import { VERSION } from '../version';

export async function registerDocs(app: FastifyInstance, config: Pick<Config, 'HOOKLINE_API_KEY'>): Promise<void> {
  const auth = Boolean(config.HOOKLINE_API_KEY);
  await app.register(swagger, {
    openapi: {
      // 3.1: its schemas are JSON Schema 2020-12, which is what zod emits.
      openapi: '3.1.0',
      info: {
        title: 'Hookline',
        version: VERSION,
        description:
          'Webhook delivery: submit events, manage endpoints, inspect deliveries and attempts, replay dead letters.' +
          (auth ? ' Every route except /healthz, /readyz, /docs, /ui and /portal (the pages; their API calls carry a key) needs `Authorization: Bearer <key>`: HOOKLINE_API_KEY, a minted API key, or a portal session token.' : ''),
      },
      tags: [
        { name: 'events', description: 'What producers submit' },
        { name: 'event types', description: 'The catalogue of event types and their schemas' },
        { name: 'endpoints', description: 'Where events go' },
        { name: 'deliveries', description: 'One event at one endpoint, and its attempts' },
        { name: 'dead letters', description: 'Deliveries that gave up, and their replay' },
        { name: 'tenants', description: 'Your customers: every route of a tenant\'s data also answers under /v1/tenants/{tenantId}' },
        { name: 'api keys', description: 'Keys scoped to a tenant (or all) and to publish, read or manage' },
        { name: 'portal', description: 'Short-lived sessions for the consumer portal' },
      ],
      components: {
        securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'HOOKLINE_API_KEY, an API key (hk_…) or a portal session token' } },
      },
      ...(auth ? { security: [{ bearer: [] }] } : {}),
    },
    transform: jsonSchemaTransform,
  });
  // The document describes the API, not its data: public, like the README (see access.ts).
  await app.register(async (docs) => {
    docs.addHook('onRoute', (route) => {
      route.config = { ...route.config, auth: 'public' };
    });
    await docs.register(swaggerUi, { routePrefix: '/docs' });
  });
}
