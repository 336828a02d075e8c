// Bench-only baselines, bundled on their own (never registered by Hookline's worker): the least
// a Temporal user could write, on the same server and worker settings as Hookline.
//   emptyWorkflow  returns at once: the floor of one workflow per event
//   localDeliver   one LOCAL activity that POSTs: the floor of a webhook in one workflow task
//   bareDeliver    one regular activity that POSTs: what a first Temporal webhook sender does
import { proxyActivities, proxyLocalActivities } from '@temporalio/workflow';
import type { BareActivities } from './activities';

const RETRY = { initialInterval: '500ms', maximumInterval: '10s' } as const;

const { post } = proxyActivities<BareActivities>({ startToCloseTimeout: '20s', retry: RETRY });
const local = proxyLocalActivities<BareActivities>({ startToCloseTimeout: '20s', retry: RETRY });

export async function bareDeliver(input: { url: string; id: string; body: string }): Promise<number> {
  return post(input);
}

export async function localDeliver(input: { url: string; id: string; body: string }): Promise<number> {
  return local.post(input);
}

export async function emptyWorkflow(): Promise<void> {}
