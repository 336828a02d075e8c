// `hookline dev` (what `npm start` runs): Postgres and Temporal (embedded unless DATABASE_URL /
// TEMPORAL_ADDRESS are set), migrations, then the api and worker roles as child processes (the
// worker runs the relay too; a separate relay role only with HOOKLINE_WORKER_RELAY=false),
// restarted when they crash. Ctrl-C (SIGINT) or SIGTERM stops the roles, then Temporal, then
// Postgres, and exits 0. No child outlives this process, however it ends (see guardChild).
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { checkExposure } from '../api/access';
import type { Config } from '../config';
import { startEmbeddedPostgres } from '../dev/embedded-postgres';
import { migrate } from '../db/migrate';
import { ensureDevEncryptionKey } from '../at-rest-start';
import { createPool } from '../db/pool';
import { findTemporalCli } from '../dev/temporal-cli';
import { findFreePort, guardChild, terminateChild } from '../dev/processes';
import { ensureSearchAttributes, startDevServer } from '../dev/temporal-dev-server';

export type Role = 'api' | 'relay' | 'worker';

export interface RunDevOptions {
  /** The `hookline` entry that dispatches roles; default src/cli/main.ts (main.js when compiled). */
  entry?: string;
  /** Which roles to run; default api and worker (with the relay in it), see defaultRoles. */
  roles?: Role[];
  /** Where output lines go; default stdout. */
  out?: (line: string) => void;
  /** Call process.exit() once stopped (0 after a signal, 1 after a fatal error); default true. */
  exitProcess?: boolean;
  /** Resolves to stop, as a signal would (for tests and embedding). */
  stopWhen?: Promise<unknown>;
  /** Repo root holding .tools/ (the Temporal CLI); default the directory above src/. */
  repoRoot?: string;
}

/**
 * The worker runs the relay loop itself (HOOKLINE_WORKER_RELAY, default on): its starts are eager,
 * and one process fewer is ~150 MiB less. Turned off, the relay is its own role again.
 */
export function defaultRoles(config: Pick<Config, 'HOOKLINE_WORKER_RELAY'>): Role[] {
  return config.HOOKLINE_WORKER_RELAY ? ['api', 'worker'] : ['api', 'relay', 'worker'];
}
const CHILD_GRACE_MS = 10_000;
const RESTART_MIN_MS = 1_000;
const RESTART_MAX_MS = 30_000;
/** A child that ran this long before crashing restarts after the minimum backoff again. */
const STABLE_AFTER_MS = 30_000;

const COLORS: Record<string, number> = { dev: 1, postgres: 34, temporal: 35, api: 32, relay: 36, worker: 33 };

function makePrefixer(out: (line: string) => void) {
  const color = Boolean(process.stdout.isTTY) && !process.env.NO_COLOR;
  const width = Math.max(...Object.keys(COLORS).map((k) => k.length));
  return (name: string) => {
    const label = name.padEnd(width);
    const prefix = color ? `\x1b[${COLORS[name] ?? 0}m${label} |\x1b[0m ` : `${label} | `;
    return (line: string) => out(prefix + line);
  };
}

function defaultEntry(): string {
  const candidates = [path.join(__dirname, 'main.ts'), path.join(__dirname, 'main.js')];
  return candidates.find((c) => existsSync(c)) ?? candidates[0];
}

/**
 * Node flags for a role: this process's, minus debugger flags (children would fight over the
 * inspector port), its young-generation size and tsx's loaders; a TypeScript entry gets
 * tsx-hook.cjs (tsx's CommonJS hook alone). tsx's ESM loader (`--import tsx`, or the tsx CLI) runs
 * module hooks on a separate loader thread, a whole V8 isolate (~27 MiB RSS) per process;
 * Hookline is CommonJS and needs none.
 */
const TSX_HOOK = path.join(__dirname, 'tsx-hook.cjs');

export function roleNodeArgs(entry: string, execArgv = process.execArgv): string[] {
  const out: string[] = [];
  for (let i = 0; i < execArgv.length; i++) {
    const arg = execArgv[i];
    if (/^--(inspect|debug)(-brk|-port|-wait)?(=|$)/.test(arg)) continue;
    // The supervisor's own young-generation size (package.json); roles get ROLE_V8_FLAGS.
    if (/^--max-semi-space-size(=|$)/.test(arg)) {
      if (!arg.includes('=')) i++;
      continue;
    }
    // `--import tsx`, `--require …/tsx/dist/preflight.cjs`, `--import=file://…/tsx/dist/loader.mjs`
    const value = /^--(import|require|loader|experimental-loader)(=|$)/.test(arg) ? (arg.includes('=') ? arg.slice(arg.indexOf('=') + 1) : execArgv[i + 1]) : null;
    if (value !== null && /(^|[\\/])tsx([\\/]|$)|tsx-hook\.cjs$/.test(value)) {
      if (!arg.includes('=')) i++;
      continue;
    }
    out.push(arg);
  }
  if (entry.endsWith('.ts')) out.push('--require', TSX_HOOK);
  return out;
}

