// Fault injection: the no-loss promise, tested by killing things. One round per fault, each with
// its own batch of events in flight when the fault hits:
//   worker    SIGKILL the worker mid-delivery, start a new one
//   relay     SIGKILL the process that relays the outbox while events are being submitted, start
//             a new one: the worker, which relays with eager starts (so the first workflow tasks
//             it had been handed die with it and come back through matching after the workflow
//             task timeout), or the relay role when HOOKLINE_WORKER_RELAY=false
//   api       SIGKILL the API right after it answered 202, start a new one; the producer retries
//             failed POSTs with the same Idempotency-Key, as a producer should
//   temporal  SIGKILL the Temporal dev server, restart it on the same SQLite file and port
//   receiver  the receiver refuses connections for a while, then comes back on the same port
// Every event that got a 202 must reach every subscribed endpoint (two here). Redeliveries are
// counted (at-least-once); the receiver applies each event through the kit's Postgres inbox
// (createInbox), so effects must be exactly one per event and endpoint.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { createInbox } from '../../src/receiver/inbox';
import { findFreePort } from '../../src/dev/processes';
import { sleep } from './procs';
import { createEndpoint, postJson, samplePayload } from './producer';
import { BenchReceiver, type VerifiedPath } from './receiver';
import { connectTemporal, createDatabase, HooklineRoles, PRAGMA_SETS, startTemporal, type Pragmas, type TemporalHandle } from './stack';
import { now, pool, round, table } from './stats';

export const FAULTS = ['worker', 'relay', 'api', 'temporal', 'receiver'] as const;
export type Fault = (typeof FAULTS)[number];

export interface ChaosOptions {
  /** Events submitted per fault round. */
  eventsPerFault: number;
  faults?: readonly Fault[];
  /** Postgres server to create the run's database on (postgres://…/postgres). */
  adminUrl: string;
  /** SQLite pragmas of the dev server; default WAL + synchronous=NORMAL. */
  pragmas?: Pragmas;
  /** A Temporal server the caller started and owns (e.g. on Postgres, bench/lib/temporal-postgres.ts);
   *  the temporal fault kills and restarts it through the handle. Default: a dev server of our own. */
  temporal?: TemporalHandle;
  /** How long a round may take to deliver everything after its fault; default 180 s. */
  settleTimeoutMs?: number;
  /** How long the receiver stays down; default 5 s. */
  receiverDownMs?: number;
  log?: (msg: string) => void;
}

export interface FaultResult {
  fault: Fault;
  accepted: number;
  /** Events delivered to every subscribed endpoint. */
  delivered: number;
  /** Accepted events some endpoint never got. Must be 0. */
  lost: number;
  /** HTTP deliveries beyond the first per event and endpoint (at-least-once). */
  duplicates: number;
  /** Effect rows the receiver wrote through its inbox; must be accepted × endpoints. */
  inboxEffects: number;
  /** Effects beyond one per event and endpoint. Must be 0. */
  extraEffects: number;
  /** POSTs the producer had to retry (connection refused/reset while the API was down). */
  producerRetries: number;
  /** Events rows of this round's type in Hookline's database (must equal accepted). */
  eventRows: number;
  /** Seconds from the fault until the last event of the round was delivered everywhere. */
  recoverySeconds: number;
  note: string;
}

export interface ChaosReport {
  endpoints: number;
  results: FaultResult[];
  ok: boolean;
  logDir: string;
}

const RETRY = { initialInterval: '200ms', backoffCoefficient: 2, maximumInterval: '2s', deadline: '30 minutes' };
const PATHS = ['/a', '/b'];

