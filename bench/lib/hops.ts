// Where the light-load latency goes, hop by hop, from timestamps the pipeline already keeps
// (no instrumentation in the product): the producer's send and 202, the event row's created_at
// (the API's transaction), the workflow's history (started = the relay's start reached Temporal;
// first workflow task started = a worker polled it; completed), the attempt's started_at (the
// worker, just before the POST) and the receiver's first arrival. All clocks are this box's.
import pg from 'pg';
import type { Client } from '@temporalio/client';
import { latency, type Latency } from './stats';

export interface HopSample {
  id: string;
  sentAt: number;
  acceptedAt: number;
  arrivedAt: number;
}

const HOPS = [
  ['api', 'POST sent → event row (request parsing, connection, BEGIN)'],
  ['commit+notify+relay', 'event row → workflow started in Temporal (commit, 202, NOTIFY, claim, plan, start RPC)'],
  ['dispatch', 'workflow started → first workflow task picked up by the worker (matching)'],
  ['worker', 'workflow task picked up → attempt started (activation, local activity, load queries)'],
  ['post', 'attempt started → receiver got it (sign, HTTP)'],
  ['total', 'POST sent → receiver got it'],
] as const;

export type HopBreakdown = Record<(typeof HOPS)[number][0], Latency> & { samples: number; legend: Record<string, string> };

const ms = (t: { seconds?: unknown; nanos?: number | null } | null | undefined): number =>
  t ? Number(t.seconds ?? 0) * 1000 + (t.nanos ?? 0) / 1e6 : NaN;

export async function hopBreakdown(databaseUrl: string, client: Client, samples: HopSample[]): Promise<HopBreakdown> {
  const db = new pg.Client({ connectionString: databaseUrl });
  await db.connect();
  const ids = samples.map((s) => s.id);
  const rows = new Map<string, { created: number; attempt: number }>();
  try {
    const { rows: r } = await db.query(
      `SELECT e.id, extract(epoch FROM e.created_at) * 1000 AS created,
              (SELECT extract(epoch FROM min(a.started_at)) * 1000 FROM attempts a WHERE a.event_id = e.id) AS attempt
       FROM events e WHERE e.id = ANY($1)`,
      [ids],
    );
    for (const x of r) rows.set(x.id, { created: Number(x.created), attempt: Number(x.attempt) });
  } finally {
    await db.end();
  }
  const hops: Record<string, number[]> = Object.fromEntries(HOPS.map(([k]) => [k, []]));
  for (const s of samples) {
    const row = rows.get(s.id);
    if (!row) continue;
    const history = await client.workflow.getHandle(s.id).fetchHistory();
    const events = history.events ?? [];
    const started = ms(events[0]?.eventTime);
    const taskStarted = ms(events.find((e) => e.workflowTaskStartedEventAttributes)?.eventTime);
    hops.api.push(row.created - s.sentAt);
    hops['commit+notify+relay'].push(started - row.created);
    hops.dispatch.push(taskStarted - started);
    hops.worker.push(row.attempt - taskStarted);
    hops.post.push(s.arrivedAt - row.attempt);
    hops.total.push(s.arrivedAt - s.sentAt);
  }
  const out = Object.fromEntries(HOPS.map(([k]) => [k, latency(hops[k])])) as unknown as HopBreakdown;
  out.samples = hops.total.length;
  out.legend = Object.fromEntries(HOPS);
  return out;
}
