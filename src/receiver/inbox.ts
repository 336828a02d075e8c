// Idempotent inbox for webhook receivers, in Postgres: at-least-once in, exactly-once effect.
//
// A sender retries until it sees a 2xx, so the same event (same `webhook-id`) can arrive twice,
// or three times at once when a slow answer overlaps a retry. `handle(eventId, fn)` runs `fn` in
// one transaction that first records the id:
//
//   BEGIN
//   INSERT INTO inbox (event_id) VALUES ($1) ON CONFLICT DO NOTHING
//     - row inserted   → run fn(client); COMMIT with fn's writes  → { duplicate: false, result }
//     - row existed    → ROLLBACK, fn not run                      → { duplicate: true }
//   fn throws          → ROLLBACK: the id is not recorded, so the retry runs fn again.
//
// Concurrency: while the first transaction holding the id is open, a concurrent INSERT of the
// same id waits on the unique index. If the first commits, the waiter sees a conflict and reports
// a duplicate; if it rolls back, the waiter inserts and runs fn. So fn's effect happens exactly
// once provided fn writes its effect through `client` (inside the transaction). Effects outside
// the database (emails, calls to other APIs) are at-least-once and need their own idempotency
// key, for which the event id is the natural choice.
//
// The HTTP layer answers 2xx for a duplicate (the sender must stop retrying) and 5xx when fn
// throws (the sender must retry). This relies on READ COMMITTED, Postgres's default; under
// REPEATABLE READ or SERIALIZABLE a concurrent duplicate fails with a serialization error
// instead, which is still safe (a 5xx, then a retry that sees the duplicate).
import type { Pool, PoolClient } from 'pg';

export interface InboxOptions {
  /** Table holding processed event ids; `name` or `schema.name`. */
  table?: string;
}

export interface InboxResult<T> {
  duplicate: boolean;
  result?: T;
}

export interface Inbox {
  /** Creates the table if it is missing; safe to call on every start. */
  ensureSchema(): Promise<void>;
  handle<T>(eventId: string, fn: (client: PoolClient) => Promise<T>): Promise<InboxResult<T>>;
  /**
   * Forgets ids received before `before`; returns how many. Safe once `before` is older than the
   * sender's whole retry window (Hookline's default deadline is about 3 days), since no retry of
   * a forgotten id can still arrive.
   */
  prune(before: Date): Promise<number>;
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

export function createInbox(pool: Pool, options: InboxOptions = {}): Inbox {
  const table = quoteTable(options.table ?? 'hookline_inbox');

  return {
    async ensureSchema() {
      await pool.query(
        `CREATE TABLE IF NOT EXISTS ${table} (
           event_id    text PRIMARY KEY,
           received_at timestamptz NOT NULL DEFAULT now()
         )`,
      );
    },

    async handle<T>(eventId: string, fn: (client: PoolClient) => Promise<T>): Promise<InboxResult<T>> {
      if (typeof eventId !== 'string' || eventId === '') throw new TypeError('inbox: eventId must be a non-empty string');
      const client = await pool.connect();
      let broken: Error | undefined;
      try {
        await client.query('BEGIN');
        const inserted = await client.query(
          `INSERT INTO ${table} (event_id) VALUES ($1) ON CONFLICT (event_id) DO NOTHING`,
          [eventId],
        );
        if (inserted.rowCount === 0) {
          await client.query('ROLLBACK');
          return { duplicate: true };
        }
        const result = await fn(client);
        await client.query('COMMIT');
        return { duplicate: false, result };
      } catch (err) {
        // A client whose ROLLBACK fails is in an unknown state: destroy it rather than pool it.
        await client.query('ROLLBACK').catch((rollbackErr: Error) => {
          broken = rollbackErr;
        });
        throw err;
      } finally {
        client.release(broken);
      }
    },

    async prune(before: Date) {
      const res = await pool.query(`DELETE FROM ${table} WHERE received_at < $1`, [before]);
      return res.rowCount ?? 0;
    },
  };
}

// The table name is interpolated into SQL, so it is checked and quoted rather than trusted.
function quoteTable(name: string): string {
  const parts = name.split('.');
  if (parts.length > 2 || !parts.every((p) => IDENTIFIER.test(p))) {
    throw new TypeError(`inbox: invalid table name ${JSON.stringify(name)}`);
  }
  return parts.map((p) => `"${p}"`).join('.');
}
