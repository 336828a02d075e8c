// Request and response schemas (zod): the API's validation and its OpenAPI document both come
// from here. Names follow Svix: EndpointIn / EndpointOut, EventIn / EventOut.
import { z } from 'zod';
import { msToNumber } from '@temporalio/common/lib/time';
import { isValidSecret } from '../signing';
import { EVENT_ID_PATTERN } from '../ids';

/** A duration as Temporal writes it ("500ms", "5s", "3 days") or a number of milliseconds. */
export const Duration = z
  .union([z.number().int().nonnegative(), z.string().min(1)])
  .transform((v, ctx) => {
    try {
      const ms = msToNumber(v as never);
      if (!Number.isFinite(ms) || ms < 0) throw new Error();
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

const EVENT_TYPE_PATTERN = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/;
export const EventTypeName = z.string().max(255).regex(EVENT_TYPE_PATTERN, 'dotted name such as invoice.paid');
const EventTypePattern = z
  .string()
  .max(255)
  .refine((p) => p === '*' || EVENT_TYPE_PATTERN.test(p.endsWith('.*') ? p.slice(0, -2) : p), {
    message: 'event type, "*" or a prefix pattern such as invoice.*',
  });
const Channel = z.string().min(1).max(128).regex(/^[A-Za-z0-9_.:-]+$/, 'letters, digits and _ . : -');
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

export const EndpointIn = z
  .object({
    url: HttpUrl,
    eventTypes: z.array(EventTypePattern).max(100).optional(),
    channels: z.array(Channel).max(20).optional(),
    description: z.string().max(1000).optional(),
    secret: z.string().refine(isValidSecret, 'whsec_ followed by base64 of 24–64 bytes').optional(),
    retry: RetryIn.optional(),
    disabled: z.boolean().optional(),
    metadata: z.record(z.string(), z.string().max(1000)).optional(),
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
  metadata: z.record(z.string(), z.string()),
  createdAt: z.string(),
  updatedAt: z.string(),
});

export const EndpointWithSecretOut = EndpointOut.extend({ secret: z.string() });

export const RotateIn = z
  .object({
    expireOldAfter: Duration.optional(),
    secret: z.string().refine(isValidSecret, 'whsec_ followed by base64 of 24–64 bytes').optional(),
  })
  .strict();

export const EventIn = z
  .object({
    type: EventTypeName,
    data: z.record(z.string(), z.unknown()),
    id: z.string().regex(EVENT_ID_PATTERN, 'up to 128 of A-Z a-z 0-9 _ . : -').optional(),
    channels: z.array(Channel).max(10).optional(),
    version: z.number().int().min(1).optional(),
  })
  .strict();

export const DeliveryOut = z.object({
  eventId: z.string(),
  endpointId: z.string(),
  eventType: z.string(),
  status: z.enum(['pending', 'delivering', 'delivered', 'dead_lettered', 'dropped']),
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
});

export const EventWithDeliveriesOut = EventOut.extend({
  relayed: z.boolean(),
  deliveries: z.array(DeliveryOut),
});

export const AttemptOut = z.object({
  attempt: z.number(),
  startedAt: z.string(),
  latencyMs: z.number(),
  statusCode: z.number().nullable(),
  error: z.string().nullable(),
  outcome: z.enum(['delivered', 'retrying', 'failed']),
  responseBody: z.string().nullable(),
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

export const ErrorOut = z.object({
  code: z.string(),
  message: z.string(),
  details: z.array(z.unknown()).optional(),
});

export const pageOf = <T extends z.ZodType>(item: T) => z.object({ data: z.array(item), nextCursor: z.string().nullable() });
