// Which endpoints an event goes to. Pure: used by the resolveEndpoints activity and unit tests.

/**
 * `null`/empty patterns subscribe to every type. A pattern is an exact type (`invoice.paid`),
 * `*` (everything) or a prefix wildcard (`invoice.*` matches `invoice.paid` and
 * `invoice.line.created`, not `invoice` itself).
 */
export function matchesEventType(patterns: readonly string[] | null, type: string): boolean {
  if (!patterns || patterns.length === 0) return true;
  return patterns.some((p) => {
    if (p === '*' || p === type) return true;
    if (p.endsWith('.*')) return type.startsWith(p.slice(0, -1));
    return false;
  });
}

/** An endpoint with channels only receives events that carry at least one of them. */
export function matchesChannels(endpointChannels: readonly string[] | null, eventChannels: readonly string[] | null): boolean {
  if (!endpointChannels || endpointChannels.length === 0) return true;
  if (!eventChannels || eventChannels.length === 0) return false;
  return eventChannels.some((c) => endpointChannels.includes(c));
}
