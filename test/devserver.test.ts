// The Temporal dev-server launcher on the real CLI: a server of its own (not the shared one from
// globalSetup) on a SQLite file, restarted on the same file; the search attributes each time;
// port conflicts; and no orphaned server when the parent process is killed.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Connection } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SEARCH_ATTRIBUTES } from '../src/search-attributes';
import { findTemporalCli } from '../src/dev/temporal-cli';
import { findFreePort } from '../src/dev/processes';
import { ensureSearchAttributes, startDevServer } from '../src/dev/temporal-dev-server';
import { isAlive } from './process';

const REPO = path.resolve(__dirname, '..');
const TYPE_CODE: Record<string, number> = { Keyword: 2, KeywordList: 7 }; // IndexedValueType

let cliPath: string;
let dir: string;

beforeAll(async () => {
  cliPath = await findTemporalCli({ toolsDir: path.join(REPO, '.tools') });
  dir = mkdtempSync(path.join(tmpdir(), 'hookline-devserver-test-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

async function customAttributes(address: string, namespace: string): Promise<Record<string, number>> {
  const connection = await Connection.connect({ address });
  try {
    const res = await connection.operatorService.listSearchAttributes({ namespace });
    return Object.fromEntries(Object.entries(res.customAttributes ?? {}).map(([k, v]) => [k, Number(v)]));
  } finally {
    await connection.close();
  }
}

function expectHooklineAttributes(attrs: Record<string, number>) {
  for (const [name, type] of Object.entries(SEARCH_ATTRIBUTES)) {
    expect(attrs[name], name).toBe(TYPE_CODE[type]);
  }
}

async function portIsFree(port: number): Promise<boolean> {
  return await new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/** Whether a Temporal server answers on `address` with its default namespace ready. */
async function serving(address: string): Promise<boolean> {
  try {
    const c = await Connection.connect({ address, connectTimeout: '1s' });
    await c.workflowService.describeNamespace({ namespace: 'default' });
    await c.close();
    return true;
  } catch {
    return false;
  }
}

async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await cond()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return await cond();
}

describe('startDevServer', () => {
  it('starts twice on the same db file with the search attributes present each time, and stops cleanly', async () => {
    const dbFile = path.join(dir, 'twice', 'temporal.db'); // parent dir does not exist yet
    const namespace = 'hookline-test';
    for (let round = 1; round <= 2; round++) {
      const port = await findFreePort();
      const lines: string[] = [];
      const t0 = Date.now();
      const server = await startDevServer({ cliPath, port, dbFile, namespace, log: (l) => lines.push(l) });
      const startedMs = Date.now() - t0;
      try {
        expect(server.address).toBe(`127.0.0.1:${port}`);
        expect(server.uiUrl).toBe(`http://127.0.0.1:${port + 1000}`);
        expectHooklineAttributes(await customAttributes(server.address, namespace));
        const ui = await fetch(server.uiUrl!);
        expect(ui.ok).toBe(true);
        expect(startedMs).toBeLessThan(30_000);
      } finally {
        await server.stop();
      }
      expect(isAlive(server.pid)).toBe(false);
      expect(await server.exited).toBeDefined();
      expect(await portIsFree(port)).toBe(true);
      await server.stop(); // idempotent
    }
  });

  it('adds the attributes through the operator service on a db the CLI created without them', async () => {
    // The CLI ignores --search-attribute when the SQLite file already exists; this is that case.
    const dbFile = path.join(dir, 'plain.db');
    const port = await findFreePort();
    const plain = spawn(cliPath, ['server', 'start-dev', '--ip', '127.0.0.1', '--port', String(port), '--headless', '--db-filename', dbFile], {
      stdio: 'ignore',
    });
    try {
      const up = await waitFor(() => serving(`127.0.0.1:${port}`), 30_000);
      expect(up).toBe(true);
      const before = await customAttributes(`127.0.0.1:${port}`, 'default');
      expect(before.DeliveryStatus).toBeUndefined();
    } finally {
      plain.kill('SIGTERM');
      await new Promise((r) => plain.once('exit', r));
    }

    const server = await startDevServer({ cliPath, port, dbFile, ui: false });
    try {
      expect(server.uiUrl).toBeNull();
      expectHooklineAttributes(await customAttributes(server.address, 'default'));
      // Idempotent: nothing left to add.
      expect(await ensureSearchAttributes(server.address, 'default')).toEqual([]);
    } finally {
      await server.stop();
    }
  });

  it('ensureSearchAttributes registers the attributes on a server that lacks them, once', async () => {
    const port = await findFreePort();
    const plain = spawn(cliPath, ['server', 'start-dev', '--ip', '127.0.0.1', '--port', String(port), '--headless'], {
      stdio: 'ignore',
    });
    try {
      const address = `127.0.0.1:${port}`;
      const up = await waitFor(() => serving(address), 30_000);
      expect(up).toBe(true);
      // Two callers racing, as two processes starting at once would.
      const [a, b] = await Promise.all([ensureSearchAttributes(address, 'default'), ensureSearchAttributes(address, 'default')]);
      expect([...a, ...b].sort()).toEqual(expect.arrayContaining(Object.keys(SEARCH_ATTRIBUTES).sort()));
      expectHooklineAttributes(await customAttributes(address, 'default'));
      expect(await ensureSearchAttributes(address, 'default')).toEqual([]);
    } finally {
      plain.kill('SIGTERM');
      await new Promise((r) => plain.once('exit', r));
    }
  });

  it('fails clearly when the port is in use', async () => {
    const blocker = net.createServer();
    const port = await new Promise<number>((resolve) =>
      blocker.listen(0, '127.0.0.1', () => resolve((blocker.address() as net.AddressInfo).port)),
    );
    try {
      await expect(startDevServer({ cliPath, port, ui: false })).rejects.toThrow(
        new RegExp(`port ${port} on 127\\.0\\.0\\.1 is already in use`),
      );
    } finally {
      await new Promise((r) => blocker.close(r));
    }
  });

  it('does not outlive a parent that is SIGKILLed', async () => {
    const port = await findFreePort();
    const script = path.join(dir, 'parent.ts');
    writeFileSync(
      script,
      `import { startDevServer } from ${JSON.stringify(path.join(REPO, 'src/dev/temporal-dev-server'))};\n` +
        `startDevServer({ cliPath: ${JSON.stringify(cliPath)}, port: ${port}, ui: false })\n` +
        `  .then((s) => console.log('READY ' + s.pid), (e) => { console.error(e); process.exit(1); });\n` +
        'setInterval(() => {}, 1000);\n',
    );
    const parent = spawn(process.execPath, ['--import', 'tsx', script], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    parent.stdout.on('data', (c) => (output += c));
    parent.stderr.on('data', (c) => (output += c));
    const ready = await waitFor(() => /READY \d+/.test(output) || parent.exitCode !== null, 60_000);
    expect(ready).toBe(true);
    const match = /READY (\d+)/.exec(output);
    expect(match, output).not.toBeNull();
    const serverPid = Number(match![1]);
    expect(isAlive(serverPid)).toBe(true);

    parent.kill('SIGKILL');
    await new Promise((r) => parent.once('exit', r));
    expect(await waitFor(() => !isAlive(serverPid), 20_000)).toBe(true);
    expect(await waitFor(() => portIsFree(port), 5_000)).toBe(true);
  });
});
