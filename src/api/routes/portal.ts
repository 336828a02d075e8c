// GET /portal: the consumer portal, a static page (src/portal/web) the sender embeds in an
// iframe or links to, as /portal#token=<portal session>. The page, its style and its script are
// public and hold no data; the session token travels in the URL fragment (never sent to a server)
// and the page sends it only as `Authorization: Bearer` on its own API calls. No admin key.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import { pageCsp, securePage } from '../page-headers';
import { bundlePortal } from '../../portal/bundle';

// src/portal/web next to src/api when run from source; dist/src/portal/web (with the prebuilt
// app.js) when compiled.
const WEB_DIRS = [path.resolve(__dirname, '../../portal/web'), path.resolve(__dirname, '../../../../src/portal/web')];

// Only this origin's script and style run, and the page talks only to this API. Images may come
// from https: (the sender's logo, a branding claim). Framing is allowed from anywhere: that is
// what embedding is, and the page holds no ambient credential (no cookie, nothing stored), so a
// framing site can do only what the token it put in the URL already allows.
// The page's own URL holds the token in its fragment; no-referrer keeps requests from naming it.
const CSP = pageCsp({ imgSrc: "'self' data: https:", frameAncestors: '*' });
const secure = (reply: FastifyReply) => securePage(reply, CSP);

let bundled: Promise<string> | null = null;
/** The script: prebuilt by `npm run build`, else bundled once per process from source. */
function portalScript(dir: string): () => Promise<string> {
  const prebuilt = path.join(dir, 'app.js');
  if (existsSync(prebuilt)) {
    const script = Promise.resolve(readFileSync(prebuilt, 'utf8'));
    return () => script;
  }
  return () =>
    (bundled ??= bundlePortal().catch((err) => {
      bundled = null; // a broken source must not stay broken after it is fixed
      throw err;
    }));
}

export const portalRoutes: FastifyPluginAsync = async (app) => {
  const dir = WEB_DIRS.find((d) => existsSync(path.join(d, 'index.html')));
  if (!dir) throw new Error(`consumer portal files not found (looked in ${WEB_DIRS.join(', ')})`);
  const html = readFileSync(path.join(dir, 'index.html'));
  const css = readFileSync(path.join(dir, 'style.css'));
  const script = portalScript(dir);
  const page = { schema: { hide: true }, config: { auth: 'public' as const } };

  for (const url of ['/portal', '/portal/']) {
    app.get(url, page, async (_req, reply) => secure(reply).type('text/html; charset=utf-8').send(html));
  }
  app.get('/portal/style.css', page, async (_req, reply) => secure(reply).type('text/css; charset=utf-8').send(css));
  app.get('/portal/app.js', page, async (_req, reply) => secure(reply).type('text/javascript; charset=utf-8').send(await script()));
};
