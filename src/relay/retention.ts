// Retention (HOOKLINE_RETENTION_DAYS): the relay deletes what is older than the retention and
// finished — events with their deliveries (ON DELETE CASCADE) and attempts, and secrets that
// stopped signing. An event whose workflow may still need it is never deleted: it still has an
// outbox row (not started yet) or a delivery that is pending, delivering or dead_lettered
// (parked, waiting for a replay). Deletes run in bounded batches so no transaction holds many
// locks or runs long; rows another relay is deleting are skipped, not waited for. The deletes
// themselves are the owning modules' (src/db/events.ts, deliveries.ts, endpoints.ts); this
// module decides what is old and finished, and when.
import { withTransaction, type Pool } from '../db/pool';
import { purgeExpiredSecrets } from '../db/endpoints';
import { deleteFinishedEvents } from '../db/events';
import { deleteAttemptsOfEvents, type DeliveryStatus } from '../db/deliveries';
import type { Logger } from '../logger';

/** The states a delivery never leaves: its workflow is done with it. */
const FINAL_STATUSES: DeliveryStatus[] = ['delivered', 'dropped'];

export const RETENTION_BATCH_SIZE = 500;
// Hourly is plenty for a retention counted in days; the first pass runs soon after start.
const RETENTION_INTERVAL_MS = 60 * 60 * 1000;
const FIRST_PASS_DELAY_MS = 5_000;

export interface RetentionResult {
  events: number;
  attempts: number;
  secrets: number;
}

/** Deletes one batch of finished events older than `days`, with their attempts, in one transaction. */
async function purgeEventBatch(pool: Pool, days: number, batchSize: number): Promise<{ events: number; attempts: number }> {
  return withTransaction(pool, async (db) => {
    const ids = await deleteFinishedEvents(db, days, batchSize, FINAL_STATUSES);
    return { events: ids.length, attempts: await deleteAttemptsOfEvents(db, ids) };
  });
}

/** One retention pass: batches until nothing old and finished is left. `days` 0 keeps everything. */
export async function purgeExpiredData(pool: Pool, days: number, batchSize = RETENTION_BATCH_SIZE): Promise<RetentionResult> {
  const total: RetentionResult = { events: 0, attempts: 0, secrets: 0 };
  if (days <= 0) return total;
  for (;;) {
    const batch = await purgeEventBatch(pool, days, batchSize);
    total.events += batch.events;
    total.attempts += batch.attempts;
    if (batch.events < batchSize) break;
  }
  total.secrets = await purgeExpiredSecrets(pool, days);
  return total;
}

/** Runs retention passes in the background (soon after start, then hourly); returns a stop. */
export function startRetention(o: { pool: Pool; days: number; log: Logger; firstPassDelayMs?: number }): () => void {
  if (o.days <= 0) {
    o.log.info('HOOKLINE_RETENTION_DAYS=0: retention is off, nothing is deleted');
    return () => {};
  }
  let running: Promise<void> | null = null;
  const pass = () => {
    if (running) return;
    running = purgeExpiredData(o.pool, o.days)
      .then((r) => {
        if (r.events || r.secrets) o.log.info({ ...r, retentionDays: o.days }, 'retention: deleted old finished data');
      })
      .catch((err) => o.log.warn({ err: (err as Error).message }, 'retention pass failed; will retry next hour'))
      .finally(() => {
        running = null;
      });
  };
  const first = setTimeout(pass, o.firstPassDelayMs ?? FIRST_PASS_DELAY_MS);
  const every = setInterval(pass, RETENTION_INTERVAL_MS);
  first.unref();
  every.unref();
  return () => {
    clearTimeout(first);
    clearInterval(every);
  };
}
