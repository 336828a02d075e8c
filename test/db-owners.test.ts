// One owner per table (issue #22): each table is written (INSERT, UPDATE, DELETE, TRUNCATE,
// MERGE) from exactly one module under src/db/, and every other module calls that module. This
// file is the documented map, checked against the code: it reads the SQL in every string and
// template literal of src/, activities/ and workflows/ (TypeScript's parser, so comments are not
// read), and the bodies of the live SQL functions in src/db/functions.sql, whose writes count as
// their owner's. Pure file reading: no database, no Temporal.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const REPO = path.resolve(__dirname, '..');

/** Table → the one module that writes it. A new table needs a line here. */
const TABLE_OWNERS: Record<string, string> = {
  endpoints: 'src/db/endpoints.ts',
  endpoint_secrets: 'src/db/endpoints.ts',
  events: 'src/db/events.ts',
  idempotency_keys: 'src/db/events.ts',
  outbox: 'src/db/outbox.ts',
  deliveries: 'src/db/deliveries.ts',
  attempts: 'src/db/deliveries.ts',
  event_types: 'src/db/event-types.ts',
  event_type_versions: 'src/db/event-types.ts',
  endpoint_gates: 'src/db/gate.ts',
  gate_waiters: 'src/db/gate.ts',
  tenants: 'src/db/tenants.ts',
  api_keys: 'src/db/api-keys.ts',
  listen_sessions: 'src/db/listen-sessions.ts',
  listen_requests: 'src/db/listen-requests.ts',
  listen_waiters: 'src/db/listen-requests.ts',
  ops_event_windows: 'src/db/ops-event-windows.ts',
  hookline_migrations: 'src/db/migrate.ts',
  test_event_windows: 'src/db/test-event-rate.ts',
  portal_session_revocations: 'src/db/portal-revocations.ts',
  portal_tenant_revocations: 'src/db/portal-revocations.ts',
};

/** Live SQL function (src/db/functions.sql) → the module it belongs to; its writes are that module's. */
const FUNCTION_OWNERS: Record<string, string> = {
  gate_acquire: 'src/db/gate.ts',
  gate_release: 'src/db/gate.ts',
  gate_reset: 'src/db/gate.ts',
  gate_forget: 'src/db/gate.ts',
  gate_drop_lease: 'src/db/gate.ts',
  endpoint_auto_disable: 'src/db/endpoints.ts',
};

type Exception = { table: string; file: string; until: string };

/**
 * The one write outside its owner, on purpose: publishEvent's event and its outbox row are one
 * INSERT statement, so an accepted event costs the submit path one round trip (src/db/events.ts).
 */
const EXCEPTIONS: Exception[] = [
  { table: 'outbox', file: 'src/db/events.ts', until: 'the event and its outbox row stop being one statement' },
];

// The receiver kit runs in the receiver's app against its own database (its inbox table is not
// Hookline's); the generated API client holds no SQL.
const NOT_SCANNED = ['src/receiver/', 'src/client/'];

const WRITE_PATTERNS: [verb: string, pattern: RegExp][] = [
  ['insert', /\binsert\s+into\s+([a-z_][a-z0-9_]*)/g],
  // `DO UPDATE SET` (an upsert's conflict arm) names no table; `FOR UPDATE` is followed by no SET.
  ['update', /\bupdate\s+(?!set\b)([a-z_][a-z0-9_]*)(?:\s+(?:as\s+)?(?!set\b)[a-z_][a-z0-9_]*)?\s+set\b/g],
  ['delete', /\bdelete\s+from\s+([a-z_][a-z0-9_]*)/g],
  ['truncate', /\btruncate\s+(?:table\s+)?([a-z_][a-z0-9_]*)/g],
  ['merge', /\bmerge\s+into\s+([a-z_][a-z0-9_]*)/g],
];

const stripSqlComments = (sql: string) => sql.replace(/--[^\n]*/g, ' ');

