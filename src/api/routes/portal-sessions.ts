// Portal sessions: a short-lived signed URL the sender embeds (iframe or link) so one customer
// (tenant) manages its own endpoints without the sender's keys in the browser. Minting and
// revoking are per tenant (mounted per tenant, tenant-routes.ts); the token then opens that
// tenant's routes only, read-only if asked, until it expires or is revoked (access.ts). The page
// at /portal is served elsewhere.
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { revokePortalSession, revokeTenantPortalSessions } from '../../db/portal-revocations';
import { getTenant, OPERATOR_TENANT } from '../../db/tenants';
import { ApiError, notFound } from '../errors';
import { mintPortalToken, portalSigningKey } from '../portal-token';
import { MAX_PORTAL_TTL_SECONDS, PortalSessionIn, PortalSessionInfoOut, PortalSessionOut } from '../schemas';

const DEFAULT_TTL_SECONDS = 3600;
// A revoked id is remembered as long as any token with it could still be valid: the longest
// session, plus a margin for clocks of API replicas that disagree a little.
const REVOKED_ID_KEPT_MS = (MAX_PORTAL_TTL_SECONDS + 300) * 1000;
// What mintPortalToken puts in jti (randomUUID); anything else names no session of ours.
const SessionIdParams = z.object({ sessionId: z.uuid() });

/**
 * Sessions are started and ended by the sender, with its keys. A session doing either would
 * decide for itself how long it, or its tenant's other sessions, last.
 */
function refusePortalPrincipal(req: FastifyRequest, what: string): void {
  if (req.principal?.kind === 'portal') throw new ApiError(403, 'forbidden', `authorization: a portal session cannot ${what}`);
}

/** POST /v1/tenants/:tenantId/portal-sessions (and /v1/portal-sessions for the default tenant). */
export const portalSessionRoutes: FastifyPluginAsync = async (fastify) => {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  const key = portalSigningKey(app.hookline.config);

  app.post('/portal-sessions', {
    config: { auth: 'manage' },
    schema: {
      tags: ['portal'],
      summary: 'Start a portal session for this tenant: a URL to embed or link, valid for ttlSeconds (default 1 h)',
      body: PortalSessionIn.nullish(),
      response: { 201: PortalSessionOut },
    },
  }, async (req, reply) => {
    // A session minting sessions would outlive its own expiry for as long as it kept doing so.
    refusePortalPrincipal(req, 'start another one');
    // A session is handed to a customer's browser; the operator feed is the admin's alone.
    if (req.tenantId === OPERATOR_TENANT) throw new ApiError(403, 'forbidden', `tenantId: ${OPERATOR_TENANT} is the operator feed; no portal session opens it`);
    if (!key) {
      throw new ApiError(503, 'portal_secret_missing', 'HOOKLINE_PORTAL_SECRET (or HOOKLINE_ENCRYPTION_KEY) is not set: portal sessions cannot be signed');
    }
    const b = req.body ?? {};
    const { token, sessionId, expiresAt } = await mintPortalToken(key, {
      tenantId: req.tenantId,
      readOnly: b.readOnly ?? false,
      branding: b.branding ?? {},
      ttlSeconds: b.ttlSeconds ?? DEFAULT_TTL_SECONDS,
    });
    // The token rides in the fragment: browsers never send it, so no proxy or access log sees it.
    const url = `${req.protocol}://${req.host}/portal#token=${token}`;
    return reply.code(201).send({ id: sessionId, url, token, expiresAt: expiresAt.toISOString() });
  });

  app.delete('/portal-sessions/:sessionId', {
    config: { auth: 'manage' },
    schema: {
      tags: ['portal'],
      summary: 'End one portal session of this tenant before it expires (its id is the `id` it was started with); 204, also for an id that is already gone',
      params: SessionIdParams,
    },
  }, async (req, reply) => {
    refusePortalPrincipal(req, 'end sessions');
    // Tokens are stateless, so whether this id was ever minted is unknown: revoking is idempotent.
    await revokePortalSession(app.hookline.pool, req.tenantId, req.params.sessionId, new Date(Date.now() + REVOKED_ID_KEPT_MS));
    return reply.code(204).send();
  });

  app.delete('/portal-sessions', {
    config: { auth: 'manage' },
    schema: { tags: ['portal'], summary: 'End every portal session of this tenant started until now; sessions started afterwards work; 204' },
  }, async (req, reply) => {
    refusePortalPrincipal(req, 'end sessions');
    await revokeTenantPortalSessions(app.hookline.pool, req.tenantId);
    return reply.code(204).send();
  });
};

/** GET /v1/portal/session: what the portal page needs to know about its own session. */
export const portalSessionInfoRoutes: FastifyPluginAsync = async (fastify) => {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  const { pool } = app.hookline;

  app.get('/v1/portal/session', {
    config: { auth: 'read', tenancy: 'session' },
    schema: { tags: ['portal'], summary: "The calling portal session: its tenant, read-only flag, expiry and branding", response: { 200: PortalSessionInfoOut } },
  }, async (req) => {
    const p = req.principal;
    if (p?.kind !== 'portal') throw new ApiError(403, 'forbidden', 'authorization: this route answers a portal session token only');
    const tenant = await getTenant(pool, p.session.tenantId);
    if (!tenant) throw notFound('tenant', p.session.tenantId);
    return {
      tenantId: tenant.id,
      tenantName: tenant.name,
      readOnly: p.session.readOnly,
      expiresAt: p.session.expiresAt.toISOString(),
      branding: p.session.branding,
    };
  });
};
