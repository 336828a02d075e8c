// hookline/producer: enqueue an event in the producer's own Postgres transaction, next to the
// business write it describes (the transactional outbox). Commit → the relay delivers it;
// roll back → it never existed. Needs only `pg` (the caller's client) and Hookline's tables in
// the same database.
//
//   await client.query('BEGIN');
//   await client.query('UPDATE invoices SET paid_at = now() WHERE id = $1', [invoiceId]);
//   await enqueueEvent(client, { type: 'invoice.paid', data: { invoiceId, amount } });
//   await client.query('COMMIT');
//
// Schemas: by default nothing is checked against registered event types — the producer writes
// what it is given, with `version` as given (null when absent), and a bad payload cannot fail the
// business transaction. `{ validate: true }` applies the same contract as POST /v1/events
// (one extra query per event; compiled schemas are cached) and throws EventContractError.
import type { ClientBase } from 'pg';
import { publishEvent } from '../db/events';
import { TENANT_PATH_PATTERN } from '../db/tenants';
import {
  CHANNEL_PATTERN, EVENT_ID_PATTERN, EVENT_TYPE_PATTERN, isOperationalId, isOperationalType, newEventId, OPERATIONAL_ID_PREFIX, OPERATIONAL_PREFIX,
} from '../ids';
import type { EventContractError } from '../contracts';

export { newEventId };
export type { EventContractError };

/** True for the error `{ validate: true }` throws: `code`, `message` naming the path, `details`. */
export function isEventContractError(err: unknown): err is EventContractError {
  return err instanceof Error && err.name === 'EventContractError';
}

export interface ProducerEvent {
  /** Dotted name such as `invoice.paid`. */
  type: string;
  /** A JSON object. */
  data: Record<string, unknown>;
  /** Your own id (e.g. derived from the business row) makes retries idempotent; default evt_<ulid>. */
  id?: string;
  /** Endpoints that list channels only receive events carrying one of them. */
  channels?: string[];
  /** Schema version of `data`. */
  version?: number;
  /**
   * The tenant it is published to (only its endpoints receive it); default `default`. Not checked
   * against the tenants table: an unknown or deleted tenant has no endpoints, so nobody gets it.
   */
  tenantId?: string;
}

export interface EnqueueOptions {
  /** Check the event against its registered type and schema, as the API does. Default false. */
  validate?: boolean;
  /** With `validate`: accept types that were never registered. Default true. */
  acceptUnregistered?: boolean;
}

const SAVEPOINT = 'hookline_enqueue';

function checkShape(e: ProducerEvent): void {
  if (typeof e.type !== 'string' || e.type.length > 255 || !EVENT_TYPE_PATTERN.test(e.type)) {
    throw new TypeError(`type: expected a dotted name such as invoice.paid, got ${JSON.stringify(e.type)}`);
  }
  if (isOperationalType(e.type)) {
    throw new TypeError(`type: the ${OPERATIONAL_PREFIX} prefix is reserved for Hookline's own events, got ${JSON.stringify(e.type)}`);
  }
  if (e.data === null || typeof e.data !== 'object' || Array.isArray(e.data)) {
    throw new TypeError('data: expected a JSON object');
  }
  if (e.id !== undefined && (typeof e.id !== 'string' || !EVENT_ID_PATTERN.test(e.id))) {
    throw new TypeError('id: up to 128 of A-Z a-z 0-9 _ . : -');
  }
  if (e.id !== undefined && isOperationalId(e.id)) {
    throw new TypeError(`id: the ${OPERATIONAL_ID_PREFIX} prefix is reserved for Hookline's own events, got ${JSON.stringify(e.id)}`);
  }
  if (e.channels !== undefined && (!Array.isArray(e.channels) || !e.channels.every((c) => typeof c === 'string' && CHANNEL_PATTERN.test(c)))) {
    throw new TypeError('channels: an array of names made of letters, digits and _ . : -');
  }
  if (e.version !== undefined && (!Number.isInteger(e.version) || e.version < 1)) {
    throw new TypeError('version: an integer ≥ 1');
  }
  if (e.tenantId !== undefined && (typeof e.tenantId !== 'string' || !TENANT_PATH_PATTERN.test(e.tenantId))) {
    throw new TypeError('tenantId: a tenant id (1–64 of A-Z a-z 0-9 _ . - starting with a letter or digit)');
  }
}

/**
 * Writes the event and its outbox row on `client`, which must be inside a transaction the
 * caller opened (BEGIN) and will COMMIT or ROLLBACK. The writes sit in a savepoint, so a failure
 * here leaves the caller's transaction usable. `created: false` means an event with this id
 * already exists (its content is not compared).
 */
export async function enqueueEvent(
  client: ClientBase,
  event: ProducerEvent,
  opts: EnqueueOptions = {},
): Promise<{ id: string; created: boolean }> {
  checkShape(event);
  try {
    await client.query(`SAVEPOINT ${SAVEPOINT}`);
  } catch (err) {
    // 25P01 no_active_sql_transaction: outside a transaction the two inserts could be split by a crash.
    if ((err as { code?: string }).code === '25P01') {
      throw new Error('enqueueEvent must run inside a transaction: call BEGIN on this client first');
    }
    throw err;
  }
  try {
    let version = event.version ?? null;
    if (opts.validate) {
      // Loaded only when asked for, so plain enqueueing does not pull in the JSON Schema compiler.
      const { checkEventContract } = await import('../contracts');
      ({ version } = await checkEventContract(client, event, { acceptUnregistered: opts.acceptUnregistered ?? true }));
    }
    // NOTIFY queued in the caller's transaction: the relays wake when (if) it commits.
    const { event: row, created } = await publishEvent(client, {
      id: event.id ?? newEventId(),
      tenantId: event.tenantId,
      type: event.type,
      data: event.data,
      channels: event.channels && event.channels.length > 0 ? event.channels : null,
      version,
    }, 'on-commit');
    await client.query(`RELEASE SAVEPOINT ${SAVEPOINT}`);
    return { id: row.id, created };
  } catch (err) {
    await client.query(`ROLLBACK TO SAVEPOINT ${SAVEPOINT}`).catch(() => {});
    throw err;
  }
}