/**
 * V8's young generation per role. Node's default lets each semi-space grow to 16 MiB, which a
 * busy process fills and keeps (tens of MiB of RSS each); a smaller one costs more frequent,
 * still cheap, scavenges. Measured: the API under 2,000 submissions peaked at 153 MiB by
 * default, 123 MiB with 2. The worker, the hot path, keeps more room. Its old-space limit also
 * sizes the SDK's default workflow cache (maxCachedWorkflows ≈ (limit − 200 MiB) × 0.6 per MiB):
 * Node's ~4 GiB default on this machine means ~2,300 cached workflows, so a burst keeps growing
 * the worker; 384 MiB bounds it at ~115 (workflows waiting for a gate slot past that are evicted
 * and replay their short history when signalled) and is still several times the ~50–75 MiB the
 * worker's main heap uses during npm run bench:memory's burst (its workflow thread: ~30–45).
 */
const ROLE_V8_FLAGS: Record<Role, string[]> = {
  // Their heaps hold tens of MiB; a 256 MiB ceiling makes V8 collect before it grows toward it.
  api: ['--max-semi-space-size=2', '--max-old-space-size=256'],
  relay: ['--max-semi-space-size=2', '--max-old-space-size=256'],
  worker: ['--max-semi-space-size=4', '--max-old-space-size=384'],
};

class SupervisedRole {
  private child: ChildProcess | null = null;
  private stopping = false;
  private backoff = RESTART_MIN_MS;
  private restartTimer: NodeJS.Timeout | null = null;
  private startedAt = 0;

  constructor(
    readonly role: Role,
    private readonly entry: string,
    private readonly env: NodeJS.ProcessEnv,
    private readonly print: (line: string) => void,
    private readonly say: (line: string) => void,
  ) {}

  start(): void {
    if (this.stopping) return;
    this.startedAt = Date.now();
    const child = spawn(process.execPath, [...roleNodeArgs(this.entry), ...ROLE_V8_FLAGS[this.role], this.entry, this.role], {
      env: this.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      // Own process group: Ctrl-C reaches only the supervisor, which stops roles in order.
      detached: true,
    });
    this.child = child;
    guardChild(child, { group: true, graceMs: CHILD_GRACE_MS });
    for (const stream of [child.stdout!, child.stderr!]) {
      readline.createInterface({ input: stream, crlfDelay: Infinity }).on('line', this.print);
    }
    let handled = false;
    const onEnd = (why: string) => {
      if (handled) return;
      handled = true;
      if (this.child === child) this.child = null;
      if (this.stopping) return;
      if (Date.now() - this.startedAt > STABLE_AFTER_MS) this.backoff = RESTART_MIN_MS;
      this.say(`${this.role} ${why}; restarting in ${this.backoff / 1000} s`);
      this.restartTimer = setTimeout(() => {
        this.restartTimer = null;
        this.start();
      }, this.backoff);
      this.backoff = Math.min(this.backoff * 2, RESTART_MAX_MS);
    };
    child.on('error', (err) => onEnd(`could not be started (${err.message})`));
    child.on('exit', (code, signal) => onEnd(`exited (${signal ?? `exit code ${code}`})`));
  }

  async stop(): Promise<void> {
    this.stopping = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.restartTimer = null;
    if (this.child) await terminateChild(this.child, { group: true, graceMs: CHILD_GRACE_MS });
  }
}

/**
 * Bundles the workflow code in a short-lived child process; resolves to the bundle's path, or
 * null (the worker then bundles for itself) if that failed.
 */
