// Pure code: signing, the backoff formula, Retry-After, type matching, address policy, config.
import { describe, expect, it } from 'vitest';
import { sign, signatureHeader, generateSecret, isValidSecret } from '../src/signing';
import { baseDelayMs, nextDelayMs, parseRetryAfter, resolveRetry, DEFAULT_RETRY, JITTER_RATIO } from '../src/retry';
import { matchesChannels, matchesEventType } from '../src/matching';
import { isGlobalUnicast } from '../src/net/address-policy';
import { loadConfig } from '../src/config';

describe('signing', () => {
  it('matches the Standard Webhooks test vector', () => {
    expect(sign('whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'msg_p5jXN8AQM9LWM0D4loKWxJek', 1614265330, '{"test": 2432232314}')).toBe(
      'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=',
    );
  });
  it('signs once per secret, space-separated', () => {
    const a = generateSecret();
    const b = generateSecret();
    const header = signatureHeader([a, b], 'evt_1', 1, '{}');
    expect(header.split(' ')).toEqual([sign(a, 'evt_1', 1, '{}'), sign(b, 'evt_1', 1, '{}')]);
  });
  it('issues whsec_ secrets of 32 bytes and validates their form', () => {
    const s = generateSecret();
    expect(isValidSecret(s)).toBe(true);
    expect(Buffer.from(s.slice(6), 'base64')).toHaveLength(32);
    expect(isValidSecret('whsec_' + Buffer.alloc(10).toString('base64'))).toBe(false);
    expect(isValidSecret('nope')).toBe(false);
  });
});

describe('retry policy', () => {
  it('defaults to the Standard Webhooks schedule', () => {
    const p = resolveRetry({});
    expect([1, 2, 3, 9, 20].map((n) => baseDelayMs(p, n))).toEqual([5_000, 300_000, 1_800_000, 86_400_000, 86_400_000]);
    expect(p.maxAttempts).toBe(10);
    expect(p.deadlineMs).toBe(DEFAULT_RETRY.deadlineMs);
  });
  it('switches to exponential backoff when an interval is overridden', () => {
    const p = resolveRetry({ initialIntervalMs: 100, backoffCoefficient: 2, maximumIntervalMs: 1_000 });
    expect(p.scheduleMs).toBeNull();
    expect(p.maxAttempts).toBe(0);
    expect([1, 2, 3, 4, 5, 6].map((n) => baseDelayMs(p, n))).toEqual([100, 200, 400, 800, 1_000, 1_000]);
  });
  it('jitters within ±20 %', () => {
    const p = resolveRetry({ initialIntervalMs: 1_000 });
    expect(nextDelayMs(p, 1, undefined, 0)).toBe(1_000 * (1 - JITTER_RATIO));
    expect(nextDelayMs(p, 1, undefined, 0.5)).toBe(1_000);
    expect(nextDelayMs(p, 1, undefined, 0.999999)).toBeCloseTo(1_000 * (1 + JITTER_RATIO), -1);
  });
  it('never retries earlier than Retry-After, and clamps it to an hour', () => {
    const p = resolveRetry({ initialIntervalMs: 100 });
    expect(nextDelayMs(p, 1, 2_000, 0)).toBe(2_000);
    expect(nextDelayMs(p, 1, 2_000, 0.9)).toBeGreaterThanOrEqual(2_000);
    expect(nextDelayMs(p, 1, 10 * 3_600_000, 0)).toBe(3_600_000);
  });
  it('parses Retry-After as seconds or an HTTP date', () => {
    const now = Date.parse('2026-11-29T10:00:00Z');
    expect(parseRetryAfter('2', now)).toBe(2_000);
    expect(parseRetryAfter('Sun, 29 Nov 2026 10:00:30 GMT', now)).toBe(30_000);
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
  });
});

describe('matching', () => {
  it('matches exact types, prefix patterns and everything', () => {
    expect(matchesEventType(null, 'a.b')).toBe(true);
    expect(matchesEventType(['*'], 'a.b')).toBe(true);
    expect(matchesEventType(['invoice.*'], 'invoice.paid')).toBe(true);
    expect(matchesEventType(['invoice.*'], 'invoice.line.created')).toBe(true);
    expect(matchesEventType(['invoice.*'], 'invoice')).toBe(false);
    expect(matchesEventType(['invoice.*'], 'invoices.paid')).toBe(false);
    expect(matchesEventType(['invoice.paid'], 'invoice.paid')).toBe(true);
    expect(matchesEventType(['invoice.paid'], 'invoice.voided')).toBe(false);
  });
  it('filters by channel', () => {
    expect(matchesChannels(null, null)).toBe(true);
    expect(matchesChannels(['eu'], ['eu', 'us'])).toBe(true);
    expect(matchesChannels(['eu'], ['us'])).toBe(false);
    expect(matchesChannels(['eu'], null)).toBe(false);
  });
});

describe('address policy', () => {
  it.each(['127.0.0.1', '10.0.0.1', '172.16.5.4', '192.168.1.1', '169.254.169.254', '100.64.0.1', '0.0.0.0', '::1', 'fe80::1', 'fd00::1', '::ffff:127.0.0.1'])(
    'refuses %s',
    (ip) => expect(isGlobalUnicast(ip)).toBe(false),
  );
  it.each(['93.184.216.34', '8.8.8.8', '2606:4700:4700::1111'])('allows %s', (ip) => expect(isGlobalUnicast(ip)).toBe(true));
});

describe('config', () => {
  it('names the variable that is wrong', () => {
    expect(() => loadConfig({ PORT: 'eighty' })).toThrow(/PORT/);
    expect(() => loadConfig({ HOOKLINE_ALLOW_PRIVATE_TARGETS: 'maybe' })).toThrow(/HOOKLINE_ALLOW_PRIVATE_TARGETS/);
    expect(() => loadConfig({ DATABASE_URL: 'nope' })).toThrow(/DATABASE_URL/);
  });
  it('applies the documented defaults', () => {
    const c = loadConfig({});
    expect(c).toMatchObject({ PORT: 3000, HOST: '127.0.0.1', TEMPORAL_NAMESPACE: 'default', TEMPORAL_TASK_QUEUE: 'hookline', TEMPORAL_DEV_PORT: 7233, HOOKLINE_ALLOW_PRIVATE_TARGETS: false });
  });
});