export async function runChaos(o: ChaosOptions): Promise<ChaosReport> {
  const log = o.log ?? ((m: string) => console.log(`[chaos ${new Date().toISOString().slice(11, 19)}] ${m}`));
  const faults = o.faults ?? FAULTS;
  const settleMs = o.settleTimeoutMs ?? 180_000;
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'hookline-chaos-'));
  const logDir = path.join(tmp, 'logs');
  mkdirSync(logDir);
  log(`temp dir ${tmp}`);

  const db = await createDatabase(o.adminUrl, 'hookline_chaos');
  const rxPool = new pg.Pool({ connectionString: db.url, max: 10 });
  rxPool.on('error', () => {});
  const verified = new Map<string, VerifiedPath>();
  const rx = new BenchReceiver(verified);
  let temporal: TemporalHandle | null = null;
  let roles: HooklineRoles | null = null;
  let connection: Awaited<ReturnType<typeof connectTemporal>>['connection'] | null = null;
  const results: FaultResult[] = [];
  let ok = true;
  try {
    await rxPool.query('CREATE TABLE chaos_effects (endpoint text NOT NULL, event_id text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())');
    await rx.up();
    temporal = o.temporal ?? await startTemporal({
      dbFile: path.join(tmp, 'temporal.db'),
      pragmas: o.pragmas ?? PRAGMA_SETS.wal,
      port: await findFreePort(),
    });
    const t = await connectTemporal(temporal.address);
    connection = t.connection;
    roles = new HooklineRoles({
      databaseUrl: db.url,
      temporalAddress: temporal.address,
      logDir,
      settings: {
        apiPort: await findFreePort(),
        env: {
          HOOKLINE_LOG_LEVEL: 'info',
          // A killed worker's activities come back after startToClose = request timeout + 5 s.
          HOOKLINE_REQUEST_TIMEOUT_MS: '3000',
          HOOKLINE_RELAY_POLL_MS: '500',
          // RETRY's 200 ms interval is below the API's 1 s floor; this run wants fast retries.
          HOOKLINE_MIN_RETRY_INTERVAL_MS: '100',
        },
      },
    });
    await roles.startAll(t.client);
    const api = roles.apiUrl;

    for (const [i, p] of PATHS.entries()) {
      const ep = await createEndpoint(api, { url: rx.url(p), eventTypes: ['chaos.*'], retry: RETRY, description: `chaos ${i}` });
      const inbox = createInbox(rxPool, { table: `chaos_inbox_${p.slice(1)}` });
      await inbox.ensureSchema();
      verified.set(p, {
        secret: ep.secret,
        inbox,
        effect: async (client, eventId) => {
          await client.query('INSERT INTO chaos_effects (endpoint, event_id) VALUES ($1, $2)', [p, eventId]);
        },
      });
    }

    const data = samplePayload(256);
    const r = roles;
    const tp = temporal;
    const client = t.client;

    for (const fault of faults) {
      const type = `chaos.${fault}`;
      const n = o.eventsPerFault;
      const accepted: string[] = [];
      let producerRetries = 0;
      let faultAt = 0;
      let note = '';
      const deliveredTo = (id: string) => PATHS.every((p) => rx.arrivals.has(rx.key(p, id)));
      const deliveredCount = () => accepted.filter((id) => PATHS.some((p) => rx.arrivals.has(rx.key(p, id)))).length;
      let onAccepted: (count: number) => void = () => {};

      // A producer: retries a POST that got no answer (or a 5xx) with the same Idempotency-Key.
      const submit = async (i: number) => {
        const key = `${fault}-${i}-${tmp.slice(-6)}`;
        for (let attempt = 0; ; attempt++) {
          try {
            const res = await postJson(`${api}/v1/events`, { type, data: { ...data, i } }, { 'idempotency-key': key });
            if (res.status === 202) {
              accepted.push(res.body.id);
              onAccepted(accepted.length);
              return;
            }
            if (res.status < 500) throw new Error(`POST /v1/events: ${res.status} ${JSON.stringify(res.body)}`);
          } catch (err) {
            if (/POST \/v1\/events: 4/.test(String(err))) throw err;
          }
          producerRetries += 1;
          if (attempt > 200) throw new Error(`event ${key} never accepted`);
          await sleep(Math.min(2_000, 100 * 2 ** Math.min(attempt, 5)));
        }
      };
      // Events go out evenly over a few seconds, so the fault lands while some are in each stage.
      const spreadMs = Math.max(3_000, n * 15);
      const submitAll = () => {
        const t0 = now();
        return pool(n, 8, async (i) => {
          const wait = t0 + (i * spreadMs) / n - now();
          if (wait > 0) await sleep(wait);
          await submit(i);
        });
      };

      log(`${fault}: ${n} events`);
      const started = now();
      let submitting: Promise<void>;
      switch (fault) {
        case 'worker': {
          submitting = submitAll();
          await waitUntil(() => deliveredCount() >= n / 4, 120_000, 'a quarter delivered');
          faultAt = now();
          await r.procs.worker!.kill();
          note = `worker SIGKILLed with ${deliveredCount()}/${n} delivered`;
          await sleep(1_000);
          r.start('worker');
          await r.ready('worker', client);
          break;
        }
        case 'relay': {
          // Mid-stream: the events accepted while it is down wait in the outbox.
          const role = r.relayRole;
          let killing: Promise<void> | null = null;
          onAccepted = (count) => {
            if (count >= n / 4 && !killing) {
              faultAt = now();
              killing = r.procs[role]!.kill();
            }
          };
          submitting = submitAll();
          await waitUntil(() => killing !== null, 120_000, 'a quarter accepted');
          await killing;
          note = `relay (${role === 'worker' ? 'in the worker' : 'its own process'}) SIGKILLed with ${accepted.length}/${n} accepted, ${deliveredCount()} delivered`;
          await sleep(2_000);
          r.start(role);
          await r.ready(role, client);
          break;
        }
        case 'api': {
          let killing: Promise<void> | null = null;
          onAccepted = (count) => {
            // Right after a 202: the next requests on the wire die with the process.
            if (count >= n / 2 && !killing) {
              faultAt = now();
              killing = r.procs.api!.kill();
            }
          };
          submitting = submitAll();
          await waitUntil(() => killing !== null, 120_000, 'half accepted');
          await killing;
          note = `API SIGKILLed right after 202 #${Math.ceil(n / 2)}`;
          await sleep(1_000);
          r.start('api');
          await r.ready('api');
          break;
        }
        case 'temporal': {
          submitting = submitAll();
          await waitUntil(() => deliveredCount() >= n / 4, 120_000, 'a quarter delivered');
          faultAt = now();
          await tp.kill();
          note = `Temporal SIGKILLed with ${deliveredCount()}/${n} delivered`;
          await sleep(2_000);
          await tp.restart();
          break;
        }
        case 'receiver': {
          submitting = submitAll();
          await waitUntil(() => deliveredCount() >= n / 4, 120_000, 'a quarter delivered');
          faultAt = now();
          await rx.down();
          note = `receiver down ${(o.receiverDownMs ?? 5_000) / 1000} s with ${deliveredCount()}/${n} delivered`;
          await sleep(o.receiverDownMs ?? 5_000);
          await rx.up();
          break;
        }
      }
      log(`${fault}: ${note}`);
      await submitting;
      const settled = await waitUntil(() => accepted.every(deliveredTo), settleMs, `${fault}: all delivered`).then(
        () => true,
        () => false,
      );
      const done = now();
      const ids = accepted;
      let duplicates = 0;
      for (const id of ids) for (const p of PATHS) duplicates += Math.max(0, (rx.arrivals.get(rx.key(p, id))?.count ?? 0) - 1);
      const effects = await rxPool.query<{ n: number; pairs: number }>(
        'SELECT count(*)::int AS n, count(DISTINCT (endpoint, event_id))::int AS pairs FROM chaos_effects WHERE event_id = ANY($1)',
        [ids],
      );
      const rows = await rxPool.query<{ n: number }>('SELECT count(*)::int AS n FROM events WHERE type = $1', [type]);
      const delivered = ids.filter(deliveredTo).length;
      const result: FaultResult = {
        fault,
        accepted: ids.length,
        delivered,
        lost: ids.length - delivered,
        duplicates,
        inboxEffects: effects.rows[0].n,
        extraEffects: effects.rows[0].n - effects.rows[0].pairs,
        producerRetries,
        eventRows: rows.rows[0].n,
        recoverySeconds: round((done - (faultAt || started)) / 1000, 1),
        note: settled ? note : `${note}; NOT settled within ${settleMs / 1000} s`,
      };
      const good =
        result.lost === 0 &&
        result.accepted === n &&
        result.extraEffects === 0 &&
        result.inboxEffects === n * PATHS.length &&
        result.eventRows === n;
      if (!good) ok = false;
      results.push(result);
      log(`${fault}: accepted ${result.accepted}, delivered ${delivered}, lost ${result.lost}, duplicates ${duplicates}, effects ${result.inboxEffects}`);
    }
  } finally {
    await roles?.stopAll().catch(() => {});
    await connection?.close().catch(() => {});
    if (!o.temporal) await temporal?.stop().catch(() => {});
    await rx.down().catch(() => {});
    await rxPool.end().catch(() => {});
    await db.drop().catch((err) => log(`could not drop ${db.name}: ${(err as Error).message}`));
  }
  if (ok) rmSync(tmp, { recursive: true, force: true });
  else log(`logs kept in ${logDir}`);
  return { endpoints: PATHS.length, results, ok, logDir };
}

export function chaosTable(report: ChaosReport): string {
  const rows: Array<Array<string | number>> = [
    ['fault', 'accepted', 'delivered', 'lost', 'duplicates', 'inbox effects', 'extra effects', 'producer retries', 'recovery s', 'what happened'],
    ...report.results.map((r) => [
      r.fault, r.accepted, r.delivered, r.lost, r.duplicates, r.inboxEffects, r.extraEffects, r.producerRetries, r.recoverySeconds, r.note,
    ]),
  ];
  return table(rows);
}

async function waitUntil(fn: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!fn()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}
