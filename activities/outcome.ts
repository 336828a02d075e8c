// What one attempt's answer means, decided once: the give-up rules (docs/DESIGN.md) as a table
// from the result (status code, error kind, headers) to retry / permanent / gone, and how the
// circuit breaker counts it. The deliver activity records and throws from this; nothing else
// re-decides.
import type { GateOutcome } from '../src/db/gate';
import { parseRetryAfter } from '../src/retry';
import type { PostResult } from './http';

/** Failure types the workflow reads to tell the dead-letter reason. */
export const FailureTypes = {
  permanent: 'PermanentHttpError',
  gone: 'EndpointGone',
  disabled: 'EndpointDisabled',
  deleted: 'EndpointDeleted',
  privateTarget: 'PrivateTarget',
  retryable: 'RetryableDeliveryError',
} as const;

// 3xx is retried rather than followed: following would let a receiver bounce a signed request
// to another host. 408/425/429 are the 4xx that mean "try again later".
const RETRYABLE_4XX = new Set([408, 425, 429]);
// Only these answers carry a Retry-After worth obeying (RFC 9110 §10.2.3).
const RETRY_AFTER_STATUSES = new Set([429, 503]);

export interface AttemptOutcome {
  /** delivered: 2xx. gone: 410 (dead-letter and disable the endpoint). permanent: dead-letter now. */
  kind: 'delivered' | 'retry' | 'permanent' | 'gone';
  /** How the circuit breaker counts it. */
  health: GateOutcome;
  /** The attempt row's outcome. */
  recorded: 'delivered' | 'retrying' | 'failed';
  statusCode: number | null;
  /** What the attempt row and the failure say; null when delivered. */
  error: string | null;
  /** The failure type thrown for it; null when delivered. */
  failureType: (typeof FailureTypes)[keyof typeof FailureTypes] | null;
  /** The receiver's Retry-After in ms (429 and 503 only), uncapped. */
  retryAfterMs: number | undefined;
}

/**
 * The one table. `listen`: the endpoint is a `listen://` one, whose transport errors say the
 * CLI went away (the endpoint pauses), not that the local app is failing: neutral for health.
 */
export function classifyAttempt(result: PostResult, opts: { listen: boolean; nowMs: number }): AttemptOutcome {
  const statusCode = result.kind === 'response' ? result.status : null;
  const retryAfterMs = result.kind === 'response' && RETRY_AFTER_STATUSES.has(result.status)
    ? parseRetryAfter(headerValue(result.headers['retry-after']), opts.nowMs)
    : undefined;
  const health = result.kind === 'error' && opts.listen ? 'neutral' : healthOutcome(statusCode);
  const base = { statusCode, retryAfterMs, health };
  if (result.kind === 'error') {
    const error = `${result.code}: ${result.message}`;
    if (result.code === 'EPRIVATETARGET') return { ...base, kind: 'permanent', recorded: 'failed', error, failureType: FailureTypes.privateTarget };
    return { ...base, kind: 'retry', recorded: 'retrying', error, failureType: FailureTypes.retryable };
  }
  const status = result.status;
  if (status >= 200 && status < 300) return { ...base, kind: 'delivered', recorded: 'delivered', error: null, failureType: null };
  const error = `HTTP ${status}`;
  if (status === 410) return { ...base, kind: 'gone', recorded: 'failed', error, failureType: FailureTypes.gone };
  if (status >= 400 && status < 500 && !RETRYABLE_4XX.has(status)) return { ...base, kind: 'permanent', recorded: 'failed', error, failureType: FailureTypes.permanent };
  return { ...base, kind: 'retry', recorded: 'retrying', error, failureType: FailureTypes.retryable };
}

/**
 * How the circuit breaker counts an attempt: 2xx is a success; a timeout, a connection error,
 * a 3xx, a 5xx or a 408 is a failure; any other answer (4xx, 429) shows the receiver is up but
 * says nothing of its health.
 */
function healthOutcome(statusCode: number | null): GateOutcome {
  if (statusCode !== null && statusCode >= 200 && statusCode < 300) return 'success';
  if (statusCode === null || statusCode >= 500 || statusCode === 408 || (statusCode >= 300 && statusCode < 400)) return 'failure';
  return 'neutral';
}

function headerValue(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}
