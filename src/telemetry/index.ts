// Tracing switch for every Hookline process. OpenTelemetry is configured by its own standard
// variables (OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_SERVICE_NAME, OTEL_TRACES_SAMPLER, …), read by the
// SDK. This module only decides whether to load the SDK at all: with no OTLP endpoint set, the
// SDK (./sdk) is never required and every helper below is one null check, so the hot path of an
// untraced deployment pays nothing.
import type { Context, Span, Tracer } from '@opentelemetry/api';
import type { ClientInterceptors } from '@temporalio/client';
import type { WorkerOptions } from '@temporalio/worker';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { PostOptions, PostResult } from '../../activities/http';
import type { RelayedEvent } from './spans';

export type TracedRole = 'api' | 'relay' | 'worker' | 'receiver';

/** What the loaded SDK offers the rest of Hookline (see ./sdk). */
export interface Tracing {
  tracer: Tracer;
  /** The W3C carrier (`traceparent`, `tracestate`) of `ctx`, or of the active context. */
  inject(ctx?: Context): Record<string, string>;
  extract(carrier: Record<string, string | string[] | undefined>): Context;
  /** Temporal client interceptors: the workflow start span and its context in the start headers. */
  clientInterceptors(): ClientInterceptors;
  /** Activity interceptors and the sink that exports spans made inside workflows. */
  workerOptions(): Pick<WorkerOptions, 'interceptors' | 'sinks'>;
  /** Runs `fn` with `span` as the active span. */
  withSpan<T>(span: Span, fn: () => T): T;
  /** Flushes and stops the exporter (process exit). */
  shutdown(): Promise<void>;
}

let current: Tracing | null = null;

/**
 * True when the environment asks for traces: an OTLP endpoint is set and the SDK is not
 * disabled. `OTEL_TRACES_EXPORTER=none` and `OTEL_SDK_DISABLED=true` turn it off as in any
 * OpenTelemetry SDK.
 */
export function tracingRequested(env: NodeJS.ProcessEnv = process.env): boolean {
  if ((env.OTEL_SDK_DISABLED ?? '').trim().toLowerCase() === 'true') return false;
  if ((env.OTEL_TRACES_EXPORTER ?? '').trim().toLowerCase() === 'none') return false;
  return Boolean(env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim() || env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim());
}

/** Loads the SDK and registers it globally when tracing is requested; once per process. */
export function startTracing(role: TracedRole, env: NodeJS.ProcessEnv = process.env): Tracing | null {
  if (current || !tracingRequested(env)) return current;
  // Required here, never imported above: an untraced process must not load the SDK.
  current = (require('./sdk') as typeof import('./sdk')).createTracing(role, env);
  return current;
}

/** The process's tracing, or null when off. */
export function tracing(): Tracing | null {
  return current;
}

/** Flushes pending spans; a no-op when tracing is off. */
export async function stopTracing(): Promise<void> {
  const t = current;
  current = null;
  await t?.shutdown();
}

// The helpers the pipeline calls. Each is a null check when tracing is off; ./spans (and with it
// @opentelemetry/api) is required only once tracing is on.
const spans = () => require('./spans') as typeof import('./spans');

/** The webhook POST (activities/http.ts) with a client span and a traceparent header. */
export function tracedPost(opts: PostOptions, send: (o: PostOptions) => Promise<PostResult>): Promise<PostResult> {
  return current ? spans().tracedPost(current, opts, send) : send(opts);
}

/** A span per API request (src/api/app.ts). */
export function registerRequestSpans(app: FastifyInstance): void {
  if (current) spans().registerRequestSpans(current, app);
}

/** The trace context of an API request, stored with its event's outbox row; null when off. */
export function requestTraceContext(req: FastifyRequest): Record<string, string> | null {
  return current ? spans().requestCarrier(current, req) : null;
}

/** The relay's start of one event's workflow, in a span linked to the request that recorded it. */
export function traceRelayStart(e: RelayedEvent, start: () => Promise<void>): Promise<void> {
  return current ? spans().traceRelayStart(current, e, start) : start();
}
