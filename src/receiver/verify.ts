// Receiver side of Standard Webhooks: checks that a request came from the holder of a shared
// secret (v1, HMAC) or of the private half of a `whpk_` public key (v1a, ed25519), recently, and
// hands back the parsed event. Depends on src/signing.ts (node:crypto) and, when the app has it,
// @opentelemetry/api (./tracing), so a receiver can use it without Fastify, Postgres, Temporal or
// the rest of Hookline.
//
// Accepted on the wire, as the `standardwebhooks` and `svix` libraries accept it:
//   webhook-id, webhook-timestamp (unix seconds), webhook-signature ("v1,<b64> v1a,<b64> …"),
//   or their svix-id / svix-timestamp / svix-signature aliases.
import type { KeyObject } from 'node:crypto';
import {
  ed25519PublicKey, PRIVATE_KEY_PREFIX, PUBLIC_KEY_PREFIX, safeEqual, secretKey, sign, verifyEd25519,
} from '../signing';
import { traceVerification } from './tracing';

// Standard Webhooks recommends five minutes, and both reference libraries use it: long enough
// for clock skew and a slow proxy, short enough that a captured request cannot be replayed later.
export const DEFAULT_TOLERANCE_SECONDS = 5 * 60;

// v1 (HMAC-SHA256) is checked against whsec_ secrets, v1a (ed25519) against whpk_ public keys;
// other versions are skipped so a sender that adds a newer one alongside still verifies.
const HMAC_VERSION = 'v1';
const ED25519_VERSION = 'v1a';

export type WebhookVerificationReason =
  | 'missing_header'
  | 'bad_timestamp'
  | 'too_old'
  | 'too_new'
  | 'no_matching_signature'
  | 'bad_payload';

const MESSAGES: Record<WebhookVerificationReason, string> = {
  missing_header: 'missing webhook-id, webhook-timestamp or webhook-signature header',
  bad_timestamp: 'webhook-timestamp is not unix seconds',
  too_old: 'webhook-timestamp is older than the tolerance',
  too_new: 'webhook-timestamp is further in the future than the tolerance',
  no_matching_signature: 'no v1 or v1a signature matches any of the given keys',
  bad_payload: 'signed body is not JSON',
};

/** The one error verification throws; `reason` says which check failed. */
export class WebhookVerificationError extends Error {
  override readonly name = 'WebhookVerificationError';
  constructor(readonly reason: WebhookVerificationReason) {
    super(MESSAGES[reason]);
  }
}

/** Node's IncomingHttpHeaders, a fetch `Headers`, or any record (header names in any case). */
export type WebhookHeaders =
  | { get(name: string): string | null }
  | Readonly<Record<string, string | readonly string[] | undefined>>;

export interface VerifyWebhookInput {
  headers: WebhookHeaders;
  /** The body exactly as received; re-serialised JSON will not verify. */
  rawBody: string | Buffer;
  /**
   * One key or several during a rotation: `whsec_` secrets (the prefix is optional) verify v1,
   * `whpk_` public keys verify v1a; a mix of both is fine while an endpoint changes scheme.
   */
  secrets: string | readonly string[];
  toleranceSeconds?: number;
  /** The verifier's clock: a Date or epoch milliseconds (as `Date.now()`). Defaults to now. */
  now?: Date | number;
}

export interface VerifiedWebhook<T = unknown> {
  /** `webhook-id`: the event id, the same on every attempt, so it is the idempotency key. */
  id: string;
  /** `webhook-timestamp` of this attempt, unix seconds. */
  timestamp: number;
  payload: T;
}

/**
 * Verifies a Standard Webhooks request and returns its id, timestamp and parsed JSON body.
 * Throws WebhookVerificationError on any failed check; throws TypeError when `secrets` itself
 * is unusable (the receiver's configuration is wrong, not the request).
 */
export function verifyWebhook<T = unknown>(input: VerifyWebhookInput): VerifiedWebhook<T> {
  // In a span of the sender's trace when the app has OpenTelemetry (./tracing).
  return traceVerification(input.headers, () => verifyUntraced<T>(input));
}

