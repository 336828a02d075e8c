// The `hookline` command: one entry point, one subcommand per role.
//   hookline dev                 everything, with embedded Postgres and Temporal (npm start)
//   hookline api|worker|relay    one production role; DATABASE_URL and TEMPORAL_ADDRESS required
//                                (the worker runs the relay too unless HOOKLINE_WORKER_RELAY=false)
//   hookline migrate             apply database migrations and exit
//   hookline dead-letters …      list dead letters through the API
//   hookline replay …            replay one delivery or every matching dead letter
//   hookline receiver …          an example receiver that verifies and prints deliveries
//   hookline listen …            receive an endpoint's deliveries on localhost, no tunnel
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig, type Config } from '../config';
import { createPool, type Pool } from '../db/pool';
import { migrate } from '../db/migrate';
import type { HooklineClient } from '../client';

const USAGE = `usage: hookline <command> [options]

commands:
  dev                          run API, worker (with the relay), Postgres and Temporal together
  api | worker | relay         run one role (needs DATABASE_URL and TEMPORAL_ADDRESS); the worker
                               also relays the outbox unless HOOKLINE_WORKER_RELAY=false, which
                               is for running relay processes apart
  migrate                      apply database migrations
  reencrypt                    after an encryption key rotation: re-encrypt stored secrets and
                               payloads with the newest key of HOOKLINE_ENCRYPTION_KEY
  dead-letters [--tenant ID] [--endpoint ID] [--type TYPE] [--since ISO]
                               list dead letters (of the tenant; default: the default tenant)
  replay [--tenant ID] EVENT_ID ENDPOINT_ID
                               replay one delivery
  replay --all [--tenant ID] [--endpoint ID] [--type TYPE] [--since ISO]
                               replay every matching dead letter
  receiver --secret whsec_…|whpk_…[,…] [--port 4000]
                               example receiver: verify and print deliveries
  listen --forward-to URL [--events LIST] [--api URL] [--session ID] [--key KEY]
                               webhooks to localhost: receive deliveries over a connection
                               to the API and re-POST them to URL (see README)

The API-talking commands use HOOKLINE_URL (default http://HOST:PORT) and HOOKLINE_API_KEY.`;

/** The typed client (src/client) for the API-talking commands, with the configured key. */
function apiClient(config: Config): { hookline: HooklineClient; ok: typeof import('../client').ok } {
  const { createHooklineClient, ok } = require('../client') as typeof import('../client');
  const baseUrl = process.env.HOOKLINE_URL ?? `http://${config.HOST}:${config.PORT}`;
  return { hookline: createHooklineClient({ baseUrl, token: config.HOOKLINE_API_KEY }), ok };
}

type Command = (config: Config, args: string[]) => Promise<void>;

// require(), not import(): `npm start` runs under tsx's CommonJS hook alone (no ESM loader
// thread, ~27 MiB less per process), which resolves require('./x') to x.ts but not import().
// Loaded per command, so a role does not load the others' dependencies.
const COMMANDS: Record<string, Command> = {
  dev: (config) => (require('./dev') as typeof import('./dev')).runDev(config),
  api: (config) => (require('../api/server') as typeof import('../api/server')).runApi(config),
  relay: (config) => (require('../relay/run') as typeof import('../relay/run')).runRelay(config),
  worker: (config) => (require('../worker/worker') as typeof import('../worker/worker')).runWorker(config),
  migrate: runMigrate,
  reencrypt: runReencrypt,
  'dead-letters': listDeadLetters,
  replay: runReplay,
  receiver: runReceiver,
};

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  if (!command || command === '--help' || command === 'help') {
    console.log(USAGE);
    return;
  }
  // Before loadConfig: a client on a laptop needs none of the server's settings.
  if (command === 'listen') return (require('./listen') as typeof import('./listen')).runListen(rest);
  const config = loadConfig();
  const run = Object.hasOwn(COMMANDS, command) ? COMMANDS[command] : null;
  if (!run) throw new Error(`unknown command "${command}"\n\n${USAGE}`);
  return run(config, rest);
}

/** A one-connection pool for the commands that work on the database and exit. */
async function withDatabase(command: string, config: Config, fn: (pool: Pool) => Promise<void>): Promise<void> {
  if (!config.DATABASE_URL) throw new Error(`hookline ${command} needs DATABASE_URL`);
  const pool = createPool(config.DATABASE_URL, 1);
  try {
    await fn(pool);
  } finally {
    await pool.end();
  }
}

