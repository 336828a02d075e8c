// Standard Webhooks signing: the one place that knows how a delivery is signed.
// Shared by the deliver activity (producer side) and the receiver kit (verifier side);
// it depends on node:crypto only so a receiver can use it without the rest of Hookline.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export const SECRET_PREFIX = 'whsec_';
// 24 bytes is the Standard Webhooks minimum, 64 its maximum; 32 matches an HMAC-SHA256 block need.
export const SECRET_MIN_BYTES = 24;
export const SECRET_MAX_BYTES = 64;
const DEFAULT_SECRET_BYTES = 32;

export function generateSecret(bytes = DEFAULT_SECRET_BYTES): string {
  return SECRET_PREFIX + randomBytes(bytes).toString('base64');
}

/** The key bytes of a secret; the `whsec_` prefix is optional. Throws on non-base64 input. */
export function secretKey(secret: string): Buffer {
  const body = secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : secret;
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(body)) throw new Error('secret is not base64');
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

/** `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">` */
export function sign(secret: string, id: string, timestampSeconds: number, body: string): string {
  const mac = createHmac('sha256', secretKey(secret))
    .update(`${id}.${timestampSeconds}.${body}`)
    .digest('base64');
  return `v1,${mac}`;
}

/** The `webhook-signature` header: one `v1,…` per active secret, space-separated. */
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
