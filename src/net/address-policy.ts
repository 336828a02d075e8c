// Which network addresses a delivery may reach: the target policy. An ALLOWLIST, not a denylist:
// an address is allowed when it is global unicast (what IANA's special-purpose registries mark
// globally reachable) or inside a range the operator listed in HOOKLINE_ALLOWED_TARGETS.
// Everything else (loopback, private, link-local with the cloud metadata at 169.254.169.254,
// CGNAT, documentation, benchmarking, multicast, reserved, site-local, discard, Teredo, ...) is
// refused. IPv6 forms that carry an IPv4 address (mapped, compatible, translated, 6to4, NAT64)
// are judged by the IPv4 address inside, so `::ffff:7f00:1` is as local as 127.0.0.1.
// The API checks at create/patch time; the deliver activity checks again on the address DNS
// resolved to, at connect time, so a name cannot be re-pointed at an internal service later.
import { BlockList, isIP } from 'node:net';
import type { Config } from '../config';

export interface TargetPolicy {
  /** True when a delivery may connect to this IP address. */
  allows(address: string): boolean;
  /** True when an operator-listed range (HOOKLINE_ALLOWED_TARGETS) covers the address. */
  listed(address: string): boolean;
}

type Cidr = readonly [network: string, prefix: number];

const LOOPBACK: Cidr[] = [['127.0.0.0', 8], ['::1', 128]];
// What HOOKLINE_ALLOW_PRIVATE_TARGETS=true has always meant: this machine and its networks.
const PRIVATE: Cidr[] = [
  ...LOOPBACK,
  ['10.0.0.0', 8], ['172.16.0.0', 12], ['192.168.0.0', 16], ['100.64.0.0', 10], ['169.254.0.0', 16],
  ['fc00::', 7], ['fe80::', 10],
];
/** Names usable in HOOKLINE_ALLOWED_TARGETS besides CIDRs and single addresses. */
export const TARGET_SHORTHANDS: Record<string, Cidr[]> = { loopback: LOOPBACK, private: PRIVATE };

// IPv4 unicast is 0.0.0.0/3..223/8; below, the blocks IANA's IPv4 special-purpose registry does
// not mark globally reachable (RFC 6890 and successors).
const V4_NOT_GLOBAL: Cidr[] = [
  ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16],
  ['172.16.0.0', 12], ['192.0.0.0', 24], ['192.0.2.0', 24], ['192.88.99.0', 24], ['192.168.0.0', 16],
  ['198.18.0.0', 15], ['198.51.100.0', 24], ['203.0.113.0', 24], ['224.0.0.0', 3], // multicast, reserved, broadcast
];
// Inside 192.0.0.0/24, IANA marks these two anycast services global.
const V4_GLOBAL_EXCEPTIONS: Cidr[] = [['192.0.0.9', 32], ['192.0.0.10', 32]];

// IPv6 global unicast is 2000::/3; inside it, the blocks that are not globally reachable.
// 2002::/16 (6to4) is judged by the IPv4 address it embeds, so it is not listed here.
const V6_NOT_GLOBAL: Cidr[] = [
  ['2001::', 23], // IETF protocol assignments, incl. Teredo 2001::/32 and benchmarking 2001:2::/48
  ['2001:db8::', 32], // documentation
  ['3fff::', 20], // documentation (RFC 9637)
];
const V6_GLOBAL_EXCEPTIONS: Cidr[] = [
  ['2001:1::1', 128], ['2001:1::2', 128], ['2001:1::3', 128], ['2001:3::', 32], ['2001:4:112::', 48],
  ['2001:20::', 28], ['2001:30::', 28],
];

function blockList(cidrs: Cidr[]): BlockList {
  const list = new BlockList();
  for (const [net, prefix] of cidrs) list.addSubnet(net, prefix, isIP(net) === 6 ? 'ipv6' : 'ipv4');
  return list;
}

const v4NotGlobal = blockList(V4_NOT_GLOBAL);
const v4Exceptions = blockList(V4_GLOBAL_EXCEPTIONS);
const v6GlobalUnicast = blockList([['2000::', 3]]);
const v6NotGlobal = blockList(V6_NOT_GLOBAL);
const v6Exceptions = blockList(V6_GLOBAL_EXCEPTIONS);

