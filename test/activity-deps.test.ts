// activityDeps(): the one mapping from the environment to the delivery activities' settings, used
// by `hookline worker` and by the test harness.
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config';
import type { Pool } from '../src/db/pool';
import { activityDeps } from '../src/worker/activity-deps';

describe('activityDeps', () => {
  it('takes every activity setting from its variable', () => {
    const pool = {} as Pool;
    const deps = activityDeps(loadConfig({
      HOOKLINE_REQUEST_TIMEOUT_MS: '4321', HOOKLINE_CONNECT_TIMEOUT_MS: '1234', HOOKLINE_RESPONSE_BODY_MAX_BYTES: '777',
      HOOKLINE_ENDPOINT_MAX_IN_FLIGHT: '9', HOOKLINE_CIRCUIT_FAILURE_THRESHOLD: '3', HOOKLINE_CIRCUIT_PROBE_INTERVAL_MS: '1500',
      HOOKLINE_CIRCUIT_PROBE_MAX_INTERVAL_MS: '60000', HOOKLINE_AUTO_DISABLE_AFTER_MS: '0', HOOKLINE_ALLOWED_TARGETS: 'loopback',
    }), pool);
    expect(deps).toMatchObject({
      pool, requestTimeoutMs: 4321, connectTimeoutMs: 1234, responseBodyMaxBytes: 777,
      gate: { defaultMaxInFlight: 9, failureThreshold: 3, probeIntervalMs: 1500, probeMaxIntervalMs: 60000, autoDisableAfterMs: 0 },
    });
    expect(deps.targetPolicy.allows('127.0.0.1')).toBe(true);
    expect(deps.targetPolicy.allows('10.0.0.1')).toBe(false);
    // No hooks: the worker adds its logs and metrics, the harness its test overrides.
    expect(deps.onAttempt).toBeUndefined();
  });
});
