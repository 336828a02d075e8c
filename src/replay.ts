// Replay: wake parked dead letters, or resend delivered ones, through the workflow's `replay`
// signal. signalWithStart reaches a running workflow, and starts a new run of a closed one
// (the event's workflow id is reused on purpose here, and only here).
import type { Client } from '@temporalio/client';
import { WorkflowIdReusePolicy } from '@temporalio/common';
import type { deliverEvent, ReplayArgs } from '../workflows/deliver-event';
import { workflowStartMetadata } from './temporal/workflow-details';

export async function replay(client: Client, taskQueue: string, eventId: string, eventType: string, endpointIds: string[], tenantId?: string): Promise<void> {
  await client.workflow.signalWithStart<typeof deliverEvent, [ReplayArgs]>('deliverEvent', {
    workflowId: eventId,
    taskQueue,
    args: [{ eventId, onlyEndpointIds: endpointIds }],
    signal: 'replay',
    signalArgs: [{ endpointIds }],
    workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
    // The summary and details show only when this starts a new run (the workflow had closed).
    ...workflowStartMetadata(eventType, eventId, endpointIds, endpointIds, tenantId),
  });
}
