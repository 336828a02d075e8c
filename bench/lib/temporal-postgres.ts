// A TemporalHandle (bench/lib/stack.ts) for a Temporal server on Postgres that
// scripts/temporal-postgres.sh started elsewhere (scripts/test-temporal-postgres.sh): kill()
// SIGKILLs the temporal-server process named in TEMPORAL_PID_FILE, restart() runs the script's
// `start` again with the same environment (same databases, same port), so chaos runs can take
// the production engine down the same way they take the dev server down.
import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { REPO, sleep } from './procs';
import type { TemporalHandle } from './stack';

const SCRIPT = path.join(REPO, 'scripts/temporal-postgres.sh');

/** What the handle needs from the environment test-temporal-postgres.sh exports. */
export function postgresTemporalEnv(env: NodeJS.ProcessEnv = process.env): { address: string; pidFile: string } {
  const missing = ['TEST_TEMPORAL_ADDRESS', 'TEMPORAL_PID_FILE', 'TEMPORAL_PORT', 'TEMPORAL_DB', 'TEMPORAL_BIN_DIR'].filter(
    (k) => !env[k],
  );
  if (missing.length > 0) {
    throw new Error(
      `needs a Temporal server on Postgres started by scripts/test-temporal-postgres.sh (missing ${missing.join(', ')}); ` +
        'run: scripts/test-temporal-postgres.sh test/tpg/chaos.tpg.ts',
    );
  }
  return { address: env.TEST_TEMPORAL_ADDRESS!, pidFile: env.TEMPORAL_PID_FILE! };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function serverPid(pidFile: string): number {
  const pid = Number(readFileSync(pidFile, 'utf8').trim());
  if (!Number.isInteger(pid) || pid <= 0) throw new Error(`no temporal-server pid in ${pidFile}`);
  return pid;
}

/** Waits for the script's "is up" line; the script writes the new pid to pidFile itself. */
async function startServer(logFile: string, timeoutMs: number): Promise<void> {
  const fd = openSync(logFile, 'a');
  // Detached and unreferenced: the server outlives this test process (later test files and the
  // calling script's cleanup use it through the pid file), as the first one did.
  const child = spawn('bash', [SCRIPT, 'start'], { stdio: ['ignore', fd, fd], detached: true, env: process.env });
  closeSync(fd);
  child.unref();
  let exited = false;
  child.on('exit', () => (exited = true));
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (/ is up: /.test(readFileSync(logFile, 'utf8'))) return;
    if (exited) throw new Error(`temporal-postgres.sh start exited; see ${logFile}`);
    await sleep(250);
  }
  throw new Error(`Temporal on Postgres not up after ${timeoutMs / 1000} s; see ${logFile}`);
}

export function postgresTemporal(o: { address: string; pidFile: string; logFile: string; startTimeoutMs?: number }): TemporalHandle {
  const port = Number(o.address.split(':').pop());
  return {
    address: o.address, server: null, dbFile: null, pragmas: {}, port,
    async kill() {
      const pid = serverPid(o.pidFile);
      process.kill(pid, 'SIGKILL');
      while (alive(pid)) await sleep(50);
    },
    async restart() {
      // The script's membership and gRPC ports may linger briefly after the kill: retry a few times.
      for (let attempt = 0; ; attempt++) {
        try {
          return await startServer(o.logFile, o.startTimeoutMs ?? 120_000);
        } catch (err) {
          if (attempt >= 2) throw err;
          await sleep(2_000);
        }
      }
    },
    // The calling script owns the server's lifetime (its cleanup kills the pid in pidFile).
    async stop() {},
  };
}
