// Owns Postgres connections: one pool per process, sized for its role.
import pg from 'pg';

// jsonb and timestamptz come back as JS values; bigint counts (COUNT(*)) as numbers, which is
// safe for the row counts Hookline deals in.
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number(v));

export type Pool = pg.Pool;
export type PoolClient = pg.PoolClient;

export function createPool(connectionString: string, max = 10): pg.Pool {
  const pool = new pg.Pool({ connectionString, max, application_name: 'hookline' });
  // An idle client losing its connection (database restart) must not crash the process.
  pool.on('error', () => {});
  return pool;
}

/** A pool (each query its own transaction) rather than one client, which may be inside one. */
export const isPool = (db: object): db is pg.Pool => db instanceof pg.Pool || 'totalCount' in db;

/** Runs `fn` in a transaction on one client: COMMIT on success, ROLLBACK on any throw. */
export async function withTransaction<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  } finally {
    client.release();
  }
}
