// The workflow interceptor modules every workflow bundle includes, in one place for each way a
// bundle is made (bundle-workflows, the worker bundling at start, the build, the test setup).
// Always included: the tracing interceptor does nothing for a workflow started without a trace
// context, so a worker started with tracing on can follow traces through any prebuilt bundle.
import { existsSync } from 'node:fs';
import path from 'node:path';

export function workflowInterceptorModules(): string[] {
  // The source (.ts) or the build (.js); not require.resolve, which knows no .ts under vitest.
  const base = path.join(__dirname, '../../workflows/tracing');
  return [existsSync(`${base}.ts`) ? `${base}.ts` : `${base}.js`];
}
