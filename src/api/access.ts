// Who may call which route, and from where. Owns:
// - the auth level every route declares (`config: { auth }`), checked on the route the router
//   MATCHED, never on the URL string, so no spelling of a path (`/%761/…`, absolute-form, `//`,
//   `/../`) reaches a route without its check; a route that declares nothing needs the admin key,
//   and so does an unknown path (404 only once authenticated, so routes cannot be probed);
// - the Host allowlist (HOOKLINE_ALLOWED_HOSTS), so a DNS-rebinding page cannot drive a local API;
// - the refusal of cross-site browser requests on state-changing methods;
// - the start-up refusal to expose an API without a key on a non-loopback HOST.
// Scoped keys (tenants) will map `publish` / `read` / `manage` to key scopes; today every
// non-public level is satisfied by the admin key alone.
import { createHash } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ConfigError, type Config } from '../config';
import { safeEqual } from '../signing';
import { ApiError } from './errors';

export const AUTH_LEVELS = ['public', 'metrics', 'publish', 'read', 'manage'] as const;
export type AuthLevel = (typeof AUTH_LEVELS)[number];
/** What a route that says nothing requires: the most, so forgetting is safe. */
const DEFAULT_AUTH: AuthLevel = 'manage';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Who may call the route; see src/api/access.ts. Default `manage`. */
    auth?: AuthLevel;
  }
}

type AccessConfig = Pick<
  Config,
  'HOST' | 'HOOKLINE_API_KEY' | 'HOOKLINE_ALLOWED_HOSTS' | 'HOOKLINE_METRICS_PUBLIC' | 'HOOKLINE_METRICS_TOKEN' | 'HOOKLINE_INSECURE_NO_AUTH'
>;

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

/** The secrets that open a route of this level; empty = no credential needed (dev, public). */
function acceptedSecrets(level: AuthLevel, config: AccessConfig): string[] {
  if (level === 'public') return [];
  if (level === 'metrics') {
    if (config.HOOKLINE_METRICS_PUBLIC) return [];
    return [config.HOOKLINE_API_KEY, config.HOOKLINE_METRICS_TOKEN].filter((k): k is string => Boolean(k));
  }
  return config.HOOKLINE_API_KEY ? [config.HOOKLINE_API_KEY] : [];
}

function checkCredentials(req: FastifyRequest, config: AccessConfig): void {
  const level = req.routeOptions.config?.auth ?? DEFAULT_AUTH;
  const secrets = acceptedSecrets(level, config);
  if (secrets.length === 0) return;
  const inQuery = Object.keys((req.query ?? {}) as object).find((k) => QUERY_CREDENTIALS.has(k.toLowerCase()));
  if (inQuery) {
    throw new ApiError(401, 'key_in_query', `${inQuery}: credentials in the URL are refused (URLs are logged); send "authorization: Bearer <key>"`);
  }
  const token = bearerToken(req);
  // Every secret is compared, so timing does not tell which kind of key was close.
  const ok = token !== null && secrets.map((s) => sameSecret(token, s)).includes(true);
  if (!ok) {
    const which = level === 'metrics' ? 'HOOKLINE_API_KEY or HOOKLINE_METRICS_TOKEN' : 'HOOKLINE_API_KEY';
    throw new ApiError(401, 'unauthorized', `authorization: send "Bearer <${which}>"`);
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
  if (SAFE_METHODS.has(req.method)) return;
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
export function registerAccessControl(app: FastifyInstance, config: AccessConfig): void {
  app.addHook('onRoute', (route) => {
    const auth = route.config?.auth ?? DEFAULT_AUTH;
    if (!(AUTH_LEVELS as readonly string[]).includes(auth)) {
      throw new Error(`route ${String(route.method)} ${route.url}: config.auth must be one of ${AUTH_LEVELS.join(', ')}, not "${auth}"`);
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
    checkCredentials(req, config);
  });
}
