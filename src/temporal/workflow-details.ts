// What the Temporal Web UI shows of a delivery workflow: its start search attributes, summary
// and details (markdown). Pure and deterministic — the workflows import it — and link-free: the
// text names ids, types and states, never URLs (they may carry tokens).
import { TypedSearchAttributes } from '@temporalio/common';
import { DeliveryStatus, EndpointIds, EventType, TenantId } from '../search-attributes';

/**
 * Most endpoints one workflow lists in EndpointIds: Temporal caps a search attribute value at
 * 2 KiB (50 ids × ~33 bytes fit). An event with more fans out into child workflows of this many.
 */
export const ENDPOINT_IDS_MAX = 50;

/** The fan-out child n (1-based) of an event. */
export const childWorkflowId = (eventId: string, n: number) => `${eventId}/${n}`;

/** What a start lists in EndpointIds: every endpoint, unless children will list them. */
export function listedAtStart(endpointIds: readonly { id: string }[] | readonly string[]): string[] {
  const ids = endpointIds.map((e) => (typeof e === 'string' ? e : e.id));
  return ids.length > ENDPOINT_IDS_MAX ? [] : ids;
}

/** Findable before the first workflow task runs, with no upsert: type, endpoints, delivering, tenant. */
export function startSearchAttributes(eventType: string, endpointIds: string[], tenantId?: string): TypedSearchAttributes {
  return new TypedSearchAttributes([
    { key: EventType, value: eventType },
    { key: EndpointIds, value: listedAtStart(endpointIds) },
    { key: DeliveryStatus, value: 'delivering' },
    ...(tenantId === undefined ? [] : [{ key: TenantId, value: tenantId }]),
  ]);
}

/** One line in the workflow list: "invoice.paid evt_…". */
export function workflowSummary(eventType: string, eventId: string, replay = false): string {
  return `${replay ? 'replay of ' : ''}${eventType} ${eventId}`;
}

/** Fixed when the workflow starts: what it is and how to act on it. */
export function workflowStaticDetails(eventType: string, eventId: string, replayOf?: string[]): string {
  return [
    `**Event** \`${eventId}\` · type \`${eventType}\`${replayOf ? ` · replay of ${replayOf.slice(0, 10).map((id) => `\`${id}\``).join(', ')}${replayOf.length > 10 ? ` and ${replayOf.length - 10} more` : ''}` : ''}`,
    'Replay dead letters: signal `replay`, input `{"endpointIds":["ep_…"]}` (`{}` = all).',
  ].join('\n\n');
}

/**
 * What every deliverEvent start carries (the relay's first run, a replay's new run): the search
 * attributes that make it findable before its first task runs, and its summary and details.
 */
export function workflowStartMetadata(eventType: string, eventId: string, endpointIds: string[], replayOf?: string[], tenantId?: string) {
  return {
    typedSearchAttributes: startSearchAttributes(eventType, endpointIds, tenantId),
    staticSummary: workflowSummary(eventType, eventId, replayOf !== undefined),
    staticDetails: workflowStaticDetails(eventType, eventId, replayOf),
  };
}

// Hundreds of endpoints would make an unreadable table; the search attributes list them all.
const MAX_ROWS = 25;

const cell = (s: string) => s.replace(/[\r\n]+/g, ' ').replace(/\|/g, '\\|').replace(/`/g, "'").slice(0, 200);

/** Live, while the workflow runs: one row per endpoint with its state and dead-letter reason. */
export function workflowCurrentDetails(eventType: string, states: ReadonlyMap<string, { state: string; reason?: string }>): string {
  const counts = new Map<string, number>();
  for (const s of states.values()) counts.set(s.state, (counts.get(s.state) ?? 0) + 1);
  const tally = [...counts.entries()].map(([state, n]) => `${n} ${state.replace('_', ' ')}`).join(', ');
  const lines = [`**${cell(eventType)}** to ${states.size} endpoint${states.size === 1 ? '' : 's'}${tally ? `: ${tally}` : ''}`];
  if (states.size > 0) {
    lines.push('', '| endpoint | state | reason |', '| --- | --- | --- |');
    // Dead letters first: they are what an operator opens this page for.
    const rank = (state: string) => (state === 'dead_lettered' ? 0 : state === 'delivering' ? 1 : 2);
    const rows = [...states.entries()].sort(([a, x], [b, y]) => rank(x.state) - rank(y.state) || (a < b ? -1 : a > b ? 1 : 0));
    for (const [id, s] of rows.slice(0, MAX_ROWS)) lines.push(`| \`${id}\` | ${s.state} | ${s.reason ? cell(s.reason) : ''} |`);
    if (rows.length > MAX_ROWS) lines.push('', `… and ${rows.length - MAX_ROWS} more (see the EndpointIds search attribute).`);
  }
  return lines.join('\n');
}
