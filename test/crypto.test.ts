// The at-rest cipher (src/crypto.ts) and its configuration: one valid sealed value, then one
// thing broken per test.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config';
import { DecryptionError, isSealed, Keyring, parseEncryptionKeys, sealedKeyId } from '../src/crypto';
import { configureDataAtRest } from '../src/at-rest';

const newKey = () => randomBytes(32).toString('base64');

describe('Keyring', () => {
  const key = newKey();
  const ring = Keyring.fromText(key);

  it('round-trips text and bytes in the versioned, key-tagged format', () => {
    const sealed = ring.encrypt('whsec_c2VjcmV0', 'endpoint_secret:ep_1');
    expect(sealed).toMatch(/^enc:v1:[0-9a-f]{8}:[A-Za-z0-9+/]+=*$/);
    expect(sealedKeyId(sealed)).toBe(ring.primaryId);
    expect(sealed).not.toContain('c2VjcmV0');
    expect(ring.decrypt(sealed, 'endpoint_secret:ep_1').toString()).toBe('whsec_c2VjcmV0');
    const bytes = randomBytes(100);
    expect(ring.decrypt(ring.encrypt(bytes)).equals(bytes)).toBe(true);
    expect(ring.decrypt(ring.encrypt('')).toString()).toBe('');
  });

  it('uses a fresh IV per value, so equal plaintexts do not look equal', () => {
    expect(ring.encrypt('same')).not.toBe(ring.encrypt('same'));
  });

  it('rotation: the new key seals, the old one still opens, and old values are due for resealing', () => {
    const oldValue = ring.encrypt('payload');
    const rotated = Keyring.fromText(`${newKey()}, ${key}`);
    expect(rotated.primaryId).not.toBe(ring.primaryId);
    expect(rotated.decrypt(oldValue).toString()).toBe('payload');
    expect(rotated.needsReseal(oldValue)).toBe(true);
    const resealed = rotated.encrypt('payload');
    expect(sealedKeyId(resealed)).toBe(rotated.primaryId);
    expect(rotated.needsReseal(resealed)).toBe(false);
    expect(rotated.needsReseal('whsec_plain')).toBe(true);
    // The retired key cannot open what the new one sealed.
    expect(() => ring.decrypt(resealed)).toThrow(DecryptionError);
  });

  it('a wrong key is a clear error naming the key id and the variable', () => {
    const sealed = ring.encrypt('x');
    const other = Keyring.fromText(newKey());
    expect(() => other.decrypt(sealed)).toThrow(new RegExp(`key id ${ring.primaryId}.*HOOKLINE_ENCRYPTION_KEY`));
  });

  it('tampered ciphertext, tag, IV or key id fails authentication', () => {
    const sealed = ring.encrypt('a secret worth protecting');
    const [prefix, version, id, body] = sealed.split(':');
    const raw = Buffer.from(body, 'base64');
    for (const at of [0, 12, raw.length - 1]) {
      const bad = Buffer.from(raw);
      bad[at] ^= 0x01;
      expect(() => ring.decrypt([prefix, version, id, bad.toString('base64')].join(':'))).toThrow(/failed authentication/);
    }
    expect(() => ring.decrypt([prefix, version, id, raw.subarray(0, 20).toString('base64')].join(':'))).toThrow(/truncated/);
    expect(() => ring.decrypt(`${prefix}:${version}:zzzzzzzz:${body}`)).toThrow(DecryptionError);
  });

  it('a value moved to another record (another context) does not open', () => {
    const sealed = ring.encrypt('whsec_x', 'endpoint_secret:ep_a');
    expect(() => ring.decrypt(sealed, 'endpoint_secret:ep_b')).toThrow(/failed authentication/);
  });

  it('plaintext is not mistaken for a sealed value', () => {
    expect(isSealed('whsec_abc')).toBe(false);
    expect(() => ring.decrypt('whsec_abc')).toThrow(/not an encrypted value/);
  });

  it('refuses the same key twice', () => {
    expect(() => Keyring.fromText(`${key},${key}`)).toThrow(/listed twice/);
  });
});

describe('HOOKLINE_ENCRYPTION_KEY', () => {
  it('accepts one or several base64 keys of 32 bytes', () => {
    expect(parseEncryptionKeys(newKey())).toHaveLength(1);
    expect(parseEncryptionKeys(`${newKey()},${newKey()}`)).toHaveLength(2);
    expect(loadConfig({ HOOKLINE_ENCRYPTION_KEY: `${newKey()}, ${newKey()}` }).HOOKLINE_ENCRYPTION_KEY).toBeTruthy();
  });

  it('refuses a bad key with a message naming the variable and never the key', () => {
    const short = randomBytes(16).toString('base64');
    for (const bad of [short, 'not base64 at all!', `${newKey()},${short}`, '%%%%']) {
      let message = '';
      try {
        loadConfig({ HOOKLINE_ENCRYPTION_KEY: bad });
      } catch (err) {
        message = (err as Error).message;
      }
      expect(message).toMatch(/HOOKLINE_ENCRYPTION_KEY/);
      expect(message).toMatch(/openssl rand -base64 32/);
      expect(message).not.toContain(short);
    }
  });

  it('payload encryption without a key stops the process naming both variables', () => {
    expect(() => configureDataAtRest(loadConfig({ HOOKLINE_ENCRYPT_PAYLOADS: 'true' }))).toThrow(/HOOKLINE_ENCRYPT_PAYLOADS.*HOOKLINE_ENCRYPTION_KEY/);
  });

  it('HOOKLINE_RETENTION_DAYS defaults to 30 and refuses negatives', () => {
    expect(loadConfig({}).HOOKLINE_RETENTION_DAYS).toBe(30);
    expect(() => loadConfig({ HOOKLINE_RETENTION_DAYS: '-1' })).toThrow(/HOOKLINE_RETENTION_DAYS/);
  });
});
