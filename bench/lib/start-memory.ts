// `npm run bench:memory`: the memory of what `npm start` runs, as a user runs it. Starts
// `npm start` in a temp data dir (on DATABASE_URL's server when set, so only Hookline's own
// processes are measured; Temporal's dev server is started and left out), sends a burst of
// events to a local receiver, and samples every process of the tree — npm, the shell, the
// supervisor, the roles and any helper they spawn — except Temporal and Postgres. Prints the
// peak of their summed RSS during the burst and each process's VmHWM.
//
// Options (env): BENCH_EVENTS (2000), BENCH_CONCURRENCY (32), BENCH_PAYLOAD_BYTES (512).
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { findFreePort } from '../../src/dev/processes';
import { procStats, REPO, sleep } from './procs';
import { createEndpoint, samplePayload, submitBurst } from './producer';
import { BenchReceiver } from './receiver';
import { DEFAULT_ADMIN_URL } from './stack';

const EXCLUDED = /^(temporal|postgres|initdb|pg_ctl)$/;

/** Every live descendant of `root` (and root), with its executable name and command line. */
export function processTree(root: number): Array<{ pid: number; name: string; cmd: string }> {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)]);
    } catch {
      /* gone meanwhile */
    }
  }
  const out: Array<{ pid: number; name: string; cmd: string }> = [];
  const visit = (pid: number) => {
    try {
      const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
      out.push({ pid, name: path.basename(argv[0] ?? '?'), cmd: argv.join(' ').slice(0, 160) });
    } catch {
      return;
    }
    for (const c of children.get(pid) ?? []) visit(c);
  };
  visit(root);
  return out;
}

async function main(): Promise<void> {
  const events = Number(process.env.BENCH_EVENTS ?? 2000);
  const concurrency = Number(process.env.BENCH_CONCURRENCY ?? 32);
  const data = samplePayload(Number(process.env.BENCH_PAYLOAD_BYTES ?? 512));
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'hookline-memory-'));
  const adminUrl = process.env.DATABASE_URL || DEFAULT_ADMIN_URL;
  const dbName = `hookline_mem_${Date.now().toString(36)}`;
  const admin = async (sql: string) => {
    const c = new pg.Client({ connectionString: adminUrl });
    await c.connect();
    await c.query(sql).finally(() => c.end());
  };
  await admin(`CREATE DATABASE ${dbName}`);
  const dbUrl = new URL(adminUrl);
  dbUrl.pathname = `/${dbName}`;
  const port = await findFreePort();
  const temporalPort = await findFreePort();
  const rx = new BenchReceiver();
  await rx.up();
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.TEMPORAL_ADDRESS; // the dev server `npm start` starts (not measured)
  const child = spawn('npm', ['start'], {
    cwd: REPO,
    env: {
      ...env,
      DATABASE_URL: dbUrl.toString(),
      PORT: String(port),
      TEMPORAL_DEV_PORT: String(temporalPort),
      HOOKLINE_DATA_DIR: dataDir,
      HOOKLINE_WORKER_METRICS_PORT: '0',
      NO_COLOR: '1',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let output = '';
  child.stdout!.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (output += c.toString()));
  const api = `http://127.0.0.1:${port}`;
  try {
    const deadline = Date.now() + 180_000;
    while (!/Hookline is running/.test(output)) {
      if (Date.now() > deadline || child.exitCode !== null) throw new Error(`npm start did not come up:\n${output.slice(-3000)}`);
      await sleep(250);
    }
    await createEndpoint(api, { url: rx.url('/mem'), eventTypes: ['bench.memory'] });
    const ours = () => processTree(child.pid!).filter((p) => !EXCLUDED.test(p.name));
    const sumRss = () => ours().reduce((a, p) => a + (procStats(p.pid)?.rssKb ?? 0), 0);
    const before = sumRss();
    let peak = 0;
    const timer = setInterval(() => (peak = Math.max(peak, sumRss())), 100);
    const started = Date.now();
    await submitBurst(api, 'bench.memory', events, concurrency, data);
    while ((rx.distinct.get('/mem') ?? 0) < events) {
      if (Date.now() - started > 600_000) throw new Error('burst not delivered within 10 min');
      await sleep(100);
    }
    clearInterval(timer);
    const seconds = (Date.now() - started) / 1000;
    console.log(`npm start: ${events} events delivered in ${seconds.toFixed(1)} s (${(events / seconds).toFixed(1)}/s)`);
    console.log(`Hookline processes, summed RSS: ${(before / 1024).toFixed(0)} MiB idle before the burst, peak ${(peak / 1024).toFixed(0)} MiB during it`);
    let hwm = 0;
    for (const p of ours()) {
      const s = procStats(p.pid);
      hwm += s?.hwmKb ?? 0;
      console.log(`  ${String(p.pid).padStart(7)}  RSS ${((s?.rssKb ?? 0) / 1024).toFixed(0).padStart(4)} MiB  peak ${((s?.hwmKb ?? 0) / 1024).toFixed(0).padStart(4)} MiB  ${p.cmd}`);
    }
    console.log(`  sum of per-process peaks (VmHWM, includes start-up): ${(hwm / 1024).toFixed(0)} MiB`);
  } finally {
    try {
      process.kill(-child.pid!, 'SIGINT');
    } catch {
      /* gone */
    }
    await new Promise((resolve) => (child.exitCode !== null ? resolve(null) : child.once('exit', resolve)));
    await rx.down();
    await admin(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`).catch(() => {});
    rmSync(dataDir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(`bench:memory: ${err instanceof Error ? err.stack : err}`);
  process.exit(1);
});
