// One Temporal client per process (api, relay, tests): connect, retrying for a while so a role that
// starts alongside its Temporal server (docker compose, `hookline dev`) does not die on the race.
import { Client, Connection } from '@temporalio/client';
import { tracing } from '../telemetry';

export interface ConnectClientOptions {
  /** Keep retrying an unreachable server this long; default 30 s. 0 = one attempt. */
  retryForMs?: number;
}

export async function connectClient(
  address: string,
  namespace: string,
  opts: ConnectClientOptions = {},
): Promise<{ client: Client; connection: Connection }> {
  const deadline = Date.now() + (opts.retryForMs ?? 30_000);
  let delay = 250;
  for (;;) {
    try {
      const connection = await Connection.connect({ address, connectTimeout: '5s' });
      // Tracing on: workflow starts and signals carry the caller's trace context in their headers.
      return { client: new Client({ connection, namespace, interceptors: tracing()?.clientInterceptors() }), connection };
    } catch (err) {
      if (Date.now() + delay > deadline) {
        throw new Error(`cannot reach Temporal at ${address}: ${err instanceof Error ? err.message : String(err)}`);
      }
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, 2_000);
    }
  }
}
