// Child process: a Temporal worker for the bare baseline, with Hookline's worker settings
// (HOOKLINE_WORKER_MAX_ACTIVITIES) so only the workflow differs. Env: TEMPORAL_ADDRESS,
// TEMPORAL_TASK_QUEUE. Stops on SIGTERM/SIGINT (Worker.run drains).
import { NativeConnection, Worker } from '@temporalio/worker';
import { createBareActivities } from './activities';

async function main(): Promise<void> {
  const connection = await NativeConnection.connect({ address: process.env.TEMPORAL_ADDRESS! });
  try {
    const worker = await Worker.create({
      connection,
      namespace: 'default',
      taskQueue: process.env.TEMPORAL_TASK_QUEUE!,
      workflowsPath: require.resolve('./workflows'),
      activities: createBareActivities(),
      maxConcurrentActivityTaskExecutions: Number(process.env.HOOKLINE_WORKER_MAX_ACTIVITIES ?? 200),
    });
    console.log('bare worker started');
    await worker.run();
  } finally {
    await connection.close();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