/** The writes in a piece of SQL: which table, by which verb. */
function writesIn(sql: string): { verb: string; table: string }[] {
  const text = stripSqlComments(sql).toLowerCase();
  return WRITE_PATTERNS.flatMap(([verb, re]) => [...text.matchAll(re)].map((m) => ({ verb, table: m[1] })));
}

const writtenTables = (sql: string): string[] => writesIn(sql).map((w) => w.table);

/** Every string and template literal of a TypeScript file; a template's holes become `$x`. */
function literalsOf(file: string, source: string): string[] {
  const out: string[] = [];
  const visit = (node: ts.Node): void => {
    if (ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node)) out.push(node.text);
    else if (ts.isTemplateExpression(node)) out.push([node.head.text, ...node.templateSpans.map((s) => s.literal.text)].join(' $x '));
    ts.forEachChild(node, visit);
  };
  visit(ts.createSourceFile(file, source, ts.ScriptTarget.ES2022, false, ts.ScriptKind.TS));
  return out;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(path.join(REPO, dir), { withFileTypes: true }).flatMap((d) => {
    const rel = `${dir}/${d.name}`;
    if (d.isDirectory()) return sourceFiles(rel);
    return /\.ts$/.test(d.name) && !d.name.endsWith('.d.ts') && !NOT_SCANNED.some((p) => rel.startsWith(p)) ? [rel] : [];
  });
}

/** src/db/functions.sql: each function's name and body. */
function liveFunctions(sql: string): { name: string; body: string }[] {
  const parts = stripSqlComments(sql).split(/\bcreate\s+or\s+replace\s+function\s+/i).slice(1);
  return parts.map((p) => ({ name: /^([a-z_][a-z0-9_]*)/i.exec(p)![1].toLowerCase(), body: p }));
}

type Write = { table: string; verb: string; file: string; via?: string };

/** Every write in the tree: from TypeScript literals, and from the live functions (as their owners'). */
function scanWrites(files: { file: string; source: string }[], functionsSql: string): Write[] {
  const fromTs = files.flatMap(({ file, source }) =>
    literalsOf(file, source).flatMap((lit) => writesIn(lit).map((w) => ({ ...w, file }))));
  const fromFunctions = liveFunctions(functionsSql).flatMap(({ name, body }) =>
    writesIn(body).map((w) => ({ ...w, file: FUNCTION_OWNERS[name] ?? `(no owner: ${name})`, via: name })));
  return [...fromTs, ...fromFunctions];
}

/** Writes against the map: unknown tables, and writers that are not the owner nor pending. */
function violations(writes: Write[]): string[] {
  const out = new Set<string>();
  for (const w of writes) {
    const owner = TABLE_OWNERS[w.table];
    const where = w.via ? `${w.file} (SQL function ${w.via})` : w.file;
    if (!owner) out.add(`${w.table} (written by ${where}) has no owner in TABLE_OWNERS`);
    else if (w.file !== owner && !EXCEPTIONS.some((p) => p.table === w.table && p.file === w.file)) {
      out.add(`${w.table} is owned by ${owner} but written by ${where}`);
    }
  }
  return [...out].sort();
}

const readRepo = (rel: string) => readFileSync(path.join(REPO, rel), 'utf8');
const tree = () => ['src', 'activities', 'workflows'].flatMap(sourceFiles).map((file) => ({ file, source: readRepo(file) }));
const FUNCTIONS_SQL = readRepo('src/db/functions.sql');

