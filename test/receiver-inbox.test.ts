// The Postgres inbox against a real, throwaway database: duplicates (sequential and concurrent)
// run fn's effect once, a throwing fn leaves no trace so the retry runs it, and a concurrent
// duplicate waiting on a transaction that then fails takes over.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import pg from 'pg';
import { createInbox, type Inbox } from '../src/receiver';

const ADMIN_URL = process.env.TEST_ADMIN_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const dbName = `hookline_inbox_test_${randomBytes(4).toString('hex')}`;
let pool: pg.Pool;
let inbox: Inbox;

function databaseUrl(name: string): string {
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  return url.toString();
}

async function admin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: ADMIN_URL });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

beforeAll(async () => {
  await admin((c) => c.query(`CREATE DATABASE ${dbName}`));
  pool = new pg.Pool({ connectionString: databaseUrl(dbName), max: 10 });
  // DROP … WITH (FORCE) in afterAll ends idle sessions; that is expected, not a failure.
  pool.on('error', () => {});
  inbox = createInbox(pool);
  await inbox.ensureSchema();
  await inbox.ensureSchema(); // idempotent
  await pool.query('CREATE TABLE effects (event_id text NOT NULL, note text)');
});

afterAll(async () => {
  // Drop first (FORCE ends open sessions) so a failed test holding a client cannot leave the
  // database behind by making pool.end() wait forever.
  await admin((c) => c.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`));
  await pool?.end().catch(() => {});
});

beforeEach(async () => {
  await pool.query('TRUNCATE hookline_inbox, effects');
});

async function effectCount(eventId: string): Promise<number> {
  const res = await pool.query('SELECT count(*)::int AS n FROM effects WHERE event_id = $1', [eventId]);
  return res.rows[0].n;
}

/** Resolves once `n` sessions of the test database are waiting on a lock (the unique index). */
async function lockWaiters(n: number): Promise<void> {
  const deadline = Date.now() + 4_000; // under vitest's 5 s test timeout, so this message is the one shown
  for (;;) {
    const res = await pool.query(
      `SELECT count(*)::int AS n FROM pg_stat_activity
        WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE 'INSERT INTO "hookline_inbox"%'`,
    );
    if (res.rows[0].n >= n) return;
    if (Date.now() > deadline) throw new Error(`expected ${n} lock waiters, saw ${res.rows[0].n}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function gate() {
  let open!: () => void;
  const opened = new Promise<void>((r) => (open = r));
  return { open, opened };
}

describe('inbox', () => {
  it('runs fn once and reports the second delivery of an id as a duplicate', async () => {
    const write = (client: pg.PoolClient) =>
      client.query("INSERT INTO effects VALUES ('evt_seq', 'x')").then(() => 'done');
    expect(await inbox.handle('evt_seq', write)).toEqual({ duplicate: false, result: 'done' });
    expect(await inbox.handle('evt_seq', write)).toEqual({ duplicate: true });
    expect(await effectCount('evt_seq')).toBe(1);
    // another id is not a duplicate
    expect((await inbox.handle('evt_other', write)).duplicate).toBe(false);
  });

  it('same id 3× concurrently: fn runs once, the other two wait on it and report duplicates', async () => {
    const release = gate();
    let calls = 0;
    const fn = async (client: pg.PoolClient) => {
      calls++;
      await client.query("INSERT INTO effects VALUES ('evt_conc', 'x')");
      await release.opened; // hold the transaction open while the others arrive
      return calls;
    };
    const all = Promise.all([1, 2, 3].map(() => inbox.handle('evt_conc', fn)));
    try {
      await lockWaiters(2); // both latecomers are blocked on the first one's uncommitted id
    } finally {
      release.open();
    }
    const results = await all;
    expect(results.filter((r) => !r.duplicate)).toEqual([{ duplicate: false, result: 1 }]);
    expect(results.filter((r) => r.duplicate)).toHaveLength(2);
    expect(calls).toBe(1);
    expect(await effectCount('evt_conc')).toBe(1);
  });

  it('a throwing fn rolls back its effect and the id, so the retry runs it once', async () => {
    const boom = new Error('handler failed');
    const failing = async (client: pg.PoolClient) => {
      await client.query("INSERT INTO effects VALUES ('evt_retry', 'first try')");
      throw boom;
    };
    await expect(inbox.handle('evt_retry', failing)).rejects.toBe(boom);
    expect(await effectCount('evt_retry')).toBe(0);
    const ids = await pool.query("SELECT 1 FROM hookline_inbox WHERE event_id = 'evt_retry'");
    expect(ids.rowCount).toBe(0);

    const ok = async (client: pg.PoolClient) => {
      await client.query("INSERT INTO effects VALUES ('evt_retry', 'second try')");
    };
    expect((await inbox.handle('evt_retry', ok)).duplicate).toBe(false);
    expect((await inbox.handle('evt_retry', ok)).duplicate).toBe(true);
    const rows = await pool.query("SELECT note FROM effects WHERE event_id = 'evt_retry'");
    expect(rows.rows).toEqual([{ note: 'second try' }]);
  });

  it('a concurrent duplicate waiting on a transaction that then fails takes over and runs fn', async () => {
    const release = gate();
    const inside = gate();
    const first = inbox.handle('evt_takeover', async (client) => {
      await client.query("INSERT INTO effects VALUES ('evt_takeover', 'first')");
      inside.open();
      await release.opened;
      throw new Error('first attempt failed');
    });
    const firstSettled = first.catch((err: Error) => err);
    await inside.opened; // first holds the id, uncommitted
    const second = inbox.handle('evt_takeover', async (client) => {
      await client.query("INSERT INTO effects VALUES ('evt_takeover', 'second')");
      return 'second ran';
    });
    try {
      await lockWaiters(1);
    } finally {
      release.open();
    }
    expect(((await firstSettled) as Error).message).toBe('first attempt failed');
    expect(await second).toEqual({ duplicate: false, result: 'second ran' });
    const rows = await pool.query("SELECT note FROM effects WHERE event_id = 'evt_takeover'");
    expect(rows.rows).toEqual([{ note: 'second' }]);
  });

  it('returns clients to the pool (many sequential handles with a small pool)', async () => {
    const small = new pg.Pool({ connectionString: databaseUrl(dbName), max: 1 });
    try {
      const tiny = createInbox(small);
      for (let i = 0; i < 5; i++) {
        await expect(tiny.handle(`evt_pool_${i}`, async () => { throw new Error('x'); })).rejects.toThrow('x');
        expect((await tiny.handle(`evt_pool_${i}`, async () => i)).result).toBe(i);
        expect((await tiny.handle(`evt_pool_${i}`, async () => i)).duplicate).toBe(true);
      }
    } finally {
      await small.end();
    }
  });

  it('prunes ids older than a cut-off', async () => {
    await inbox.handle('evt_old', async () => undefined);
    await pool.query("UPDATE hookline_inbox SET received_at = now() - interval '8 days' WHERE event_id = 'evt_old'");
    await inbox.handle('evt_new', async () => undefined);
    expect(await inbox.prune(new Date(Date.now() - 7 * 24 * 3600 * 1000))).toBe(1);
    const left = await pool.query('SELECT event_id FROM hookline_inbox ORDER BY event_id');
    expect(left.rows).toEqual([{ event_id: 'evt_new' }]);
  });

  it('uses a custom table and refuses names that are not identifiers', async () => {
    const custom = createInbox(pool, { table: 'public.custom_inbox' });
    await custom.ensureSchema();
    expect((await custom.handle('evt_c', async () => 1)).duplicate).toBe(false);
    expect((await custom.handle('evt_c', async () => 1)).duplicate).toBe(true);
    expect((await inbox.handle('evt_c', async () => 1)).duplicate).toBe(false); // separate tables
    expect(() => createInbox(pool, { table: 'x; DROP TABLE effects' })).toThrow(TypeError);
  });
});
