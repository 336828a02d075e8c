// The target policy (src/net/address-policy.ts) applied to broker hosts, as the deliver activity
// applies it to webhook URLs: the host is resolved, every address must be allowed, and the
// connection goes to the address that was checked (not to the name again), so DNS cannot
// re-point a pooled destination at an internal service between the check and the connect.
// Loopback is allowed only where HOOKLINE_ALLOWED_TARGETS lists it (`hookline dev` does).
import dns from 'node:dns/promises';
import { isIP } from 'node:net';
import { isLocalHostname, type TargetPolicy } from '../net/address-policy';
import { ConnectFailure } from './types';

/** The address to connect to for `host`; throws ConnectFailure when the policy refuses it. */
export type HostResolver = (host: string) => Promise<string>;

export function policyResolver(policy: TargetPolicy): HostResolver {
  return async (rawHost) => {
    const host = rawHost.replace(/^\[|\]$/g, '');
    const addresses = await addressesOf(host);
    // Name what the user configured, never what an internal name resolved to.
    if (addresses.some((a) => !policy.allows(a))) {
      throw new ConnectFailure({
        ok: false,
        retry: false,
        reason: `broker host ${host} is not an allowed target; list it in HOOKLINE_ALLOWED_TARGETS to allow it`,
      });
    }
    return addresses[0];
  };
}

async function addressesOf(host: string): Promise<string[]> {
  if (isIP(host)) return [host];
  if (isLocalHostname(host)) return ['127.0.0.1'];
  try {
    const list = await dns.lookup(host, { all: true });
    if (list.length > 0) return list.map((a) => a.address);
  } catch {
    // fall through: a resolver hiccup is worth a retry, as for a webhook URL
  }
  throw new ConnectFailure({ ok: false, retry: true, reason: `broker host ${host} does not resolve` });
}
