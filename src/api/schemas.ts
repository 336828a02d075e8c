// Request and response schemas (zod): the API's validation and its OpenAPI document both come
// from here. Names follow Svix: EndpointIn / EndpointOut, EventIn / EventOut.
import { z } from 'zod';
import { msToNumber } from '@temporalio/common/lib/time';
import { isValidSecret } from '../signing';
import { CHANNEL_PATTERN, EVENT_ID_PATTERN, EVENT_TYPE_PATTERN } from '../ids';
import { KEY_SCOPES } from '../db/api-keys';
import { TENANT_ID_PATTERN } from '../db/tenants';
import { MAX_CONNECT_TIMEOUT_MS, MAX_IN_FLIGHT_LIMIT, MAX_RATE_LIMIT, MAX_RESPONSE_TIMEOUT_MS, MIN_TIMEOUT_MS } from '../db/gate';

/**
 * Past this no duration means anything here, and `Date`/`make_interval` arithmetic stays exact
 * ("280000 years" overflows both). Routes set tighter bounds of their own.
 */
const MAX_DURATION_MS = 100 * 365 * 24 * 60 * 60 * 1000;

/** A duration as Temporal writes it ("500ms", "5s", "3 days") or a number of milliseconds. */
export const Duration = z
  .union([z.number().int().nonnegative(), z.string().min(1).max(64)])
  .transform((v, ctx) => {
    try {
      const ms = msToNumber(v as never);
      if (!Number.isFinite(ms) || ms < 0) throw new Error();
      if (ms > MAX_DURATION_MS) {
        ctx.addIssue({ code: 'custom', message: 'longer than 100 years' });
        return z.NEVER;
      }
      return ms;
    } catch {
      ctx.addIssue({ code: 'custom', message: `not a duration: ${JSON.stringify(v)} (use e.g. "500ms", "5s", "3 days" or milliseconds)` });
      return z.NEVER;
    }
  })
  .meta({ description: 'milliseconds, or a duration string such as "500ms", "30s", "3 days"' });

export const RetryIn = z
  .object({
    initialInterval: Duration.optional(),
    backoffCoefficient: z.number().min(1).max(100).optional(),
    maximumInterval: Duration.optional(),
    deadline: Duration.optional(),
    maxAttempts: z.number().int().min(0).max(1000).optional(),
    deadLetterRetention: Duration.optional(),
    schedule: z.array(Duration).max(50).optional(),
  })
  .strict();

export const RetryOut = z.object({
  initialInterval: z.number(),
  backoffCoefficient: z.number(),
  maximumInterval: z.number(),
  deadline: z.number(),
  maxAttempts: z.number(),
  deadLetterRetention: z.number(),
  schedule: z.array(z.number()).nullable(),
});

// Endpoint isolation (README "Isolation and endpoint health").
const MaxInFlight = z.number().int().min(1).max(MAX_IN_FLIGHT_LIMIT)
  .meta({ description: `requests in flight to this endpoint across all workers (default HOOKLINE_ENDPOINT_MAX_IN_FLIGHT, 10)` });
const RateLimit = z.number().positive().max(MAX_RATE_LIMIT)
  .meta({ description: 'requests per second across all workers; absent: no limit' });
const timeoutBetween = (max: number) =>
  Duration.pipe(z.number().min(MIN_TIMEOUT_MS, `at least ${MIN_TIMEOUT_MS} ms`).max(max, `at most ${max / 1000} s`));
export const TimeoutsIn = z
  .object({
    connect: timeoutBetween(MAX_CONNECT_TIMEOUT_MS).optional().meta({ description: 'DNS + TCP connect (default HOOKLINE_CONNECT_TIMEOUT_MS, 5 s)' }),
    response: timeoutBetween(MAX_RESPONSE_TIMEOUT_MS).optional().meta({ description: 'the whole request (default HOOKLINE_REQUEST_TIMEOUT_MS, 15 s)' }),
  })
  .strict();

