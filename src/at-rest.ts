// What this process seals before it writes to Postgres: the keyring from HOOKLINE_ENCRYPTION_KEY
// and whether event payloads are sealed too (HOOKLINE_ENCRYPT_PAYLOADS). Installed once per
// process at role start (src/at-rest-start.ts). It is process-wide rather than passed down
// because the db modules that seal and open values are called from the API routes, the worker's
// activities and the producer library alike, with only a pool in hand.
import { ConfigError, type Config } from './config';
import { isSealed, Keyring } from './crypto';

export type AtRestConfig = Pick<Config, 'HOOKLINE_ENCRYPTION_KEY' | 'HOOKLINE_ENCRYPT_PAYLOADS'>;

let keyring: Keyring | null = null;
let encryptPayloads = false;

export class EncryptionKeyMissingError extends Error {
  override name = 'EncryptionKeyMissingError';
}

/** Installs the keyring and payload setting for this process. */
export function configureDataAtRest(config: AtRestConfig): void {
  if (config.HOOKLINE_ENCRYPT_PAYLOADS && !config.HOOKLINE_ENCRYPTION_KEY) {
    throw new ConfigError('invalid configuration:\n  HOOKLINE_ENCRYPT_PAYLOADS: needs HOOKLINE_ENCRYPTION_KEY to be set');
  }
  keyring = config.HOOKLINE_ENCRYPTION_KEY ? Keyring.fromText(config.HOOKLINE_ENCRYPTION_KEY) : null;
  encryptPayloads = config.HOOKLINE_ENCRYPT_PAYLOADS;
}

export const hasEncryptionKey = (): boolean => keyring !== null;
export const payloadsEncrypted = (): boolean => encryptPayloads && keyring !== null;

/** The installed keyring; a clear error when there is none. */
export function currentKeyring(): Keyring {
  if (!keyring) {
    throw new EncryptionKeyMissingError(
      'HOOKLINE_ENCRYPTION_KEY is not set, so endpoint secrets can be neither stored nor read ' +
        '(make a key with: openssl rand -base64 32; see README "Secrets at rest")',
    );
  }
  return keyring;
}

// The context each sealed value is bound to (authenticated, not stored): a secret or payload
// copied into another row fails to open.
const secretContext = (endpointId: string) => `endpoint_secret:${endpointId}`;
const eventDataContext = (eventId: string) => `event_data:${eventId}`;
const responseBodyContext = (eventId: string, endpointId: string) => `response_body:${eventId}:${endpointId}`;

export function sealSecret(endpointId: string, secret: string): string {
  return currentKeyring().encrypt(secret, secretContext(endpointId));
}

/**
 * A plaintext secret (written before a key was set, or by an older version during an upgrade)
 * is read as it is; the next role start seals it.
 */
export function openSecret(endpointId: string, stored: string): string {
  return isSealed(stored) ? currentKeyring().decrypt(stored, secretContext(endpointId)).toString('utf8') : stored;
}

export function sealEventData(eventId: string, data: unknown): string {
  return currentKeyring().encrypt(JSON.stringify(data), eventDataContext(eventId));
}

export function openEventData(eventId: string, sealed: string): unknown {
  return JSON.parse(currentKeyring().decrypt(sealed, eventDataContext(eventId)).toString('utf8'));
}

/** A receiver's answer as stored: sealed when payloads are (it often echoes the payload). */
export function sealResponseBody(eventId: string, endpointId: string, body: Buffer): { bytes: Buffer; sealed: boolean } {
  return payloadsEncrypted() ? { bytes: sealedResponseBody(eventId, endpointId, body), sealed: true } : { bytes: body, sealed: false };
}

export function sealedResponseBody(eventId: string, endpointId: string, body: Buffer): Buffer {
  return Buffer.from(currentKeyring().encrypt(body, responseBodyContext(eventId, endpointId)), 'utf8');
}

export function openResponseBody(eventId: string, endpointId: string, stored: Buffer): Buffer {
  return currentKeyring().decrypt(stored.toString('utf8'), responseBodyContext(eventId, endpointId));
}
