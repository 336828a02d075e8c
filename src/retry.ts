// Retry policy as data: defaults, per-endpoint overrides, the backoff-with-jitter formula and
// Retry-After parsing. Pure code with no Node built-ins, so workflows may import it too.
//
// The delay before retry n (n = the attempt that just failed, 1-based) is
//   base(n)  = scheduleMs[n-1] (last entry repeated) when a schedule is set, else
//              min(maximumIntervalMs, initialIntervalMs × backoffCoefficient^(n-1))
//   delay(n) = base(n) × (1 + JITTER_RATIO × (2u − 1)),  u uniform in [0, 1)
// so each retry lands within ±20 % of its nominal time, which spreads a thundering herd of
// retries after an outage. A 429/503 with Retry-After replaces base(n) with the header's value,
// clamped to [RETRY_AFTER_MIN_MS, RETRY_AFTER_MAX_MS], and gets no jitter below it.

export interface RetrySettings {
  initialIntervalMs: number;
  backoffCoefficient: number;
  maximumIntervalMs: number;
  /** Give up this long after the delivery (or its replay) started: scheduleToCloseTimeout. */
  deadlineMs: number;
  /** 0 means unlimited (bounded by the deadline). */
  maxAttempts: number;
  /** How long a dead letter waits for a replay before it is dropped. */
  deadLetterRetentionMs: number;
  /** Explicit delays between attempts; null means exponential backoff. */
  scheduleMs: number[] | null;
}

const SECOND = 1_000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

export const JITTER_RATIO = 0.2;
export const RETRY_AFTER_MIN_MS = 0;
// A receiver may not park us for longer than an hour per attempt; the deadline still applies.
export const RETRY_AFTER_MAX_MS = HOUR;

/**
 * The Standard Webhooks recommendation: immediately, then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h,
 * 14 h, 20 h and 24 h later — ten attempts over about three days (75 h 35 min).
 */
export const STANDARD_SCHEDULE_MS = [
  5 * SECOND, 5 * MINUTE, 30 * MINUTE, 2 * HOUR, 5 * HOUR, 10 * HOUR, 14 * HOUR, 20 * HOUR, 24 * HOUR,
];

export const DEFAULT_RETRY: RetrySettings = {
  initialIntervalMs: 5 * SECOND,
  backoffCoefficient: 2,
  maximumIntervalMs: 24 * HOUR,
  // Covers the whole schedule (75 h 35 min) plus request timeouts; +20 % jitter on the last
  // step may overrun, in which case the deadline wins and the delivery is dead-lettered.
  deadlineMs: 80 * HOUR,
  maxAttempts: STANDARD_SCHEDULE_MS.length + 1,
  deadLetterRetentionMs: 14 * DAY,
  scheduleMs: STANDARD_SCHEDULE_MS,
};

export type RetryOverrides = Partial<Omit<RetrySettings, 'scheduleMs'>> & { scheduleMs?: number[] | null };

/**
 * An endpoint's effective policy. Setting any exponential field (initialInterval,
 * backoffCoefficient, maximumInterval) without a schedule switches from the Standard Webhooks
 * schedule to exponential backoff, and a custom policy without maxAttempts is bounded by its
 * deadline alone.
 */
export function resolveRetry(overrides: RetryOverrides | null | undefined): RetrySettings {
  const o = overrides ?? {};
  const exponential =
    o.scheduleMs === undefined &&
    (o.initialIntervalMs !== undefined || o.backoffCoefficient !== undefined || o.maximumIntervalMs !== undefined);
  const scheduleMs = exponential ? null : o.scheduleMs === undefined ? DEFAULT_RETRY.scheduleMs : o.scheduleMs;
  return {
    initialIntervalMs: o.initialIntervalMs ?? DEFAULT_RETRY.initialIntervalMs,
    backoffCoefficient: o.backoffCoefficient ?? DEFAULT_RETRY.backoffCoefficient,
    maximumIntervalMs: o.maximumIntervalMs ?? DEFAULT_RETRY.maximumIntervalMs,
    deadlineMs: o.deadlineMs ?? DEFAULT_RETRY.deadlineMs,
    maxAttempts: o.maxAttempts ?? (exponential || o.scheduleMs ? 0 : DEFAULT_RETRY.maxAttempts),
    deadLetterRetentionMs: o.deadLetterRetentionMs ?? DEFAULT_RETRY.deadLetterRetentionMs,
    scheduleMs,
  };
}

/** Nominal delay after the failed attempt n (1-based), before jitter. */
export function baseDelayMs(p: RetrySettings, failedAttempt: number): number {
  const n = Math.max(1, failedAttempt);
  if (p.scheduleMs && p.scheduleMs.length > 0) {
    return p.scheduleMs[Math.min(n - 1, p.scheduleMs.length - 1)];
  }
  return Math.min(p.maximumIntervalMs, p.initialIntervalMs * Math.pow(p.backoffCoefficient, n - 1));
}

