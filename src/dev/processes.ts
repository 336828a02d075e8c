// Process helpers for everything `hookline dev`, the tests and the bench start on this machine:
// children that never outlive us (guardChild), an orderly stop (terminateChild), and ports
// (assertPortFree, findFreePort). Shared by the Temporal dev server, embedded Postgres and the
// role supervisor (src/cli/dev.ts).
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';

const HOST = '127.0.0.1';
const STOP_GRACE_MS = 10_000;

// ---------------------------------------------------------------------------------------------
// Child-process hygiene

export interface GuardOptions {
  /** First signal sent when the parent goes away; default SIGTERM. */
  signal?: NodeJS.Signals;
  /** Time between that signal and SIGKILL; default 10 s. */
  graceMs?: number;
  /** Signal the child's whole process group (the child was spawned with `detached: true`). */
  group?: boolean;
}

/**
 * Makes sure `child` never outlives this process, however it ends (even SIGKILL or a crash).
 * A tiny `sh` watchdog in its own process group blocks reading a pipe from us; when we die the
 * pipe closes, and it signals the child, then SIGKILLs it after the grace period. A normal
 * `process.exit()` also signals the child directly. Returns a function that disarms the guard
 * (called automatically when the child exits).
 */
export function guardChild(child: ChildProcess, opts: GuardOptions = {}): () => void {
  const pid = child.pid;
  if (pid === undefined || child.exitCode !== null || child.signalCode !== null) return () => {};
  const signal = opts.signal ?? 'SIGTERM';
  const target = opts.group ? -pid : pid;
  const ticks = Math.max(1, Math.ceil((opts.graceMs ?? STOP_GRACE_MS) / 200));
  const script =
    'read _ignored; kill -s "$2" -- "$1" 2>/dev/null; i=0; ' +
    'while kill -0 -- "$1" 2>/dev/null && [ "$i" -lt "$3" ]; do sleep 0.2; i=$((i+1)); done; ' +
    'kill -s KILL -- "$1" 2>/dev/null; exit 0';
  let watchdog: ChildProcess | null = null;
  try {
    watchdog = spawn('/bin/sh', ['-c', script, 'hookline-guard', String(target), signal.replace(/^SIG/, ''), String(ticks)], {
      stdio: ['pipe', 'ignore', 'ignore'],
      detached: true, // its own process group: a Ctrl-C in the terminal must not kill the guard
    });
    watchdog.on('error', () => {});
    watchdog.stdin?.on('error', () => {});
    watchdog.unref();
    (watchdog.stdin as unknown as { unref?: () => void } | null)?.unref?.();
  } catch {
    watchdog = null; // no /bin/sh: the 'exit' hook below still covers normal exits
  }
  const onExit = () => {
    try {
      process.kill(target, signal);
    } catch {
      /* already gone */
    }
  };
  process.on('exit', onExit);
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    process.removeListener('exit', onExit);
    if (watchdog && watchdog.exitCode === null) {
      try {
        watchdog.kill('SIGKILL');
      } catch {
        /* ignore */
      }
    }
  };
  child.once('exit', release);
  return release;
}

/** Sends `signal`, then SIGKILL after graceMs; resolves once the child has exited. */
export async function terminateChild(
  child: ChildProcess,
  opts: { signal?: NodeJS.Signals; graceMs?: number; group?: boolean } = {},
): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const pid = child.pid;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const send = (sig: NodeJS.Signals) => {
    try {
      if (opts.group) process.kill(-pid, sig);
      else child.kill(sig);
    } catch {
      /* already gone */
    }
  };
  send(opts.signal ?? 'SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const timedOut = await Promise.race([
    exited.then(() => false),
    new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(true), opts.graceMs ?? STOP_GRACE_MS);
    }),
  ]);
  clearTimeout(timer);
  if (timedOut) {
    send('SIGKILL');
    await exited;
  }
}

// ---------------------------------------------------------------------------------------------
// Ports

/** Rejects with a clear message when something already listens on host:port. */
export async function assertPortFree(port: number, what: string, host = HOST): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EADDRINUSE') {
        reject(new Error(`${what}: port ${port} on ${host} is already in use (another Temporal dev server or program?)`));
      } else reject(new Error(`${what}: cannot listen on ${host}:${port}: ${err.message}`));
    });
    server.listen({ port, host, exclusive: true }, () => server.close(() => resolve()));
  });
}

/** A port that is free on 127.0.0.1 right now (the kernel's pick). */
export async function findFreePort(host = HOST): Promise<number> {
  return await new Promise<number>((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen({ port: 0, host, exclusive: true }, () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}
