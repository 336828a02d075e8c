// Hookline's own spans, loaded with the SDK only when tracing is on (see ./index). Attributes
// follow the OpenTelemetry HTTP semantic conventions, minus what must not leave the process:
// no bodies, no headers, no URL paths or queries (an endpoint URL may carry a token), so a
// client span names the receiver by server.address and server.port only.
import { context, propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Link, type Span } from '@opentelemetry/api';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { PostOptions, PostResult } from '../../activities/http';
import type { Tracing } from './index';

/** The webhook POST as a CLIENT span, its W3C traceparent on the request. */
export async function tracedPost(t: Tracing, opts: PostOptions, send: (o: PostOptions) => Promise<PostResult>): Promise<PostResult> {
  const span = t.tracer.startSpan('POST', { kind: SpanKind.CLIENT, attributes: { 'http.request.method': 'POST', ...serverAttributes(opts.url) } });
  try {
    const headers = { ...opts.headers, ...t.inject(trace.setSpan(context.active(), span)) };
    const result = await send({ ...opts, headers });
    const errorType = result.kind === 'error' ? result.code : result.status >= 400 ? String(result.status) : null;
    if (result.kind === 'response') span.setAttribute('http.response.status_code', result.status);
    if (errorType) {
      span.setAttribute('error.type', errorType);
      span.setStatus({ code: SpanStatusCode.ERROR });
    }
    return result;
  } finally {
    span.end();
  }
}

function serverAttributes(url: string): Record<string, string | number> {
  try {
    const u = new URL(url);
    const port = u.port ? Number(u.port) : u.protocol === 'https:' ? 443 : 80;
    return { 'server.address': u.hostname.replace(/^\[|\]$/g, ''), 'server.port': port, 'url.scheme': u.protocol.slice(0, -1) };
  } catch {
    return {};
  }
}

const requestSpans = new WeakMap<FastifyRequest, Span>();

/**
 * A SERVER span per /v1 request, continuing the producer's trace when it sends a traceparent.
 * Named by the route template (`POST /v1/events`), never by the path it was called with.
 * Probes (/healthz, /readyz, /metrics) and the console are left out: they would bury the traces
 * worth reading.
 */
export function registerRequestSpans(t: Tracing, app: FastifyInstance): void {
  app.addHook('onRequest', async (req) => {
    const route = req.routeOptions.url;
    if (!route?.startsWith('/v1/')) return;
    const parent = propagation.extract(ROOT_CONTEXT, req.headers);
    requestSpans.set(req, t.tracer.startSpan(`${req.method} ${route}`, {
      kind: SpanKind.SERVER,
      attributes: {
        'http.request.method': req.method,
        'http.route': route,
        'url.scheme': req.protocol,
        'network.protocol.version': req.raw.httpVersion,
      },
    }, parent));
  });
  app.addHook('onResponse', async (req, reply) => {
    const span = requestSpans.get(req);
    if (!span) return;
    span.setAttribute('http.response.status_code', reply.statusCode);
    // Server spans mark only 5xx as errors: a 4xx is the client's mistake, answered correctly.
    if (reply.statusCode >= 500) {
      span.setAttribute('error.type', String(reply.statusCode));
      span.setStatus({ code: SpanStatusCode.ERROR });
    }
    span.end();
  });
}

/** The W3C carrier of a request's span, to store with the event for the relay. */
export function requestCarrier(t: Tracing, req: FastifyRequest): Record<string, string> | null {
  const span = requestSpans.get(req);
  return span ? t.inject(trace.setSpan(ROOT_CONTEXT, span)) : null;
}

export interface RelayedEvent {
  eventId: string;
  eventType: string;
  /** The API request's carrier, stored with the outbox row; null for events made inside Hookline. */
  carrier: Record<string, string> | null;
}

/**
 * The relay's start of one event's workflow. It runs later than the request that recorded the
 * event (from milliseconds to however long Temporal was down), so the span is both a child of
 * the API span — one trace per event — and linked to it, which marks the hand-over through the
 * outbox as asynchronous for the trace views that draw links.
 */
export async function traceRelayStart(t: Tracing, e: RelayedEvent, start: () => Promise<void>): Promise<void> {
  const parent = e.carrier ? propagation.extract(ROOT_CONTEXT, e.carrier) : ROOT_CONTEXT;
  const apiSpan = trace.getSpanContext(parent);
  const links: Link[] = apiSpan ? [{ context: apiSpan, attributes: { 'hookline.link': 'outbox' } }] : [];
  const span = t.tracer.startSpan('relay deliverEvent', {
    kind: SpanKind.PRODUCER,
    links,
    attributes: {
      'messaging.operation.type': 'send',
      'messaging.destination.name': 'deliverEvent',
      'messaging.message.id': e.eventId,
      'hookline.event.type': e.eventType,
    },
  }, parent);
  try {
    await context.with(trace.setSpan(parent, span), start);
  } catch (err) {
    span.setAttribute('error.type', (err as Error).name ?? 'Error');
    span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error).message });
    throw err;
  } finally {
    span.end();
  }
}
