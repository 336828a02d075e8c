// Bench-only baseline, bundled on its own (never registered by Hookline's worker): the least a
// Temporal user could write to deliver a webhook — one workflow, one activity that POSTs.
import { proxyActivities } from '@temporalio/workflow';
import type { BareActivities } from './activities';

const { post } = proxyActivities<BareActivities>({
  startToCloseTimeout: '20s',
  retry: { initialInterval: '500ms', maximumInterval: '10s' },
});

export async function bareDeliver(input: { url: string; id: string; body: string }): Promise<number> {
  return post(input);
}
