// Child process of the bench's https phase: N webhook POSTs through the worker's own HTTP client
// (activities/http.ts), `concurrency` at a time, with connection reuse on or off.
// argv: url n concurrency payloadBytes reuse(1|0). The receiver's self-signed certificate is
// trusted through NODE_EXTRA_CA_CERTS, as the worker trusts it. Prints one JSON line.
import { post } from '../../activities/http';
import { createTargetPolicy } from '../../src/net/address-policy';
import { pool } from './stats';

async function main(): Promise<void> {
  const [url, n, concurrency, payloadBytes, reuse] = process.argv.slice(2);
  const body = JSON.stringify({ id: 'evt_bench', type: 'bench.https', data: { pad: 'x'.repeat(Number(payloadBytes)) } });
  // One policy for the run: the HTTP client keeps one keep-alive agent pair per policy object,
  // so a policy made per POST would give every POST a fresh agent and measure no reuse at all.
  const targetPolicy = createTargetPolicy(['loopback']);
  let failed = 0;
  let firstError = '';
  const cpu0 = process.cpuUsage();
  const started = performance.now();
  await pool(Number(n), Number(concurrency), async () => {
    const r = await post({
      url, body, headers: { 'content-type': 'application/json' }, timeoutMs: 15_000, maxResponseBytes: 64 * 1024,
      targetPolicy, reuseConnection: reuse === '1',
    });
    if (r.kind !== 'response' || r.status !== 200) {
      failed++;
      firstError ||= r.kind === 'error' ? `${r.code}: ${r.message}` : `HTTP ${r.status}`;
    }
  });
  const elapsedMs = performance.now() - started;
  const cpu = process.cpuUsage(cpu0);
  console.log(JSON.stringify({ n: Number(n), failed, firstError, elapsedMs, cpuMs: (cpu.user + cpu.system) / 1000 }));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