async function bundleWorkflows(entry: string, dataDir: string, say: (line: string) => void): Promise<string | null> {
  const script = path.join(path.dirname(entry), `bundle-workflows${path.extname(entry)}`);
  const out = path.resolve(dataDir, 'workflow-bundle.js');
  const started = Date.now();
  const child = spawn(process.execPath, [...roleNodeArgs(script), script, out], { stdio: ['ignore', 'ignore', 'pipe'] });
  guardChild(child, { group: false, graceMs: CHILD_GRACE_MS });
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const code = await new Promise<number | null>((resolve) => {
    child.once('error', () => resolve(null));
    child.once('exit', (c) => resolve(c));
  });
  if (code === 0) {
    say(`workflow code bundled in ${Date.now() - started} ms`);
    return out;
  }
  say(`warning: could not bundle the workflow code ahead (${stderr.trim().split('\n').pop() ?? `exit ${code}`}); the worker bundles it itself`);
  return null;
}

async function waitForHttp(url: string, timeoutMs: number, cancelled: () => boolean): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && !cancelled()) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
      if (res.ok) return true;
    } catch {
      /* not up yet */
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  return false;
}

/**
 * Where dev deliveries may go unless the user said otherwise: a receiver on this machine is the
 * point of dev; the rest of the private space (and cloud metadata at 169.254.169.254) is not.
 */
export function devTargetDefaults(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  // HOOKLINE_ALLOW_PRIVATE_TARGETS=true still widens this to `private` (see address-policy).
  return env.HOOKLINE_ALLOWED_TARGETS ? {} : { HOOKLINE_ALLOWED_TARGETS: 'loopback' };
}

function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return url;
  }
}

export async function runDev(config: Config, opts: RunDevOptions = {}): Promise<void> {
  const session = new DevSession(opts.out ?? ((line: string) => process.stdout.write(`${line}\n`)));
  const roles = opts.roles ?? defaultRoles(config);
  const entry = opts.entry ?? defaultEntry();
  // Refuse an unauthenticated non-loopback API before starting anything else.
  if (roles.includes('api')) for (const warning of checkExposure(config)) session.say(warning);
  session.listenForStop(opts.stopWhen);

  let startupError: unknown = null;
  try {
    mkdirSync(config.dataDir, { recursive: true });
    const postgres = await startPostgres(config, session);
    const temporal = await startTemporal(config, session, opts.repoRoot ?? path.resolve(__dirname, '..', '..'));
    await applyMigrations(postgres.url, session);
    const env = roleEnv(postgres.url, temporal, devEncryptionKey(config, session.say));
    await superviseRoles(session, roles, entry, env, config.dataDir);
    void announceWhenUp(config, session, roles, postgres, temporal);
    await session.stopRequested;
  } catch (err) {
    if (!(err instanceof StopDuringStartup)) startupError = err;
  }
  await session.shutDown();

  if (startupError) throw startupError; // main.ts prints it and exits 1; everything is stopped
  const code = session.stopReason?.code ?? 0;
  session.say(code === 0 ? 'stopped' : 'stopped after an error');
  if (opts.exitProcess ?? true) process.exit(code);
  if (code !== 0) throw new Error(session.stopReason?.why ?? 'hookline dev failed');
}

class StopDuringStartup extends Error {}

const STOP_SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

/**
 * What runDev's steps share: the prefixed output, everything started so far (stopped in reverse
 * order: roles, then Temporal, then Postgres), and the one stop request, from a signal, the
 * caller, or a service that died.
 */
class DevSession {
  readonly prefixed: (name: string) => (line: string) => void;
  readonly say: (line: string) => void;
  stopReason: { code: number; why: string } | null = null;
  readonly stopRequested: Promise<void>;
  private readonly stack: Array<{ name: string; stop: () => Promise<void> }> = [];
  private shuttingDown = false; // set once the stack is being stopped, so exits are not "unexpected"
  private wake: () => void = () => {};
  private readonly onSignal = (signal: NodeJS.Signals) => this.requestStop(0, `${signal} received`);

  constructor(out: (line: string) => void) {
    this.prefixed = makePrefixer(out);
    this.say = this.prefixed('dev');
    this.stopRequested = new Promise<void>((resolve) => (this.wake = resolve));
  }

  listenForStop(stopWhen?: Promise<unknown>): void {
    for (const s of STOP_SIGNALS) process.on(s, this.onSignal);
    void stopWhen?.then(() => this.requestStop(0, 'stop requested'));
  }

  requestStop(code: number, why: string): void {
    if (this.stopReason) {
      this.say(`${why} (already stopping)`);
      return;
    }
    this.stopReason = { code, why };
    this.say(`${why}; stopping…`);
    this.wake();
  }

