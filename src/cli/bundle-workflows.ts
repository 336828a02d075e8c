// Child process of `hookline dev`: bundles the workflow code once, into the file argv[2] names,
// and exits. The worker then loads the ready bundle (HOOKLINE_WORKFLOW_BUNDLE) instead of
// bundling at start: webpack leaves ~100 MiB of RSS in the process that ran it, which V8 never
// gives back, and the worker runs for as long as `hookline dev` does.
import { writeFileSync } from 'node:fs';
import { bundleWorkflowCode } from '@temporalio/worker';
import { workflowInterceptorModules, workflowPreloadModules } from '../telemetry/bundle';

async function main(): Promise<void> {
  const out = process.argv[2];
  if (!out) throw new Error('usage: bundle-workflows <output file>');
  const quiet = () => {};
  const { code } = await bundleWorkflowCode({
    workflowsPath: require.resolve('../../workflows'),
    workflowInterceptorModules: workflowInterceptorModules(),
    preloadModules: workflowPreloadModules(),
    logger: { log: quiet, trace: quiet, debug: quiet, info: quiet, warn: console.warn, error: console.error },
  });
  writeFileSync(out, code);
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
