// Portal-session tokens: short-lived HS256 JWTs (jose) bound to one tenant, optionally
// read-only, carrying the session's branding. Stateless on purpose: any API replica verifies one
// with the shared key and no table lookup; a session ends when it expires or when its tenant is
// deleted (access.ts checks the tenant on every request). There is no per-session revocation:
// keep ttlSeconds short (default 1 h, at most 24 h).
import { hkdfSync, randomUUID } from 'node:crypto';
import { jwtVerify, SignJWT } from 'jose';
import type { Config } from '../config';
import { parseEncryptionKeys } from '../crypto';

const ISSUER = 'hookline';
const AUDIENCE = 'hookline-portal';
const ALGORITHM = 'HS256';

export interface Branding {
  title?: string;
  logoUrl?: string;
  accentColor?: string;
}

export interface PortalSession {
  tenantId: string;
  readOnly: boolean;
  branding: Branding;
  sessionId: string;
  expiresAt: Date;
}

/**
 * The signing key: HOOKLINE_PORTAL_SECRET, or an HKDF of the first encryption key under a label
 * of its own (so the derived key says nothing about the encryption key). Null: neither is set,
 * and portal sessions cannot be issued or accepted.
 */
export function portalSigningKey(config: Pick<Config, 'HOOKLINE_PORTAL_SECRET' | 'HOOKLINE_ENCRYPTION_KEY'>): Uint8Array | null {
  if (config.HOOKLINE_PORTAL_SECRET) return new TextEncoder().encode(config.HOOKLINE_PORTAL_SECRET);
  if (!config.HOOKLINE_ENCRYPTION_KEY) return null;
  const [primary] = parseEncryptionKeys(config.HOOKLINE_ENCRYPTION_KEY);
  return new Uint8Array(hkdfSync('sha256', primary, Buffer.alloc(0), 'hookline portal sessions v1', 32));
}

export async function mintPortalToken(
  key: Uint8Array,
  s: { tenantId: string; readOnly: boolean; branding: Branding; ttlSeconds: number },
): Promise<{ token: string; expiresAt: Date }> {
  const now = Math.floor(Date.now() / 1000);
  const exp = now + s.ttlSeconds;
  const token = await new SignJWT({ ro: s.readOnly, brand: s.branding })
    .setProtectedHeader({ alg: ALGORITHM, typ: 'JWT' })
    .setIssuer(ISSUER)
    .setAudience(AUDIENCE)
    .setSubject(s.tenantId)
    .setJti(randomUUID())
    .setIssuedAt(now)
    .setExpirationTime(exp)
    .sign(key);
  return { token, expiresAt: new Date(exp * 1000) };
}

/** The session a token stands for, or null for anything not signed by us, expired, or malformed. */
export async function verifyPortalToken(key: Uint8Array, token: string): Promise<PortalSession | null> {
  try {
    // The algorithm is pinned: a token that names another one (`none`, RS256 with our key as a
    // "public key") is refused before its signature is looked at.
    const { payload } = await jwtVerify(token, key, { algorithms: [ALGORITHM], issuer: ISSUER, audience: AUDIENCE, requiredClaims: ['sub', 'exp', 'jti'] });
    if (typeof payload.sub !== 'string' || typeof payload.ro !== 'boolean') return null;
    return {
      tenantId: payload.sub,
      readOnly: payload.ro,
      branding: (payload.brand ?? {}) as Branding,
      sessionId: String(payload.jti),
      expiresAt: new Date((payload.exp as number) * 1000),
    };
  } catch {
    return null;
  }
}

/** A compact JWS: three base64url parts. Anything else is not tried as a portal token. */
export const looksLikeJwt = (token: string): boolean => /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(token);