export function withJitter(ms: number, u: number = Math.random()): number {
  return Math.max(0, Math.round(ms * (1 + JITTER_RATIO * (2 * u - 1))));
}

/** The delay before the next attempt, honouring a parsed Retry-After when the receiver sent one. */
export function nextDelayMs(
  p: RetrySettings,
  failedAttempt: number,
  retryAfter?: number,
  u: number = Math.random(),
): number {
  if (retryAfter !== undefined) {
    const clamped = Math.min(RETRY_AFTER_MAX_MS, Math.max(RETRY_AFTER_MIN_MS, retryAfter));
    // Never earlier than the receiver asked; jitter only pushes later.
    return Math.round(clamped + clamped * JITTER_RATIO * u);
  }
  return withJitter(baseDelayMs(p, failedAttempt), u);
}

/** Retry-After as delta-seconds or an HTTP date, in ms from `nowMs`; undefined if unparseable. */
export function parseRetryAfter(value: string | null | undefined, nowMs: number): number | undefined {
  if (!value) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * SECOND;
  const at = Date.parse(trimmed);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - nowMs);
}

// Bounds on a declared policy, checked at the API so Temporal never sees one it would reject
// (it refuses a zero or negative interval and a maximumInterval below initialInterval) and no
// endpoint can park work for longer than an operator would look for it.
/** Temporal's own floor for retry intervals is 1 s in practice (sub-second retries hammer a receiver). */
export const MIN_RETRY_INTERVAL_MS = SECOND;
/** A receiver that is down for a month is gone; every retry of every event would still be pending. */
export const MAX_DEADLINE_MS = 30 * DAY;
/** No single wait longer than the whole deadline may last. */
export const MAX_RETRY_INTERVAL_MS = MAX_DEADLINE_MS;
/** A dead letter's workflow stays open this long; past 90 days nobody replays it. */
export const MAX_DEAD_LETTER_RETENTION_MS = 90 * DAY;

export interface RetryIssue {
  /** The field under `retry`, e.g. `maximumInterval` or `schedule.2`. */
  field: string;
  message: string;
}

const human = (ms: number) => (ms % DAY === 0 ? `${ms / DAY} days` : ms % SECOND === 0 ? `${ms / SECOND} s` : `${ms} ms`);

function intervalIssue(field: string, ms: number, minMs: number): RetryIssue | null {
  if (ms < minMs) return { field, message: `must be at least ${human(minMs)}` };
  if (ms > MAX_RETRY_INTERVAL_MS) return { field, message: `must be at most ${human(MAX_RETRY_INTERVAL_MS)}` };
  return null;
}

/**
 * What is wrong with a declared policy, checked on its effective values (defaults filled in), so
 * `maximumInterval: "500ms"` alone is caught against the default initialInterval. `minIntervalMs`
 * is MIN_RETRY_INTERVAL_MS except where a test suite shortens it (HOOKLINE_MIN_RETRY_INTERVAL_MS).
 */
export function retryPolicyIssues(o: RetryOverrides, minIntervalMs: number = MIN_RETRY_INTERVAL_MS): RetryIssue[] {
  const r = resolveRetry(o);
  const issues: (RetryIssue | null)[] = [
    intervalIssue('initialInterval', r.initialIntervalMs, minIntervalMs),
    intervalIssue('maximumInterval', r.maximumIntervalMs, minIntervalMs),
    ...(o.scheduleMs ?? []).map((ms, i) => intervalIssue(`schedule.${i}`, ms, minIntervalMs)),
  ];
  if (r.maximumIntervalMs < r.initialIntervalMs) {
    issues.push(
      o.maximumIntervalMs !== undefined
        ? { field: 'maximumInterval', message: `must not be below initialInterval (${human(r.initialIntervalMs)})` }
        : { field: 'initialInterval', message: `must not be above maximumInterval (${human(r.maximumIntervalMs)})` },
    );
  }
  if (r.deadlineMs <= 0) issues.push({ field: 'deadline', message: 'must be greater than 0' });
  if (r.deadlineMs > MAX_DEADLINE_MS) issues.push({ field: 'deadline', message: `must be at most ${human(MAX_DEADLINE_MS)}` });
  if (r.deadLetterRetentionMs > MAX_DEAD_LETTER_RETENTION_MS) {
    issues.push({ field: 'deadLetterRetention', message: `must be at most ${human(MAX_DEAD_LETTER_RETENTION_MS)}` });
  }
  return issues.filter((i): i is RetryIssue => i !== null);
}
