// Replay: wake parked dead letters, or resend delivered ones, through the workflow's `replay`
// signal. signalWithStart reaches a running workflow, and starts a new run of a closed one
// (the event's workflow id is reused on purpose here, and only here).
import type { Client } from '@temporalio/client';
import { WorkflowIdReusePolicy, TypedSearchAttributes } from '@temporalio/common';
import type { deliverEvent, ReplayArgs } from '../workflows/deliver-event';
import { EventType, DeliveryStatus } from './search-attributes';
import { workflowStaticDetails, workflowSummary } from './temporal/web-ui';

export async function replay(client: Client, taskQueue: string, eventId: string, eventType: string, endpointIds: string[]): Promise<void> {
  await client.workflow.signalWithStart<typeof deliverEvent, [ReplayArgs]>('deliverEvent', {
    workflowId: eventId,
    taskQueue,
    args: [{ eventId, onlyEndpointIds: endpointIds }],
    signal: 'replay',
    signalArgs: [{ endpointIds }],
    workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
    typedSearchAttributes: new TypedSearchAttributes([
      { key: EventType, value: eventType },
      { key: DeliveryStatus, value: 'delivering' },
    ]),
    // Shown only when this starts a new run (the event's workflow had closed).
    staticSummary: workflowSummary(eventType, eventId, true),
    staticDetails: workflowStaticDetails(eventType, eventId, endpointIds),
  });
}
