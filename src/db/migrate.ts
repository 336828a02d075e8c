// Applies src/db/migrations/*.sql in name order, each once, recorded in hookline_migrations;
// then src/db/functions.sql, the live SQL functions, on every start (CREATE OR REPLACE).
// An advisory lock makes it safe for many processes to start at the same time.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { Pool, PoolClient } from './pool';

const MIGRATIONS_DIR = path.join(__dirname, 'migrations');
const FUNCTIONS_FILE = path.join(__dirname, 'functions.sql');
const LOCK_KEY = 0x686f6f6b; // "hook"

export async function migrate(pool: Pool): Promise<string[]> {
  const client = await pool.connect();
  try {
    await client.query('SELECT pg_advisory_lock($1)', [LOCK_KEY]);
    const applied = await applyMigrations(client);
    await applyFunctions(client);
    return applied;
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [LOCK_KEY]).catch(() => {});
    client.release();
  }
}

async function applyMigrations(client: PoolClient): Promise<string[]> {
  const files = readdirSync(MIGRATIONS_DIR).filter((f) => f.endsWith('.sql')).sort();
  const applied: string[] = [];
  await client.query(
    'CREATE TABLE IF NOT EXISTS hookline_migrations (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())',
  );
  const done = new Set(
    (await client.query<{ name: string }>('SELECT name FROM hookline_migrations')).rows.map((r) => r.name),
  );
  for (const file of files) {
    if (done.has(file)) continue;
    const sql = readFileSync(path.join(MIGRATIONS_DIR, file), 'utf8');
    await client.query('BEGIN');
    try {
      await client.query(sql);
      await client.query('INSERT INTO hookline_migrations (name) VALUES ($1)', [file]);
      await client.query('COMMIT');
      applied.push(file);
    } catch (err) {
      await client.query('ROLLBACK');
      throw new Error(`migration ${file} failed: ${(err as Error).message}`);
    }
  }
  return applied;
}

/**
 * Re-applies every live function after the migrations, so the database runs the text in
 * functions.sql whatever the migrations' bodies said. One transaction: all or none.
 */
async function applyFunctions(client: PoolClient): Promise<void> {
  const sql = readFileSync(FUNCTIONS_FILE, 'utf8');
  await client.query('BEGIN');
  try {
    await client.query(sql);
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK');
    throw new Error(`src/db/functions.sql failed: ${(err as Error).message}`);
  }
}
