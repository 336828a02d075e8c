// Who may call which route, and from where. Owns:
// - the auth level every route declares (`config: { auth }`), checked on the route the router
//   MATCHED, never on the URL string, so no spelling of a path (`/%761/…`, absolute-form, `//`,
//   `/../`) reaches a route without its check; a route that declares nothing needs `manage`
//   (DEFAULT_AUTH), and an unknown path needs a valid key (404 only once authenticated, so
//   routes cannot be probed);
// - the Host allowlist (HOOKLINE_ALLOWED_HOSTS), so a DNS-rebinding page cannot drive a local API;
// - the refusal of cross-site browser requests on state-changing methods, and on a GET that
//   changes something (`config: { sideEffects: true }`, the listen stream);
// - the start-up refusal to expose an API without a key on a non-loopback HOST;
// - who the caller is (the principal: the admin key, a minted API key, or a portal session) and
//   whether it may act on the tenant the route acts on (`config: { tenancy }`, see below).
//
// Levels: `publish` (submit events), `read`, `manage` (endpoints, rotation, replay; implies read),
// `admin` (only HOOKLINE_API_KEY: minting keys). A minted key carries a set of scopes and one
// tenant or all; a portal session has `read`, plus `manage` unless read-only, on its tenant.
// Another tenant answers 404 exactly as a tenant that does not exist, so ids cannot be probed.
import { createHash } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ConfigError, type Config } from '../config';
import { API_KEY_PATTERN, findApiKey, touchApiKey, type KeyScope } from '../db/api-keys';
import type { Pool } from '../db/pool';
import { DEFAULT_TENANT, OPERATOR_TENANT, TENANT_PATH_PATTERN, tenantExists } from '../db/tenants';
import { isPortalSessionRevoked } from '../db/portal-revocations';
import { safeEqual } from '../signing';
import { ApiError } from './errors';
import { looksLikeJwt, portalSigningKey, verifyPortalToken, type PortalSession } from './portal-token';

export const AUTH_LEVELS = ['public', 'metrics', 'publish', 'read', 'manage', 'admin'] as const;
export type AuthLevel = (typeof AUTH_LEVELS)[number];
/** What a route that says nothing requires: manage, so forgetting is safe. */
const DEFAULT_AUTH: AuthLevel = 'manage';

/**
 * Which tenant a route acts on:
 * - `path`: the `:tenantId` in its path (`/v1/tenants/:tenantId/…`);
 * - `default`: the `default` tenant (the same route without a tenant in its path);
 * - `session`: the tenant of the caller's portal session;
 * - `shared`: none, and any principal with the level may call it (the global event-type catalogue);
 * - `global` (what a route that says nothing gets): none, so only the admin key or a key for all
 *   tenants may call it (tenants, event-type changes).
 */
export const TENANCIES = ['path', 'default', 'session', 'shared', 'global'] as const;
export type Tenancy = (typeof TENANCIES)[number];

export type Principal =
  /** HOOKLINE_API_KEY, or anyone on a loopback API without one (dev). */
  | { kind: 'admin' }
  | { kind: 'key'; id: string; tenantId: string | null; scopes: ReadonlySet<KeyScope> }
  | { kind: 'portal'; session: PortalSession };

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Who may call the route; see src/api/access.ts. Default `manage`. */
    auth?: AuthLevel;
    /** Which tenant the route acts on; see src/api/access.ts. Default `global`. */
    tenancy?: Tenancy;
    /**
     * A GET that changes something (the listen stream takes its session over): browsers'
     * cross-site requests are refused as on POST, so an <img> on any web page cannot trigger it.
     */
    sideEffects?: boolean;
  }
  interface FastifyRequest {
    /** Who is calling; null on public routes. */
    principal: Principal | null;
    /** The tenant the route acts on, checked against the principal ('' on routes without one). */
    tenantId: string;
  }
}

type AccessConfig = Pick<
  Config,
  | 'HOST' | 'HOOKLINE_API_KEY' | 'HOOKLINE_ALLOWED_HOSTS' | 'HOOKLINE_METRICS_PUBLIC' | 'HOOKLINE_METRICS_TOKEN' | 'HOOKLINE_INSECURE_NO_AUTH'
  | 'HOOKLINE_PORTAL_SECRET' | 'HOOKLINE_ENCRYPTION_KEY'
>;

// last_used_at is written at most this often per key: a key publishing thousands of events a
// second must not turn each request into a row update.
const KEY_TOUCH_EVERY_MS = 60_000;

