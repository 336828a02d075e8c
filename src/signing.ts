// Standard Webhooks signing: the one place that knows how a delivery is signed.
// Shared by the deliver activity (producer side) and the receiver kit (verifier side);
// it depends on node:crypto only so a receiver can use it without the rest of Hookline.
//
// Two schemes, told apart by the key's prefix as the spec intends ("a unique and consistent
// secret format allows implementations to use the correct scheme without additional
// configuration"), so a stored secret carries its scheme and no caller needs a flag:
//   whsec_<b64 of 24–64 random bytes>   HMAC-SHA256, signature `v1,<b64 of 32 bytes>`
//   whsk_<b64 of an ed25519 private key> ed25519, signature `v1a,<b64 of 64 bytes>`;
//   whpk_<b64 of the raw 32-byte public key> is what the receiver holds to verify v1a.
import {
  createHmac, createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, sign as cryptoSign,
  timingSafeEqual, verify as cryptoVerify, type KeyObject,
} from 'node:crypto';

export const SECRET_PREFIX = 'whsec_';
// 24 bytes is the Standard Webhooks minimum, 64 its maximum; 32 matches an HMAC-SHA256 block need.
export const SECRET_MIN_BYTES = 24;
export const SECRET_MAX_BYTES = 64;
const DEFAULT_SECRET_BYTES = 32;

// Strict base64 (Buffer.from would silently skip stray characters).
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

export function generateSecret(bytes = DEFAULT_SECRET_BYTES): string {
  return SECRET_PREFIX + randomBytes(bytes).toString('base64');
}

/** The key bytes of a secret; the `whsec_` prefix is optional. Throws on non-base64 input. */
export function secretKey(secret: string): Buffer {
  const body = secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : secret;
  if (!BASE64.test(body)) throw new Error('secret is not base64');
  return Buffer.from(body, 'base64');
}

/** True when a secret is `whsec_` + base64 of 24–64 bytes, the form Hookline issues and accepts. */
export function isValidSecret(secret: string): boolean {
  if (!secret.startsWith(SECRET_PREFIX)) return false;
  try {
    const n = secretKey(secret).length;
    return n >= SECRET_MIN_BYTES && n <= SECRET_MAX_BYTES;
  } catch {
    return false;
  }
}

/** The content both schemes sign. */
const signedContent = (id: string, timestampSeconds: number, body: string) => `${id}.${timestampSeconds}.${body}`;

/**
 * One signature of `"{id}.{timestamp}.{body}"`: `v1,<base64 HMAC-SHA256>` for a `whsec_` (or
 * bare base64) secret, `v1a,<base64 ed25519 signature>` for a `whsk_` private key.
 */
export function sign(secret: string, id: string, timestampSeconds: number, body: string): string {
  const content = signedContent(id, timestampSeconds, body);
  if (secret.startsWith(PRIVATE_KEY_PREFIX)) {
    return `v1a,${cryptoSign(null, Buffer.from(content), ed25519PrivateKey(secret)).toString('base64')}`;
  }
  return `v1,${createHmac('sha256', secretKey(secret)).update(content).digest('base64')}`;
}

/** The `webhook-signature` header: one `v1,…` or `v1a,…` per active secret, space-separated. */
export function signatureHeader(
  secrets: readonly string[],
  id: string,
  timestampSeconds: number,
  body: string,
): string {
  return secrets.map((s) => sign(s, id, timestampSeconds, body)).join(' ');
}

/** Constant-time equality of two strings (false, without early exit, on length mismatch). */
export function safeEqual(a: string, b: string): boolean {
  const ab = Buffer.from(a);
  const bb = Buffer.from(b);
  if (ab.length !== bb.length) {
    timingSafeEqual(ab, ab);
    return false;
  }
  return timingSafeEqual(ab, bb);
}

// --- ed25519 (v1a) -------------------------------------------------------------------------

