// Chaos on the production engine: SIGKILL the Temporal server on Postgres (the one
// scripts/test-temporal-postgres.sh started) while events stream in, restart it on the same
// databases and port, and require every accepted event at both endpoints, one inbox effect each.
// The same round as the dev server's `temporal` fault in test/chaos.test.ts (bench/lib/chaos.ts).
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { chaosTable, runChaos } from '../../bench/lib/chaos';
import { DEFAULT_ADMIN_URL } from '../../bench/lib/stack';
import { postgresTemporal, postgresTemporalEnv } from '../../bench/lib/temporal-postgres';

const EVENTS = Number(process.env.CHAOS_TEST_EVENTS ?? 60);
const tmp = mkdtempSync(path.join(os.tmpdir(), 'hookline-tpg-chaos-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('chaos on Temporal + Postgres', () => {
  it('loses no accepted event when the Temporal server is SIGKILLed mid-stream and restarted', async () => {
    // Throws (fails the test, never skips) outside test-temporal-postgres.sh.
    const env = postgresTemporalEnv();
    const pidBefore = readFileSync(env.pidFile, 'utf8').trim();
    const temporal = postgresTemporal({ ...env, logFile: path.join(tmp, 'restart.log') });

    const report = await runChaos({
      eventsPerFault: EVENTS,
      faults: ['temporal'],
      temporal,
      adminUrl: process.env.TEST_DATABASE_URL || DEFAULT_ADMIN_URL,
      settleTimeoutMs: 120_000,
      log: () => {},
    });
    console.log(`chaos on Temporal + Postgres, ${EVENTS} events to ${report.endpoints} endpoints\n${chaosTable(report)}`);

    // The fault really happened: a new server process now serves the same databases and port.
    const pidAfter = readFileSync(env.pidFile, 'utf8').trim();
    expect(pidAfter).not.toBe(pidBefore);
    expect(() => process.kill(Number(pidBefore), 0)).toThrow();

    const [r] = report.results;
    expect({ fault: r.fault, accepted: r.accepted, delivered: r.delivered, lost: r.lost }).toEqual({
      fault: 'temporal', accepted: EVENTS, delivered: EVENTS, lost: 0,
    });
    // Redeliveries are allowed (counted in r.duplicates); effects are one per event and endpoint.
    expect(r.inboxEffects).toBe(EVENTS * report.endpoints);
    expect(r.extraEffects).toBe(0);
    expect(r.eventRows).toBe(EVENTS);
    expect(report.ok).toBe(true);
  });
});
