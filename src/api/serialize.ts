// Rows to the API's JSON shapes (dates as ISO strings, durations as milliseconds).
import type { EndpointRow } from '../db/endpoints';
import type { AttemptRow, DeliveryRow } from '../db/deliveries';
import type { EventRow } from '../db/events';
import type { EventTypeRow } from '../db/event-types';
import { resolveRetry, type RetryOverrides } from '../retry';

const iso = (d: Date | null) => (d ? d.toISOString() : null);

export function retryOut(overrides: RetryOverrides) {
  const r = resolveRetry(overrides);
  return {
    initialInterval: r.initialIntervalMs,
    backoffCoefficient: r.backoffCoefficient,
    maximumInterval: r.maximumIntervalMs,
    deadline: r.deadlineMs,
    maxAttempts: r.maxAttempts,
    deadLetterRetention: r.deadLetterRetentionMs,
    schedule: r.scheduleMs,
  };
}

export function endpointOut(e: EndpointRow) {
  return {
    id: e.id,
    url: e.url,
    description: e.description,
    eventTypes: e.eventTypes,
    channels: e.channels,
    retry: retryOut(e.retry),
    disabled: e.disabled,
    disabledReason: e.disabledReason,
    signing: e.signing,
    metadata: e.metadata,
    createdAt: e.createdAt.toISOString(),
    updatedAt: e.updatedAt.toISOString(),
  };
}

export function eventOut(e: EventRow) {
  return { id: e.id, type: e.type, version: e.version, channels: e.channels, timestamp: e.createdAt.toISOString(), data: e.data };
}

export function deliveryOut(d: DeliveryRow) {
  return {
    eventId: d.eventId,
    endpointId: d.endpointId,
    eventType: d.eventType,
    status: d.status,
    attempts: d.attempts,
    lastStatusCode: d.lastStatusCode,
    lastError: d.lastError,
    reason: d.reason,
    createdAt: d.createdAt.toISOString(),
    updatedAt: d.updatedAt.toISOString(),
    deliveredAt: iso(d.deliveredAt),
    deadLetteredAt: iso(d.deadLetteredAt),
  };
}

export function attemptOut(a: AttemptRow) {
  return { ...a, startedAt: a.startedAt.toISOString() };
}

export function eventTypeOut(t: EventTypeRow) {
  return {
    name: t.name,
    description: t.description,
    deprecated: t.deprecated,
    deprecatedAt: iso(t.deprecatedAt),
    latestVersion: t.versions.length > 0 ? t.versions[t.versions.length - 1].version : null,
    versions: t.versions.map((v) => ({ version: v.version, schema: v.schema, createdAt: v.createdAt.toISOString() })),
    createdAt: t.createdAt.toISOString(),
    updatedAt: t.updatedAt.toISOString(),
  };
}
