// The producer side of a bench or chaos run: POST /v1/events over keep-alive HTTP, recording
// when each request was sent and which event id the 202 named.
import http from 'node:http';
import { now, pool } from './stats';

const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });

export interface Submitted {
  id: string;
  /** When the POST was sent (ms, same clock as the receiver's). */
  sentAt: number;
  /** When the 202 came back. */
  acceptedAt: number;
}

export interface SubmitResult {
  status: number;
  body: any;
}

/** One POST; rejects on a connection error (API down), resolves with any HTTP answer. */
export function postJson(url: string, body: unknown, headers: Record<string, string> = {}): Promise<SubmitResult> {
  const payload = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      {
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload), ...headers },
        timeout: 30_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: unknown = text;
          try {
            json = JSON.parse(text);
          } catch {
            /* not JSON */
          }
          resolve({ status: res.statusCode ?? 0, body: json });
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(payload);
  });
}

export async function submitEvent(apiUrl: string, type: string, data: unknown, headers: Record<string, string> = {}): Promise<Submitted> {
  const sentAt = now();
  const res = await postJson(`${apiUrl}/v1/events`, { type, data }, headers);
  if (res.status !== 202) throw new Error(`POST /v1/events: ${res.status} ${JSON.stringify(res.body)}`);
  return { id: res.body.id, sentAt, acceptedAt: now() };
}

/** N events as fast as `concurrency` allows. */
export async function submitBurst(apiUrl: string, type: string, n: number, concurrency: number, payload: unknown): Promise<Submitted[]> {
  const out: Submitted[] = new Array(n);
  await pool(n, concurrency, async (i) => {
    out[i] = await submitEvent(apiUrl, type, { ...(payload as object), seq: i });
  });
  return out;
}

/** N events at a fixed rate (open loop: a slow answer does not delay the next send). */
export async function submitPaced(apiUrl: string, type: string, n: number, perSecond: number, payload: unknown): Promise<Submitted[]> {
  const started = now();
  const pending: Promise<Submitted>[] = [];
  for (let i = 0; i < n; i++) {
    const due = started + (i * 1000) / perSecond;
    const wait = due - now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    pending.push(submitEvent(apiUrl, type, { ...(payload as object), seq: i }));
  }
  return Promise.all(pending);
}

export async function createEndpoint(apiUrl: string, body: Record<string, unknown>): Promise<{ id: string; secret: string }> {
  const res = await postJson(`${apiUrl}/v1/endpoints`, body);
  if (res.status !== 201) throw new Error(`POST /v1/endpoints: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

/** ~`bytes` of JSON data, the payload every delivery in a run carries. */
export function samplePayload(bytes = 512): Record<string, unknown> {
  return { invoice: 'in_1234567890', amount: 4200, currency: 'eur', note: 'x'.repeat(Math.max(0, bytes - 80)) };
}
