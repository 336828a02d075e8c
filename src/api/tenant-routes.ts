// The routes of a tenant's data (endpoints, events, deliveries, dead letters, stats) are written
// once, with paths relative to the tenant ('/endpoints/:id'), and handlers that act on
// `req.tenantId`. Each plugin is mounted twice: under /v1/tenants/:tenantId, and under /v1 for the
// `default` tenant, so everything built before tenants keeps working. access.ts resolves and
// checks the tenant (`config.tenancy`) before a handler runs.
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import { z } from 'zod';

export const TENANT_PREFIX = '/v1/tenants/:tenantId';

const TenantIdParam = z.string().max(64).meta({ description: 'a tenant id (`tn_…` or one chosen at creation); `default` is the tenant of the routes without one' });

const MOUNTS = [
  { prefix: '/v1', tenancy: 'default' },
  { prefix: TENANT_PREFIX, tenancy: 'path' },
] as const;

export async function registerTenantRoutes(app: FastifyInstance, plugins: FastifyPluginAsync[]): Promise<void> {
  for (const mount of MOUNTS) {
    await app.register(async (scope) => {
      scope.addHook('onRoute', (route) => {
        // A route written as '/v1/…' here would be served at /v1/v1/…: fail the build instead.
        if (route.routePath?.startsWith('/v1')) {
          throw new Error(`route ${route.routePath}: tenant routes are relative to the tenant ('/endpoints', not '/v1/endpoints'); see src/api/tenant-routes.ts`);
        }
        route.config = { ...route.config, tenancy: mount.tenancy };
        if (mount.tenancy === 'path') {
          // Documented (OpenAPI) and kept by validation; the handler reads req.tenantId.
          const params = (route.schema?.params as z.ZodObject | undefined) ?? z.object({});
          route.schema = { ...route.schema, params: params.extend({ tenantId: TenantIdParam }) };
        }
      });
      for (const plugin of plugins) await scope.register(plugin);
    }, { prefix: mount.prefix });
  }
}
