// GET /ui: the operator console, a static page (src/ui/) that calls the JSON API from the
// browser. The page, its assets and config.json hold no data and are public (config auth);
// the data calls carry the API key the operator pastes in. /ui/config.json tells the page where the Temporal Web UI is.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import { pageCsp, securePage } from '../page-headers';
import { VERSION } from '../../version';

// src/ui next to src/api when run from source (tsx); the same folder of the repo when compiled.
const UI_DIRS = [path.resolve(__dirname, '../../ui'), path.resolve(__dirname, '../../../../src/ui')];

const ASSETS: Record<string, { file: string; type: string }> = {
  '/ui': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/ui/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/ui/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/ui/style.css': { file: 'style.css', type: 'text/css; charset=utf-8' },
};

// Only this origin's own files run; the page embeds nothing and cannot be framed.
const CSP = pageCsp({ imgSrc: "'self' data:", frameAncestors: "'none'" });
const secure = (reply: FastifyReply) => securePage(reply, CSP);

export const uiRoutes: FastifyPluginAsync = async (app) => {
  const { config } = app.hookline;
  const dir = UI_DIRS.find((d) => existsSync(path.join(d, 'index.html')));
  if (!dir) throw new Error(`operator console files not found (looked in ${UI_DIRS.join(', ')})`);
  const files = new Map(Object.values(ASSETS).map((a) => [a.file, readFileSync(path.join(dir, a.file))]));

  for (const [url, asset] of Object.entries(ASSETS)) {
    app.get(url, { schema: { hide: true }, config: { auth: 'public' } }, async (_req, reply) => secure(reply).type(asset.type).send(files.get(asset.file)));
  }

  app.get('/ui/config.json', { schema: { hide: true }, config: { auth: 'public' } }, async (_req, reply) =>
    secure(reply).send({
      version: VERSION,
      namespace: config.TEMPORAL_NAMESPACE,
      temporalUiUrl: config.temporalUiUrl,
      authRequired: Boolean(config.HOOKLINE_API_KEY),
    }),
  );
};
