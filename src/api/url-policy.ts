// Checks an endpoint URL when it is created or changed, so a user hears about a refused target at
// once: http(s) only (never listen://, which only `hookline listen` makes), no credentials in it,
// a port a web service uses, and an address the target policy allows (src/net/address-policy).
// The deliver activity checks the address again on every attempt.
import dns from 'node:dns/promises';
import { isIP } from 'node:net';
import { isLocalHostname, type TargetPolicy } from '../net/address-policy';
import { ApiError } from './errors';

// Resolving is a courtesy (delivery re-checks); a slow resolver must not hold the request.
const LOOKUP_TIMEOUT_MS = 2_000;
// Ports below 1024 other than HTTP's own are other services (SSH, SMTP, ...), not webhooks.
const isWebPort = (port: number) => port === 80 || port === 443 || (port >= 1024 && port <= 65535);

/** The addresses `host` stands for; empty when it does not resolve (now). */
async function addressesOf(host: string): Promise<string[]> {
  if (isIP(host)) return [host];
  if (isLocalHostname(host)) return ['127.0.0.1', '::1'];
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<[]>((resolve) => (timer = setTimeout(() => resolve([]), LOOKUP_TIMEOUT_MS)));
  try {
    const found = dns.lookup(host, { all: true }).then((list) => list.map((a) => a.address), () => []);
    return await Promise.race([found, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Refuses a URL the policy does not allow (422 naming `field`); returns it normalised. */
export async function checkTargetUrl(raw: string, field: string, policy: TargetPolicy): Promise<string> {
  const refuse = (code: string, why: string): never => {
    throw new ApiError(422, code, `${field}: ${why}`);
  };
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return refuse('invalid_url', 'not a URL');
  }
  if (url.protocol === 'listen:') {
    // Deliveries to listen:// travel over a `hookline listen` connection; only the listen route
    // (src/api/routes/listen.ts) makes such endpoints, bound to a session it created.
    refuse('invalid_url', 'listen:// endpoints are made by `hookline listen` only');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') refuse('invalid_url', 'only http and https URLs are delivered to');
  if (url.username || url.password) {
    refuse('invalid_url', 'credentials in the URL are not allowed (they would be stored and logged); authenticate with the signature');
  }
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const addresses = await addressesOf(host);
  const hint = 'list it in HOOKLINE_ALLOWED_TARGETS to allow it';
  if (addresses.some((a) => !policy.allows(a))) {
    // Name what the user sent, never what an internal name resolves to.
    refuse('private_target', isIP(host) ? `${host} is not a public address; ${hint}` : `${host} is not a public host; ${hint}`);
  }
  const port = url.port ? Number(url.port) : url.protocol === 'https:' ? 443 : 80;
  if (!isWebPort(port) && !(addresses.length > 0 && addresses.every((a) => policy.listed(a)))) {
    refuse('invalid_url', `port ${port} is not allowed (use 80, 443 or 1024-65535), unless the target is in HOOKLINE_ALLOWED_TARGETS`);
  }
  return url.href;
}
