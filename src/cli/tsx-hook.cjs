// `node --require ./src/cli/tsx-hook.cjs`: runs Hookline's TypeScript the lean way (npm start, and
// each role `hookline dev` spawns). tsx's CommonJS hook only — no ESM loader thread — and esbuild
// without its worker thread and long-lived service process: together ~35 MiB less per process.
// Files tsx has not cached yet then compile through a short-lived esbuild process each (the first
// start after an install or an edit is a few seconds slower; later starts hit tsx's cache).
process.env.ESBUILD_WORKER_THREADS ??= '0';
require('tsx/cjs');
