// The consumer portal's script: src/portal/web/app.ts and the typed client it imports
// (src/client), bundled by esbuild into one file the browser runs under a strict CSP.
// Not checked in (it is build output): `npm run build` writes it into dist/ for production,
// where esbuild is not installed; run from source, the API bundles it on the first request.
import path from 'node:path';

/** `entry`: the source's app.ts; scripts/build.js passes the repo's, as dist/ has no .ts files. */
export async function bundlePortal(entry = path.join(__dirname, 'web/app.ts')): Promise<string> {
  // Required here, not imported at the top: production never calls this and has no esbuild.
  const esbuild = require('esbuild') as typeof import('esbuild');
  const result = await esbuild.build({
    entryPoints: [entry],
    bundle: true,
    write: false,
    format: 'iife',
    platform: 'browser',
    // What the evergreen browsers a sender's customers use all run; no polyfills.
    target: ['es2022', 'chrome109', 'firefox115', 'safari16'],
    minify: true,
    legalComments: 'none',
    logLevel: 'silent',
  });
  return result.outputFiles[0].text;
}
