// {T}/listen: what `hookline listen` (src/cli/listen.ts) talks to, {T} being /v1 (tenant
// `default`) or /v1/tenants/:tenantId (src/api/tenant-routes.ts). The only way to make a
// `listen://` endpoint (src/api/url-policy.ts refuses that scheme on /v1/endpoints).
//
//   POST {T}/listen/sessions                   open a session (201, its endpoint and secret, once)
//                                              or resume one by name (200, no secret)
//   GET  {T}/listen/sessions/:session/stream   the deliveries, as Server-Sent Events
//   POST {T}/listen/sessions/:session/results  the local app's answer to one delivery
//
// A session belongs to the tenant it was opened in (its endpoint is that tenant's; its row id is
// tenant-qualified, src/listen/sessions.ts sessionKey), so the same name in another tenant is
// another session, and a key bound to one tenant can listen there only.
//
// Server-Sent Events plus a POST per answer rather than a WebSocket: both halves are plain HTTP
// requests through Fastify's router, so the access checks (Bearer key, Host allowlist, cross-site
// refusal), body limits and zod validation apply as on any route; it passes the shipped nginx
// config unchanged (X-Accel-Buffering: no turns off its buffering; pings every 15 s stay inside
// its 30 s read timeout), where a WebSocket needs Upgrade headers there; and it needs no new
// dependency on either side (the CLI reads the stream with fetch).
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { hasEncryptionKey } from '../../at-rest';
import { withTransaction } from '../../db/pool';
import * as endpoints from '../../db/endpoints';
import { EVENT_TYPE_PATTERN, newEndpointId } from '../../ids';
import { generateSigningSecret } from '../../signing';
import type { RetryOverrides } from '../../retry';
import { ListenHub } from '../../listen/hub';
import { answerRequest } from '../../db/listen-requests';
import { getSession, insertSession } from '../../db/listen-sessions';
import { listenUrl, SESSION_ID_PATTERN, sessionKey } from '../../listen/sessions';
import { registerTenantRoutes } from '../tenant-routes';
import { ApiError, notFound } from '../errors';

/**
 * A listen endpoint's retries: of a local app that failed (a listener that is away pauses the
 * endpoint instead, costing no attempt). Short, as for a developer at work: at most 5 s apart.
 * The deadline is the grace period: past it the session and its endpoint are removed anyway.
 */
function listenRetry(graceMs: number): RetryOverrides {
  return { initialIntervalMs: 1_000, backoffCoefficient: 2, maximumIntervalMs: 5_000, deadlineMs: graceMs, maxAttempts: 0 };
}

const SessionId = z.string().regex(SESSION_ID_PATTERN, 'letters, digits, _ and -, at most 64');
const EventTypePattern = z
  .string()
  .max(255)
  .refine((p) => p === '*' || EVENT_TYPE_PATTERN.test(p.endsWith('.*') ? p.slice(0, -2) : p), {
    message: 'event type, "*" or a prefix pattern such as invoice.*',
  });
const SessionIn = z
  .object({
    session: SessionId.optional().describe('resume this session, or open it under this name; absent: a new random one'),
    eventTypes: z.array(EventTypePattern).min(1).max(100).optional(),
  })
  .strict();
const SessionOut = z.object({
  session: z.string(),
  endpointId: z.string(),
  eventTypes: z.array(z.string()).nullable(),
  graceMs: z.number(),
  resumed: z.boolean(),
  disabledReason: z.string().nullable().describe('set when the endpoint is disabled (e.g. the local app answered 410)'),
  secret: z.string().optional().describe('only when the session is created'),
});
const SessionParams = z.object({ session: SessionId });
// The answer the CLI reports: the local status (and body, for the attempt record), or why it
// could not reach the local app.
const ResultIn = z
  .object({
    requestId: z.string().regex(/^\d{1,18}$/),
    status: z.number().int().min(100).max(599).optional(),
    headers: z.record(z.string().max(256), z.string().max(8192)).optional(),
    bodyBase64: z.string().max(200_000).optional(),
    error: z.object({ code: z.string().max(64), message: z.string().max(1000) }).strict().optional(),
  })
  .strict()
  .refine((r) => (r.status === undefined) !== (r.error === undefined), { message: 'exactly one of status and error', path: ['status'] });

const randomSessionId = () => `lsn_${newEndpointId().slice('ep_'.length).toLowerCase()}`;

/** The signal that wakes a delivery waiting at its endpoint's gate (activities GATE_OPEN_SIGNAL). */
const GATE_OPEN_SIGNAL = 'gateOpen';

/**
 * Mounts the listen routes for every tenant (/v1 and /v1/tenants/:tenantId) around ONE hub per
 * app: one sweeper, one LISTEN connection, one map of held streams, whichever prefix a CLI used.
 */
export async function registerListenRoutes(root: FastifyInstance): Promise<void> {
  const { pool, config, temporal } = root.hookline;
  const hub = new ListenHub({
    pool,
    databaseUrl: config.DATABASE_URL ?? pool.options.connectionString!,
    graceMs: config.HOOKLINE_LISTEN_GRACE_MS,
    log: root.log,
    wake: temporal ? (workflowId, endpointId) => temporal.client.workflow.getHandle(workflowId).signal(GATE_OPEN_SIGNAL, endpointId) : undefined,
  });
  hub.startSweeping();
  // Before the server closes: an open stream would otherwise hold the close forever.
  root.addHook('preClose', async () => hub.close());
  await registerTenantRoutes(root, [listenRoutes(hub)]);
}

