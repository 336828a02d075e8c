// Portal-session tokens: short-lived HS256 JWTs (jose) bound to one tenant, optionally
// read-only, carrying the session's branding. Stateless on purpose: any API replica verifies one
// with the shared key; a session ends when it expires, when its tenant is deleted, or when it is
// revoked (by its id, the jti, or all of a tenant's: src/db/portal-revocations.ts), all three
// checked by access.ts on every request. Keep ttlSeconds short anyway (default 1 h, at most 24 h).
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
  /** When it was minted, to the millisecond: a tenant's "revoke all" refuses what came before. */
  issuedAt: Date;
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
): Promise<{ token: string; sessionId: string; expiresAt: Date }> {
  const nowMs = Date.now();
  const now = Math.floor(nowMs / 1000);
  const exp = now + s.ttlSeconds;
  const sessionId = randomUUID();
  // `iatms`: iat has whole seconds, so a session minted just after a "revoke all" in the same
  // second would read as older than it and be refused.
  const token = await new SignJWT({ ro: s.readOnly, brand: s.branding, iatms: nowMs })
    .setProtectedHeader({ alg: ALGORITHM, typ: 'JWT' })
    .setIssuer(ISSUER)
    .setAudience(AUDIENCE)
    .setSubject(s.tenantId)
    .setJti(sessionId)
    .setIssuedAt(now)
    .setExpirationTime(exp)
    .sign(key);
  return { token, sessionId, expiresAt: new Date(exp * 1000) };
}

/** The session a token stands for, or null for anything not signed by us, expired, or malformed. */
export async function verifyPortalToken(key: Uint8Array, token: string): Promise<PortalSession | null> {
  try {
    // The algorithm is pinned: a token that names another one (`none`, RS256 with our key as a
    // "public key") is refused before its signature is looked at.
    const { payload } = await jwtVerify(token, key, { algorithms: [ALGORITHM], issuer: ISSUER, audience: AUDIENCE, requiredClaims: ['sub', 'exp', 'jti'] });
    if (typeof payload.sub !== 'string' || typeof payload.ro !== 'boolean') return null;
    // Without iatms (or with a bad one): the start of its iat second, the earlier reading, so a
    // "revoke all" in that second still refuses it.
    const iatSeconds = typeof payload.iat === 'number' ? payload.iat : 0;
    const issuedMs = typeof payload.iatms === 'number' && Math.floor(payload.iatms / 1000) === iatSeconds ? payload.iatms : iatSeconds * 1000;
    return {
      tenantId: payload.sub,
      readOnly: payload.ro,
      branding: (payload.brand ?? {}) as Branding,
      sessionId: String(payload.jti),
      issuedAt: new Date(issuedMs),
      expiresAt: new Date((payload.exp as number) * 1000),
    };
  } catch {
    return null;
  }
}

/** A compact JWS: three base64url parts. Anything else is not tried as a portal token. */
export const looksLikeJwt = (token: string): boolean => /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(token);
