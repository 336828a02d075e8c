// /v1/endpoints (and /v1/tenants/:tenantId/endpoints, see tenant-routes.ts): subscribe, read,
// change, delete, rotate secrets — always within req.tenantId.
import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { hasEncryptionKey } from '../../at-rest';
import { withTransaction } from '../../db/pool';
import * as endpoints from '../../db/endpoints';
import { newEndpointId } from '../../ids';
import { generateSigningSecret, schemeOf, verificationKey, type SigningScheme } from '../../signing';
import { retryPolicyIssues, type RetryOverrides } from '../../retry';
import { ApiError, notFound } from '../errors';
import { endpointOut } from '../serialize';
import { EndpointIn, EndpointOut, EndpointPatch, EndpointWithSecretOut, PageQuery, RotateIn, RotateOut, pageOf, RetryIn, TimeoutsIn } from '../schemas';
import { endpointHealth, resetGate, type EndpointHealth } from '../../db/gate';
import type { Config } from '../../config';
import { targetPolicyFromConfig } from '../../net/address-policy';
import { checkTargetUrl } from '../url-policy';

const DEFAULT_EXPIRE_OLD_AFTER_MS = 24 * 60 * 60 * 1000;
const IdParams = z.object({ id: z.string().max(128) });

/** The declared policy as stored; 422 naming `body.retry.<field>` when Temporal could not run it. */
function retryOverrides(r: z.output<typeof RetryIn> | undefined | null, minIntervalMs: number): RetryOverrides {
  if (!r) return {};
  const o: RetryOverrides = {};
  if (r.initialInterval !== undefined) o.initialIntervalMs = r.initialInterval;
  if (r.backoffCoefficient !== undefined) o.backoffCoefficient = r.backoffCoefficient;
  if (r.maximumInterval !== undefined) o.maximumIntervalMs = r.maximumInterval;
  if (r.deadline !== undefined) o.deadlineMs = r.deadline;
  if (r.maxAttempts !== undefined) o.maxAttempts = r.maxAttempts;
  if (r.deadLetterRetention !== undefined) o.deadLetterRetentionMs = r.deadLetterRetention;
  if (r.schedule !== undefined) o.scheduleMs = r.schedule;
  const issues = retryPolicyIssues(o, minIntervalMs).map((i) => ({ path: `body.retry.${i.field}`, message: i.message }));
  if (issues.length > 0) {
    throw new ApiError(422, 'invalid_retry', issues.map((i) => `${i.path}: ${i.message}`).join('; '), issues);
  }
  return o;
}

/** The isolation settings as stored (src/db/gate.ts): set keys only; null clears one. */
function limitsIn(
  b: { maxInFlight?: number | null; rateLimit?: number | null; timeouts?: z.output<typeof TimeoutsIn> | null },
  current: endpoints.EndpointLimits = {},
): endpoints.EndpointLimits | undefined {
  if (b.maxInFlight === undefined && b.rateLimit === undefined && b.timeouts === undefined) return undefined;
  const next: endpoints.EndpointLimits = { ...current };
  const put = <K extends keyof endpoints.EndpointLimits>(key: K, v: number | null | undefined) => {
    if (v === null) delete next[key];
    else if (v !== undefined) next[key] = v;
  };
  put('maxInFlight', b.maxInFlight);
  put('rateLimit', b.rateLimit);
  if (b.timeouts !== undefined) {
    put('connectTimeoutMs', b.timeouts === null ? null : b.timeouts.connect);
    put('responseTimeoutMs', b.timeouts === null ? null : b.timeouts.response);
  }
  return next;
}

