// Owns every environment variable Hookline reads. Parsed once, validated with zod; a bad value
// stops the process with a message that names the variable.
import path from 'node:path';
import { z } from 'zod';

const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((v) => v === 'true' || v === '1' || v === 'yes');
const port = z.coerce.number().int().min(0).max(65535);
const positiveInt = z.coerce.number().int().positive();

const schema = z.object({
  DATABASE_URL: z.string().url().optional(),
  TEMPORAL_ADDRESS: z.string().min(1).optional(),
  TEMPORAL_NAMESPACE: z.string().min(1).default('default'),
  TEMPORAL_TASK_QUEUE: z.string().min(1).default('hookline'),
  TEMPORAL_DEV_PORT: port.default(7233),
  TEMPORAL_CLI_PATH: z.string().min(1).optional(),
  PORT: port.default(3000),
  HOST: z.string().min(1).default('127.0.0.1'),
  HOOKLINE_API_KEY: z.string().min(16, 'must be at least 16 characters').optional(),
  HOOKLINE_ALLOW_PRIVATE_TARGETS: bool.default(false),
  HOOKLINE_DATA_DIR: z.string().min(1).default('.data'),
  // Bounds on the wire. 15 s matches Svix's default request timeout; 64 KiB of a response body
  // is plenty for an error message and keeps a hostile receiver from filling memory.
  HOOKLINE_REQUEST_TIMEOUT_MS: positiveInt.default(15_000),
  HOOKLINE_RESPONSE_BODY_MAX_BYTES: positiveInt.default(64 * 1024),
  // Standard Webhooks recommends keeping payloads small; 256 KiB is Svix's and SQS's limit.
  HOOKLINE_MAX_EVENT_BYTES: positiveInt.default(256 * 1024),
  // Accept events whose type was never registered through /v1/event-types.
  HOOKLINE_ACCEPT_UNREGISTERED_TYPES: bool.default(true),
  // How long an Idempotency-Key is remembered (Stripe keeps them 24 h).
  HOOKLINE_IDEMPOTENCY_TTL_HOURS: positiveInt.default(24),
  HOOKLINE_RELAY_BATCH_SIZE: positiveInt.default(100),
  // The relay wakes on NOTIFY; the poll only covers a lost notification or a relay that was down.
  HOOKLINE_RELAY_POLL_MS: positiveInt.default(1_000),
  HOOKLINE_WORKER_MAX_ACTIVITIES: positiveInt.default(200),
  // A workflow bundle made ahead (`hookline dev` makes one); unset: the worker bundles at start.
  HOOKLINE_WORKFLOW_BUNDLE: z.string().min(1).optional(),
  HOOKLINE_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  // json: one JSON object per line (for log shippers). pretty: one readable line per record.
  // Unset: pretty when stdout is a terminal, json otherwise.
  HOOKLINE_LOG_FORMAT: z.enum(['json', 'pretty']).optional(),
  // The worker's Prometheus /metrics (attempt counters, latency); 9464 is the port OpenTelemetry's
  // Prometheus exporter uses by convention. 0 turns it off.
  HOOKLINE_WORKER_METRICS_PORT: port.default(9464),
  // Where the operator console links deliveries to their workflows. Unset: the dev server's Web
  // UI, http://127.0.0.1:<TEMPORAL_DEV_PORT + 1000>.
  HOOKLINE_TEMPORAL_UI_URL: z.string().url().optional(),
});

export type Config = z.infer<typeof schema> & { dataDir: string; temporalUiUrl: string };

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Reads and validates the environment. Empty strings count as unset. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const input: Record<string, string> = {};
  for (const key of Object.keys(schema.shape)) {
    const value = env[key];
    if (value !== undefined && value !== '') input[key] = value;
  }
  const parsed = schema.safeParse(input);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`);
    throw new ConfigError(`invalid configuration:\n${lines.join('\n')}`);
  }
  return {
    ...parsed.data,
    dataDir: path.resolve(parsed.data.HOOKLINE_DATA_DIR),
    temporalUiUrl: (parsed.data.HOOKLINE_TEMPORAL_UI_URL ?? `http://127.0.0.1:${parsed.data.TEMPORAL_DEV_PORT + 1000}`).replace(/\/+$/, ''),
  };
}
