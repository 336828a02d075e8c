// One Postgres LISTEN connection per process and channel, for the listen relay's wake-ups
// (src/listen/hub.ts in the API, activities/listen-transport.ts in the worker). A notification
// only makes a waiter look sooner: every waiter also polls, so a notification lost while this
// connection was down (database restart, reconnect) delays a delivery by one poll, never loses it.
import pg from 'pg';

const RECONNECT_MS = 1_000;

export class PgChannel {
  private client: pg.Client | null = null;
  private closed = false;
  private connecting: Promise<void> | null = null;

  constructor(
    private readonly connectionString: string,
    private readonly channel: string,
    private readonly onPayload: (payload: string) => void,
    /** Asked before reconnecting: an owner with nobody waiting lets the connection go. */
    private readonly wanted: () => boolean = () => true,
  ) {}

  /** Connects and LISTENs (once; later calls wait for the same attempt). Never throws. */
  start(): Promise<void> {
    if (this.closed || this.client) return Promise.resolve();
    this.connecting ??= this.connect().finally(() => (this.connecting = null));
    return this.connecting;
  }

  private async connect(): Promise<void> {
    const client = new pg.Client({ connectionString: this.connectionString, application_name: 'hookline-listen' });
    client.on('error', () => this.lost(client));
    client.on('end', () => this.lost(client));
    client.on('notification', (n) => {
      if (n.channel === this.channel && n.payload) this.onPayload(n.payload);
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${this.channel}`);
      if (this.closed) return void client.end().catch(() => {});
      this.client = client;
    } catch {
      client.end().catch(() => {});
      this.retryLater();
    }
  }

  private retryLater(): void {
    setTimeout(() => {
      if (!this.closed && this.wanted()) void this.start();
    }, RECONNECT_MS).unref();
  }

  private lost(client: pg.Client): void {
    if (this.client !== client) return;
    this.client = null;
    client.end().catch(() => {});
    this.retryLater();
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.connecting;
    const c = this.client;
    this.client = null;
    await c?.end().catch(() => {});
  }
}
