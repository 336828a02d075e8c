// One Temporal client per process (api, relay, tests): connect, retrying for a while so a role that
// starts alongside its Temporal server (docker compose, `hookline dev`) does not die on the race.
import { Client, Connection, type ConnectionLike } from '@temporalio/client';
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
      return { client: clientOn(connection, namespace), connection };
    } catch (err) {
      if (Date.now() + delay > deadline) {
        throw new Error(`cannot reach Temporal at ${address}: ${err instanceof Error ? err.message : String(err)}`);
      }
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, 2_000);
    }
  }
}

/**
 * A Client on an open connection: a client Connection, or a Worker's NativeConnection (the relay
 * inside `hookline worker`, which then can start workflows eagerly on that worker).
 */
export function clientOn(connection: ConnectionLike, namespace: string, identity?: string): Client {
  // Tracing on: workflow starts and signals carry the caller's trace context in their headers.
  return new Client({ connection, namespace, identity, interceptors: tracing()?.clientInterceptors() });
}
