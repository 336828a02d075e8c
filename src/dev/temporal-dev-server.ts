// Runs `temporal server start-dev` as a child process (for `hookline dev` and the test suite) and
// registers Hookline's custom search attributes on it, or on any server TEMPORAL_ADDRESS names.
//
// CLI quirk (v1.5.1): `--search-attribute` flags only take effect when the SQLite file is new;
// on a restart against an existing --db-filename the missing ones are silently ignored. So the
// flags are passed (a fresh in-memory server has them at once) and the same CLI then adds whatever
// is still missing (`temporal operator search-attribute create`); ensureSearchAttributes() does it
// through the SDK for a server TEMPORAL_ADDRESS names.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
// Type only: the SDK client (grpc-js and every Temporal proto, ~35 MiB RSS that is never given
// back) loads only for a server TEMPORAL_ADDRESS names; `hookline dev`'s supervisor runs for as
// long as Hookline does and asks its own dev server through the CLI instead.
import type { Connection } from '@temporalio/client';
import { SEARCH_ATTRIBUTES } from '../search-attributes';
import { assertPortFree, guardChild, terminateChild } from './processes';

export interface DevServerOptions {
  cliPath: string;
  port: number;
  /** Web UI port; default port + 1000. */
  uiPort?: number;
  /** SQLite file for persistent state; absent = in-memory (lost when the server stops). */
  dbFile?: string;
  /** Namespace to create and register the search attributes in; default `default`. */
  namespace?: string;
  /** Receives every line the server prints (stdout and stderr), until stop() is called. */
  log?: (line: string) => void;
  /** Serve the Web UI; default true. */
  ui?: boolean;
  /** How long to wait for the server to answer; default 60 s. */
  startTimeoutMs?: number;
  /** `--sqlite-pragma NAME=VALUE` flags for a dbFile server, e.g. { journal_mode: 'WAL' }. */
  sqlitePragmas?: Record<string, string>;
  /** `--dynamic-config-value KEY=VALUE` flags; default SINGLE_BOX_DYNAMIC_CONFIG. */
  dynamicConfig?: Record<string, string | number | boolean>;
}

/**
 * Dynamic config for a dev server on one box (`hookline dev`, the bench, the tests). One
 * task-queue partition instead of four: with one server process there is nothing to spread
 * over, and four partitions make pollers and tasks miss each other (a task lands in a
 * partition no poller is waiting on and is forwarded or waits), which measured here as
 * 82 → 97 workflows/s for an empty workflow and 54–60 → 79–80 for one local-activity POST.
 */
export const SINGLE_BOX_DYNAMIC_CONFIG: Record<string, number> = {
  'matching.numTaskqueueReadPartitions': 1,
  'matching.numTaskqueueWritePartitions': 1,
};

export interface DevServer {
  /** host:port of the frontend gRPC service. */
  address: string;
  uiUrl: string | null;
  pid: number;
  /** Settles when the server process exits, for whatever reason. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGTERM, then SIGKILL after a grace period. Idempotent. */
  stop(): Promise<void>;
}

const HOST = '127.0.0.1';
const STOP_GRACE_MS = 10_000;

// IndexedValueType from temporal/api/enums/v1/common.proto (avoids a direct @temporalio/proto dependency).
const INDEXED_VALUE_TYPE: Record<'Keyword' | 'KeywordList', number> = { Keyword: 2, KeywordList: 7 };
const GRPC_ALREADY_EXISTS = 6;

// ---------------------------------------------------------------------------------------------
// Search attributes

/**
 * Registers Hookline's search attributes (SEARCH_ATTRIBUTES) in `namespace` where missing, and
 * waits until the server lists them. Idempotent and safe to race: ALREADY_EXISTS is success.
 * Throws if one exists with another type. Returns the names it added.
 */