const listenRoutes = (hub: ListenHub): FastifyPluginAsync => async (fastify) => {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  const { pool, config } = app.hookline;
  const graceMs = config.HOOKLINE_LISTEN_GRACE_MS;

  app.post('/listen/sessions', {
    schema: { tags: ['listen'], summary: 'Open or resume a hookline listen session', body: SessionIn, response: { 200: SessionOut, 201: SessionOut } },
    config: { auth: 'manage' },
  }, async (req, reply) => {
    const id = req.body.session ?? randomSessionId();
    const key = sessionKey(req.tenantId, id);
    const eventTypes = req.body.eventTypes ?? null;
    const result = await withTransaction(pool, async (db) => {
      const existing = await getSession(db, key, true);
      if (existing) {
        const ep = req.body.eventTypes
          ? await endpoints.updateEndpoint(db, existing.endpointId, { eventTypes })
          : await endpoints.getEndpoint(db, existing.endpointId);
        const disabledReason = ep?.disabled ? ep.disabledReason ?? 'disabled' : null;
        return { resumed: true, endpointId: existing.endpointId, eventTypes: ep?.eventTypes ?? null, disabledReason, secret: undefined };
      }
      if (!hasEncryptionKey()) {
        throw new ApiError(503, 'encryption_key_missing', 'HOOKLINE_ENCRYPTION_KEY is not set: endpoint secrets cannot be stored');
      }
      const secret = generateSigningSecret('hmac');
      const ep = await endpoints.insertEndpoint(db, {
        id: newEndpointId(),
        tenantId: req.tenantId,
        url: listenUrl(key),
        description: `hookline listen session ${id}`,
        eventTypes,
        channels: null,
        retry: listenRetry(graceMs),
        metadata: { 'hookline.listen': id },
        disabled: false,
        secret,
      });
      await insertSession(db, key, ep.id);
      return { resumed: false, endpointId: ep.id, eventTypes: ep.eventTypes, disabledReason: null, secret };
    }).catch((err) => {
      if ((err as { code?: string }).code === '23505') throw new ApiError(409, 'conflict', `body.session: ${id} is being opened by another request`);
      throw err;
    });
    return reply.code(result.resumed ? 200 : 201).send({ session: id, graceMs, ...result });
  });

  app.get('/listen/sessions/:session/stream', {
    schema: { tags: ['listen'], summary: 'The session\'s deliveries as Server-Sent Events (events: ready, delivery, replaced, removed)', params: SessionParams },
    // Opening the stream takes the session over from the listener holding it: a state change,
    // so a cross-site browser request (an <img> on any page, in keyless dev) is refused.
    config: { auth: 'manage', sideEffects: true },
  }, async (req, reply) => {
    const session = await getSession(pool, sessionKey(req.tenantId, req.params.session));
    if (!session) throw notFound('listen session', req.params.session);
    // A browser too old to send Sec-Fetch-Site sends no Origin on an <img> or <script> GET
    // either; neither can ask for text/event-stream (the CLI does, and so does EventSource,
    // whose Origin the cross-site check sees), so this closes what that check cannot.
    if (!/\btext\/event-stream\b/i.test(req.headers.accept ?? '')) {
      throw new ApiError(406, 'not_acceptable', 'accept: this route answers text/event-stream only (hookline listen asks for it)');
    }
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-accel-buffering': 'no',
    });
    // A CLI that vanished without closing (laptop asleep, network gone) is noticed by TCP.
    req.raw.socket.setKeepAlive(true, 10_000);
    let open = true;
    const stream = {
      send: (event: string, data: unknown) => {
        if (open) res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
      },
      ping: () => {
        if (open) res.write(': ping\n\n');
      },
      end: () => {
        open = false;
        res.end();
      },
    };
    stream.send('ready', { session: req.params.session, endpointId: session.endpointId });
    const attached = hub.attach(session.id, stream);
    res.on('close', () => {
      open = false;
      attached.then((release) => release(), () => {});
    });
    try {
      await attached;
    } catch (err) {
      req.log.warn({ err: (err as Error).message }, 'listen: could not attach a stream');
      stream.end(); // the CLI reconnects
    }
  });

  app.post('/listen/sessions/:session/results', {
    schema: { tags: ['listen'], summary: 'Report the local app\'s answer to one delivery', params: SessionParams, body: ResultIn },
    config: { auth: 'manage' },
  }, async (req, reply) => {
    const b = req.body;
    const answered = await answerRequest(pool, sessionKey(req.tenantId, req.params.session), b.requestId, {
      status: b.status ?? null,
      headers: b.headers ?? null,
      body: b.bodyBase64 !== undefined ? Buffer.from(b.bodyBase64, 'base64') : null,
      errorCode: b.error?.code ?? null,
      errorMessage: b.error?.message ?? null,
    });
    // Gone: the attempt timed out and was given up (it retries), or it was answered already.
    if (!answered) throw new ApiError(404, 'not_found', `body.requestId: request ${b.requestId} is not waiting for an answer in session ${req.params.session}`);
    return reply.code(204).send();
  });
};
