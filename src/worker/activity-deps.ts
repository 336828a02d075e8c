// The delivery activities' settings from the environment: one mapping for `hookline worker` and
// the test harness (test/helpers.ts), so a setting added to src/config.ts reaches both or neither.
import type { ActivityDeps } from '../../activities';
import type { Config } from '../config';
import type { GateSettings } from '../db/gate';
import type { Pool } from '../db/pool';
import { targetPolicyFromConfig } from '../net/address-policy';

/** The endpoint gate's settings (src/db/gate.ts). */
export function gateSettings(config: Config): GateSettings {
  return {
    defaultMaxInFlight: config.HOOKLINE_ENDPOINT_MAX_IN_FLIGHT,
    failureThreshold: config.HOOKLINE_CIRCUIT_FAILURE_THRESHOLD,
    probeIntervalMs: config.HOOKLINE_CIRCUIT_PROBE_INTERVAL_MS,
    probeMaxIntervalMs: config.HOOKLINE_CIRCUIT_PROBE_MAX_INTERVAL_MS,
    autoDisableAfterMs: config.HOOKLINE_AUTO_DISABLE_AFTER_MS,
  };
}

/** What createActivities() needs, read from `config`; the caller adds its hooks (logs, metrics). */
export function activityDeps(config: Config, pool: Pool): ActivityDeps {
  return {
    pool,
    requestTimeoutMs: config.HOOKLINE_REQUEST_TIMEOUT_MS,
    connectTimeoutMs: config.HOOKLINE_CONNECT_TIMEOUT_MS,
    gate: gateSettings(config),
    responseBodyMaxBytes: config.HOOKLINE_RESPONSE_BODY_MAX_BYTES,
    targetPolicy: targetPolicyFromConfig(config),
  };
}
