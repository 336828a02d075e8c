// Child process: the submit-path baseline — a bare Fastify route that writes one row per event
// with the API's pool size, and nothing else (no validation library, no transaction, no outbox).
// Env: DATABASE_URL, PORT.
import Fastify from 'fastify';
import { createPool } from '../../src/db/pool';
import { newEventId } from '../../src/ids';

async function main(): Promise<void> {
  const pool = createPool(process.env.DATABASE_URL!, 20);
  await pool.query('CREATE TABLE IF NOT EXISTS bench_submit (id text PRIMARY KEY, type text NOT NULL, data jsonb NOT NULL, created_at timestamptz NOT NULL DEFAULT now())');
  const app = Fastify({ logger: false });
  app.post<{ Body: { type: string; data: unknown } }>('/v1/events', async (req, reply) => {
    const id = newEventId();
    await pool.query('INSERT INTO bench_submit (id, type, data) VALUES ($1, $2, $3)', [id, req.body.type, JSON.stringify(req.body.data)]);
    return reply.code(202).send({ id, type: req.body.type });
  });
  app.get('/healthz', async () => ({ ok: true }));
  await app.listen({ port: Number(process.env.PORT), host: '127.0.0.1' });
  const stop = async () => {
    await app.close();
    await pool.end();
    process.exit(0);
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
