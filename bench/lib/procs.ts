// Child processes for the bench and chaos runs: Hookline roles (`hookline api|relay|worker`, the
// same entry `hookline dev` spawns) and bench-only helpers, each a real process so its memory
// and CPU can be read from /proc, and SIGKILL means what it means in production.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { guardChild } from '../../src/dev/processes';

export const REPO = path.resolve(__dirname, '..', '..');
const MAIN = path.join(REPO, 'src', 'cli', 'main.ts');
const TSX_HOOK = path.join(REPO, 'src', 'cli', 'tsx-hook.cjs');

export interface ProcStats {
  /** Resident set size now, KiB. */
  rssKb: number;
  /** Peak resident set size over the process's life (VmHWM), KiB. */
  hwmKb: number;
  /** User + system CPU time so far, seconds. */
  cpuSeconds: number;
}

const CLOCK_TICKS = 100; // USER_HZ on Linux

/** /proc/<pid>/status and /proc/<pid>/stat, or null once the process is gone. */
export function procStats(pid: number): ProcStats | null {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? 0);
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name, which is in parentheses and may hold spaces.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime
    return { rssKb: kb('VmRSS'), hwmKb: kb('VmHWM'), cpuSeconds: ticks / CLOCK_TICKS };
  } catch {
    return null;
  }
}

/**
 * CPU seconds of the Postgres backends serving `database` (their process title names it), so a
 * phase can tell its own database work from other users of the same server.
 */
export function postgresCpuSeconds(database: string): number {
  let ticks = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      if (!cmdline.startsWith('postgres: ') || !cmdline.includes(` ${database} `)) continue;
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      /* gone meanwhile */
    }
  }
  return ticks / CLOCK_TICKS;
}

/** Pids of the processes whose executable is named `name` (e.g. an external temporal-server). */
export function pidsOfExecutable(name: string): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const argv0 = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0')[0];
      if (path.basename(argv0) === name) out.push(Number(entry));
    } catch {
      /* gone meanwhile */
    }
  }
  return out;
}

/** CPU seconds of every process whose executable is named `name`. */
export function cpuSecondsOfExecutable(name: string): number {
  return pidsOfExecutable(name).reduce((a, pid) => a + (procStats(pid)?.cpuSeconds ?? 0), 0);
}

/** Machine-wide CPU counters (jiffies), to tell how busy the two cores were during a phase. */
export function machineCpu(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0];
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const idle = v[3] + (v[4] ?? 0);
  const total = v.reduce((a, b) => a + b, 0);
  return { busy: total - idle, total };
}

export interface ChildProc {
  name: string;
  pid: number;
  child: ChildProcess;
  logFile: string;
  startedAt: number;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Last stats read while it was alive (so a killed process still reports its peak). */
  last: ProcStats | null;
  sample(): ProcStats | null;
  /** SIGKILL the process (group), resolve when it is gone. */
  kill(): Promise<void>;
  /** SIGTERM, then SIGKILL after graceMs. */
  stop(graceMs?: number): Promise<void>;
}

export interface SpawnOptions {
  name: string;
  /** Script (TypeScript, run through tsx's CommonJS hook) and its arguments. */
  script: string;
  args?: string[];
  env: NodeJS.ProcessEnv;
  /** stdout and stderr are appended here, straight from the child (no CPU in this process). */
  logFile: string;
  /** Extra node flags (e.g. --cpu-prof, which NODE_OPTIONS does not allow). */
  nodeArgs?: string[];
}

export function spawnNode(o: SpawnOptions): ChildProc {
  const startedAt = Date.now();
  const fd = openSync(o.logFile, 'a');
  // As `npm start` runs the roles: tsx's CommonJS hook, lean (see src/cli/tsx-hook.cjs).
  const child = spawn(process.execPath, [...(o.nodeArgs ?? []), '--require', TSX_HOOK, o.script, ...(o.args ?? [])], {
    cwd: REPO,
    env: o.env,
    stdio: ['ignore', fd, fd],
    detached: true,
  });
  closeSync(fd);
  guardChild(child, { group: true, graceMs: 5_000 });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  const proc: ChildProc = {
    name: o.name,
    pid: child.pid!,
    child,
    logFile: o.logFile,
    startedAt,
    exited,
    last: null,
    sample() {
      const s = procStats(proc.pid);
      if (s) proc.last = s;
      return s;
    },
    async kill() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      proc.sample();
      try {
        process.kill(-proc.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
      await exited;
    },
    async stop(graceMs = 10_000) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      proc.sample();
      try {
        process.kill(-proc.pid, 'SIGTERM');
      } catch {
        /* gone */
      }
      const timer = setTimeout(() => {
        try {
          process.kill(-proc.pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }, graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
  proc.sample();
  return proc;
}

/** One Hookline role through the real CLI entry, as `hookline dev` runs it. */
export function spawnRole(role: 'api' | 'relay' | 'worker', env: NodeJS.ProcessEnv, logFile: string, nodeArgs?: string[]): ChildProc {
  return spawnNode({ name: role, script: MAIN, args: [role], env, logFile, nodeArgs });
}

/** Resolves once `pattern` appears in the file (a child's log); rejects on timeout or exit. */
export async function waitForLog(proc: ChildProc, pattern: RegExp, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let dead = false;
  void proc.exited.then(() => {
    dead = true;
  });
  for (;;) {
    let text = '';
    try {
      text = readFileSync(proc.logFile, 'utf8');
    } catch {
      /* not written yet */
    }
    if (pattern.test(text)) return;
    if (dead) throw new Error(`${proc.name} exited before logging ${pattern}; see ${proc.logFile}`);
    if (Date.now() > deadline) throw new Error(`${proc.name} did not log ${pattern} within ${timeoutMs} ms; see ${proc.logFile}`);
    await sleep(100);
  }
}

/** Samples VmRSS of some processes every `everyMs`, keeping each one's maximum. */
export class RssSampler {
  readonly peakKb = new Map<string, number>();
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly procs: () => Array<{ name: string; pid: number }>, everyMs = 250) {
    this.timer = setInterval(() => this.tick(), everyMs);
    this.timer.unref();
  }

  tick(): void {
    for (const p of this.procs()) {
      const s = procStats(p.pid);
      if (s) this.peakKb.set(p.name, Math.max(this.peakKb.get(p.name) ?? 0, s.rssKb));
    }
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
