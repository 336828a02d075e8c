// Prefixed, time-sortable identifiers (as Svix's msg_/ep_): the prefix says what an id names,
// the ULID body sorts by creation time so "newest first" is an index scan.
import { randomFillSync } from 'node:crypto';
import { monotonicFactory } from 'ulid';

// ulid's default PRNG asks the CSPRNG once per character (16 calls per id, a visible share of
// the submit path's CPU); this one draws the same CSPRNG bytes a page at a time. A byte / 256
// maps evenly onto ulid's 32 characters.
const pool = Buffer.alloc(4096);
let offset = pool.length;
function prng(): number {
  if (offset === pool.length) {
    randomFillSync(pool);
    offset = 0;
  }
  return pool[offset++] / 256;
}

const next = monotonicFactory(prng);

export const newEventId = (): string => `evt_${next()}`;
export const newEndpointId = (): string => `ep_${next()}`;
export const newEventTypeVersionId = (): string => `evtv_${next()}`;
export const newTenantId = (): string => `tn_${next()}`;
export const newApiKeyId = (): string => `key_${next()}`;

/** Ids a producer may supply for its own events: printable, no whitespace, bounded. */
export const EVENT_ID_PATTERN = /^[A-Za-z0-9_.:-]{1,128}$/;

/** Event type names: dotted segments such as `invoice.paid` (the API and the producer check it). */
export const EVENT_TYPE_PATTERN = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/;
/** Channel names an event may carry and an endpoint may subscribe to. */
export const CHANNEL_PATTERN = /^[A-Za-z0-9_.:-]{1,128}$/;

/** The type prefix of Hookline's own (operational) events: producers may not publish under it. */
export const OPERATIONAL_PREFIX = 'hookline.';
export const isOperationalType = (type: string): boolean => type.startsWith(OPERATIONAL_PREFIX);

/**
 * Hookline's own (operational) events live in an id space no producer may write: the API and
 * the producer library refuse this prefix on submit, so nobody can take the deterministic id of
 * a coming transition first and so suppress its event (issue #21 item 4).
 */
export const OPERATIONAL_ID_PREFIX = 'evt_op_';
export const newOperationalEventId = (): string => `${OPERATIONAL_ID_PREFIX}${next()}`;
export const isOperationalId = (id: string): boolean => id.startsWith(OPERATIONAL_ID_PREFIX);
