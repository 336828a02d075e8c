// Refuses endpoint URLs that point at this network, at creation time, so a user hears about it
// at once. The deliver activity checks again after DNS resolution on every attempt.
import dns from 'node:dns/promises';
import { isIP } from 'node:net';
import { isLocalHostname, isPrivateAddress } from '../net/address-policy';
import { ApiError } from './errors';

export async function assertPublicUrl(url: string, field: string, allowPrivate: boolean): Promise<void> {
  if (allowPrivate) return;
  const host = new URL(url).hostname.replace(/^\[|\]$/g, '');
  const refuse = (why: string) => {
    throw new ApiError(422, 'private_target', `${field}: ${why}; set HOOKLINE_ALLOW_PRIVATE_TARGETS=true to allow it`);
  };
  if (isLocalHostname(host)) refuse(`${host} is this machine`);
  if (isIP(host)) {
    if (isPrivateAddress(host)) refuse(`${host} is not a public address`);
    return;
  }
  try {
    const addresses = await dns.lookup(host, { all: true });
    const bad = addresses.find((a) => isPrivateAddress(a.address));
    if (bad) refuse(`${host} resolves to non-public address ${bad.address}`);
  } catch (err) {
    if (err instanceof ApiError) throw err;
    // Unresolvable now may resolve later (new DNS record); delivery re-checks every attempt.
  }
}