export const HealthOut = z.object({
  state: z.enum(['closed', 'open', 'half_open']).meta({ description: 'circuit breaker: closed (delivering), open (waiting for a probe), half_open (probe in flight)' }),
  since: z.string().nullable(),
  consecutiveFailures: z.number(),
  nextProbeAt: z.string().nullable(),
  failingSince: z.string().nullable(),
  lastSuccessAt: z.string().nullable(),
  inFlight: z.number(),
  pausedUntil: z.string().nullable().meta({ description: 'a Retry-After from the receiver holds every delivery until then' }),
  pausedReason: z.enum(['retry_after', 'listener_offline']).nullable().meta({
    description: 'why deliveries wait now: a Retry-After (until pausedUntil), or a `hookline listen` endpoint whose listener is disconnected (until it reconnects)',
  }),
});

export const EventTypeName = z.string().max(255).regex(EVENT_TYPE_PATTERN, 'dotted name such as invoice.paid');
const EventTypePattern = z
  .string()
  .max(255)
  .refine((p) => p === '*' || EVENT_TYPE_PATTERN.test(p.endsWith('.*') ? p.slice(0, -2) : p), {
    message: 'event type, "*" or a prefix pattern such as invoice.*',
  });
const Channel = z.string().min(1).max(128).regex(CHANNEL_PATTERN, 'letters, digits and _ . : -');
const HttpUrl = z
  .string()
  .max(2048)
  .refine((u) => {
    try {
      const p = new URL(u);
      return (p.protocol === 'http:' || p.protocol === 'https:') && p.hostname !== '';
    } catch {
      return false;
    }
  }, 'an absolute http(s) URL');

// Standard Webhooks signature scheme: v1 (HMAC, shared whsec_ secret) or v1a (ed25519, the
// receiver holds only the whpk_ public key).
const Signing = z.enum(['hmac', 'ed25519']).describe('hmac (v1, shared whsec_ secret) or ed25519 (v1a, receiver gets a whpk_ public key)');

export const EndpointIn = z
  .object({
    signing: Signing.optional(),
    url: HttpUrl,
    eventTypes: z.array(EventTypePattern).max(100).optional(),
    channels: z.array(Channel).max(20).optional(),
    description: z.string().max(1000).optional(),
    secret: z.string().refine(isValidSecret, 'whsec_ followed by base64 of 24–64 bytes').optional(),
    retry: RetryIn.optional(),
    disabled: z.boolean().optional(),
    metadata: z.record(z.string(), z.string().max(1000)).optional(),
    maxInFlight: MaxInFlight.optional(),
    rateLimit: RateLimit.optional(),
    timeouts: TimeoutsIn.optional(),
  })
  .strict();

export const EndpointPatch = z
  .object({
    url: HttpUrl.optional(),
    eventTypes: z.array(EventTypePattern).max(100).nullable().optional(),
    channels: z.array(Channel).max(20).nullable().optional(),
    description: z.string().max(1000).optional(),
    retry: RetryIn.nullable().optional(),
    disabled: z.boolean().optional(),
    metadata: z.record(z.string(), z.string().max(1000)).optional(),
    // null: back to the default.
    maxInFlight: MaxInFlight.nullable().optional(),
    rateLimit: RateLimit.nullable().optional(),
    timeouts: TimeoutsIn.nullable().optional(),
  })
  .strict();

export const EndpointOut = z.object({
  id: z.string(),
  url: z.string(),
  description: z.string(),
  eventTypes: z.array(z.string()).nullable(),
  channels: z.array(z.string()).nullable(),
  retry: RetryOut,
  disabled: z.boolean(),
  disabledReason: z.string().nullable(),
  signing: Signing,
  metadata: z.record(z.string(), z.string()),
  maxInFlight: z.number(),
  rateLimit: z.number().nullable(),
  timeouts: z.object({ connect: z.number(), response: z.number() }),
  /** GET /v1/endpoints/:id only. */
  health: HealthOut.optional(),
  createdAt: z.string(),
  updatedAt: z.string(),
});

