// Which endpoints an event goes to. Pure: used by the resolveEndpoints activity and unit tests.
import { isOperationalType } from './ops-events';

/**
 * `null`/empty patterns subscribe to every type. A pattern is an exact type (`invoice.paid`),
 * `*` (everything) or a prefix wildcard (`invoice.*` matches `invoice.paid` and
 * `invoice.line.created`, not `invoice` itself).
 *
 * Hookline's own `hookline.*` events are the exception: only a pattern that names them
 * (`hookline.*`, `hookline.delivery.*`, an exact type) subscribes, never "all types" or `*` —
 * a catch-all receiver written for a producer's events must not start getting an operator's.
 */
export function matchesEventType(patterns: readonly string[] | null, type: string): boolean {
  if (isOperationalType(type)) return (patterns ?? []).some((p) => isOperationalType(p) && matchesPattern(p, type));
  if (!patterns || patterns.length === 0) return true;
  return patterns.some((p) => matchesPattern(p, type));
}

function matchesPattern(p: string, type: string): boolean {
  if (p === '*' || p === type) return true;
  if (p.endsWith('.*')) return type.startsWith(p.slice(0, -1));
  return false;
}

/** An endpoint with channels only receives events that carry at least one of them. */
export function matchesChannels(endpointChannels: readonly string[] | null, eventChannels: readonly string[] | null): boolean {
  if (!endpointChannels || endpointChannels.length === 0) return true;
  if (!eventChannels || eventChannels.length === 0) return false;
  return eventChannels.some((c) => endpointChannels.includes(c));
}
