// `npm run chaos`: kill each part of Hookline in turn with events in flight and check that every
// accepted event reached every endpoint, exactly one inbox effect each. Prints a per-fault table
// and exits non-zero if anything was lost. See bench/lib/chaos.ts for the faults.
//
// Options (flag or env): --events/CHAOS_EVENTS (200 per fault), --faults/CHAOS_FAULTS (comma
// list of worker,relay,api,temporal,receiver), --pragmas/BENCH_PRAGMAS (wal | default).
// DATABASE_URL: the Postgres server to create the run's database on.
import { parseArgs } from 'node:util';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { chaosTable, FAULTS, runChaos, type Fault } from './lib/chaos';
import { DEFAULT_ADMIN_URL, PRAGMA_SETS } from './lib/stack';

Runtime.install({ logger: new DefaultLogger('ERROR') });

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { events: { type: 'string' }, faults: { type: 'string' }, pragmas: { type: 'string' } } });
  const events = Number(values.events ?? process.env.CHAOS_EVENTS ?? 200);
  const faults = (values.faults ?? process.env.CHAOS_FAULTS ?? FAULTS.join(',')).split(',').map((f) => f.trim()) as Fault[];
  for (const f of faults) if (!FAULTS.includes(f)) throw new Error(`unknown fault ${f} (one of ${FAULTS.join(', ')})`);
  const pragmas = values.pragmas ?? process.env.BENCH_PRAGMAS ?? 'wal';
  if (!PRAGMA_SETS[pragmas]) throw new Error(`pragmas: ${Object.keys(PRAGMA_SETS).join(' or ')}`);
  const started = Date.now();
  const report = await runChaos({
    eventsPerFault: events,
    faults,
    adminUrl: process.env.DATABASE_URL || DEFAULT_ADMIN_URL,
    pragmas: PRAGMA_SETS[pragmas],
  });
  console.log(`\nHookline chaos — ${events} events per fault, ${report.endpoints} endpoints each, Temporal dev server SQLite ${pragmas}, ${Math.round((Date.now() - started) / 1000)} s\n`);
  console.log(chaosTable(report));
  const lost = report.results.reduce((a, r) => a + r.lost, 0);
  console.log(report.ok ? '\nOK: nothing lost, one inbox effect per event and endpoint.' : `\nFAILED: ${lost} event(s) lost or effects wrong; logs in ${report.logDir}`);
  process.exitCode = report.ok ? 0 : 1;
}

main().catch((err) => {
  console.error(`chaos: ${err instanceof Error ? err.stack : err}`);
  process.exit(1);
});
