// The headers every page Hookline serves (operator console, consumer portal) carries: a strict
// CSP — only this origin's own script and style, API calls to this origin only, no inline code —
// and no sniffing, no referrer, no stale cache. A page states only where it differs: which
// images it may show and who may frame it.
import type { FastifyReply } from 'fastify';

export function pageCsp(opts: { imgSrc: string; frameAncestors: string }): string {
  return [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "connect-src 'self'",
    `img-src ${opts.imgSrc}`,
    "base-uri 'none'",
    "form-action 'none'",
    `frame-ancestors ${opts.frameAncestors}`,
  ].join('; ');
}

export function securePage(reply: FastifyReply, csp: string): FastifyReply {
  return reply
    .header('content-security-policy', csp)
    .header('x-content-type-options', 'nosniff')
    .header('referrer-policy', 'no-referrer')
    .header('cache-control', 'no-cache');
}