/** An endpoint as the API shows it: its isolation settings with the defaults filled in. */
function withLimits(row: endpoints.EndpointRow, config: Config, health?: EndpointHealth) {
  const l = row.limits;
  return {
    ...endpointOut(row),
    maxInFlight: l.maxInFlight ?? config.HOOKLINE_ENDPOINT_MAX_IN_FLIGHT,
    rateLimit: l.rateLimit ?? null,
    timeouts: { connect: l.connectTimeoutMs ?? config.HOOKLINE_CONNECT_TIMEOUT_MS, response: l.responseTimeoutMs ?? config.HOOKLINE_REQUEST_TIMEOUT_MS },
    ...(health ? { health: healthOut(health) } : {}),
  };
}

const iso = (d: Date | null) => (d ? d.toISOString() : null);
const healthOut = (h: EndpointHealth) => ({
  state: h.state, since: iso(h.since), consecutiveFailures: h.consecutiveFailures, nextProbeAt: iso(h.nextProbeAt),
  failingSince: iso(h.failingSince), lastSuccessAt: iso(h.lastSuccessAt), inFlight: h.inFlight, pausedUntil: iso(h.pausedUntil),
  pausedReason: h.pausedReason,
});

/** Without HOOKLINE_ENCRYPTION_KEY a secret could only be stored in plaintext: refuse instead. */
function requireEncryptionKey(): void {
  if (!hasEncryptionKey()) {
    throw new ApiError(503, 'encryption_key_missing', 'HOOKLINE_ENCRYPTION_KEY is not set: endpoint secrets cannot be stored (see README "Secrets at rest")');
  }
}

/**
 * The new signing key: the caller's `secret` (an HMAC whsec_) or a generated one. An ed25519 key
 * pair is always made here, so the private half exists only in Hookline.
 */
function newSigningSecret(scheme: SigningScheme, given: string | undefined): string {
  if (given === undefined) return generateSigningSecret(scheme);
  if (scheme !== 'hmac') {
    throw new ApiError(422, 'invalid_secret', `body.secret: only for signing "hmac"; with "ed25519" Hookline makes the key pair and returns the whpk_ public key`);
  }
  return given;
}

