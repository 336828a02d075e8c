#!/usr/bin/env node
// `npm run build`: Hookline as plain JavaScript for production, run with `node dist/src/cli/main.js`
// (bin/hookline picks it), so no TypeScript loader runs in production. tsc compiles src, workflows
// and activities; then this copies what tsc does not: the migrations and the live SQL functions,
// the console's and the portal's assets (the portal's script bundled), the version
// (src/version.ts reads ../package.json), and a prebuilt workflow bundle so a worker starts
// without running webpack (seconds of CPU on every start and every rolling restart).
//   node scripts/build.js [--out-dir DIR]   (default: dist)
'use strict';
const { execFileSync } = require('node:child_process');
const { cpSync, mkdirSync, rmSync, writeFileSync } = require('node:fs');
const path = require('node:path');
const { parseArgs } = require('node:util');

const REPO = path.resolve(__dirname, '..');

async function main() {
  const { values } = parseArgs({ options: { 'out-dir': { type: 'string', default: 'dist' } } });
  const out = path.resolve(values['out-dir']);
  rmSync(out, { recursive: true, force: true });
  execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', path.join(REPO, 'tsconfig.build.json'), '--outDir', out], {
    stdio: 'inherit',
  });

  const copy = (from, filter) => cpSync(path.join(REPO, from), path.join(out, from), { recursive: true, filter });
  copy('src/db/migrations', (f) => !path.extname(f) || f.endsWith('.sql'));
  copy('src/db/functions.sql');
  copy('src/ui', (f) => !/\.tsx?$/.test(f));
  // The consumer portal: its page and style, and its script bundled with the typed client now,
  // so production serves it without esbuild (a dev dependency).
  copy('src/portal/web', (f) => !/\.tsx?$|tsconfig\.json$/.test(f));
  const { bundlePortal } = require(path.join(out, 'src/portal/bundle.js'));
  writeFileSync(path.join(out, 'src/portal/web/app.js'), await bundlePortal(path.join(REPO, 'src/portal/web/app.ts')));
  const pkg = require(path.join(REPO, 'package.json'));
  writeFileSync(path.join(out, 'package.json'), `${JSON.stringify({ name: pkg.name, version: pkg.version, private: true, type: 'commonjs' }, null, 2)}\n`);

  const { bundleWorkflowCode } = require('@temporalio/worker');
  const { workflowInterceptorModules, workflowPreloadModules } = require(path.join(out, 'src', 'telemetry', 'bundle.js'));
  const { code } = await bundleWorkflowCode({
    workflowsPath: path.join(out, 'workflows', 'index.js'),
    workflowInterceptorModules: workflowInterceptorModules(),
    preloadModules: workflowPreloadModules(),
    logger: quietLogger,
  });
  mkdirSync(out, { recursive: true });
  writeFileSync(path.join(out, 'workflow-bundle.js'), code);
  console.log(`built ${path.relative(process.cwd(), out) || '.'}: run with node ${path.join(path.relative(process.cwd(), out), 'src/cli/main.js')} <command>`);
}

const quietLogger = {
  log: () => {}, trace: () => {}, debug: () => {}, info: () => {},
  warn: (m) => console.warn(`[bundler] ${m}`),
  error: (m) => console.error(`[bundler] ${m}`),
};

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