// What the receiver verifies with: the whsec_ secret, or the whpk_ public key for ed25519.
const VerificationKeyOut = z.string().describe('whsec_ secret (hmac) or whpk_ public key (ed25519): what the receiver verifies with');
export const EndpointWithSecretOut = EndpointOut.extend({ secret: VerificationKeyOut });
export const RotateOut = z.object({ secret: VerificationKeyOut, signing: Signing, oldSecretsExpireAt: z.string() });

/** An old secret that keeps signing for more than a month defeats the point of rotating it. */
export const MAX_EXPIRE_OLD_AFTER_MS = 30 * 24 * 60 * 60 * 1000;

export const RotateIn = z
  .object({
    expireOldAfter: Duration.pipe(z.number().max(MAX_EXPIRE_OLD_AFTER_MS, 'at most 30 days')).optional(),
    signing: Signing.optional().describe('switch scheme with this rotation; old and new signatures overlap'),
    secret: z.string().refine(isValidSecret, 'whsec_ followed by base64 of 24–64 bytes').optional(),
  })
  .strict();

export const EventIn = z
  .object({
    type: EventTypeName,
    data: z.record(z.string(), z.unknown()),
    id: z.string().regex(EVENT_ID_PATTERN, 'up to 128 of A-Z a-z 0-9 _ . : -').optional(),
    channels: z.array(Channel).max(10).optional(),
    // Stored as a Postgres integer.
    version: z.number().int().min(1).max(2_147_483_647).optional(),
  })
  .strict();

export const TestEventIn = z
  .object({
    eventType: EventTypeName.optional().describe('default webhook.test; a registered type checks data against its schema'),
    data: z.record(z.string(), z.unknown()).optional().describe('default {} (e.g. the example payload of the type\'s schema)'),
  })
  .strict();

export const DeliveryStatusEnum = z.enum(['pending', 'delivering', 'delivered', 'dead_lettered', 'dropped']);

export const DeliveryOut = z.object({
  eventId: z.string(),
  endpointId: z.string(),
  eventType: z.string(),
  status: DeliveryStatusEnum,
  attempts: z.number(),
  lastStatusCode: z.number().nullable(),
  lastError: z.string().nullable(),
  reason: z.string().nullable(),
  createdAt: z.string(),
  updatedAt: z.string(),
  deliveredAt: z.string().nullable(),
  deadLetteredAt: z.string().nullable(),
});

export const EventOut = z.object({
  id: z.string(),
  type: z.string(),
  version: z.number().nullable(),
  channels: z.array(z.string()).nullable(),
  timestamp: z.string(),
  data: z.unknown(),
  /** Set when the event's type is deprecated (the answer also carries a Deprecation header). */
  warning: z.string().optional(),
});

export const EventWithDeliveriesOut = EventOut.extend({
  relayed: z.boolean(),
  deliveries: z.array(DeliveryOut).describe('one per endpoint, by endpoint id; the first 100 only when there are more (see deliveriesNext)'),
  deliveriesTotal: z.number().describe('how many deliveries the event has in all'),
  deliveriesNext: z.string().nullable().describe('when deliveries shows only the first ones: the deliveries list of this event (GET …/deliveries?eventId=…), paginated'),
});

export const AttemptOut = z.object({
  attempt: z.number(),
  startedAt: z.string(),
  latencyMs: z.number(),
  statusCode: z.number().nullable(),
  error: z.string().nullable(),
  outcome: z.enum(['delivered', 'retrying', 'failed']),
  responseBody: z.string().nullable(),
  /** How responseBody is written: the receiver's bytes as UTF-8 text, or base64 when they are not UTF-8. */
  responseBodyEncoding: z.enum(['utf8', 'base64']).nullable(),
});

export const PageQuery = z.object({
  limit: z.coerce.number().int().min(1).max(250).default(50),
  cursor: z.string().max(512).optional(),
});

export const ReplayFilterIn = z
  .object({
    endpointId: z.string().optional(),
    eventType: z.string().optional(),
    since: z.iso.datetime({ offset: true }).optional(),
  })
  .strict();