function verifyUntraced<T>(input: VerifyWebhookInput): VerifiedWebhook<T> {
  const secrets = normalizeSecrets(input.secrets);
  const tolerance = input.toleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS;

  const id = readHeader(input.headers, 'id');
  const timestampHeader = readHeader(input.headers, 'timestamp');
  const signatureHeader = readHeader(input.headers, 'signature');
  if (!id || !timestampHeader || !signatureHeader) throw new WebhookVerificationError('missing_header');

  // Stricter than parseInt ("12abc" would pass it): digits only, and small enough to be exact.
  if (!/^\d{1,15}$/.test(timestampHeader.trim())) throw new WebhookVerificationError('bad_timestamp');
  const timestamp = Number(timestampHeader.trim());

  // Both directions: an old request may be a replay, a future one may be pre-signed for later.
  const nowSeconds = Math.floor(nowMs(input.now) / 1000);
  if (nowSeconds - timestamp > tolerance) throw new WebhookVerificationError('too_old');
  if (timestamp - nowSeconds > tolerance) throw new WebhookVerificationError('too_new');

  const body = typeof input.rawBody === 'string' ? input.rawBody : input.rawBody.toString('utf8');
  if (!signatureMatches(secrets, parseSignatures(signatureHeader), id, timestamp, body)) {
    throw new WebhookVerificationError('no_matching_signature');
  }

  let payload: T;
  try {
    payload = JSON.parse(body) as T;
  } catch {
    throw new WebhookVerificationError('bad_payload');
  }
  return { id, timestamp, payload };
}

/** True when one passed signature verifies under one key of its own scheme. */
function signatureMatches(keys: readonly string[], passed: Signature[], id: string, timestamp: number, body: string): boolean {
  const publicKeys: KeyObject[] = [];
  const expectedV1: string[] = [];
  for (const key of keys) {
    if (key.startsWith(PUBLIC_KEY_PREFIX)) publicKeys.push(ed25519PublicKey(key));
    else expectedV1.push(sign(key, id, timestamp, body));
  }
  return passed.some(({ version, value }) =>
    version === HMAC_VERSION
      ? expectedV1.some((e) => safeEqual(`${version},${value}`, e))
      : publicKeys.some((k) => verifyEd25519(k, value, id, timestamp, body)),
  );
}

/**
 * Checks a secret list once, so a misconfigured receiver fails at start rather than answering
 * 401 to every request. Returns the list as an array.
 */
export function normalizeSecrets(secrets: string | readonly string[]): string[] {
  const list = typeof secrets === 'string' ? [secrets] : [...secrets];
  if (list.length === 0) throw new TypeError('webhook verification needs at least one secret');
  for (const secret of list) checkKey(secret);
  return list;
}

function checkKey(secret: string): void {
  if (secret.startsWith(PRIVATE_KEY_PREFIX)) {
    // Accepting it would work, but it means the private key was copied to a receiver.
    throw new TypeError('webhook key is a whsk_ private key; give the receiver the whpk_ public key instead');
  }
  if (secret.startsWith(PUBLIC_KEY_PREFIX)) {
    try {
      ed25519PublicKey(secret);
    } catch {
      throw new TypeError('webhook public key is not whpk_ + base64 of 32 bytes');
    }
    return;
  }
  let key: Buffer;
  try {
    key = secretKey(secret);
  } catch {
    throw new TypeError('webhook secret is not whsec_ + base64 (or a whpk_ public key)');
  }
  if (key.length === 0) throw new TypeError('webhook secret is empty');
}

interface Signature {
  version: typeof HMAC_VERSION | typeof ED25519_VERSION;
  value: string;
}

/** The `v1,<b64>` and `v1a,<b64>` entries of a signature header, other versions dropped. */
function parseSignatures(header: string): Signature[] {
  const out: Signature[] = [];
  // Node joins a repeated header with ", ", which leaves a trailing comma on all but the last
  // entry; base64 never contains a comma, so it is safe to strip.
  for (const token of header.split(/\s+/)) {
    const entry = token.replace(/,+$/, '');
    const comma = entry.indexOf(',');
    const version = entry.slice(0, comma);
    if (comma <= 0 || (version !== HMAC_VERSION && version !== ED25519_VERSION)) continue;
    out.push({ version, value: entry.slice(comma + 1) });
  }
  return out;
}

/** `webhook-<name>`, falling back to `svix-<name>`; a repeated signature header is joined. */
function readHeader(headers: WebhookHeaders, name: 'id' | 'timestamp' | 'signature'): string | undefined {
  return readOne(headers, `webhook-${name}`, name === 'signature') ?? readOne(headers, `svix-${name}`, name === 'signature');
}

function readOne(headers: WebhookHeaders, name: string, join: boolean): string | undefined {
  let value: string | readonly string[] | null | undefined;
  if (typeof headers.get === 'function') {
    value = (headers as { get(name: string): string | null }).get(name);
  } else {
    const record = headers as Readonly<Record<string, string | readonly string[] | undefined>>;
    value = record[name];
    if (value === undefined) {
      const key = Object.keys(record).find((k) => k.toLowerCase() === name);
      value = key === undefined ? undefined : record[key];
    }
  }
  if (value === null || value === undefined) return undefined;
  if (typeof value !== 'string') value = join ? value.join(' ') : value[0];
  return value === undefined || value === '' ? undefined : value;
}

function nowMs(now: Date | number | undefined): number {
  if (now === undefined) return Date.now();
  return typeof now === 'number' ? now : now.getTime();
}
