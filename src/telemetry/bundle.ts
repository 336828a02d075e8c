// What every workflow bundle is built with, in one place for each way a bundle is made
// (bundle-workflows, the worker bundling at start, the build, the test setup): the interceptor
// modules and the modules preloaded into the reusable V8 context.
import { existsSync } from 'node:fs';
import path from 'node:path';

// The source (.ts) or the build (.js); not require.resolve, which knows no .ts under vitest.
const workflowModule = (name: string) => {
  const base = path.join(__dirname, '../../workflows', name);
  return existsSync(`${base}.ts`) ? `${base}.ts` : `${base}.js`;
};

/**
 * Always included: the tracing interceptor does nothing for a workflow started without a trace
 * context, so a worker started with tracing on can follow traces through any prebuilt bundle.
 */
export function workflowInterceptorModules(): string[] {
  return [workflowModule('tracing')];
}

/**
 * Evaluated once per worker thread's V8 context, shared by every workflow in it, instead of once
 * per workflow (the SDK's preloadModules; with the default reuseV8Context a workflow otherwise
 * evaluates every module it imports afresh: @temporalio/workflow's index, ours, src/retry …).
 * Safe only for modules without per-workflow state at module level, and the SDK deep-freezes
 * what they export: ours hold constants, signal and query definitions and activity proxies
 * (which find the current workflow when called), and keep all state in instances (DeliveryRun,
 * EndpointDelivery) or inside the interceptors() factory. The OpenTelemetry modules tracing.ts
 * requires on first use load per workflow, as before. Keep it that way in workflows/**.
 */
export function workflowPreloadModules(): string[] {
  return [workflowModule('index'), workflowModule('tracing')];
}