// Bulk replay works in batches: each request loads and signals at most `limit` dead letters, so
// a tenant's whole dead-letter set never sits in one API process or one HTTP request.
export const REPLAY_BATCH_DEFAULT = 100;
export const REPLAY_BATCH_MAX = 500;

export const DeadLetterReplayIn = ReplayFilterIn.extend({
  limit: z.number().int().min(1).max(REPLAY_BATCH_MAX).optional().describe(`dead letters replayed by this request, default ${REPLAY_BATCH_DEFAULT}`),
  cursor: z.string().max(1024).optional().describe('the nextCursor of the previous answer: continue after its batch'),
}).strict();

// Exactly {replayed} (the contract's shape) when the batch reached the end; the two paging
// fields appear only when more dead letters match.
export const DeadLetterReplayOut = z.object({
  replayed: z.number(),
  remaining: z.number().optional().describe('only when more match: how many after this batch'),
  nextCursor: z.string().optional().describe('only when more match: send it as cursor to replay the next batch'),
});

export const ErrorOut = z.object({
  code: z.string(),
  message: z.string(),
  details: z.array(z.unknown()).optional(),
});

export const pageOf = <T extends z.ZodType>(item: T) => z.object({ data: z.array(item), nextCursor: z.string().nullable() });

/** A JSON Schema (draft-07 unless `$schema` says 2019-09 or 2020-12) for an event type's `data`. */
const JsonSchema = z.record(z.string(), z.unknown()).meta({ description: 'JSON Schema for the event data' });

export const EventTypeIn = z
  .object({
    name: EventTypeName,
    description: z.string().max(1000).optional(),
    /** Becomes version 1. */
    schema: JsonSchema.optional(),
    deprecated: z.boolean().optional(),
  })
  .strict();

export const EventTypePatch = z
  .object({
    description: z.string().max(1000).optional(),
    deprecated: z.boolean().optional(),
    /** Adds the next version; versions are immutable. */
    schema: JsonSchema.optional(),
  })
  .strict();

export const EventTypeOut = z.object({
  name: z.string(),
  description: z.string(),
  deprecated: z.boolean(),
  deprecatedAt: z.string().nullable(),
  latestVersion: z.number().nullable(),
  versions: z.array(z.object({ version: z.number(), schema: z.unknown(), createdAt: z.string() })),
  createdAt: z.string(),
  updatedAt: z.string(),
});

export const EndpointStatsOut = z.object({
  endpointId: z.string(),
  /** The window in milliseconds, and where it starts. */
  window: z.number(),
  since: z.string(),
  attempts: z.object({ total: z.number(), succeeded: z.number(), failed: z.number() }),
  successRate: z.number().nullable().meta({ description: 'succeeded / total attempts in the window; null without attempts' }),
  latencyMs: z
    .object({ p50: z.number().nullable(), p95: z.number().nullable(), p99: z.number().nullable() })
    .meta({ description: 'percentiles over attempts that got an HTTP response' }),
  deliveries: z
    .object({ pending: z.number(), delivering: z.number(), delivered: z.number(), deadLettered: z.number(), dropped: z.number() })
    .meta({ description: 'deliveries created in the window, by current status' }),
  consecutiveFailures: z.number().meta({ description: 'failed attempts since the last success (all time, capped at 10 000)' }),
  lastSuccessAt: z.string().nullable(),
  lastFailures: z.array(
    z.object({ eventId: z.string(), attempt: z.number(), startedAt: z.string(), statusCode: z.number().nullable(), error: z.string().nullable() }),
  ),
});

// --- Tenants, API keys, portal sessions ---------------------------------------------------------

const Metadata = z.record(z.string().max(128), z.string().max(1000)).refine((m) => Object.keys(m).length <= 50, 'at most 50 keys');

export const TenantIn = z
  .object({
    id: z
      .string()
      .regex(TENANT_ID_PATTERN, '1–64 of A-Z a-z 0-9 _ . - starting with a letter or digit, not starting with tn_')
      .optional()
      .describe('your own id for this customer (e.g. its account id); absent: a generated tn_… id'),
    name: z.string().max(200).optional(),
    metadata: Metadata.optional(),
  })
  .strict();

