// Workflow interceptors for tracing (registered with workflowInterceptorModules, see
// src/telemetry/bundle.ts). Temporal's OpenTelemetry interceptors make the workflow span and one
// span per activity start, and carry the context to the activities in their headers — but only
// for a workflow whose start headers carry a trace context (the relay's client adds it when
// tracing is on). Any other workflow runs untouched: no spans, no sink calls, nothing added to
// its history. Headers are in the history, so the choice replays the same way.
//
// The OpenTelemetry modules are required on first use, not imported: with the reusable V8
// context every workflow evaluates the modules it imports afresh, and OpenTelemetry's (semantic
// conventions, the SDK's tracer) were a fifth of the workflow thread's CPU per untraced delivery
// (bench e2e profile). webpack still bundles them; only a traced workflow evaluates them.
import type * as OtelWorkflow from '@temporalio/interceptors-opentelemetry/lib/workflow';
import type { Headers } from '@temporalio/common';
import type { WorkflowInterceptors } from '@temporalio/workflow';

// Temporal's TRACE_HEADER; not imported, as its module pulls the client-side instrumentation in.
const TRACE_HEADER = '_tracer-data';
const carriesTrace = (headers: Headers) => Object.prototype.hasOwnProperty.call(headers, TRACE_HEADER);

export const interceptors = (): WorkflowInterceptors => {
  // Built on first use only: constructing them registers a tracer provider in the sandbox.
  let otel: { inbound: OtelWorkflow.OpenTelemetryInboundInterceptor; outbound: OtelWorkflow.OpenTelemetryOutboundInterceptor; internals: typeof OtelWorkflow.OpenTelemetryInternalsInterceptor } | null = null;
  const traced = () => {
    if (otel) return otel;
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const m: typeof OtelWorkflow = require('@temporalio/interceptors-opentelemetry/lib/workflow');
    return (otel = { inbound: new m.OpenTelemetryInboundInterceptor(), outbound: new m.OpenTelemetryOutboundInterceptor(), internals: m.OpenTelemetryInternalsInterceptor });
  };
  return {
    inbound: [{
      execute: (input, next) => (carriesTrace(input.headers) ? traced().inbound.execute(input, next) : next(input)),
      handleSignal: (input, next) => (carriesTrace(input.headers) ? traced().inbound.handleSignal(input, next) : next(input)),
    }],
    // Outbound calls are traced when the workflow (or a signal) brought a trace context.
    outbound: [{
      scheduleActivity: (input, next) => (otel ? otel.outbound.scheduleActivity(input, next) : next(input)),
      scheduleLocalActivity: (input, next) => (otel ? otel.outbound.scheduleLocalActivity(input, next) : next(input)),
      startChildWorkflowExecution: (input, next) => (otel ? otel.outbound.startChildWorkflowExecution(input, next) : next(input)),
      continueAsNew: (input, next) => (otel ? otel.outbound.continueAsNew(input, next) : next(input)),
    }],
    internals: [{
      dispose: (input, next) => (otel ? new otel.internals().dispose(input, next) : next(input)),
    }],
  };
};
