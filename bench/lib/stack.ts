// The parts a bench or chaos run stands up for itself: a fresh Postgres database (dropped at the
// end), a Temporal dev server on a SQLite file in a temp dir (or the server TEMPORAL_ADDRESS
// names), and Hookline's roles as child processes: api and worker, the worker relaying the outbox
// itself (eager starts), or api, relay and worker with HOOKLINE_WORKER_RELAY=false.
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import pg from 'pg';
import { Client, Connection } from '@temporalio/client';
import { loadConfig } from '../../src/config';
import { migrate } from '../../src/db/migrate';
import { createPool } from '../../src/db/pool';
import { findTemporalCli } from '../../src/dev/temporal-cli';
import { findFreePort } from '../../src/dev/processes';
import { ensureSearchAttributes, startDevServer, type DevServer } from '../../src/dev/temporal-dev-server';
import { REPO, sleep, spawnRole, type ChildProc } from './procs';

export const DEFAULT_ADMIN_URL = 'postgres://postgres@127.0.0.1:5432/postgres';

export interface BenchDatabase {
  url: string;
  name: string;
  drop(): Promise<void>;
}

/** CREATE DATABASE <prefix>_<random> on adminUrl's server, migrated. */
export async function createDatabase(adminUrl: string, prefix: string): Promise<BenchDatabase> {
  const name = `${prefix}_${randomBytes(5).toString('hex')}`;
  const admin = async (sql: string) => {
    const c = new pg.Client({ connectionString: adminUrl });
    await c.connect();
    try {
      await c.query(sql);
    } finally {
      await c.end().catch(() => {});
    }
  };
  await admin(`CREATE DATABASE ${name}`);
  const u = new URL(adminUrl);
  u.pathname = `/${name}`;
  const url = u.toString();
  const pool = createPool(url, 1);
  try {
    await migrate(pool);
  } finally {
    await pool.end();
  }
  return { url, name, drop: () => admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`) };
}

export type Pragmas = Record<string, string>;

/** SQLite settings tried for the dev server's file. WAL + NORMAL is what the CLI's own tests use. */
export const PRAGMA_SETS: Record<string, Pragmas> = {
  default: {},
  wal: { journal_mode: 'WAL', synchronous: 'NORMAL' },
};

export interface TemporalHandle {
  address: string;
  /** The dev server we started; null when TEMPORAL_ADDRESS pointed elsewhere. */
  server: DevServer | null;
  dbFile: string | null;
  pragmas: Pragmas;
  port: number | null;
  /** SIGKILL the dev server (whole group). */
  kill(): Promise<void>;
  /** Start it again on the same file, port and pragmas. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export async function startTemporal(o: {
  external?: string;
  dbFile: string;
  pragmas: Pragmas;
  port?: number;
  log?: (line: string) => void;
}): Promise<TemporalHandle> {
  if (o.external) {
    await ensureSearchAttributes(o.external, 'default');
    return {
      address: o.external, server: null, dbFile: null, pragmas: {}, port: null,
      kill: async () => { throw new Error('cannot kill an external Temporal server'); },
      restart: async () => { throw new Error('cannot restart an external Temporal server'); },
      stop: async () => {},
    };
  }
  const cliPath = await findTemporalCli({ toolsDir: path.join(REPO, '.tools'), log: o.log });
  const port = o.port ?? (await findFreePort());
  const start = () =>
    startDevServer({ cliPath, port, ui: false, dbFile: o.dbFile, sqlitePragmas: o.pragmas, log: o.log });
  const handle: TemporalHandle = {
    address: `127.0.0.1:${port}`,
    server: await start(),
    dbFile: o.dbFile,
    pragmas: o.pragmas,
    port,
    async kill() {
      const s = handle.server;
      if (!s) return;
      try {
        process.kill(-s.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
      await s.exited;
      await s.stop(); // disarms its guard
      handle.server = null;
    },
    async restart() {
      // The kernel may hold the port briefly after a kill; startDevServer refuses a busy port.
      for (let attempt = 0; ; attempt++) {
        try {
          handle.server = await start();
          return;
        } catch (err) {
          if (attempt > 20 || !/already in use/.test(String(err))) throw err;
          await sleep(250);
        }
      }
    },
    async stop() {
      await handle.server?.stop();
      handle.server = null;
    },
  };
  return handle;
}

export interface RoleSettings {
  /** Extra environment for all roles (HOOKLINE_WORKER_MAX_ACTIVITIES, HOOKLINE_LOG_LEVEL, …). */
  env?: Record<string, string>;
  apiPort: number;
  /** Roles to run under `node --cpu-prof`, writing into profileDir when they exit. */
  profile?: { roles: string[]; dir: string };
}

/** Hookline's roles as child processes, restartable one by one. */
export class HooklineRoles {
  readonly procs: Partial<Record<'api' | 'relay' | 'worker', ChildProc>> = {};
  /** Workers beyond the first (bench --workers): same task queue, so Temporal spreads the load. */
  readonly extraWorkers: ChildProc[] = [];
  readonly taskQueue: string;
  readonly apiUrl: string;
  private starts = 0;
  // Endpoint secrets are encrypted at rest: every role (and every restart) needs the same key.
  private readonly encryptionKey = process.env.HOOKLINE_ENCRYPTION_KEY || randomBytes(32).toString('base64');

  constructor(
    private readonly o: {
      databaseUrl: string;
      temporalAddress: string;
      logDir: string;
      settings: RoleSettings;
      taskQueue?: string;
    },
  ) {
    this.taskQueue = o.taskQueue ?? `bench-${randomBytes(4).toString('hex')}`;
    this.apiUrl = `http://127.0.0.1:${o.settings.apiPort}`;
  }

  /** The role whose process relays the outbox: the worker (the default), or a relay of its own. */
  get relayRole(): 'relay' | 'worker' {
    return loadConfig(this.env()).HOOKLINE_WORKER_RELAY ? 'worker' : 'relay';
  }

  /** The roles this layout runs, the relaying one first. */
  get roles(): Array<'api' | 'relay' | 'worker'> {
    return this.relayRole === 'worker' ? ['worker', 'api'] : ['worker', 'relay', 'api'];
  }

  env(): NodeJS.ProcessEnv {
    return {
      ...process.env,
      DATABASE_URL: this.o.databaseUrl,
      TEMPORAL_ADDRESS: this.o.temporalAddress,
      TEMPORAL_TASK_QUEUE: this.taskQueue,
      PORT: String(this.o.settings.apiPort),
      HOST: '127.0.0.1',
      HOOKLINE_ALLOW_PRIVATE_TARGETS: 'true',
      HOOKLINE_API_KEY: '',
      HOOKLINE_ENCRYPTION_KEY: this.encryptionKey,
      ...this.o.settings.env,
    };
  }

  start(role: 'api' | 'relay' | 'worker'): ChildProc {
    const file = path.join(this.o.logDir, `${role}-${++this.starts}.log`);
    const prof = this.o.settings.profile;
    const nodeArgs = prof?.roles.includes(role)
      ? ['--cpu-prof', `--cpu-prof-dir=${path.join(prof.dir, `${role}-${this.starts}`)}`]
      : [];
    const proc = spawnRole(role, this.env(), file, nodeArgs);
    this.procs[role] = proc;
    return proc;
  }

  async startAll(client: Client): Promise<void> {
    for (const role of this.roles) this.start(role);
    await Promise.all(this.roles.map((role) => this.ready(role, client)));
  }

  /** One more worker process on the same task queue; resolves once it polls. */
  async addWorker(client: Client): Promise<ChildProc> {
    const proc = spawnRole('worker', this.env(), path.join(this.o.logDir, `worker-${++this.starts}.log`));
    this.extraWorkers.push(proc);
    const deadline = Date.now() + 90_000;
    while (!(await hasPollers(client, this.taskQueue, proc.pid))) {
      if (proc.child.exitCode !== null) throw new Error(`extra worker exited during start; see ${proc.logFile}`);
      if (Date.now() > deadline) throw new Error(`extra worker not polling within 90 s; see ${proc.logFile}`);
      await sleep(200);
    }
    return proc;
  }

  /**
   * Waits until a role does its job: API answers /healthz, a relay LISTENs, a worker polls (and,
   * relaying, LISTENs too).
   */
  async ready(role: 'api' | 'relay' | 'worker', client?: Client, timeoutMs = 90_000): Promise<void> {
    const proc = this.procs[role]!;
    const deadline = Date.now() + timeoutMs;
    let dead = false;
    void proc.exited.then(() => {
      dead = true;
    });
    for (;;) {
      if (dead) throw new Error(`${role} exited during start; see ${proc.logFile}`);
      if (Date.now() > deadline) throw new Error(`${role} not ready within ${timeoutMs} ms; see ${proc.logFile}`);
      if (role === 'api') {
        const ok = await fetch(`${this.apiUrl}/healthz`).then((r) => r.ok, () => false);
        if (ok) return;
      } else if (role === 'relay') {
        // Its LISTEN connection, opened after this process started: independent of log level.
        if (await this.relayListening(proc.startedAt)) return;
      } else if (await hasPollers(client!, this.taskQueue, proc.pid)) {
        if (this.relayRole !== 'worker' || (await this.relayListening(proc.startedAt))) return;
      }
      await sleep(200);
    }
  }

  private async relayListening(since: number): Promise<boolean> {
    const c = new pg.Client({ connectionString: this.o.databaseUrl });
    try {
      await c.connect();
      const { rows } = await c.query(
        `SELECT count(*)::int AS n FROM pg_stat_activity
         WHERE datname = current_database() AND application_name = 'hookline-relay-listen' AND backend_start >= $1`,
        [new Date(since - 1_000)],
      );
      return rows[0].n > 0;
    } catch {
      return false;
    } finally {
      await c.end().catch(() => {});
    }
  }

  async stopAll(): Promise<void> {
    await Promise.all([...Object.values(this.procs), ...this.extraWorkers].map((p) => p?.stop()));
  }
}

/**
 * True once a worker polls both the workflow and the activity task queue. With `pid`, only a
 * poller whose identity names that process counts (the SDK's identity is `<pid>@<host>`), so a
 * restarted worker is not mistaken for the dead one the server still remembers.
 */
export async function hasPollers(client: Client, taskQueue: string, pid?: number): Promise<boolean> {
  try {
    for (const taskQueueType of [1, 2]) {
      const res = await client.workflowService.describeTaskQueue({
        namespace: client.options.namespace,
        taskQueue: { name: taskQueue, kind: 1 },
        taskQueueType,
      });
      const pollers = res.pollers ?? [];
      const mine = pid === undefined ? pollers : pollers.filter((p) => (p.identity ?? '').startsWith(`${pid}@`));
      if (mine.length === 0) return false;
    }
    return true;
  } catch {
    return false;
  }
}

export async function connectTemporal(address: string): Promise<{ client: Client; connection: Connection }> {
  const connection = await Connection.connect({ address, connectTimeout: '10s' });
  return { client: new Client({ connection, namespace: 'default' }), connection };
}
