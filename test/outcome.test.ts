// The give-up rules as one table (activities/outcome.ts): one test per row.
import { describe, expect, it } from 'vitest';
import { classifyAttempt, FailureTypes } from '../activities/outcome';
import type { PostResult } from '../activities/http';

const NOW = Date.parse('2026-01-01T00:00:00Z');
const answer = (status: number, headers: Record<string, string | string[]> = {}): PostResult =>
  ({ kind: 'response', status, headers, body: Buffer.alloc(0), latencyMs: 5 });
const failure = (code: string, message = 'boom'): PostResult => ({ kind: 'error', code, message, latencyMs: 5 });
const http = (r: PostResult) => classifyAttempt(r, { listen: false, nowMs: NOW });
const listen = (r: PostResult) => classifyAttempt(r, { listen: true, nowMs: NOW });

describe('classifyAttempt', () => {
  it('2xx is delivered and a success', () => {
    expect(http(answer(204))).toEqual({ kind: 'delivered', health: 'success', recorded: 'delivered', statusCode: 204, error: null, failureType: null, retryAfterMs: undefined });
  });
  it('3xx retries (not followed) and counts as a failure', () => {
    expect(http(answer(302))).toMatchObject({ kind: 'retry', health: 'failure', recorded: 'retrying', error: 'HTTP 302', failureType: FailureTypes.retryable });
  });
  it('5xx retries and counts as a failure', () => {
    expect(http(answer(500))).toMatchObject({ kind: 'retry', health: 'failure', recorded: 'retrying', statusCode: 500, error: 'HTTP 500' });
  });
  it('408 retries and counts as a failure', () => {
    expect(http(answer(408))).toMatchObject({ kind: 'retry', health: 'failure', recorded: 'retrying' });
  });
  it('425 retries and is neutral for health', () => {
    expect(http(answer(425))).toMatchObject({ kind: 'retry', health: 'neutral', recorded: 'retrying' });
  });
  it('429 retries and is neutral for health', () => {
    expect(http(answer(429))).toMatchObject({ kind: 'retry', health: 'neutral', recorded: 'retrying', retryAfterMs: undefined });
  });
  it('another 4xx is permanent and neutral for health', () => {
    expect(http(answer(400))).toMatchObject({ kind: 'permanent', health: 'neutral', recorded: 'failed', error: 'HTTP 400', failureType: FailureTypes.permanent });
  });
  it('410 is gone: permanent, and the endpoint is disabled', () => {
    expect(http(answer(410))).toMatchObject({ kind: 'gone', health: 'neutral', recorded: 'failed', error: 'HTTP 410', failureType: FailureTypes.gone });
  });
  it('a timeout retries and counts as a failure', () => {
    expect(http(failure('ETIMEDOUT', 'timed out after 10 ms'))).toMatchObject({ kind: 'retry', health: 'failure', recorded: 'retrying', statusCode: null, error: 'ETIMEDOUT: timed out after 10 ms' });
  });
  it('a connection error retries and counts as a failure', () => {
    expect(http(failure('ECONNREFUSED'))).toMatchObject({ kind: 'retry', health: 'failure', recorded: 'retrying', error: 'ECONNREFUSED: boom', failureType: FailureTypes.retryable });
  });
  it('a refused (private) target is permanent', () => {
    expect(http(failure('EPRIVATETARGET', 'private address'))).toMatchObject({ kind: 'permanent', recorded: 'failed', failureType: FailureTypes.privateTarget, error: 'EPRIVATETARGET: private address' });
  });
  it('a listen:// transport error retries and is neutral for health', () => {
    expect(listen(failure('ETIMEDOUT'))).toMatchObject({ kind: 'retry', health: 'neutral', recorded: 'retrying' });
  });
  it('a listen:// answer is classified as any answer', () => {
    expect(listen(answer(503))).toMatchObject({ kind: 'retry', health: 'failure' });
  });
  it('Retry-After on a 429 or 503 is read, in seconds or as a date', () => {
    expect(http(answer(429, { 'retry-after': '7' })).retryAfterMs).toBe(7_000);
    expect(http(answer(503, { 'retry-after': ['2', '9'] })).retryAfterMs).toBe(2_000);
    expect(http(answer(503, { 'retry-after': new Date(NOW + 30_000).toUTCString() })).retryAfterMs).toBe(30_000);
  });
  it('Retry-After on any other status is ignored', () => {
    expect(http(answer(500, { 'retry-after': '7' })).retryAfterMs).toBeUndefined();
  });
});
