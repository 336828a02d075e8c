// Child process: the raw HTTP baseline — N POSTs of the same body with Hookline's HTTP client
// (activities/http), `concurrency` at a time, no Temporal, no database. Prints one JSON line.
// Args: URL N CONCURRENCY BODY_BYTES
import { post } from '../../activities/http';
import { createTargetPolicy } from '../../src/net/address-policy';
import { samplePayload } from '../lib/producer';
import { now, pool } from '../lib/stats';

// The bench receivers listen on 127.0.0.1.
const LOOPBACK_ONLY = createTargetPolicy(['loopback']);

async function main(): Promise<void> {
  const [url, nArg, concArg, bytesArg] = process.argv.slice(2);
  const n = Number(nArg);
  const data = samplePayload(Number(bytesArg));
  const started = now();
  let failed = 0;
  await pool(n, Number(concArg), async (i) => {
    const id = `raw_${i}`;
    const body = JSON.stringify({ id, type: 'bench.raw', timestamp: new Date().toISOString(), data });
    const r = await post({
      url, body, headers: { 'content-type': 'application/json', 'webhook-id': id },
      timeoutMs: 15_000, maxResponseBytes: 64 * 1024, targetPolicy: LOOPBACK_ONLY,
    });
    if (r.kind !== 'response' || r.status !== 200) failed += 1;
  });
  console.log(JSON.stringify({ n, failed, elapsedMs: now() - started }));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