export async function ensureSearchAttributes(
  address: string,
  namespace: string,
  opts: { connection?: Connection; timeoutMs?: number } = {},
): Promise<string[]> {
  const { Connection } = require('@temporalio/client') as typeof import('@temporalio/client');
  const connection = opts.connection ?? (await Connection.connect({ address, connectTimeout: '10s' }));
  const deadline = Date.now() + (opts.timeoutMs ?? 30_000);
  const added: string[] = [];
  try {
    const missing = async (): Promise<string[]> => {
      const res = await connection.withDeadline(Date.now() + 10_000, () =>
        connection.operatorService.listSearchAttributes({ namespace }),
      );
      const present: Record<string, unknown> = { ...(res.customAttributes ?? {}), ...(res.systemAttributes ?? {}) };
      const out: string[] = [];
      for (const [name, type] of Object.entries(SEARCH_ATTRIBUTES)) {
        const have = present[name];
        if (have === undefined || have === null) out.push(name);
        else if (Number(have) !== INDEXED_VALUE_TYPE[type]) {
          throw new Error(
            `search attribute ${name} already exists in namespace ${namespace} with another type ` +
              `(IndexedValueType ${String(have)}; Hookline needs ${type}). Remove it or use another namespace.`,
          );
        }
      }
      return out;
    };

    let todo = await missing();
    while (todo.length > 0) {
      try {
        await connection.withDeadline(Date.now() + 10_000, () =>
          connection.operatorService.addSearchAttributes({
            namespace,
            searchAttributes: Object.fromEntries(todo.map((n) => [n, INDEXED_VALUE_TYPE[SEARCH_ATTRIBUTES[n]]])),
          }),
        );
        for (const n of todo) if (!added.includes(n)) added.push(n);
      } catch (err) {
        // Someone else (another process, the CLI flags) registered one of them meanwhile.
        if ((err as { code?: number }).code !== GRPC_ALREADY_EXISTS) throw err;
      }
      todo = await missing();
      if (todo.length === 0) break;
      if (Date.now() > deadline) {
        throw new Error(`search attributes ${todo.join(', ')} still missing in namespace ${namespace} on ${address}`);
      }
      await sleep(250);
    }
    return added;
  } finally {
    if (!opts.connection) await connection.close().catch(() => {});
  }
}

// The same through the Temporal CLI (a Go process, nothing kept in ours), for the dev server
// this module starts: the CLI is at hand there.

const CLI_INDEXED_VALUE_TYPE: Record<'Keyword' | 'KeywordList', string> = {
  Keyword: 'INDEXED_VALUE_TYPE_KEYWORD',
  KeywordList: 'INDEXED_VALUE_TYPE_KEYWORD_LIST',
};

function runCli(cliPath: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cliPath, args, { timeout: 10_000, maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${path.basename(cliPath)} ${args.slice(0, 3).join(' ')}: ${stderr.trim().split('\n').pop() || err.message}`));
      else resolve(stdout);
    });
  });
}

const cliTarget = (address: string, namespace: string) => ['--address', address, '--namespace', namespace, '--client-connect-timeout', '2s'];

/** Hookline's search attributes that `namespace` lacks; throws if one exists with another type. */
async function missingSearchAttributesViaCli(cliPath: string, address: string, namespace: string): Promise<string[]> {
  const out = await runCli(cliPath, ['operator', 'search-attribute', 'list', ...cliTarget(address, namespace), '-o', 'json']);
  const res = JSON.parse(out) as { customAttributes?: Record<string, string>; systemAttributes?: Record<string, string> };
  const present: Record<string, string> = { ...res.customAttributes, ...res.systemAttributes };
  const missing: string[] = [];
  for (const [name, type] of Object.entries(SEARCH_ATTRIBUTES)) {
    const have = present[name];
    if (have === undefined) missing.push(name);
    else if (have !== CLI_INDEXED_VALUE_TYPE[type]) {
      throw new Error(
        `search attribute ${name} already exists in namespace ${namespace} with another type ` +
          `(${have}; Hookline needs ${type}). Remove it or use another namespace.`,
      );
    }
  }
  return missing;
}

/** `temporal operator search-attribute create`, one call per type (it takes one --type). */
async function addSearchAttributesViaCli(cliPath: string, address: string, namespace: string, names: string[]): Promise<void> {
  for (const type of ['Keyword', 'KeywordList'] as const) {
    const ofType = names.filter((n) => SEARCH_ATTRIBUTES[n] === type);
    if (ofType.length === 0) continue;
    const flags = ofType.flatMap((n) => ['--name', n]);
    await runCli(cliPath, ['operator', 'search-attribute', 'create', ...flags, '--type', type, ...cliTarget(address, namespace)]);
  }
}

// ---------------------------------------------------------------------------------------------
// The dev server

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export async function startDevServer(opts: DevServerOptions): Promise<DevServer> {
  const namespace = opts.namespace ?? 'default';
  const ui = opts.ui ?? true;
  const uiPort = opts.uiPort ?? opts.port + 1000;
  const address = `${HOST}:${opts.port}`;

  await assertPortFree(opts.port, 'Temporal dev server (gRPC)');
  if (ui) await assertPortFree(uiPort, 'Temporal Web UI');
  const server = launch(opts.cliPath, devServerArgs(opts, namespace, ui ? uiPort : null), opts.log ?? (() => {}));
  try {
    await waitUntilReady(server, opts.cliPath, address, namespace, opts.startTimeoutMs ?? 60_000);
  } catch (err) {
    await server.stop();
    throw err;
  }
  server.reportUnexpectedExit();
  return {
    address,
    uiUrl: ui ? `http://${HOST}:${uiPort}` : null,
    pid: server.child.pid!,
    exited: server.exited,
    stop: server.stop,
  };
}