/** The 16 bytes of an IPv6 address (zone id dropped), or null if it is not one. */
export function ipv6Bytes(address: string): number[] | null {
  let text = address.replace(/%.*$/, '');
  if (isIP(text) !== 6) return null;
  // A trailing dotted quad (::ffff:1.2.3.4) stands for the last two groups.
  const quad = /^(.*:)(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (quad) text = `${quad[1]}0:0`;
  const groups = (s: string) => (s ? s.split(':').map((g) => parseInt(g, 16)) : []);
  const [head, tail] = text.includes('::') ? text.split('::') : [text, ''];
  const h = groups(head);
  const t = groups(tail);
  const words = [...h, ...Array(8 - h.length - t.length).fill(0), ...t];
  const bytes = words.flatMap((w) => [w >> 8, w & 0xff]);
  if (quad) bytes.splice(12, 4, ...quad[2].split('.').map(Number));
  return bytes;
}

const v4 = (b: number[], at: number) => b.slice(at, at + 4).join('.');
const zero = (b: number[], from: number, to: number) => b.slice(from, to).every((x) => x === 0);

/**
 * The IPv4 address the local network stack reaches for an IPv6 address: IPv4-mapped
 * (::ffff:a.b.c.d), IPv4-translated (::ffff:0:a.b.c.d) and IPv4-compatible (::a.b.c.d,
 * deprecated but still accepted by parsers; not :: or ::1).
 */
function stackIpv4(b: number[]): string | null {
  if (zero(b, 0, 10) && b[10] === 0xff && b[11] === 0xff) return v4(b, 12);
  if (zero(b, 0, 8) && b[8] === 0xff && b[9] === 0xff && zero(b, 10, 12)) return v4(b, 12);
  if (zero(b, 0, 12) && !zero(b, 12, 15)) return v4(b, 12);
  return null;
}

/**
 * Any IPv4 address an IPv6 address carries: the stack forms above, plus those a gateway
 * translates, 6to4 (2002:aabb:ccdd::/48) and well-known NAT64 (64:ff9b::/96). The local-use
 * NAT64 prefix 64:ff9b:1::/48 is not global at all, so it needs no decoding to be refused.
 */
export function embeddedIpv4(address: string): string | null {
  const b = ipv6Bytes(address);
  if (!b) return null;
  const stack = stackIpv4(b);
  if (stack !== null) return stack;
  if (b[0] === 0x20 && b[1] === 0x02) return v4(b, 2);
  if (b[0] === 0 && b[1] === 0x64 && b[2] === 0xff && b[3] === 0x9b && zero(b, 4, 12)) return v4(b, 12);
  return null;
}

/** True when IANA marks the address globally reachable unicast: a public target. */
export function isGlobalUnicast(address: string): boolean {
  const family = isIP(address.replace(/%.*$/, ''));
  if (family === 4) return v4Exceptions.check(address, 'ipv4') || !v4NotGlobal.check(address, 'ipv4');
  if (family !== 6) return false; // not an IP at all: refuse rather than guess
  const inner = embeddedIpv4(address);
  if (inner !== null) return isGlobalUnicast(inner);
  const addr = address.replace(/%.*$/, '');
  if (!v6GlobalUnicast.check(addr, 'ipv6')) return false; // ::, ::1, fc00::/7, fe80::/10, fec0::/10, ff00::/8, 100::/64, 64:ff9b:1::/48, ...
  return v6Exceptions.check(addr, 'ipv6') || !v6NotGlobal.check(addr, 'ipv6');
}

/** Parses one HOOKLINE_ALLOWED_TARGETS entry: a shorthand, an address, or address/prefix. */
export function parseTargetEntry(entry: string): Cidr[] {
  const e = entry.trim().toLowerCase();
  if (TARGET_SHORTHANDS[e]) return TARGET_SHORTHANDS[e];
  const [net, prefixText, extra] = e.split('/');
  const family = isIP(net);
  const max = family === 6 ? 128 : 32;
  const prefix = prefixText === undefined ? max : /^\d{1,3}$/.test(prefixText) ? Number(prefixText) : NaN;
  if (!family || extra !== undefined || !(prefix >= 0 && prefix <= max)) {
    throw new Error(`"${entry}" is not a CIDR (e.g. 10.0.0.0/8, fd00::/8), an address, or one of: ${Object.keys(TARGET_SHORTHANDS).join(', ')}`);
  }
  return [[net, prefix]];
}

/** The policy for a list of HOOKLINE_ALLOWED_TARGETS entries (already validated by config). */
export function createTargetPolicy(entries: readonly string[]): TargetPolicy {
  const allowed = blockList(entries.flatMap(parseTargetEntry));
  const listed = (address: string): boolean => {
    const addr = address.replace(/%.*$/, '');
    const family = isIP(addr);
    if (family === 0) return false;
    // Mapped forms reach the IPv4 address itself, so a listed IPv4 range covers them too; a
    // 6to4 or NAT64 address goes through a gateway, so `loopback` does not cover 2002:7f00:1::.
    const bytes = family === 6 ? ipv6Bytes(addr) : null;
    const inner = bytes ? stackIpv4(bytes) : null;
    if (inner !== null && allowed.check(inner, 'ipv4')) return true;
    return allowed.check(addr, family === 6 ? 'ipv6' : 'ipv4');
  };
  return { listed, allows: (address) => listed(address) || isGlobalUnicast(address) };
}

/** Hostnames that name the local machine whatever DNS says. */
export function isLocalHostname(hostname: string): boolean {
  const h = hostname.toLowerCase().replace(/\.$/, '');
  return h === 'localhost' || h.endsWith('.localhost');
}

/** The policy the configuration asks for (HOOKLINE_ALLOW_PRIVATE_TARGETS=true adds `private`). */
export function targetPolicyFromConfig(config: Pick<Config, 'HOOKLINE_ALLOWED_TARGETS' | 'HOOKLINE_ALLOW_PRIVATE_TARGETS'>): TargetPolicy {
  return createTargetPolicy([...config.HOOKLINE_ALLOWED_TARGETS, ...(config.HOOKLINE_ALLOW_PRIVATE_TARGETS ? ['private'] : [])]);
}
