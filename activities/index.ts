// The side effects of delivery: look up who gets an event (replays of closed workflows), sign
// and POST it, record what happened. Built by a factory so the worker and tests hand in their
// own pool and settings. Whether a failure retries is decided here, at the throw site; when it
// retries after how long is computed from the retry-policy snapshot the workflow passes in.
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { Pool } from '../src/db/pool';
import { activeSecrets, getEndpoint, getEndpointsByIds, listActiveEndpoints, updateEndpoint } from '../src/db/endpoints';
import { getEvent } from '../src/db/events';
import { ensureDeliveries, recordAttempt, setDeliveryStatus, type DeliveryStatus, type NewAttempt } from '../src/db/deliveries';
import { nextDelayMs, parseRetryAfter, type RetrySettings } from '../src/retry';
import { signatureHeader } from '../src/signing';
import { hostOf, subscribersOf, toResolved, type ResolvedEndpoint } from '../src/subscriptions';
import { USER_AGENT } from '../src/version';
import type { TargetPolicy } from '../src/net/address-policy';
import { post } from './http';

export type { ResolvedEndpoint } from '../src/subscriptions';

export interface ActivityDeps {
  pool: Pool;
  requestTimeoutMs: number;
  responseBodyMaxBytes: number;
  /** Which addresses deliveries may reach (HOOKLINE_ALLOWED_TARGETS). */
  targetPolicy: TargetPolicy;
  /** Called once per attempt, after it is recorded (logs, metrics). */
  onAttempt?: (a: AttemptReport) => void;
  /** Called when the workflow moves a delivery on (delivering, dead_lettered, dropped), after it is recorded. */
  onDeliveryStatus?: (s: DeliveryStatusReport) => void;
}

export interface DeliveryStatusReport {
  eventId: string;
  endpointId: string;
  status: DeliveryStatus;
  reason: string | null;
}

export interface AttemptReport {
  eventId: string;
  endpointId: string;
  attempt: number;
  statusCode: number | null;
  latencyMs: number;
  outcome: 'delivered' | 'retrying' | 'failed';
  error: string | null;
}

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
const RESPONSE_BODY_KEPT_BYTES = 2 * 1024;

/** One POST of a delivery, as the workflow asks for it. */
export interface DeliverInput {
  eventId: string;
  endpointId: string;
  /** The delivery's retry-policy snapshot: the delay before the next attempt comes from it. */
  retry: RetrySettings;
  /** Attempts of this run made before this activity's first (1 when a local first attempt failed). */
  attemptsBefore: number;
}

export interface DeliverResult {
  statusCode: number;
  attempt: number;
  /**
   * Set when the receiver answered 2xx but the attempt could not be recorded (database down):
   * the workflow records it with its own retries, so a bookkeeping error never causes a second POST.
   */
  unrecorded?: AttemptRecord;
}

export interface FirstAttemptsInput {
  eventId: string;
  endpoints: { endpointId: string; retry: RetrySettings }[];
}

export type FirstAttemptResult =
  | { delivered: DeliverResult; failed?: undefined }
  | { delivered?: undefined; failed: { message: string; type: string; nonRetryable: boolean; retryDelayMs: number } };

/**
 * NewAttempt as it crosses the workflow boundary, as plain JSON: the date as an ISO string, the
 * receiver's bytes as base64 (a Buffer would come back from the payload converter as an object).
 */
export type AttemptRecord = Omit<NewAttempt, 'startedAt' | 'responseBody'> & { startedAt: string; responseBodyBase64: string | null };

export function toAttemptRecord({ startedAt, responseBody, ...rest }: NewAttempt): AttemptRecord {
  const bytes = responseBody === null || Buffer.isBuffer(responseBody) ? responseBody : Buffer.from(responseBody, 'utf8');
  return { ...rest, startedAt: startedAt.toISOString(), responseBodyBase64: bytes?.toString('base64') ?? null };
}

