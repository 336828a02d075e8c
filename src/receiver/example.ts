// The example receiver behind `hookline receiver --secret … --port …`: a Fastify server that
// verifies every POST with the receiver kit, prints the event and answers 200. It is what a user
// points an endpoint at to watch deliveries, retries and rejections during development.
import Fastify from 'fastify';
import { webhookReceiver } from './fastify';
import { startTracing, stopTracing } from '../telemetry';

export interface ExampleReceiverOptions {
  /** One key or several during a rotation: `whsec_` secrets (prefix optional) and/or `whpk_` public keys. */
  secret: string | readonly string[];
  /** 0 picks a free port; `url` reports the one chosen. */
  port: number;
  host?: string;
  log?: (line: string) => void;
}

export interface ExampleReceiver {
  url: string;
  close(): Promise<void>;
}

// Remembered ids, to mark a redelivery (same webhook-id) as such; bounded so a long-running
// receiver does not grow without limit.
const SEEN_IDS_MAX = 10_000;

export async function startExampleReceiver(options: ExampleReceiverOptions): Promise<ExampleReceiver> {
  const { secret, port, host = '127.0.0.1', log = console.log } = options;
  // With OTEL_EXPORTER_OTLP_ENDPOINT set, each verification is a span in the delivery's trace.
  startTracing('receiver');
  const seen = new Set<string>();
  const app = Fastify({ logger: false });

  app.get('/healthz', async () => ({ ok: true }));

  await app.register(async (hooks) => {
    await hooks.register(webhookReceiver, {
      secrets: secret,
      onRejected: (request, err) => log(`rejected ${request.method} ${request.url}: ${err.reason}`),
    });
    // Any path, so whatever URL the endpoint was registered with reaches this handler.
    hooks.post('/*', async (request) => {
      const { id, payload } = request.webhook;
      const type = typeof payload === 'object' && payload !== null && 'type' in payload ? String(payload.type) : '?';
      const again = seen.has(id) ? ' (redelivery)' : '';
      seen.add(id);
      if (seen.size > SEEN_IDS_MAX) seen.delete(seen.values().next().value as string);
      log(`received ${id} ${type}${again}`);
      return { ok: true };
    });
  });

  const address = await app.listen({ port, host });
  return {
    url: `${address}/`,
    close: async () => {
      await app.close();
      await stopTracing();
    },
  };
}