// Credentials belong in the Authorization header; in a URL they land in access logs and history.
const QUERY_CREDENTIALS = new Set(['api_key', 'apikey', 'api-key', 'access_token', 'token', 'authorization']);
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
const LOOPBACK_NAMES = ['localhost', '127.0.0.1', '[::1]'];

export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/**
 * Throws when this configuration would serve the API to the network without a key; returns
 * the warnings to print loudly when the operator overrode that with HOOKLINE_INSECURE_NO_AUTH.
 */
export function checkExposure(config: AccessConfig): string[] {
  if (config.HOOKLINE_API_KEY || isLoopbackHost(config.HOST)) return [];
  if (!config.HOOKLINE_INSECURE_NO_AUTH) {
    throw new ConfigError(
      `refusing to serve the API on HOST=${config.HOST} without HOOKLINE_API_KEY: anyone who can reach it could read ` +
        'endpoint secrets and send webhooks. Set HOOKLINE_API_KEY (16+ characters), bind HOST=127.0.0.1, ' +
        'or set HOOKLINE_INSECURE_NO_AUTH=true to run without authentication anyway.',
    );
  }
  return [
    `WARNING: HOOKLINE_INSECURE_NO_AUTH=true: the API on HOST=${config.HOST} answers ANYONE who can reach it, ` +
      'without a key, including endpoint secrets. Set HOOKLINE_API_KEY.',
  ];
}

const digest = (s: string) => createHash('sha256').update(s).digest('hex');
/** Constant-time on equal-length digests, so the compare leaks neither content nor length. */
const sameSecret = (given: string, expected: string) => safeEqual(digest(given), digest(expected));

/** The hostname and optional port of a Host header (or URL host), lower-cased, no trailing dot. */
function splitHost(value: string): { name: string; port: string } {
  const v = value.trim().toLowerCase();
  const m = /^(\[[^\]]*\]|[^:]*)(?::(\d*))?$/.exec(v);
  if (!m) return { name: v, port: '' };
  return { name: m[1].replace(/\.$/, ''), port: m[2] ?? '' };
}

/** The Host values this API answers (HOOKLINE_ALLOWED_HOSTS, or the default; see README). */
function allowedHostEntries(config: Pick<Config, 'HOST' | 'HOOKLINE_ALLOWED_HOSTS'>): string[] {
  if (config.HOOKLINE_ALLOWED_HOSTS) return config.HOOKLINE_ALLOWED_HOSTS;
  // Loopback HOST: only loopback names, the rebinding defence. Otherwise the key guards the
  // API and its public name is not known here, so any Host is answered.
  if (!isLoopbackHost(config.HOST)) return ['*'];
  return [...LOOPBACK_NAMES, config.HOST.includes(':') ? `[${config.HOST}]` : config.HOST];
}

/** A matcher for `name` (any port), `name:port` and `*` entries. */
function matchHosts(entries: string[]): (host: string | undefined) => boolean {
  if (entries.includes('*')) return () => true;
  const allowed = entries.map(splitHost);
  return (host) => {
    if (!host) return false;
    const h = splitHost(host);
    return allowed.some((a) => a.name === h.name && (a.port === '' || a.port === h.port));
  };
}

function bearerToken(req: FastifyRequest): string | null {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
  return m ? m[1] : null;
}

function refuseQueryCredentials(req: FastifyRequest): void {
  const inQuery = Object.keys((req.query ?? {}) as object).find((k) => QUERY_CREDENTIALS.has(k.toLowerCase()));
  if (inQuery) {
    throw new ApiError(401, 'key_in_query', `${inQuery}: credentials in the URL are refused (URLs are logged); send "authorization: Bearer <key>"`);
  }
}

/** /metrics: the admin key or the metrics token (or nothing, when public or in dev). */
function checkMetricsCredentials(req: FastifyRequest, config: AccessConfig): void {
  if (config.HOOKLINE_METRICS_PUBLIC) return;
  const secrets = [config.HOOKLINE_API_KEY, config.HOOKLINE_METRICS_TOKEN].filter((k): k is string => Boolean(k));
  if (secrets.length === 0) return;
  refuseQueryCredentials(req);
  const token = bearerToken(req);
  // Every secret is compared, so timing does not tell which kind of key was close.
  if (token === null || !secrets.map((s) => sameSecret(token, s)).includes(true)) {
    throw new ApiError(401, 'unauthorized', 'authorization: send "Bearer <HOOKLINE_API_KEY or HOOKLINE_METRICS_TOKEN>"');
  }
}