  /** Stops the whole session when a service it started dies on its own. */
  started(name: string, stop: () => Promise<void>, exited?: Promise<unknown>, what = name): void {
    this.stack.push({ name, stop });
    void exited?.then(() => {
      if (!this.stopReason && !this.shuttingDown) this.requestStop(1, `${what} exited unexpectedly`);
    });
  }

  /** Throws if a stop was requested while an await was pending, so startup unwinds. */
  checkpoint(): void {
    if (this.stopReason) throw new StopDuringStartup();
  }

  /** Shuts down in reverse order of start; a failing step is reported and the rest still stop. */
  async shutDown(): Promise<void> {
    this.shuttingDown = true;
    for (const item of this.stack.reverse()) {
      try {
        await item.stop();
      } catch (err) {
        this.say(`stopping ${item.name} failed: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    for (const s of STOP_SIGNALS) process.removeListener(s, this.onSignal);
  }
}

interface DevPostgres {
  url: string;
  /** Shown after the URL: where the embedded cluster keeps its data; '' for DATABASE_URL. */
  note: string;
}

async function startPostgres(config: Config, session: DevSession): Promise<DevPostgres> {
  if (config.DATABASE_URL) return { url: config.DATABASE_URL, note: '' };
  const pgDir = path.join(config.dataDir, 'pg');
  const started = Date.now();
  const pg = await startEmbeddedPostgres({ dataDir: pgDir, log: session.prefixed('postgres') });
  session.started('Postgres', pg.stop, pg.exited, 'embedded Postgres');
  session.say(`Postgres up in ${Date.now() - started} ms on port ${pg.port}`);
  session.checkpoint();
  return { url: pg.url, note: ` (embedded, data in ${pgDir})` };
}

interface DevTemporal {
  address: string;
  /** The dev server's Web UI; null for a server TEMPORAL_ADDRESS names. */
  uiUrl: string | null;
}

async function startTemporal(config: Config, session: DevSession, repoRoot: string): Promise<DevTemporal> {
  if (config.TEMPORAL_ADDRESS) {
    await checkSearchAttributes(config.TEMPORAL_ADDRESS, config.TEMPORAL_NAMESPACE, session.say);
    session.checkpoint();
    return { address: config.TEMPORAL_ADDRESS, uiUrl: null };
  }
  const cliPath = await findTemporalCli({ toolsDir: path.join(repoRoot, '.tools'), log: session.say });
  session.checkpoint();
  const port = config.TEMPORAL_DEV_PORT || (await findFreePort());
  const started = Date.now();
  const server = await startDevServer({
    cliPath,
    port,
    uiPort: port + 1000,
    dbFile: path.join(config.dataDir, 'temporal.db'),
    // WAL roughly doubles the dev server's throughput (bench: 13.8 → 25.6 events/s). It can
    // lose the last commits on an OS crash or power loss, never on a process kill.
    sqlitePragmas: { journal_mode: 'WAL', synchronous: 'NORMAL' },
    namespace: config.TEMPORAL_NAMESPACE,
    log: session.prefixed('temporal'),
  }).catch((err: Error) => {
    if (/already in use/.test(err.message)) {
      err.message += '\nSet TEMPORAL_DEV_PORT to another port (the Web UI uses it + 1000), or TEMPORAL_ADDRESS to use that server.';
    }
    throw err;
  });
  session.started('Temporal', server.stop, server.exited, 'Temporal dev server');
  session.say(`Temporal dev server up in ${Date.now() - started} ms`);
  session.checkpoint();
  return { address: server.address, uiUrl: server.uiUrl };
}

/** A server of the user's: register what is missing, but a failure only costs the Web UI filters. */
async function checkSearchAttributes(address: string, namespace: string, say: (line: string) => void): Promise<void> {
  try {
    const added = await ensureSearchAttributes(address, namespace);
    if (added.length) say(`registered search attributes ${added.join(', ')} on ${address}`);
  } catch (err) {
    say(
      `warning: could not check the search attributes on ${address} ` +
        `(${err instanceof Error ? err.message : String(err)}); the Web UI filters may not work`,
    );
  }
}

async function applyMigrations(databaseUrl: string, session: DevSession): Promise<void> {
  const pool = createPool(databaseUrl, 1);
  try {
    const applied = await migrate(pool);
    session.say(applied.length ? `applied migrations ${applied.join(', ')}` : 'database schema is up to date');
  } finally {
    await pool.end().catch(() => {});
  }
  session.checkpoint();
}

/**
 * Endpoint secrets are encrypted at rest; without a key of the user's, one is made in the data
 * dir on first start and handed to every role.
 */
function devEncryptionKey(config: Config, say: (line: string) => void): string {
  if (config.HOOKLINE_ENCRYPTION_KEY) return config.HOOKLINE_ENCRYPTION_KEY;
  const made = ensureDevEncryptionKey(config.dataDir);
  if (made.created) say(`made an encryption key for endpoint secrets in ${made.file} (keep it with the data)`);
  return made.key;
}

/** The roles' environment: this process's, plus the services this session found or started. */
function roleEnv(databaseUrl: string, temporal: DevTemporal, encryptionKey: string): NodeJS.ProcessEnv {
  return {
    // glibc gives each thread that allocates its own malloc arena (up to 8 per core), each
    // keeping its freed pages; the worker has many (the SDK's Rust core runtime, the workflow
    // thread, libuv's pool). Two arenas: npm run bench:memory's worker peak 313 → 260 MiB at
    // the same throughput. The user's own MALLOC_ARENA_MAX wins.
    MALLOC_ARENA_MAX: '2',
    ...process.env,
    DATABASE_URL: databaseUrl,
    TEMPORAL_ADDRESS: temporal.address,
    HOOKLINE_ENCRYPTION_KEY: encryptionKey,
    ...devTargetDefaults(process.env),
    // The roles' stdout is a pipe to us: tell them to print readable lines when ours is a terminal.
    ...(!process.env.HOOKLINE_LOG_FORMAT && process.stdout.isTTY ? { HOOKLINE_LOG_FORMAT: 'pretty' } : {}),
    // The operator console links deliveries to this Web UI (its port may not be TEMPORAL_DEV_PORT + 1000).
    ...(temporal.uiUrl && !process.env.HOOKLINE_TEMPORAL_UI_URL ? { HOOKLINE_TEMPORAL_UI_URL: temporal.uiUrl } : {}),
  };
}

async function superviseRoles(session: DevSession, roles: Role[], entry: string, env: NodeJS.ProcessEnv, dataDir: string): Promise<void> {
  const supervised: SupervisedRole[] = [];
  session.started('roles', async () => void (await Promise.all(supervised.map((s) => s.stop()))));
  const supervise = (role: Role, extraEnv: NodeJS.ProcessEnv = {}) => {
    const s = new SupervisedRole(role, entry, { ...env, ...extraEnv }, session.prefixed(role), session.say);
    supervised.push(s);
    s.start();
  };
  for (const role of roles) if (role !== 'worker') supervise(role);
  if (roles.includes('worker')) {
    // While the other roles start: the worker gets a ready workflow bundle (see bundle-workflows.ts).
    const bundle = process.env.HOOKLINE_WORKFLOW_BUNDLE ? null : await bundleWorkflows(entry, dataDir, session.say);
    session.checkpoint();
    supervise('worker', bundle ? { HOOKLINE_WORKFLOW_BUNDLE: bundle } : {});
  }
}

/** Tells the user where things are once the API answers. */
async function announceWhenUp(config: Config, session: DevSession, roles: Role[], postgres: DevPostgres, temporal: DevTemporal): Promise<void> {
  const probeHost = ['0.0.0.0', '::', ''].includes(config.HOST) ? '127.0.0.1' : config.HOST;
  const hostForUrl = probeHost.includes(':') ? `[${probeHost}]` : probeHost;
  const apiUrl = `http://${hostForUrl}:${config.PORT}`;
  const up = roles.includes('api') ? await waitForHttp(`${apiUrl}/healthz`, 60_000, () => session.stopReason !== null) : false;
  if (session.stopReason) return;
  const { uiUrl } = temporal;
  const lines = [
    'Hookline is running',
    `  API:             ${apiUrl}${roles.includes('api') ? (up ? `   (OpenAPI docs: ${apiUrl}/docs)` : '   (not answering yet)') : '   (api role not started)'}`,
    ...(roles.includes('api') ? [`  Console:         ${apiUrl}/ui`] : []),
    ...(uiUrl ? [`  Temporal Web UI: ${uiUrl}/namespaces/${encodeURIComponent(config.TEMPORAL_NAMESPACE)}/workflows`] : []),
    `  Temporal:        ${temporal.address}${uiUrl ? '' : ' (external)'}, namespace ${config.TEMPORAL_NAMESPACE}, ` +
      `task queue ${config.TEMPORAL_TASK_QUEUE}`,
    `  Postgres:        ${redactUrl(postgres.url)}${postgres.note}`,
    'Press Ctrl-C to stop.',
  ];
  for (const line of lines) session.say(line);
}