describe('one owner per table', () => {
  const writes = scanWrites(tree(), FUNCTIONS_SQL);

  it('each table is written only by its owner under src/db/', () => {
    expect(violations(writes)).toEqual([]);
  });

  it('reads the writes it claims to check (the scan is not vacuous)', () => {
    const has = (table: string, file: string) => writes.some((w) => w.table === table && w.file === file);
    expect(has('deliveries', 'src/db/deliveries.ts')).toBe(true);
    expect(has('attempts', 'src/db/deliveries.ts')).toBe(true);
    expect(has('endpoint_gates', 'src/db/gate.ts')).toBe(true);
    expect(has('listen_requests', 'src/db/listen-requests.ts')).toBe(true);
    // The events INSERT (API, producer library, operational events) is src/db/events.ts's alone.
    const eventInserts = writes.filter((w) => w.table === 'events' && w.verb === 'insert');
    expect(eventInserts.length).toBeGreaterThan(0);
    expect(new Set(eventInserts.map((w) => w.file))).toEqual(new Set(['src/db/events.ts']));
  });

  it('finds a stray write, and names the writer', () => {
    const stray = { file: 'src/relay/retention.ts', source: "await db.query(`UPDATE attempts a SET error = ${'x'} WHERE id = $1`);" };
    expect(violations(scanWrites([stray], ''))).toEqual(['attempts is owned by src/db/deliveries.ts but written by src/relay/retention.ts']);
    expect(violations(scanWrites([{ file: 'src/x.ts', source: "q('DELETE FROM nobodys_table')" }], ''))).toEqual([
      'nobodys_table (written by src/x.ts) has no owner in TABLE_OWNERS',
    ]);
    // Comments, upsert arms and row locks are not writes.
    expect(writtenTables("SELECT 1 FROM t FOR UPDATE SKIP LOCKED -- then UPDATE x SET y\nON CONFLICT (k) DO UPDATE SET v = 1")).toEqual([]);
  });

  it('every exception still stands for a real write', () => {
    const stale = EXCEPTIONS.filter((p) => !writes.some((w) => w.table === p.table && w.file === p.file));
    expect(stale.map((p) => `${p.table} in ${p.file}: done (${p.until}); delete the entry`)).toEqual([]);
  });

  it('every table the migrations create has an owner', () => {
    const dir = 'src/db/migrations';
    const created = readdirSync(path.join(REPO, dir)).filter((f) => f.endsWith('.sql'))
      .flatMap((f) => [...stripSqlComments(readRepo(`${dir}/${f}`)).matchAll(/\bcreate\s+table\s+(?:if\s+not\s+exists\s+)?([a-z_][a-z0-9_]*)/gi)])
      .map((m) => m[1].toLowerCase());
    expect(created.filter((t) => !TABLE_OWNERS[t])).toEqual([]);
  });
});

describe('live SQL functions', () => {
  it('src/db/functions.sql holds every function the migrations leave, each with an owner', () => {
    const dir = 'src/db/migrations';
    const live = new Set<string>();
    for (const f of readdirSync(path.join(REPO, dir)).filter((n) => n.endsWith('.sql')).sort()) {
      const sql = stripSqlComments(readRepo(`${dir}/${f}`));
      // In order: a later DROP removes what an earlier CREATE made.
      for (const m of sql.matchAll(/\b(create(?:\s+or\s+replace)?|drop)\s+function\s+(?:if\s+exists\s+)?([a-z_][a-z0-9_]*)/gi)) {
        if (m[1].toLowerCase() === 'drop') live.delete(m[2].toLowerCase());
        else live.add(m[2].toLowerCase());
      }
    }
    const defined = liveFunctions(FUNCTIONS_SQL).map((f) => f.name);
    expect([...live].filter((n) => !defined.includes(n))).toEqual([]);
    expect(defined.filter((n) => !FUNCTION_OWNERS[n])).toEqual([]);
    // Only CREATE OR REPLACE: it runs on every start.
    expect(stripSqlComments(FUNCTIONS_SQL)).not.toMatch(/\bcreate\s+function\b/i);
  });

  it('functions that write are called only from modules under src/db/', () => {
    const writers = liveFunctions(FUNCTIONS_SQL).filter((f) => writtenTables(f.body).length > 0).map((f) => f.name);
    const callers = tree().flatMap(({ file, source }) => literalsOf(file, source)
      .flatMap((lit) => writers.filter((n) => new RegExp(`\\b${n}\\s*\\(`, 'i').test(lit)).map((n) => `${n} from ${file}`)));
    expect(callers.length).toBeGreaterThan(0);
    expect(callers.filter((c) => !c.split(' from ')[1].startsWith('src/db/'))).toEqual([]);
  });
});