interface AccessDeps {
  config: AccessConfig;
  pool: Pool;
  portalKey: Uint8Array | null;
}

const unauthorized = () =>
  new ApiError(401, 'unauthorized', 'authorization: send "Bearer <HOOKLINE_API_KEY, an API key or a portal session token>"');

/** Who the bearer token names; null when it names no one. */
async function principalOf(token: string, d: AccessDeps): Promise<Principal | null> {
  if (d.config.HOOKLINE_API_KEY && sameSecret(token, d.config.HOOKLINE_API_KEY)) return { kind: 'admin' };
  if (API_KEY_PATTERN.test(token)) {
    const key = await findApiKey(d.pool, token);
    if (!key) return null;
    if (!key.lastUsedAt || Date.now() - key.lastUsedAt.getTime() > KEY_TOUCH_EVERY_MS) {
      touchApiKey(d.pool, key.id, KEY_TOUCH_EVERY_MS).catch(() => {}); // bookkeeping: never fails a request
    }
    return { kind: 'key', id: key.id, tenantId: key.tenantId, scopes: new Set(key.scopes) };
  }
  if (d.portalKey && looksLikeJwt(token)) {
    const session = await verifyPortalToken(d.portalKey, token);
    // Revocation is checked here, at verify, so no route can forget it.
    if (!session || (await isPortalSessionRevoked(d.pool, session))) return null;
    return { kind: 'portal', session };
  }
  return null;
}

async function authenticate(req: FastifyRequest, d: AccessDeps): Promise<Principal> {
  const token = bearerToken(req);
  if (d.config.HOOKLINE_API_KEY || token !== null) refuseQueryCredentials(req);
  const principal = token === null ? null : await principalOf(token, d);
  if (principal) return principal;
  // A loopback API without HOOKLINE_API_KEY is open (dev), except to a minted key or a portal
  // token that fails: a revoked key or an expired session must not quietly become the admin.
  const scoped = token !== null && (API_KEY_PATTERN.test(token) || looksLikeJwt(token));
  if (!d.config.HOOKLINE_API_KEY && !scoped) return { kind: 'admin' };
  throw unauthorized();
}

/** The tenant a principal is bound to; null = every tenant. */
function boundTenant(p: Principal): string | null {
  return p.kind === 'admin' ? null : p.kind === 'key' ? p.tenantId : p.session.tenantId;
}

function hasLevel(p: Principal, level: AuthLevel): boolean {
  if (p.kind === 'admin') return true;
  if (level === 'admin') return false;
  if (p.kind === 'portal') return level === 'read' || (level === 'manage' && !p.session.readOnly);
  return p.scopes.has(level as KeyScope) || (level === 'read' && p.scopes.has('manage'));
}

const noSuchTenant = (p: Principal, tenantId: string) => {
  const own = boundTenant(p);
  // Says where this principal may go, which it knows anyway; never whether `tenantId` exists.
  const hint = own !== null && own !== tenantId ? ` (this credential acts on tenant ${own}: /v1/tenants/${own}/…)` : '';
  return new ApiError(404, 'not_found', `tenant ${tenantId} does not exist${hint}`);
};

/** Resolves the tenant the route acts on and checks the principal may act on it. */
async function checkTenant(req: FastifyRequest, p: Principal, d: AccessDeps): Promise<void> {
  const tenancy = req.routeOptions.config?.tenancy ?? 'global';
  if (tenancy === 'shared') return;
  if (tenancy === 'global') {
    if (boundTenant(p) !== null) throw new ApiError(403, 'forbidden', 'this route acts on every tenant: it needs HOOKLINE_API_KEY or a key for all tenants');
    return;
  }
  if (tenancy === 'session' && p.kind !== 'portal') {
    throw new ApiError(403, 'forbidden', 'authorization: this route answers a portal session token only');
  }
  const tenantId =
    tenancy === 'path' ? String((req.params as Record<string, unknown>).tenantId ?? '')
    : tenancy === 'session' && p.kind === 'portal' ? p.session.tenantId
    : DEFAULT_TENANT;
  // The operator feed names every tenant's endpoints and the hosts their failures reached: the
  // admin key alone opens it, not a key for all tenants (minted for the sender's own tooling) and
  // never a portal session. Anyone else is told it does not exist, as for any tenant not theirs.
  if (tenantId === OPERATOR_TENANT) {
    if (p.kind !== 'admin') throw noSuchTenant(p, tenantId);
    req.tenantId = tenantId;
    return;
  }
  const own = boundTenant(p);
  if (own !== null && own !== tenantId) throw noSuchTenant(p, tenantId);
  // The default tenant cannot be deleted, so the hot unprefixed routes skip the lookup.
  if (tenantId !== DEFAULT_TENANT && (!TENANT_PATH_PATTERN.test(tenantId) || !(await tenantExists(d.pool, tenantId)))) {
    throw noSuchTenant(p, tenantId);
  }
  req.tenantId = tenantId;
}

