// `hookline api`: builds the app and listens; on SIGTERM/SIGINT it stops taking requests, lets
// those in flight finish, and startRole (src/roles/start-role.ts) closes the rest.
import type { Config } from '../config';
import { connectTemporalClient, startRole } from '../roles/start-role';
import { checkExposure } from './access';
import { buildApp } from './app';

const API_POOL_SIZE = 20;

export async function runApi(config: Config): Promise<void> {
  // First: an API the network can reach without a key must not start by accident.
  for (const warning of checkExposure(config)) console.error(`\n${warning}\n`);
  await startRole(config, {
    role: 'api',
    poolSize: API_POOL_SIZE,
    async connectTemporal(c) {
      const temporal = await connectTemporalClient(c);
      // Connecting ran the client's call-context AsyncLocalStorage (its connect deadline), and on
      // Node < 24 one that has run keeps async hooks on for every promise, timer and socket write
      // of the process: about 5% of the API's CPU per submitted event (`node:internal/async_hooks`
      // in a profile of the bench's submit phase), for a context only Temporal calls read. Nothing
      // is in flight here, so it goes off; a Temporal call (a replay, a gate wake) turns it on again.
      temporal.connection.callContextStorage.disable();
      return temporal;
    },
    async run({ config, pool, temporal, stopped }) {
      const app = await buildApp({ pool, config, temporal: { client: temporal.client, taskQueue: config.TEMPORAL_TASK_QUEUE } });
      try {
        await app.listen({ port: config.PORT, host: config.HOST });
        await stopped;
      } finally {
        await app.close();
      }
    },
  });
}