export const endpointRoutes: FastifyPluginAsync = async (fastify) => {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  const { pool, config } = app.hookline;
  const targets = targetPolicyFromConfig(config);

  app.post('/endpoints', {
    config: { auth: 'manage' },
    schema: { tags: ['endpoints'], summary: 'Create an endpoint', body: EndpointIn, response: { 201: EndpointWithSecretOut } },
  }, async (req, reply) => {
    const b = req.body;
    b.url = await checkTargetUrl(b.url, 'url', targets);
    requireEncryptionKey();
    const secret = newSigningSecret(b.signing ?? 'hmac', b.secret);
    const row = await withTransaction(pool, async (db) => {
      const max = config.HOOKLINE_MAX_ENDPOINTS_PER_TENANT;
      if ((await endpoints.countEndpointsForCreate(db, req.tenantId)) >= max) {
        throw new ApiError(422, 'endpoint_limit', `tenant ${req.tenantId} has ${max} endpoints, the most HOOKLINE_MAX_ENDPOINTS_PER_TENANT allows; delete one or raise the limit`);
      }
      return endpoints.insertEndpoint(db, {
        id: newEndpointId(),
        tenantId: req.tenantId,
        url: b.url,
        description: b.description ?? '',
        eventTypes: b.eventTypes && b.eventTypes.length > 0 ? b.eventTypes : null,
        channels: b.channels && b.channels.length > 0 ? b.channels : null,
        retry: retryOverrides(b.retry, config.HOOKLINE_MIN_RETRY_INTERVAL_MS),
        metadata: b.metadata ?? {},
        disabled: b.disabled ?? false,
        limits: limitsIn(b) ?? {},
        secret,
      });
    });
    return reply.code(201).send({ ...withLimits(row, config), secret: verificationKey(secret) });
  });

  app.get('/endpoints', {
    config: { auth: 'read' },
    schema: { tags: ['endpoints'], summary: 'List endpoints, newest first', querystring: PageQuery, response: { 200: pageOf(EndpointOut) } },
  }, async (req) => {
    const rows = await endpoints.listEndpoints(pool, req.tenantId, req.query.limit + 1, req.query.cursor);
    const data = rows.slice(0, req.query.limit).map((r) => withLimits(r, config));
    return { data, nextCursor: rows.length > req.query.limit ? data[data.length - 1].id : null };
  });

  app.get('/endpoints/:id', {
    config: { auth: 'read' },
    schema: { tags: ['endpoints'], summary: 'Read an endpoint', params: IdParams, response: { 200: EndpointOut } },
  }, async (req) => {
    const row = await endpoints.getEndpoint(pool, req.params.id, req.tenantId);
    if (!row) throw notFound('endpoint', req.params.id);
    return withLimits(row, config, await endpointHealth(pool, row.id));
  });

  app.patch('/endpoints/:id', {
    config: { auth: 'manage' },
    schema: { tags: ['endpoints'], summary: 'Change an endpoint', params: IdParams, body: EndpointPatch, response: { 200: EndpointOut } },
  }, async (req) => {
    const b = req.body;
    if (b.url) b.url = await checkTargetUrl(b.url, 'url', targets);
    let limits: endpoints.EndpointLimits | undefined;
    if (limitsIn(b) !== undefined) {
      const current = await endpoints.getEndpoint(pool, req.params.id, req.tenantId);
      if (!current) throw notFound('endpoint', req.params.id);
      limits = limitsIn(b, current.limits);
    }
    const row = await endpoints.updateEndpoint(pool, req.params.id, {
      url: b.url,
      description: b.description,
      eventTypes: b.eventTypes === undefined ? undefined : b.eventTypes && b.eventTypes.length > 0 ? b.eventTypes : null,
      channels: b.channels === undefined ? undefined : b.channels && b.channels.length > 0 ? b.channels : null,
      retry: b.retry === undefined ? undefined : retryOverrides(b.retry, config.HOOKLINE_MIN_RETRY_INTERVAL_MS),
      metadata: b.metadata,
      disabled: b.disabled,
      limits,
    }, req.tenantId);
    if (!row) throw notFound('endpoint', req.params.id);
    if (b.disabled === false) await resetGate(pool, row.id);
    return withLimits(row, config);
  });

  app.delete('/endpoints/:id', {
    config: { auth: 'manage' },
    schema: { tags: ['endpoints'], summary: 'Delete an endpoint (its deliveries stay readable)', params: IdParams },
  }, async (req, reply) => {
    if (!(await endpoints.deleteEndpoint(pool, req.params.id, req.tenantId))) throw notFound('endpoint', req.params.id);
    return reply.code(204).send();
  });

  app.post('/endpoints/:id/secret/rotate', {
    config: { auth: 'manage' },
    schema: {
      tags: ['endpoints'],
      summary: 'Issue a new signing secret (or switch hmac/ed25519); older ones keep signing until expireOldAfter (default 24 h)',
      params: IdParams,
      body: RotateIn.optional(),
      response: { 200: RotateOut },
    },
  }, async (req) => {
    const expireOldAfter = req.body?.expireOldAfter ?? DEFAULT_EXPIRE_OLD_AFTER_MS;
    requireEncryptionKey();
    const secret = await withTransaction(pool, async (db) => {
      const row = await db.query<{ signing: SigningScheme }>('SELECT signing FROM endpoints WHERE id = $1 AND tenant_id = $2 FOR UPDATE', [req.params.id, req.tenantId]);
      if (!row.rows[0]) throw notFound('endpoint', req.params.id);
      const next = newSigningSecret(req.body?.signing ?? row.rows[0].signing, req.body?.secret);
      await endpoints.rotateSecret(db, req.params.id, next, expireOldAfter);
      return next;
    });
    return {
      secret: verificationKey(secret),
      signing: schemeOf(secret),
      oldSecretsExpireAt: new Date(Date.now() + expireOldAfter).toISOString(),
    };
  });
};