const SCOPE_HINT: Partial<Record<AuthLevel, string>> = {
  publish: 'the publish scope',
  read: 'the read scope (or manage)',
  manage: 'the manage scope',
  admin: 'HOOKLINE_API_KEY',
};

async function checkAccess(req: FastifyRequest, d: AccessDeps): Promise<void> {
  const level = req.routeOptions.config?.auth ?? DEFAULT_AUTH;
  if (level === 'public') return;
  if (level === 'metrics') return checkMetricsCredentials(req, d.config);
  const principal = await authenticate(req, d);
  req.principal = principal;
  // No route matched: any valid credential learns it is a 404; without one it was a 401 above.
  if (req.is404) return;
  await checkTenant(req, principal, d);
  if (!hasLevel(principal, level)) {
    throw new ApiError(403, 'forbidden', `authorization: this route needs ${SCOPE_HINT[level]}`);
  }
}

/** Whether an Origin names the host the request was sent to; an absent port is the scheme's default. */
function sameHost(origin: string, originHost: string, host: string): boolean {
  const defaultPort = origin.toLowerCase().startsWith('https:') ? '443' : '80';
  const o = splitHost(originHost);
  const h = splitHost(host);
  return o.name === h.name && (o.port || defaultPort) === (h.port || defaultPort);
}

/** Browsers say where a request comes from; a state change from another site is refused. */
function checkCrossSite(req: FastifyRequest, originListed: (host: string) => boolean): void {
  if (SAFE_METHODS.has(req.method) && !req.routeOptions.config?.sideEffects) return;
  const site = req.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin' && site !== 'none') {
    throw new ApiError(403, 'cross_site', `sec-fetch-site: ${site} requests may not change anything; call the API from a server or the console`);
  }
  const origin = req.headers.origin;
  if (origin === undefined) return; // not a browser: API clients send no Origin
  let originHost: string | null = null;
  try {
    originHost = new URL(origin).host;
  } catch {
    // "null" (sandboxed frames, file://) or garbage: treated as foreign
  }
  if (originHost !== null && (sameHost(origin, originHost, req.headers.host ?? '') || originListed(originHost))) return;
  throw new ApiError(403, 'cross_site', `origin: ${origin} may not change anything here; only this API's own origin may`);
}

/** Installs the checks; call before any route is added so every route gets its auth level. */
export function registerAccessControl(app: FastifyInstance, config: AccessConfig, pool: Pool): void {
  const deps: AccessDeps = { config, pool, portalKey: portalSigningKey(config) };
  app.decorateRequest('principal', null);
  app.decorateRequest('tenantId', '');
  app.addHook('onRoute', (route) => {
    const auth = route.config?.auth ?? DEFAULT_AUTH;
    if (!(AUTH_LEVELS as readonly string[]).includes(auth)) {
      throw new Error(`route ${String(route.method)} ${route.url}: config.auth must be one of ${AUTH_LEVELS.join(', ')}, not "${auth}"`);
    }
    const tenancy = route.config?.tenancy;
    if (tenancy !== undefined && !(TENANCIES as readonly string[]).includes(tenancy)) {
      throw new Error(`route ${String(route.method)} ${route.url}: config.tenancy must be one of ${TENANCIES.join(', ')}, not "${tenancy}"`);
    }
    route.config = { ...route.config, auth };
  });
  const hostAllowed = matchHosts(allowedHostEntries(config));
  // Behind a proxy that rewrites Host, a public name listed by the operator is the API's own
  // origin too; a `*` there opens Host, never Origin.
  const originListed = matchHosts((config.HOOKLINE_ALLOWED_HOSTS ?? []).filter((e) => e !== '*'));
  app.addHook('onRequest', async (req) => {
    if (!hostAllowed(req.headers.host)) {
      throw new ApiError(421, 'host_not_allowed', `host: "${req.headers.host ?? ''}" is not a name this API answers to; list it in HOOKLINE_ALLOWED_HOSTS`);
    }
    checkCrossSite(req, originListed);
    await checkAccess(req, deps);
  });
}