/** `temporal server start-dev …`; uiPort null = headless. */
function devServerArgs(opts: DevServerOptions, namespace: string, uiPort: number | null): string[] {
  const args = ['server', 'start-dev', '--ip', HOST, '--port', String(opts.port)];
  if (uiPort !== null) args.push('--ui-port', String(uiPort));
  else args.push('--headless');
  if (opts.dbFile) {
    mkdirSync(path.dirname(path.resolve(opts.dbFile)), { recursive: true });
    args.push('--db-filename', path.resolve(opts.dbFile));
  }
  for (const [name, value] of Object.entries(opts.sqlitePragmas ?? {})) args.push('--sqlite-pragma', `${name}=${value}`);
  for (const [key, value] of Object.entries(opts.dynamicConfig ?? SINGLE_BOX_DYNAMIC_CONFIG)) {
    args.push('--dynamic-config-value', `${key}=${JSON.stringify(value)}`);
  }
  args.push('--namespace', namespace, '--log-level', 'warn');
  for (const [name, type] of Object.entries(SEARCH_ATTRIBUTES)) args.push('--search-attribute', `${name}=${type}`);
  return args;
}

type ExitInfo = { code: number | null; signal: NodeJS.Signals | null };

/** The running server process as startDevServer watches it. */
interface Launched {
  child: ChildProcess;
  exited: Promise<ExitInfo>;
  /** Why it could not be spawned, if it could not. */
  spawnError(): Error | null;
  /** How it exited, once it has. */
  exit(): ExitInfo | null;
  /** An error naming the command line, with the tail of its stderr. */
  failure(why: string): Error;
  stop(): Promise<void>;
  /** From now on an exit nobody asked for is logged. */
  reportUnexpectedExit(): void;
}

function launch(cliPath: string, args: string[], log: (line: string) => void): Launched {
  const child = spawn(cliPath, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    // Own process group: a Ctrl-C in the terminal goes to us only, and we stop the server in
    // order. guardChild() makes sure it still dies with us.
    detached: true,
  });
  let spawnError: Error | null = null;
  let exit: ExitInfo | null = null;
  child.on('error', (err) => {
    spawnError = err;
  });
  const exited = new Promise<ExitInfo>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
    child.once('error', () => resolve({ code: null, signal: null }));
  });
  void exited.then((e) => {
    exit = e;
  });
  if (child.pid !== undefined) guardChild(child, { group: true, graceMs: STOP_GRACE_MS });

  let stopping = false;
  const stderrTail: string[] = [];
  const forward = (stream: NodeJS.ReadableStream, isErr: boolean) => {
    readline.createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => {
      if (isErr) {
        stderrTail.push(line);
        if (stderrTail.length > 40) stderrTail.shift();
      }
      if (!stopping) log(line);
    });
  };
  forward(child.stdout!, false);
  forward(child.stderr!, true);

  let stopPromise: Promise<void> | null = null;
  return {
    child,
    exited,
    spawnError: () => spawnError,
    exit: () => exit,
    failure: (why) =>
      new Error(
        `Temporal dev server (${cliPath} ${args.join(' ')}) ${why}` +
          (stderrTail.length ? `\n--- its stderr (last lines) ---\n${stderrTail.slice(-20).join('\n')}` : ''),
      ),
    stop: () => {
      stopping = true;
      stopPromise ??= terminateChild(child, { group: true, graceMs: STOP_GRACE_MS });
      return stopPromise;
    },
    reportUnexpectedExit: () => {
      void exited.then(({ code, signal }) => {
        if (!stopping) log(`Temporal dev server exited unexpectedly (${signal ?? `exit code ${code}`})`);
      });
    },
  };
}

/** Waits until the frontend answers for our namespace, then makes sure the search attributes exist. */
async function waitUntilReady(server: Launched, cliPath: string, address: string, namespace: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown = null;
  for (;;) {
    const spawnError = server.spawnError();
    if (spawnError) throw server.failure(`could not be started: ${spawnError.message}`);
    const exit = server.exit();
    if (exit) throw server.failure(`exited before it was ready (${exit.signal ?? `exit code ${exit.code}`})`);
    if (Date.now() > deadline) {
      throw server.failure(
        `did not answer on ${address} within ${Math.round(timeoutMs / 1000)} s` +
          (lastError ? ` (last error: ${(lastError as Error).message})` : ''),
      );
    }
    try {
      // Answers only once the frontend serves our namespace: this is the readiness check too.
      const missing = await missingSearchAttributesViaCli(cliPath, address, namespace);
      if (missing.length === 0) return;
      // Missing on a db file the CLI created without them (see the top of this file). A
      // concurrent creator's ALREADY_EXISTS is fine: the next listing decides.
      await addSearchAttributesViaCli(cliPath, address, namespace, missing).catch((err: unknown) => {
        lastError = err;
      });
    } catch (err) {
      lastError = err;
      if (err instanceof Error && err.message.startsWith('search attribute ')) throw err;
      await sleep(200);
    }
  }
}