async function runMigrate(config: Config): Promise<void> {
  await withDatabase('migrate', config, async (pool) => {
    const applied = await migrate(pool);
    console.log(applied.length ? `applied ${applied.join(', ')}` : 'database is up to date');
  });
}

async function runReencrypt(config: Config): Promise<void> {
  const { reencryptAll } = await import('../at-rest-start');
  await withDatabase('reencrypt', config, async (pool) => {
    await migrate(pool);
    const r = await reencryptAll(pool, config);
    console.log(`re-encrypted ${r.secrets} secret(s), ${r.payloads} payload(s) and ${r.responseBodies} response bod(ies) with key ${r.keyId}; older keys can now be removed`);
  });
}

async function listDeadLetters(config: Config, args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { tenant: { type: 'string' }, endpoint: { type: 'string' }, type: { type: 'string' }, since: { type: 'string' } } });
  const { hookline, ok } = apiClient(config);
  const tenantId = values.tenant;
  let cursor: string | undefined;
  do {
    const query = { endpointId: values.endpoint, eventType: values.type, since: values.since, cursor };
    const page = await ok(
      tenantId
        ? hookline.GET('/v1/tenants/{tenantId}/dead-letters', { params: { path: { tenantId }, query } })
        : hookline.GET('/v1/dead-letters', { params: { query } }),
    );
    for (const d of page.data) {
      console.log(`${d.deadLetteredAt}  ${d.eventId}  ${d.endpointId}  ${d.eventType}  attempts=${d.attempts}  ${d.reason ?? ''}`);
    }
    cursor = page.nextCursor ?? undefined;
  } while (cursor);
}

async function runReplay(config: Config, args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { all: { type: 'boolean' }, tenant: { type: 'string' }, endpoint: { type: 'string' }, type: { type: 'string' }, since: { type: 'string' } },
  });
  const { hookline, ok } = apiClient(config);
  const tenantId = values.tenant;
  if (values.all) return replayAllDeadLetters(hookline, ok, tenantId, values);
  const [eventId, endpointId] = positionals;
  if (!eventId || !endpointId) throw new Error('usage: hookline replay EVENT_ID ENDPOINT_ID, or hookline replay --all');
  await ok(
    tenantId
      ? hookline.POST('/v1/tenants/{tenantId}/deliveries/{eventId}/{endpointId}/replay', { params: { path: { tenantId, eventId, endpointId } } })
      : hookline.POST('/v1/deliveries/{eventId}/{endpointId}/replay', { params: { path: { eventId, endpointId } } }),
  );
  console.log(`replaying ${eventId} → ${endpointId}`);
}

/** The API replays one bounded batch per request; nextCursor says where the next starts. */
async function replayAllDeadLetters(
  hookline: HooklineClient,
  ok: typeof import('../client').ok,
  tenantId: string | undefined,
  filter: { endpoint?: string; type?: string; since?: string },
): Promise<void> {
  let replayed = 0;
  let cursor: string | undefined;
  do {
    const body = { endpointId: filter.endpoint, eventType: filter.type, since: filter.since, ...(cursor ? { cursor } : {}) };
    const r = await ok(
      tenantId
        ? hookline.POST('/v1/tenants/{tenantId}/dead-letters/replay', { params: { path: { tenantId } }, body })
        : hookline.POST('/v1/dead-letters/replay', { body }),
    );
    replayed += r.replayed;
    cursor = r.nextCursor ?? undefined;
    if (cursor) console.log(`replayed ${replayed} so far, ${r.remaining} to go`);
  } while (cursor);
  console.log(`replayed ${replayed} dead letter(s)`);
}

async function runReceiver(_config: Config, args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { secret: { type: 'string' }, port: { type: 'string', default: '4000' }, host: { type: 'string', default: '127.0.0.1' } } });
  const secret = values.secret ?? process.env.HOOKLINE_RECEIVER_SECRET;
  if (!secret) throw new Error('hookline receiver needs --secret whsec_… (or HOOKLINE_RECEIVER_SECRET)');
  const { startExampleReceiver } = require('../receiver/example') as typeof import('../receiver/example');
  // Several keys (a rotation, or whsec_ and whpk_ while an endpoint changes scheme) are
  // comma-separated: base64 has no comma.
  const keys = secret.split(',').map((k) => k.trim()).filter((k) => k !== '');
  const r = await startExampleReceiver({ secret: keys, port: Number(values.port), host: values.host });
  console.log(`receiver listening on ${r.url}`);
}

main(process.argv.slice(2)).catch((err) => {
  console.error(err instanceof ConfigError ? err.message : `hookline: ${err instanceof Error ? err.message : err}`);
  process.exit(1);
});
