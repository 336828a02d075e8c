// Fault injection, small: the CI-sized run of `npm run chaos` (bench/lib/chaos.ts). Its own
// Temporal dev server on a SQLite file (the shared one cannot be killed and restarted), its own
// database, and api, relay and worker as child processes. Each fault gets its own batch of
// events in flight; every accepted event must reach both endpoints, one inbox effect each.
import { describe, expect, it } from 'vitest';
import { chaosTable, FAULTS, runChaos } from '../bench/lib/chaos';
import { DEFAULT_ADMIN_URL } from '../bench/lib/stack';

const EVENTS_PER_FAULT = Number(process.env.CHAOS_TEST_EVENTS ?? 30);

describe('chaos: kill each part with events in flight', () => {
  it('loses no accepted event and applies each exactly once through the inbox', async () => {
    const report = await runChaos({
      eventsPerFault: EVENTS_PER_FAULT,
      adminUrl: process.env.TEST_DATABASE_URL || DEFAULT_ADMIN_URL,
      settleTimeoutMs: 120_000,
      receiverDownMs: 3_000,
      log: () => {},
    });
    console.log(`chaos, ${EVENTS_PER_FAULT} events per fault\n${chaosTable(report)}`);

    expect(report.results.map((r) => r.fault)).toEqual([...FAULTS]);
    for (const r of report.results) {
      expect({ fault: r.fault, accepted: r.accepted, delivered: r.delivered, lost: r.lost }).toEqual({
        fault: r.fault, accepted: EVENTS_PER_FAULT, delivered: EVENTS_PER_FAULT, lost: 0,
      });
      // One effect per event and endpoint, however often it was delivered.
      expect(r.inboxEffects).toBe(EVENTS_PER_FAULT * report.endpoints);
      expect(r.extraEffects).toBe(0);
      // Retried POSTs with the same Idempotency-Key never made a second event.
      expect(r.eventRows).toBe(EVENTS_PER_FAULT);
    }
    // The API fault really cut requests off mid-flight, so the producer had to retry.
    expect(report.results.find((r) => r.fault === 'api')!.producerRetries).toBeGreaterThan(0);
    expect(report.ok).toBe(true);
  }, 300_000);
});
