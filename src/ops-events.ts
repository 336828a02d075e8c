// Hookline's own events ("operational webhooks"): things an operator wants to hear about —
// an endpoint disabled, a circuit opened, a delivery dead-lettered. They are ordinary events on
// the reserved `hookline.` type prefix, written with their outbox row, so they are delivered,
// signed, retried and shown in the Web UI like any other; an operator subscribes a URL to
// `hookline.*`. This module is the one place that emits them.
import { newEventId } from './ids';
import { insertEventWithOutbox } from './db/events';
import type { Pool, PoolClient } from './db/pool';

/** The reserved prefix: producers may not publish under it. */
export const OPERATIONAL_PREFIX = 'hookline.';

export const OperationalEventTypes = [
  'hookline.endpoint.disabled',
  'hookline.endpoint.circuit_opened',
  'hookline.endpoint.recovered',
  'hookline.delivery.dead_lettered',
  'hookline.delivery.dropped',
] as const;
export type OperationalEventType = (typeof OperationalEventTypes)[number];

export function isOperationalType(type: string): boolean {
  return type.startsWith(OPERATIONAL_PREFIX);
}

/** Records one operational event (and its outbox row); the relay delivers it as any event. */
export async function emitOperationalEvent(db: Pool | PoolClient, type: OperationalEventType, data: Record<string, unknown>): Promise<string> {
  const id = newEventId();
  await insertEventWithOutbox(db, { id, type, data });
  return id;
}
