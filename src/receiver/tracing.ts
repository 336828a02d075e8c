// The receiver kit's one span: verification, in the sender's trace. @opentelemetry/api is an
// optional peer: when the receiving app does not have it, this is a plain call. With it but no
// SDK registered, the API hands out no-op spans. With an SDK, the span continues the trace of
// the active span when an HTTP instrumentation already made one for the request (it read the
// traceparent itself), else of the request's own `traceparent` header.
import type { WebhookHeaders } from './verify';

type OtelApi = typeof import('@opentelemetry/api');
let api: OtelApi | null | undefined;

function otel(): OtelApi | null {
  if (api === undefined) {
    try {
      api = require('@opentelemetry/api') as OtelApi;
    } catch {
      api = null;
    }
  }
  return api;
}

export function traceVerification<T extends { id: string }>(headers: WebhookHeaders, verify: () => T): T {
  const o = otel();
  if (!o) return verify();
  const active = o.trace.getSpan(o.context.active());
  const joined = active !== undefined && o.trace.isSpanContextValid(active.spanContext());
  const parent = joined ? o.context.active() : o.propagation.extract(o.ROOT_CONTEXT, headers, headerGetter);
  const span = o.trace.getTracer('hookline-receiver').startSpan('webhook verify', {
    // Without an HTTP instrumentation this span is the receiving end of Hookline's POST.
    kind: joined ? o.SpanKind.INTERNAL : o.SpanKind.SERVER,
  }, parent);
  try {
    const verified = verify();
    span.setAttribute('messaging.message.id', verified.id);
    return verified;
  } catch (err) {
    const reason = (err as { reason?: string }).reason;
    span.setAttribute('error.type', reason ?? (err as Error).name);
    span.setStatus({ code: o.SpanStatusCode.ERROR, message: (err as Error).message });
    throw err;
  } finally {
    span.end();
  }
}

// Node's header record, a plain record in any case, or a fetch Headers.
const headerGetter = {
  keys: (h: WebhookHeaders): string[] => (typeof h.get === 'function' ? [...(h as unknown as Headers).keys()] : Object.keys(h)),
  get(h: WebhookHeaders, key: string): string | string[] | undefined {
    if (typeof h.get === 'function') return (h as { get(name: string): string | null }).get(key) ?? undefined;
    const record = h as Readonly<Record<string, string | readonly string[] | undefined>>;
    const found = record[key] ?? record[Object.keys(record).find((k) => k.toLowerCase() === key) ?? ''];
    return found as string | string[] | undefined;
  },
};
