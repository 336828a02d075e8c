// `hookline dev` (npm start) on the shared Temporal server and a test database: it runs the API and
// the worker, which relays the outbox itself (no relay process), delivers an event, and restarts
// a worker that was killed, relay included.
import os from 'node:os';
import { mkdtempSync, rmSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { Client, Connection } from '@temporalio/client';
import { loadConfig } from '../src/config';
import { defaultRoles, runDev } from '../src/cli/dev';
import { findFreePort } from '../src/dev/processes';
import { createTestDatabase, startReceiver, TEST_ENCRYPTION_KEY, waitFor, type Receiver } from './helpers';

/** The pids of the processes polling `taskQueue` (the SDK's identity is `<pid>@<host>`). */
async function pollerPids(client: Client, taskQueue: string): Promise<number[]> {
  const res = await client.workflowService.describeTaskQueue({ namespace: 'default', taskQueue: { name: taskQueue, kind: 1 }, taskQueueType: 1 });
  return [...new Set((res.pollers ?? []).map((p) => Number((p.identity ?? '').split('@')[0])))];
}

describe('hookline dev', () => {
  it('runs the relay inside the worker unless HOOKLINE_WORKER_RELAY=false', () => {
    expect(defaultRoles(loadConfig({}))).toEqual(['api', 'worker']);
    expect(defaultRoles(loadConfig({ HOOKLINE_WORKER_RELAY: 'false' }))).toEqual(['api', 'relay', 'worker']);
  });

  describe('on a test database', () => {
    let db: Awaited<ReturnType<typeof createTestDatabase>>;
    let rx: Receiver;
    let connection: Connection;
    let client: Client;
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'hookline-dev-test-'));
    const taskQueue = `dev-${process.pid}`;
    const lines: string[] = [];
    let stop!: () => void;
    let running: Promise<void>;
    let api: string;

    beforeAll(async () => {
      db = await createTestDatabase();
      rx = await startReceiver();
      connection = await Connection.connect({ address: inject('temporalAddress') });
      client = new Client({ connection });
      const port = await findFreePort();
      api = `http://127.0.0.1:${port}`;
      // The roles take their environment from this process's (this file's own fork).
      Object.assign(process.env, {
        TEMPORAL_TASK_QUEUE: taskQueue, PORT: String(port), HOOKLINE_WORKER_METRICS_PORT: '0',
        HOOKLINE_WORKFLOW_BUNDLE: inject('workflowBundlePath'), HOOKLINE_LOG_FORMAT: 'json', NO_COLOR: '1',
      });
      const config = loadConfig({
        DATABASE_URL: db.url, TEMPORAL_ADDRESS: inject('temporalAddress'), HOOKLINE_DATA_DIR: dataDir,
        HOOKLINE_ENCRYPTION_KEY: TEST_ENCRYPTION_KEY, PORT: String(port),
      });
      running = runDev(config, { out: (l) => lines.push(l), exitProcess: false, stopWhen: new Promise<void>((resolve) => (stop = resolve)) });
      await waitFor(() => lines.some((l) => l.includes('Hookline is running')), 90_000, 'hookline dev up');
    });
    afterAll(async () => {
      stop?.();
      await running?.catch(() => {});
      await rx?.close();
      await connection?.close();
      await db?.drop();
      rmSync(dataDir, { recursive: true, force: true });
    });

    const post = async (url: string, body: unknown) => {
      const res = await fetch(`${api}${url}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      expect(res.status).toBeLessThan(300);
      return (await res.json()) as { id: string };
    };
    const delivered = (id: string) => waitFor(() => rx.requests.some((r) => r.headers['webhook-id'] === id), 60_000, `${id} delivered`);

    it('runs api and worker, the worker relaying, and restarts a killed worker with its relay', async () => {
      await post('/v1/endpoints', { url: rx.url });
      await delivered((await post('/v1/events', { type: 'dev.one', data: {} })).id);
      // Two roles, no relay process; the worker's own log says it relays.
      const prefixes = new Set(lines.map((l) => l.split('|')[0].trim()));
      expect(prefixes.has('relay')).toBe(false);
      expect(lines.some((l) => l.startsWith('worker') && l.includes('"msg":"relay started"'))).toBe(true);

      const [pid] = await waitFor(async () => ((await pollerPids(client, taskQueue)).length ? pollerPids(client, taskQueue) : null), 30_000, 'the worker polling');
      process.kill(pid, 'SIGKILL');
      await waitFor(() => lines.some((l) => /worker exited \(SIGKILL\); restarting/.test(l)), 30_000, 'the supervisor to notice');
      // The restarted worker relays again: an event sent now reaches the receiver.
      await waitFor(async () => (await pollerPids(client, taskQueue)).some((p) => p !== pid), 90_000, 'a new worker polling');
      await delivered((await post('/v1/events', { type: 'dev.two', data: {} })).id);

      stop();
      await running;
      expect(lines.at(-1)).toContain('stopped');
    });
  });
});
