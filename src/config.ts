// Owns every environment variable Hookline reads. Parsed once, validated with zod; a bad value
// stops the process with a message that names the variable.
import path from 'node:path';
import { z } from 'zod';
import { parseEncryptionKeys } from './crypto';
import { parseTargetEntry } from './net/address-policy';

const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((v) => v === 'true' || v === '1' || v === 'yes');
const port = z.coerce.number().int().min(0).max(65535);
const positiveInt = z.coerce.number().int().positive();
// A comma-separated list; blanks between commas are ignored.
const list = z.string().transform((v) => v.split(',').map((s) => s.trim()).filter(Boolean));
const targetEntry = z.string().superRefine((entry, ctx) => {
  try {
    parseTargetEntry(entry);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
  }
});
const hostEntry = z
  .string()
  .transform((v) => v.toLowerCase())
  .refine((v) => v === '*' || /^(\[[0-9a-f:.]+\]|[a-z0-9.-]+)(:\d{1,5})?$/.test(v), 'expected hostnames, host:port or *, comma-separated');

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
  // --- Network exposure and delivery targets (README "Security") ---
  // Without a key the API answers anyone who can reach it, so a non-loopback HOST needs
  // HOOKLINE_API_KEY unless this is set (and then every start logs a warning).
  HOOKLINE_INSECURE_NO_AUTH: bool.default(false),
  // Host header values the API answers (DNS-rebinding defence): hostnames, host:port, or `*`.
  // Unset: the loopback names on a loopback HOST, any host otherwise (the key guards it there).
  HOOKLINE_ALLOWED_HOSTS: list.pipe(z.array(hostEntry)).optional(),
  // GET /metrics without a key (for a scraper on a trusted network), or with its own token.
  HOOKLINE_METRICS_PUBLIC: bool.default(false),
  HOOKLINE_METRICS_TOKEN: z.string().min(16, 'must be at least 16 characters').optional(),
  // Ranges deliveries may reach besides global unicast: CIDRs, addresses, `loopback`, `private`.
  // `hookline dev` sets `loopback`. HOOKLINE_ALLOW_PRIVATE_TARGETS=true is the older spelling of
  // `private` and is still honoured.
  HOOKLINE_ALLOWED_TARGETS: list.pipe(z.array(targetEntry)).default([]),
  HOOKLINE_ALLOW_PRIVATE_TARGETS: bool.default(false),
  // Signs portal-session tokens (HS256 JWTs, src/api/portal-token.ts): 32+ random characters,
  // e.g. `openssl rand -base64 32`. Unset: derived (HKDF) from the first HOOKLINE_ENCRYPTION_KEY,
  // so rotating that key also ends open portal sessions; set this to rotate the two apart.
  HOOKLINE_PORTAL_SECRET: z.string().min(32, 'must be at least 32 characters').optional(),
  // --- end network exposure ---
  HOOKLINE_DATA_DIR: z.string().min(1).default('.data'),
  // Bounds on the wire. 15 s matches Svix's default request timeout; 64 KiB of a response body
  // is plenty for an error message and keeps a hostile receiver from filling memory.
  HOOKLINE_REQUEST_TIMEOUT_MS: positiveInt.default(15_000),
  HOOKLINE_RESPONSE_BODY_MAX_BYTES: positiveInt.default(64 * 1024),
  // --- Endpoint isolation (README "Isolation and endpoint health"; src/db/gate.ts) ---
  // HOOKLINE_REQUEST_TIMEOUT_MS above is the default response timeout (the whole request);
  // connecting gets its own, shorter bound, so an unreachable host fails fast.
  HOOKLINE_CONNECT_TIMEOUT_MS: positiveInt.default(5_000),
  // Requests in flight to one endpoint across all workers, unless the endpoint sets maxInFlight.
  HOOKLINE_ENDPOINT_MAX_IN_FLIGHT: positiveInt.default(10),
  // Consecutive failed attempts (timeouts, connection errors, 5xx) that open an endpoint's
  // circuit; 0 = no circuit breaker.
  HOOKLINE_CIRCUIT_FAILURE_THRESHOLD: z.coerce.number().int().min(0).default(5),
  // An open circuit lets one probe through after this, doubling per failed probe up to the max.
  HOOKLINE_CIRCUIT_PROBE_INTERVAL_MS: positiveInt.default(5_000),
  HOOKLINE_CIRCUIT_PROBE_MAX_INTERVAL_MS: positiveInt.default(5 * 60_000),
  // An endpoint failing this long with no successful delivery is disabled (Svix: 5 days); its
  // waiting deliveries become dead letters with the reason. 0 = never.
  HOOKLINE_AUTO_DISABLE_AFTER_MS: z.coerce.number().int().min(0).default(5 * 24 * 60 * 60_000),
  // --- end endpoint isolation ---

  // Standard Webhooks recommends keeping payloads small; 256 KiB is Svix's and SQS's limit.
  HOOKLINE_MAX_EVENT_BYTES: positiveInt.default(256 * 1024),
  // "Send a test event" (POST …/endpoints/:id/test) per endpoint per minute, across API
  // processes: a button a portal user can press must not become a way to flood a receiver.
  HOOKLINE_TEST_EVENTS_PER_MINUTE: positiveInt.default(10),
  // Accept events whose type was never registered through /v1/event-types.
  HOOKLINE_ACCEPT_UNREGISTERED_TYPES: bool.default(true),
  // How long an Idempotency-Key is remembered (Stripe keeps them 24 h).
  HOOKLINE_IDEMPOTENCY_TTL_HOURS: positiveInt.default(24),
  // The shortest retry interval an endpoint may declare (1 s). Only test suites lower it, to turn
  // hours of backoff into seconds; production has no reason to retry faster.
  HOOKLINE_MIN_RETRY_INTERVAL_MS: positiveInt.default(1_000),
  HOOKLINE_RELAY_BATCH_SIZE: positiveInt.default(100),
  // --- Fan-out bounds (README "Limits"; src/relay/relay.ts) ---
  // Endpoints one tenant may have: POST /v1/endpoints answers 422 (endpoint_limit) past it. A
  // large fan-out costs its start nothing (children load their slices from Postgres), but each
  // event writes one delivery row per subscriber and one child workflow per 50 of them.
  HOOKLINE_MAX_ENDPOINTS_PER_TENANT: positiveInt.default(10_000),
  // Subscribers one event may have (e.g. after lowering the limit above): past it the relay
  // dead-letters the event's deliveries with the reason instead of starting it. 10,000 makes
  // 200 children and a parent history of about a thousand events.
  HOOKLINE_MAX_SUBSCRIBERS_PER_EVENT: positiveInt.default(10_000),
  // --- end fan-out bounds ---
  // The relay wakes on NOTIFY; the poll only covers a lost notification or a relay that was down.
  HOOKLINE_RELAY_POLL_MS: positiveInt.default(1_000),
  HOOKLINE_WORKER_MAX_ACTIVITIES: positiveInt.default(200),
  // `hookline worker` also runs the relay, on the worker's own Temporal connection, so each start
  // hands its first workflow task straight to that worker (Eager Workflow Start: no matching hop,
  // no poll). false: workers only deliver; run `hookline relay` processes for the outbox.
  HOOKLINE_WORKER_RELAY: bool.default(true),
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
  // --- Data at rest (src/crypto.ts, src/at-rest.ts, src/relay/retention.ts) ---
  // Keys that encrypt endpoint secrets (and payloads, below) with AES-256-GCM: comma-separated,
  // newest first, each the base64 of 32 random bytes (`openssl rand -base64 32`). The first one
  // encrypts; all of them decrypt, so a rotation lists the new key first and keeps the old ones
  // until nothing is sealed with them. `hookline dev` makes one in the data dir.
  HOOKLINE_ENCRYPTION_KEY: z.string().superRefine((value, ctx) => {
    try {
      parseEncryptionKeys(value);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message });
    }
  }).optional(),
  // Also encrypt events' `data` (off by default: it costs CPU on the submit path and hides the
  // payload from SQL).
  HOOKLINE_ENCRYPT_PAYLOADS: bool.default(false),
  // Finished events (and their deliveries and attempts) and expired secrets older than this are
  // deleted by the relay. 30 days matches Svix's default retention; 0 keeps everything.
  HOOKLINE_RETENTION_DAYS: z.coerce.number().int().min(0).default(30),
  // Behind a reverse proxy (deploy/nginx/hookline.conf): the proxy addresses whose
  // X-Forwarded-For/-Proto/-Host the API believes, as a comma-separated list of IPs, CIDRs or
  // proxy-addr names (loopback, linklocal, uniquelocal), passed to Fastify's trustProxy. Unset:
  // forwarded headers are ignored, so a client reaching the API directly cannot choose the IP its
  // logs show. There is deliberately no "trust everyone": any client could then forge its address.
  HOOKLINE_TRUST_PROXY: z
    .string()
    .transform((v) => v.split(',').map((s) => s.trim()).filter(Boolean))
    .pipe(z.array(z.union([z.ipv4(), z.ipv6(), z.cidrv4(), z.cidrv6(), z.enum(['loopback', 'linklocal', 'uniquelocal'])], {
      error: 'each entry must be an IP, a CIDR, loopback, linklocal or uniquelocal',
    })).min(1))
    .optional(),
  // `hookline listen`: how long a disconnected listen session keeps its endpoint (and its
  // deliveries keep retrying) before the API removes it; reconnecting with the same session
  // within it resumes. An hour covers a laptop lid closed over lunch.
  HOOKLINE_LISTEN_GRACE_MS: positiveInt.default(60 * 60 * 1000),
  // SIGTERM on a worker: it stops polling and waits for in-flight tasks; after this grace the SDK
  // cancels activities still running. The delivery activity finishes its POST either way today
  // (bounded by HOOKLINE_REQUEST_TIMEOUT_MS), but an attempt that honoured cancellation would be
  // cut off and sent again by another worker: the grace sits above the 15 s request timeout so
  // that never happens. systemd's TimeoutStopSec and compose's stop_grace_period sit above it.
  HOOKLINE_WORKER_SHUTDOWN_GRACE_MS: positiveInt.default(30_000),
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