function fromAttemptRecord({ startedAt, responseBodyBase64, ...rest }: AttemptRecord): NewAttempt {
  return { ...rest, startedAt: new Date(startedAt), responseBody: responseBodyBase64 === null ? null : Buffer.from(responseBodyBase64, 'base64') };
}

export function createActivities(deps: ActivityDeps) {
  const { pool } = deps;

  /** Looks up the endpoints of a replay that starts a new run, or of an endpoint adopted after continue-as-new. */
  async function resolveEndpoints(input: { eventId: string; onlyEndpointIds?: string[] }): Promise<{
    eventType: string;
    requestTimeoutMs: number;
    endpoints: ResolvedEndpoint[];
  }> {
    const event = await getEvent(pool, input.eventId);
    if (!event) throw ApplicationFailure.nonRetryable(`event ${input.eventId} does not exist`, 'EventNotFound');
    const candidates = input.onlyEndpointIds
      ? await getEndpointsByIds(pool, input.onlyEndpointIds, event.tenantId)
      : subscribersOf(await listActiveEndpoints(pool, [event.tenantId]), event);
    await ensureDeliveries(pool, event.id, event.type, candidates.map((e) => e.id), event.tenantId);
    return { eventType: event.type, requestTimeoutMs: deps.requestTimeoutMs, endpoints: candidates.map(toResolved) };
  }

  /** Loads what one attempt needs; a missing or disabled endpoint is a permanent failure. */
  async function load(eventId: string, endpointId: string) {
    const [endpoint, event, secrets] = await Promise.all([
      getEndpoint(pool, endpointId), getEvent(pool, eventId), activeSecrets(pool, endpointId),
    ]);
    if (!event) throw ApplicationFailure.nonRetryable(`event ${eventId} does not exist`, 'EventNotFound');
    if (!endpoint) throw ApplicationFailure.nonRetryable(`endpoint ${endpointId} was deleted`, FailureTypes.deleted);
    if (endpoint.disabled) {
      throw ApplicationFailure.nonRetryable(
        `endpoint ${endpointId} is disabled${endpoint.disabledReason ? `: ${endpoint.disabledReason}` : ''}`,
        FailureTypes.disabled,
      );
    }
    const body = JSON.stringify({
      id: event.id,
      type: event.type,
      timestamp: event.createdAt.toISOString(),
      ...(event.version != null ? { version: event.version } : {}),
      data: event.data,
    });
    return { endpoint, event, secrets, body };
  }

  /**
   * Signs and POSTs one attempt, records it, and decides what the answer means. Runs as the
   * local first attempt inside the workflow task and, when that fails, as the retried activity.
   */
  async function deliver(input: DeliverInput): Promise<DeliverResult> {
    const { eventId, endpointId } = input;
    const { endpoint, event, secrets, body } = await load(eventId, endpointId);
    const startedAt = new Date();
    const timestamp = Math.floor(startedAt.getTime() / 1000);
    const result = await post({
      url: endpoint.url,
      body,
      headers: {
        'content-type': 'application/json',
        'user-agent': USER_AGENT,
        'webhook-id': event.id,
        'webhook-timestamp': String(timestamp),
        'webhook-signature': signatureHeader(secrets, event.id, timestamp, body),
      },
      timeoutMs: deps.requestTimeoutMs,
      maxResponseBytes: deps.responseBodyMaxBytes,
      targetPolicy: deps.targetPolicy,
    });

    const statusCode = result.kind === 'response' ? result.status : null;
    const ok = statusCode !== null && statusCode >= 200 && statusCode < 300;
    const permanent =
      (result.kind === 'error' && result.code === 'EPRIVATETARGET') ||
      (statusCode !== null && statusCode >= 400 && statusCode < 500 && !RETRYABLE_4XX.has(statusCode));
    const error = ok ? null : result.kind === 'error' ? `${result.code}: ${result.message}` : `HTTP ${statusCode}`;
    const record: NewAttempt = {
      eventId, endpointId, startedAt, latencyMs: result.latencyMs, statusCode, error,
      outcome: ok ? 'delivered' : permanent ? 'failed' : 'retrying',
      responseBody: result.kind === 'response' ? result.body.slice(0, RESPONSE_BODY_KEPT_BYTES) : null,
    };
    if (ok) return recordDelivered(record, statusCode!);
    const attempt = await recordAndReport(record);

    if (statusCode === 410) {
      await updateEndpoint(pool, endpointId, { disabled: true, disabledReason: 'receiver answered 410 Gone' });
      throw ApplicationFailure.nonRetryable(`HTTP 410 from ${hostOf(endpoint.url)}: endpoint disabled`, FailureTypes.gone);
    }
    if (permanent) {
      const type = result.kind === 'error' ? FailureTypes.privateTarget : FailureTypes.permanent;
      throw ApplicationFailure.nonRetryable(error!, type, { statusCode });
    }
    const retryAfter =
      result.kind === 'response' && (statusCode === 429 || statusCode === 503)
        ? parseRetryAfter(headerValue(result.headers['retry-after']), Date.now())
        : undefined;
    const retryDelayMs = nextDelayMs(input.retry, input.attemptsBefore + Context.current().info.attempt, retryAfter);
    throw ApplicationFailure.create({ message: error!, type: FailureTypes.retryable, details: [{ statusCode }], nextRetryDelay: retryDelayMs });
  }

  /**
   * The first attempt to each of an event's endpoints, concurrently, as ONE local activity in
   * the workflow's first task: one marker, one resolution, so the workflow reacts to all the
   * outcomes in one deterministic step. Delivery failures come back as data; anything else
   * (database down before the POST) comes back as a retryable failure of that endpoint.
   */
  async function firstAttempts(input: FirstAttemptsInput): Promise<FirstAttemptResult[]> {
    return Promise.all(input.endpoints.map(async ({ endpointId, retry }): Promise<FirstAttemptResult> => {
      try {
        return { delivered: await deliver({ eventId: input.eventId, endpointId, retry, attemptsBefore: 0 }) };
      } catch (err) {
        const f = err instanceof ApplicationFailure ? err : null;
        const retryDelayMs = typeof f?.nextRetryDelay === 'number' ? f.nextRetryDelay : 0;
        return { failed: { message: (err as Error).message, type: f?.type ?? 'error', nonRetryable: Boolean(f?.nonRetryable), retryDelayMs } };
      }
    }));
  }

  /** After a 2xx nothing may throw: a failed record goes back to the workflow to be retried alone. */
  async function recordDelivered(record: NewAttempt, statusCode: number): Promise<DeliverResult> {
    try {
      return { statusCode, attempt: await recordAndReport(record) };
    } catch {
      return { statusCode, attempt: 0, unrecorded: toAttemptRecord(record) };
    }
  }

  async function recordAndReport(a: NewAttempt): Promise<number> {
    const attempt = await recordAttempt(pool, a);
    deps.onAttempt?.({ eventId: a.eventId, endpointId: a.endpointId, attempt, statusCode: a.statusCode, latencyMs: a.latencyMs, outcome: a.outcome, error: a.error });
    return attempt;
  }

  /** The late record of a delivered attempt (see DeliverResult.unrecorded). */
  async function recordLateAttempt(a: AttemptRecord): Promise<void> {
    await recordAndReport(fromAttemptRecord(a));
  }

  async function markDelivery(input: { eventId: string; endpointId: string; status: DeliveryStatus; reason?: string }): Promise<void> {
    await setDeliveryStatus(pool, input.eventId, input.endpointId, input.status, input.reason ?? null);
    deps.onDeliveryStatus?.({ eventId: input.eventId, endpointId: input.endpointId, status: input.status, reason: input.reason ?? null });
  }

  return { resolveEndpoints, firstAttempts, deliver, recordLateAttempt, markDelivery };
}

function headerValue(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

export type Activities = ReturnType<typeof createActivities>;
