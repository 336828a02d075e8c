// A role's start for data at rest: install the keyring, refuse to run without one when secrets
// are stored, seal what is still plaintext or under an old key; `hookline reencrypt`; and
// `hookline dev`'s key file.
import { chmodSync, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import type { Logger } from './logger';
import { configureDataAtRest, currentKeyring, hasEncryptionKey, type AtRestConfig } from './at-rest';
import { ConfigError } from './config';
import { Keyring } from './crypto';
import type { Pool } from './db/pool';
import { countSecrets, sealStoredSecrets } from './db/endpoints';
import { resealEventPayloads } from './db/events';
import { resealResponseBodies } from './db/deliveries';

/**
 * A role's start, after migrations: installs the keyring, refuses to run without one when the
 * database holds secrets, and seals secrets still in plaintext (written before the key was set)
 * or under an older key (after a rotation). Throws when a secret was sealed with a key that is
 * not configured, so a wrong key stops the process at start instead of failing every delivery.
 */
export async function prepareDataAtRest(pool: Pool, config: AtRestConfig, log?: Logger): Promise<number> {
  configureDataAtRest(config);
  if (!hasEncryptionKey()) {
    const stored = await countSecrets(pool);
    if (stored > 0) {
      throw new ConfigError(
        `HOOKLINE_ENCRYPTION_KEY is not set, but the database holds ${stored} endpoint secret(s). Set it to the key ` +
          'they were encrypted with; secrets still in plaintext are encrypted with it at start ' +
          '(new key: openssl rand -base64 32; see README "Secrets at rest").',
      );
    }
    log?.warn('HOOKLINE_ENCRYPTION_KEY is not set: endpoints cannot be created until it is (README "Secrets at rest")');
    return 0;
  }
  const sealed = await sealStoredSecrets(pool);
  if (sealed > 0) log?.info({ sealed, keyId: currentKeyring().primaryId }, 'encrypted endpoint secrets with the newest key');
  return sealed;
}

/**
 * `hookline reencrypt`, after a key rotation: seals every secret and payload under the newest
 * key (and plaintext payloads too when HOOKLINE_ENCRYPT_PAYLOADS is on), so the older keys can
 * then be removed from HOOKLINE_ENCRYPTION_KEY.
 */
export async function reencryptAll(
  pool: Pool,
  config: AtRestConfig,
): Promise<{ keyId: string; secrets: number; payloads: number; responseBodies: number }> {
  if (!config.HOOKLINE_ENCRYPTION_KEY) throw new ConfigError('hookline reencrypt needs HOOKLINE_ENCRYPTION_KEY (newest key first)');
  const secrets = await prepareDataAtRest(pool, config);
  const payloads = await resealEventPayloads(pool, config.HOOKLINE_ENCRYPT_PAYLOADS);
  const responseBodies = await resealResponseBodies(pool);
  return { keyId: currentKeyring().primaryId, secrets, payloads, responseBodies };
}

const DEV_KEY_FILE = 'encryption.key';

/**
 * `hookline dev`: the key in `<dataDir>/encryption.key`, made (mode 0600) on first start. It
 * lives next to the embedded database it protects; losing it makes the stored secrets unreadable.
 */
export function ensureDevEncryptionKey(dataDir: string): { key: string; file: string; created: boolean } {
  const file = path.join(dataDir, DEV_KEY_FILE);
  if (!existsSync(file)) {
    const key = randomBytes(32).toString('base64');
    writeFileSync(file, `${key}\n`, { mode: 0o600, flag: 'wx' });
    return { key, file, created: true };
  }
  // Tighten a key file that was copied around with looser permissions.
  if ((statSync(file).mode & 0o077) !== 0) chmodSync(file, 0o600);
  const key = readFileSync(file, 'utf8').trim();
  try {
    Keyring.fromText(key);
  } catch (err) {
    throw new ConfigError(`${file}: ${(err as Error).message}`);
  }
  return { key, file, created: false };
}