export const TenantPatch = z.object({ name: z.string().max(200).optional(), metadata: Metadata.optional() }).strict();

export const TenantOut = z.object({
  id: z.string(),
  name: z.string(),
  metadata: z.record(z.string(), z.string()),
  createdAt: z.string(),
  updatedAt: z.string(),
});

export const TenantStatsOut = z.object({
  tenantId: z.string(),
  window: z.number(),
  since: z.string(),
  endpoints: z.object({ total: z.number(), disabled: z.number() }).meta({ description: 'now, not over the window' }),
  events: z.number().meta({ description: 'events published in the window' }),
  attempts: z.object({ total: z.number(), succeeded: z.number(), failed: z.number() }),
  successRate: z.number().nullable(),
  latencyMs: z.object({ p50: z.number().nullable(), p95: z.number().nullable(), p99: z.number().nullable() }),
  deliveries: z.object({ pending: z.number(), delivering: z.number(), delivered: z.number(), deadLettered: z.number(), dropped: z.number() }),
  deadLettersOpen: z.number().meta({ description: 'dead letters waiting for a replay now, whenever parked' }),
});

export const KeyScopeEnum = z.enum(KEY_SCOPES).describe('publish: submit events; read: read everything of its tenant(s); manage: endpoints, secrets, replay (implies read)');

export const ApiKeyIn = z
  .object({
    name: z.string().min(1).max(200),
    tenantId: z.string().max(64).optional().describe('the one tenant this key acts on'),
    all: z.literal(true).optional().describe('true: the key acts on every tenant (give tenantId or all, not both)'),
    scopes: z.array(KeyScopeEnum).min(1).max(3),
  })
  .strict();

export const ApiKeyOut = z.object({
  id: z.string(),
  name: z.string(),
  tenantId: z.string().nullable().meta({ description: 'null: every tenant' }),
  scopes: z.array(KeyScopeEnum),
  keyPrefix: z.string().meta({ description: 'the first characters of the key, to tell keys apart' }),
  createdAt: z.string(),
  lastUsedAt: z.string().nullable().meta({ description: 'updated at most once a minute' }),
  revokedAt: z.string().nullable(),
});

export const ApiKeyWithSecretOut = ApiKeyOut.extend({ key: z.string().meta({ description: 'the key itself: shown this once, never again' }) });

const HttpsUrl = z
  .string()
  .max(2048)
  .refine((u) => {
    try {
      return new URL(u).protocol === 'https:';
    } catch {
      return false;
    }
  }, 'an absolute https URL');

export const Branding = z
  .object({
    title: z.string().max(100).optional(),
    logoUrl: HttpsUrl.optional(),
    accentColor: z.string().regex(/^#[0-9a-fA-F]{6}$/, 'a colour such as #0055ff').optional(),
  })
  .strict();

/** A portal session lasts at most a day: there is no revoking one before it expires. */
export const MAX_PORTAL_TTL_SECONDS = 24 * 60 * 60;

export const PortalSessionIn = z
  .object({
    readOnly: z.boolean().optional().describe('true: the session may read but change nothing'),
    ttlSeconds: z.number().int().min(60).max(MAX_PORTAL_TTL_SECONDS).optional().describe('default 3600'),
    branding: Branding.optional(),
  })
  .strict();

export const PortalSessionOut = z.object({
  id: z.string().meta({ description: 'the session id (the token\'s jti): DELETE …/portal-sessions/{id} ends the session before it expires' }),
  url: z.string().meta({ description: 'the portal page, with the token in the fragment (#token=…) so it never reaches a server log' }),
  token: z.string().meta({ description: 'the session token: `Authorization: Bearer <token>` on this tenant\'s routes' }),
  expiresAt: z.string(),
});

export const PortalSessionInfoOut = z.object({
  tenantId: z.string(),
  tenantName: z.string(),
  readOnly: z.boolean(),
  expiresAt: z.string(),
  branding: Branding,
});
