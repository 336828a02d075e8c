// /v1/tenants: the sender's customers. Creating, listing, changing and deleting tenants acts on
// every tenant (the admin key or a key for all tenants); a tenant's own credentials may read it.
// Its data lives under /v1/tenants/:tenantId/… (tenant-routes.ts).
import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { withTransaction } from '../../db/pool';
import * as tenants from '../../db/tenants';
import { newTenantId } from '../../ids';
import { ApiError, notFound } from '../errors';
import { PageQuery, TenantIn, TenantOut, TenantPatch, pageOf } from '../schemas';

const TenantParams = z.object({ tenantId: z.string().max(64) });

const tenantOut = (t: tenants.TenantRow) => ({
  id: t.id, name: t.name, metadata: t.metadata, createdAt: t.createdAt.toISOString(), updatedAt: t.updatedAt.toISOString(),
});

export const tenantRoutes: FastifyPluginAsync = async (fastify) => {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  const { pool } = app.hookline;

  app.post('/v1/tenants', {
    config: { auth: 'manage', tenancy: 'global' },
    schema: { tags: ['tenants'], summary: 'Create a tenant (one per customer you send webhooks to)', body: TenantIn, response: { 201: TenantOut } },
  }, async (req, reply) => {
    const b = req.body;
    const row = await tenants.insertTenant(pool, { id: b.id ?? newTenantId(), name: b.name ?? '', metadata: b.metadata ?? {} });
    // A deleted tenant's id stays taken: its history is still there until the retention ends.
    if (!row) throw new ApiError(409, 'tenant_exists', `id: tenant ${b.id} already exists (or existed: ids of deleted tenants are not reused)`);
    return reply.code(201).send(tenantOut(row));
  });

  app.get('/v1/tenants', {
    config: { auth: 'read', tenancy: 'global' },
    schema: { tags: ['tenants'], summary: 'List tenants by id', querystring: PageQuery, response: { 200: pageOf(TenantOut) } },
  }, async (req) => {
    const rows = await tenants.listTenants(pool, req.query.limit + 1, req.query.cursor);
    const data = rows.slice(0, req.query.limit).map(tenantOut);
    return { data, nextCursor: rows.length > req.query.limit ? data[data.length - 1].id : null };
  });

  app.get('/v1/tenants/:tenantId', {
    // `path`: a tenant's own keys may read it; access.ts checked it exists.
    config: { auth: 'read', tenancy: 'path' },
    schema: { tags: ['tenants'], summary: 'Read a tenant', params: TenantParams, response: { 200: TenantOut } },
  }, async (req) => {
    // The metadata is the sender's notes on its customer, not for the customer's browser.
    if (req.principal?.kind === 'portal') {
      throw new ApiError(403, 'forbidden', 'authorization: a portal session reads its tenant through GET /v1/portal/session');
    }
    const row = await tenants.getTenant(pool, req.tenantId);
    if (!row) throw notFound('tenant', req.params.tenantId);
    return tenantOut(row);
  });

  app.patch('/v1/tenants/:tenantId', {
    config: { auth: 'manage', tenancy: 'global' },
    schema: { tags: ['tenants'], summary: "Change a tenant's name or metadata", params: TenantParams, body: TenantPatch, response: { 200: TenantOut } },
  }, async (req) => {
    const row = await tenants.updateTenant(pool, req.params.tenantId, req.body);
    if (!row) throw notFound('tenant', req.params.tenantId);
    return tenantOut(row);
  });

  app.delete('/v1/tenants/:tenantId', {
    config: { auth: 'manage', tenancy: 'global' },
    schema: {
      tags: ['tenants'],
      summary: 'Delete a tenant: its endpoints stop receiving at once, its keys are revoked, its events and deliveries follow the retention',
      params: TenantParams,
    },
  }, async (req, reply) => {
    if (req.params.tenantId === tenants.DEFAULT_TENANT) {
      throw new ApiError(409, 'default_tenant', 'tenantId: the default tenant serves the routes without a tenant and cannot be deleted');
    }
    if (req.params.tenantId === tenants.OPERATOR_TENANT) {
      throw new ApiError(409, 'operator_tenant', 'tenantId: the operator tenant holds the feed of every tenant\'s operational events and cannot be deleted');
    }
    if (!(await withTransaction(pool, (db) => tenants.deleteTenant(db, req.params.tenantId)))) throw notFound('tenant', req.params.tenantId);
    return reply.code(204).send();
  });
};
