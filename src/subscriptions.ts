// Who gets an event: the endpoints subscribed to its type and channels, each with the retry
// policy its delivery will use from start to end (a snapshot: a PATCH mid-delivery applies to
// the next event, never half to this one). It decides; it writes nothing (the relay writes the
// delivery rows through src/db/deliveries.ts). The relay plans
// an event's deliveries with it before starting the workflow; a replay that starts a new run
// of a closed workflow plans through the resolveEndpoints activity, with the same functions.
import type { EndpointRow } from './db/endpoints';
import type { EventRow } from './db/events';
import { matchesChannels, matchesEventType } from './matching';
import { resolveRetry, type RetrySettings } from './retry';

/** One delivery as the workflow carries it: ids, host and policy — never the URL or a secret. */
export interface ResolvedEndpoint {
  id: string;
  /** Host only — shown in the Web UI's activity summary; paths and queries may hold tokens. */
  host: string;
  retry: RetrySettings;
  /** The endpoint's own response timeout, when it sets one: bounds its attempts' task timeouts. */
  responseTimeoutMs?: number;
}

export function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return 'invalid-url';
  }
}

/**
 * The active endpoints (all of them, disabled ones excluded) that want this event: those of the
 * event's tenant only — fan-out never crosses tenants, whatever the endpoints subscribe to. A
 * test event goes to its one endpoint, whatever that endpoint subscribes to.
 */
export function subscribersOf(
  active: EndpointRow[],
  event: Pick<EventRow, 'tenantId' | 'type' | 'channels'> & { onlyEndpointId?: string | null },
): EndpointRow[] {
  return active.filter((e) => {
    if (e.tenantId !== event.tenantId) return false;
    if (event.onlyEndpointId) return e.id === event.onlyEndpointId;
    return matchesEventType(e.eventTypes, event.type) && matchesChannels(e.channels, event.channels);
  });
}

export function toResolved(e: EndpointRow): ResolvedEndpoint {
  const r: ResolvedEndpoint = { id: e.id, host: hostOf(e.url), retry: resolveRetry(e.retry) };
  if (e.limits?.responseTimeoutMs) r.responseTimeoutMs = e.limits.responseTimeoutMs;
  return r;
}
