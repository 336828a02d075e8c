// The OpenTelemetry SDK, loaded only when tracing is on (see ./index). One tracer provider per
// process, exporting over OTLP/HTTP in batches; the exporter reads OTEL_EXPORTER_OTLP_* itself,
// the provider OTEL_TRACES_SAMPLER and the span limits, the batch processor OTEL_BSP_*.
import { context, propagation, trace, type Context, type Span } from '@opentelemetry/api';
import { detectResourcesSync, envDetectorSync, hostDetectorSync, Resource } from '@opentelemetry/resources';
import { BatchSpanProcessor, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { OpenTelemetryWorkflowClientInterceptor } from '@temporalio/interceptors-opentelemetry/lib/client';
import {
  makeWorkflowExporter,
  OpenTelemetryActivityInboundInterceptor,
  OpenTelemetryActivityOutboundInterceptor,
} from '@temporalio/interceptors-opentelemetry/lib/worker';
import type { WorkflowInfo } from '@temporalio/workflow';
import { VERSION } from '../version';
import type { TracedRole, Tracing } from './index';

export function createTracing(role: TracedRole, env: NodeJS.ProcessEnv): Tracing {
  // Each role is its own service in a trace view (hookline-api → hookline-relay → …);
  // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES override (the env detector merges last).
  // No process detector: it would copy the command line, and `hookline receiver --secret …`
  // has a secret on it.
  const resource = new Resource({ 'service.name': `hookline-${role}`, 'service.namespace': 'hookline', 'service.version': VERSION })
    .merge(detectResourcesSync({ detectors: [hostDetectorSync, envDetectorSync] }));
  const processor = new BatchSpanProcessor(otlpExporter(env));
  const provider = new NodeTracerProvider({ resource, spanProcessors: [processor] });
  // The W3C traceparent/tracestate propagator and an AsyncLocalStorage context manager.
  provider.register();
  const tracer = trace.getTracer('hookline', VERSION);

  return {
    tracer,
    inject(ctx?: Context) {
      const carrier: Record<string, string> = {};
      propagation.inject(ctx ?? context.active(), carrier);
      return carrier;
    },
    extract(carrier) {
      return propagation.extract(context.active(), carrier);
    },
    clientInterceptors: () => ({ workflow: [new OpenTelemetryWorkflowClientInterceptor()] }),
    workerOptions: () => ({
      interceptors: {
        activity: [(ctx) => ({
          inbound: new OpenTelemetryActivityInboundInterceptor(ctx),
          outbound: new OpenTelemetryActivityOutboundInterceptor(ctx),
        })],
      },
      sinks: { exporter: workflowSpanSink(processor, resource) },
    }),
    withSpan<T>(span: Span, fn: () => T): T {
      return context.with(trace.setSpan(context.active(), span), fn);
    },
    shutdown: () => provider.shutdown(),
  };
}

/**
 * OTLP over HTTP, protobuf (the OpenTelemetry default) or JSON by OTEL_EXPORTER_OTLP_PROTOCOL.
 * gRPC is left out: it would add grpc-js to every install, and every collector and backend
 * that speaks OTLP also listens on HTTP (port 4318).
 */
function otlpExporter(env: NodeJS.ProcessEnv): SpanExporter {
  const protocol = (env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ?? env.OTEL_EXPORTER_OTLP_PROTOCOL ?? 'http/protobuf').trim();
  if (protocol === 'http/json') {
    const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-http') as typeof import('@opentelemetry/exporter-trace-otlp-http');
    return new OTLPTraceExporter();
  }
  if (protocol === 'http/protobuf') {
    const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-proto') as typeof import('@opentelemetry/exporter-trace-otlp-proto');
    return new OTLPTraceExporter();
  }
  throw new Error(`OTEL_EXPORTER_OTLP_PROTOCOL=${protocol} is not supported by Hookline; use http/protobuf or http/json (OTLP/HTTP, port 4318)`);
}

/**
 * Temporal's sink for spans made inside workflows. Its exporter copies the whole WorkflowInfo
 * onto every span, memo and last result included; only the identifying fields are passed on.
 */
function workflowSpanSink(processor: BatchSpanProcessor, resource: Resource) {
  const sink = makeWorkflowExporter(processor, resource);
  return {
    export: {
      ...sink.export,
      fn: (info: WorkflowInfo, spans: Parameters<typeof sink.export.fn>[1]) => {
        const { workflowId, runId, workflowType, taskQueue, namespace } = info;
        sink.export.fn({ workflowId, runId, workflowType, taskQueue, namespace } as WorkflowInfo, spans);
      },
    },
  };
}
