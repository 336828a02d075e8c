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
          (auth ? ' Every route except /healthz, /readyz, /docs and /ui needs `Authorization: Bearer <HOOKLINE_API_KEY>`.' : ''),
      },
      tags: [
        { name: 'events', description: 'What producers submit' },
        { name: 'event types', description: 'The catalogue of event types and their schemas' },
        { name: 'endpoints', description: 'Where events go' },
        { name: 'deliveries', description: 'One event at one endpoint, and its attempts' },
        { name: 'dead letters', description: 'Deliveries that gave up, and their replay' },
      ],
      components: {
        securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'HOOKLINE_API_KEY' } },
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