export const PRIVATE_KEY_PREFIX = 'whsk_';
export const PUBLIC_KEY_PREFIX = 'whpk_';
const ED25519_KEY_BYTES = 32;
export const ED25519_SIGNATURE_BYTES = 64;
// Node takes raw ed25519 keys only wrapped in DER; these are the fixed headers of a PKCS#8
// private key and an SPKI public key for OID 1.3.101.112 (RFC 8410), followed by the 32 raw bytes.
const PKCS8_ED25519_HEADER = Buffer.from('302e020100300506032b657004220420', 'hex');
const SPKI_ED25519_HEADER = Buffer.from('302a300506032b6570032100', 'hex');

export type SigningScheme = 'hmac' | 'ed25519';

/** A new private key for `scheme`: `whsec_…` for HMAC, `whsk_…` for ed25519. */
export function generateSigningSecret(scheme: SigningScheme): string {
  if (scheme === 'hmac') return generateSecret();
  const { privateKey } = generateKeyPairSync('ed25519');
  // The 32-byte seed followed by the public key: the usual 64-byte serialisation of an
  // ed25519 secret key (NaCl, libsodium), so the key can be taken elsewhere unchanged.
  const seed = privateKey.export({ format: 'der', type: 'pkcs8' }).subarray(PKCS8_ED25519_HEADER.length);
  return PRIVATE_KEY_PREFIX + Buffer.concat([seed, rawPublicKey(createPublicKey(privateKey))]).toString('base64');
}

export const schemeOf = (secret: string): SigningScheme => (secret.startsWith(PRIVATE_KEY_PREFIX) ? 'ed25519' : 'hmac');

/**
 * What a receiver is given to verify: the secret itself for HMAC (it is shared by nature), the
 * `whpk_` public key for ed25519 (the private key never leaves Hookline).
 */
export function verificationKey(secret: string): string {
  if (schemeOf(secret) === 'hmac') return secret;
  return PUBLIC_KEY_PREFIX + rawPublicKey(createPublicKey(ed25519PrivateKey(secret))).toString('base64');
}

/** The private key of a `whsk_` secret: 32 bytes (seed) or 64 (seed + its public key). */
function ed25519PrivateKey(secret: string): KeyObject {
  const raw = base64Body(secret, PRIVATE_KEY_PREFIX);
  if (raw.length !== ED25519_KEY_BYTES && raw.length !== 2 * ED25519_KEY_BYTES) {
    throw new Error('whsk_ key is not the base64 of a 32- or 64-byte ed25519 private key');
  }
  const key = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_HEADER, raw.subarray(0, ED25519_KEY_BYTES)]), format: 'der', type: 'pkcs8' });
  if (raw.length === 2 * ED25519_KEY_BYTES && !rawPublicKey(createPublicKey(key)).equals(raw.subarray(ED25519_KEY_BYTES))) {
    throw new Error('whsk_ key: its public half does not belong to its seed');
  }
  return key;
}

/** The public key of a `whpk_` string (base64 of the raw 32 bytes). Throws on anything else. */
export function ed25519PublicKey(publicKey: string): KeyObject {
  const raw = base64Body(publicKey, PUBLIC_KEY_PREFIX);
  if (raw.length !== ED25519_KEY_BYTES) throw new Error('whpk_ key is not the base64 of a 32-byte ed25519 public key');
  return createPublicKey({ key: Buffer.concat([SPKI_ED25519_HEADER, raw]), format: 'der', type: 'spki' });
}

/** True when `signature` (base64) is a valid ed25519 signature of the content under `publicKey`. */
export function verifyEd25519(publicKey: KeyObject, signature: string, id: string, timestampSeconds: number, body: string): boolean {
  const sig = Buffer.from(signature, 'base64');
  if (sig.length !== ED25519_SIGNATURE_BYTES) return false;
  return cryptoVerify(null, Buffer.from(signedContent(id, timestampSeconds, body)), publicKey, sig);
}

function rawPublicKey(key: KeyObject): Buffer {
  return key.export({ format: 'der', type: 'spki' }).subarray(SPKI_ED25519_HEADER.length);
}

function base64Body(value: string, prefix: string): Buffer {
  const body = value.slice(prefix.length);
  if (!value.startsWith(prefix) || !BASE64.test(body)) throw new Error(`${prefix} key is not ${prefix} + base64`);
  return Buffer.from(body, 'base64');
}
