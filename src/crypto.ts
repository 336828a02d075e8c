// Encryption at rest: AES-256-GCM with Node's crypto, no dependencies. Owns the key format
// (HOOKLINE_ENCRYPTION_KEY) and the stored format of a sealed value:
//
//   enc:v1:<keyId>:<base64 of iv(12) | ciphertext | tag(16)>
//
// `keyId` is derived from the key itself (8 hex digits of a SHA-256), so operators list keys
// without naming them and a reader knows which key sealed a value. The first key seals; every
// key opens, which is what makes rotation possible. The header and a caller's context (e.g. the
// row a value belongs to) are authenticated as associated data: a value copied into another row,
// or given another key id, fails to open instead of decrypting to something unexpected.
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';

const PREFIX = 'enc:v1:';
const KEY_BYTES = 32; // AES-256
const IV_BYTES = 12; // the size GCM is specified for; random per value
const TAG_BYTES = 16;
const KEY_ID = /^[0-9a-f]{8}$/;

/** A value could not be opened: unknown key, altered bytes, wrong context or a malformed string. */
export class DecryptionError extends Error {
  override name = 'DecryptionError';
}

export const isSealed = (value: string): boolean => value.startsWith(PREFIX);

/** The id of the key that sealed `value`, or null when it is not a sealed value. */
export function sealedKeyId(value: string): string | null {
  if (!isSealed(value)) return null;
  const id = value.slice(PREFIX.length, value.indexOf(':', PREFIX.length));
  return KEY_ID.test(id) ? id : null;
}

function keyIdOf(key: Buffer): string {
  return createHash('sha256').update('hookline key id\0').update(key).digest('hex').slice(0, 8);
}

/**
 * Parses HOOKLINE_ENCRYPTION_KEY: comma-separated keys, newest first, each the base64 of 32
 * random bytes (`openssl rand -base64 32`). Messages never echo a key.
 */
export function parseEncryptionKeys(value: string): Buffer[] {
  const parts = value.split(',').map((p) => p.trim()).filter((p) => p !== '');
  if (parts.length === 0) throw new Error('no key given; make one with: openssl rand -base64 32');
  return parts.map((p, i) => {
    const key = Buffer.from(p, 'base64');
    // Buffer.from ignores stray characters, so re-encode to be sure the text was exactly base64.
    if (key.length !== KEY_BYTES || key.toString('base64').replace(/=+$/, '') !== p.replace(/=+$/, '')) {
      throw new Error(`key ${i + 1} of ${parts.length} is not the base64 of ${KEY_BYTES} bytes; make one with: openssl rand -base64 32`);
    }
    return key;
  });
}

export class Keyring {
  private readonly keys = new Map<string, Buffer>();
  /** The id of the key that seals (the first one given). */
  readonly primaryId: string;

  constructor(keys: Buffer[]) {
    if (keys.length === 0) throw new Error('a keyring needs at least one key');
    for (const key of keys) {
      if (key.length !== KEY_BYTES) throw new Error(`an encryption key must be ${KEY_BYTES} bytes`);
      const id = keyIdOf(key);
      if (this.keys.has(id)) throw new Error(`the same key is listed twice (key id ${id})`);
      this.keys.set(id, key);
    }
    this.primaryId = keyIdOf(keys[0]);
  }

  static fromText(value: string): Keyring {
    return new Keyring(parseEncryptionKeys(value));
  }

  get ids(): string[] {
    return [...this.keys.keys()];
  }

  /** Seals with the newest key. `context` must be given again, unchanged, to open the value. */
  encrypt(plaintext: Buffer | string, context = ''): string {
    const header = `${PREFIX}${this.primaryId}:`;
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.keys.get(this.primaryId)!, iv);
    cipher.setAAD(Buffer.from(header + context, 'utf8'));
    const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    return header + Buffer.concat([iv, body, cipher.getAuthTag()]).toString('base64');
  }

  decrypt(sealed: string, context = ''): Buffer {
    const keyId = sealedKeyId(sealed);
    if (keyId === null) throw new DecryptionError('not an encrypted value (expected enc:v1:<keyId>:…)');
    const key = this.keys.get(keyId);
    if (!key) {
      throw new DecryptionError(
        `encrypted with key id ${keyId}, which is not among HOOKLINE_ENCRYPTION_KEY's keys (ids ${this.ids.join(', ')}); ` +
          'add the key it was encrypted with back to the list',
      );
    }
    const header = `${PREFIX}${keyId}:`;
    const raw = Buffer.from(sealed.slice(header.length), 'base64');
    if (raw.length < IV_BYTES + TAG_BYTES) throw new DecryptionError('encrypted value is truncated');
    const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(0, IV_BYTES));
    decipher.setAAD(Buffer.from(header + context, 'utf8'));
    decipher.setAuthTag(raw.subarray(raw.length - TAG_BYTES));
    try {
      return Buffer.concat([decipher.update(raw.subarray(IV_BYTES, raw.length - TAG_BYTES)), decipher.final()]);
    } catch {
      throw new DecryptionError(`encrypted value failed authentication (key id ${keyId}): it was altered or belongs to another record`);
    }
  }

  /** True when `value` is plaintext or sealed with an older key: sealing it again is due. */
  needsReseal(value: string): boolean {
    return sealedKeyId(value) !== this.primaryId;
  }
}
