// The receiving end of a bench or chaos run: a plain node:http server on 127.0.0.1 that records,
// per endpoint path and webhook-id, when a delivery first arrived and how often it came.
// In chaos mode each path verifies signatures with the receiver kit and applies the event
// through the kit's Postgres inbox, so a redelivery shows up as a duplicate and not an effect.
// It can be taken down (connections refused) and brought back on the same port.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { PoolClient } from 'pg';
import { verifyWebhook, WebhookVerificationError } from '../../src/receiver/verify';
import type { Inbox } from '../../src/receiver/inbox';

export interface VerifiedPath {
  secret: string;
  inbox: Inbox;
  /** The effect, written through the inbox's transaction. */
  effect: (client: PoolClient, eventId: string, payload: unknown) => Promise<void>;
}

export interface Arrival {
  /** performance.timeOrigin-based ms of the first 2xx-answered arrival. */
  first: number;
  /** 2xx-answered arrivals. */
  count: number;
}

export class BenchReceiver {
  port = 0;
  /** `${path} ${webhook-id}` → first arrival and count (2xx answers only). */
  readonly arrivals = new Map<string, Arrival>();
  /** Distinct ids per path. */
  readonly distinct = new Map<string, number>();
  total = 0;
  rejected = 0;
  failed = 0;
  /** Inbox said "already done" (a redelivery whose effect was not applied again). */
  inboxDuplicates = 0;
  /** Time of the last new (first) arrival. */
  lastFirst = 0;
  private server: http.Server | null = null;

  constructor(private readonly verified?: Map<string, VerifiedPath>) {}

  url(p: string): string {
    return `http://127.0.0.1:${this.port}${p}`;
  }

  key(p: string, id: string): string {
    return `${p} ${id}`;
  }

  get isUp(): boolean {
    return this.server !== null;
  }

  async up(port = this.port): Promise<void> {
    const server = http.createServer((req, res) => this.handle(req, res));
    server.keepAliveTimeout = 5_000;
    for (let attempt = 0; ; attempt++) {
      try {
        await new Promise<void>((resolve, reject) => {
          server.once('error', reject);
          server.listen(port, '127.0.0.1', () => {
            server.removeListener('error', reject);
            resolve();
          });
        });
        break;
      } catch (err) {
        if (attempt > 40 || (err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
        await new Promise((r) => setTimeout(r, 250));
      }
    }
    this.port = (server.address() as AddressInfo).port;
    this.server = server;
  }

  /** Stops listening and drops open connections: senders see ECONNREFUSED / resets. */
  async down(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = null;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private record(p: string, id: string): void {
    const k = this.key(p, id);
    const a = this.arrivals.get(k);
    this.total += 1;
    if (a) {
      a.count += 1;
      return;
    }
    const now = performance.timeOrigin + performance.now();
    this.arrivals.set(k, { first: now, count: 1 });
    this.distinct.set(p, (this.distinct.get(p) ?? 0) + 1);
    this.lastFirst = now;
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const p = (req.url ?? '/').split('?')[0];
      const id = String(req.headers['webhook-id'] ?? '');
      const v = this.verified?.get(p);
      if (!v) {
        this.record(p, id);
        res.writeHead(200).end();
        return;
      }
      let payload: unknown;
      try {
        payload = verifyWebhook({ headers: req.headers, rawBody: Buffer.concat(chunks), secrets: v.secret }).payload;
      } catch (err) {
        this.rejected += 1;
        res.writeHead(err instanceof WebhookVerificationError ? 401 : 500).end();
        return;
      }
      v.inbox.handle(id, (client) => v.effect(client, id, payload)).then(
        (r) => {
          if (r.duplicate) this.inboxDuplicates += 1;
          this.record(p, id);
          res.writeHead(200).end();
        },
        () => {
          this.failed += 1;
          res.writeHead(503).end();
        },
      );
    });
  }
}
