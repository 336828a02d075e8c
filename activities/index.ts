// The side effects of delivery: resolve who gets an event, sign and POST it, record what
// happened. Built by a factory so the worker and tests hand in their own pool and settings.
// Whether a failure retries is decided here, at the throw site.
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { Pool } from '../src/db/pool';
import { activeSecrets, getEndpoint, getEndpointsByIds, listActiveEndpoints, updateEndpoint } from '../src/db/endpoints';
import { getEvent } from '../src/db/events';
import { ensureDeliveries, recordAttempt, setDeliveryStatus, type DeliveryStatus } from '../src/db/deliveries';
import { matchesChannels, matchesEventType } from '../src/matching';
import { nextDelayMs, parseRetryAfter, resolveRetry, type RetrySettings } from '../src/retry';
import { signatureHeader } from '../src/signing';
import { USER_AGENT } from '../src/version';
import type { TargetPolicy } from '../src/net/address-policy';
import { post } from './http';

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

export interface ResolvedEndpoint {
  id: string;
  /** Host only — shown in the Web UI's activity summary; paths and queries may hold tokens. */
  host: string;
  retry: RetrySettings;
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

function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return 'invalid-url';
  }
}

export function createActivities(deps: ActivityDeps) {
  const { pool } = deps;

  async function resolveEndpoints(input: { eventId: string; onlyEndpointIds?: string[] }): Promise<{
    eventType: string;
    requestTimeoutMs: number;
    endpoints: ResolvedEndpoint[];
  }> {
    const event = await getEvent(pool, input.eventId);
    if (!event) throw ApplicationFailure.nonRetryable(`event ${input.eventId} does not exist`, 'EventNotFound');
    const candidates = input.onlyEndpointIds
      ? await getEndpointsByIds(pool, input.onlyEndpointIds)
      : (await listActiveEndpoints(pool)).filter(
          (e) => matchesEventType(e.eventTypes, event.type) && matchesChannels(e.channels, event.channels),
        );
    await ensureDeliveries(pool, event.id, event.type, candidates.map((e) => e.id));
    return {
      eventType: event.type,
      requestTimeoutMs: deps.requestTimeoutMs,
      endpoints: candidates.map((e) => ({ id: e.id, host: hostOf(e.url), retry: resolveRetry(e.retry) })),
    };
  }

  async function deliver(input: { eventId: string; endpointId: string }): Promise<{ statusCode: number; attempt: number }> {
    const { eventId, endpointId } = input;
    const [endpoint, event] = await Promise.all([getEndpoint(pool, endpointId), getEvent(pool, eventId)]);
    if (!event) throw ApplicationFailure.nonRetryable(`event ${eventId} does not exist`, 'EventNotFound');
    if (!endpoint) throw ApplicationFailure.nonRetryable(`endpoint ${endpointId} was deleted`, FailureTypes.deleted);
    if (endpoint.disabled) {
      throw ApplicationFailure.nonRetryable(
        `endpoint ${endpointId} is disabled${endpoint.disabledReason ? `: ${endpoint.disabledReason}` : ''}`,
        FailureTypes.disabled,
      );
    }
    const secrets = await activeSecrets(pool, endpointId);
    const body = JSON.stringify({
      id: event.id,
      type: event.type,
      timestamp: event.createdAt.toISOString(),
      ...(event.version != null ? { version: event.version } : {}),
      data: event.data,
    });
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
    const error = ok
      ? null
      : result.kind === 'error'
        ? `${result.code}: ${result.message}`
        : `HTTP ${statusCode}`;
    const outcome = ok ? 'delivered' : permanent ? 'failed' : 'retrying';
    const attempt = await recordAttempt(pool, {
      eventId, endpointId, startedAt, latencyMs: result.latencyMs, statusCode, error, outcome,
      responseBody: result.kind === 'response' ? result.body.slice(0, RESPONSE_BODY_KEPT_BYTES) : null,
    });
    deps.onAttempt?.({ eventId, endpointId, attempt, statusCode, latencyMs: result.latencyMs, outcome, error });

    if (ok) return { statusCode: statusCode!, attempt };
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
    const policy = resolveRetry(endpoint.retry);
    throw ApplicationFailure.create({
      message: error!,
      type: FailureTypes.retryable,
      details: [{ statusCode }],
      nextRetryDelay: nextDelayMs(policy, Context.current().info.attempt, retryAfter),
    });
  }

  async function markDelivery(input: { eventId: string; endpointId: string; status: DeliveryStatus; reason?: string }): Promise<void> {
    await setDeliveryStatus(pool, input.eventId, input.endpointId, input.status, input.reason ?? null);
    deps.onDeliveryStatus?.({ eventId: input.eventId, endpointId: input.endpointId, status: input.status, reason: input.reason ?? null });
  }

  return { resolveEndpoints, deliver, markDelivery };
}

function headerValue(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

export type Activities = ReturnType<typeof createActivities>;
