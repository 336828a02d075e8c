// The API side of `hookline listen`: the streams this API process holds (one per connected
// session), and the loop that feeds them. A worker queues an attempt in listen_requests and
// NOTIFYs hookline_listen with the session id; the API holding that session claims the request
// and writes it down the stream; the CLI's answer comes back through the results route
// (answerRequest). A heartbeat keeps each held session marked connected, notices a session taken
// over by a newer stream (possibly on another replica), re-reads queued requests in case a
// notification was lost, and, on the API that runs it, sweeps sessions gone past their grace.
import { randomBytes } from 'node:crypto';
import type { FastifyBaseLogger } from 'fastify';
import type { Pool } from '../db/pool';
import { PgChannel } from './channel';
import { claimRequests, REQUEST_CHANNEL, takeWaiters, type ClaimedRequest } from '../db/listen-requests';
import { existingSessions, HEARTBEAT_MS, heartbeat, releaseSession, takeSession } from '../db/listen-sessions';
import { sessionName, sweepSessions } from './sessions';

/** SSE comment lines keep proxies (nginx's proxy_read_timeout is 30 s) from closing a quiet stream. */
const PING_MS = 15_000;

/** One connected CLI, as the route hands it over: the hub only writes events and ends it. */
export interface ListenStream {
  send(event: string, data: unknown): void;
  ping(): void;
  end(): void;
}

interface Held {
  sessionId: string;
  holder: string;
  stream: ListenStream;
  pumping: boolean;
  again: boolean;
}

export interface HubOptions {
  pool: Pool;
  databaseUrl: string;
  graceMs: number;
  log: FastifyBaseLogger;
  /**
   * Wakes a delivery paused for this session's listener (a gateOpen signal to its workflow).
   * Absent (an API without Temporal): paused deliveries look again at their own timers.
   */
  wake?: (workflowId: string, endpointId: string) => Promise<void>;
}

export class ListenHub {
  private readonly held = new Map<string, Held>();
  private channel: PgChannel | null = null;
  private beat: NodeJS.Timeout | undefined;
  private sweeper: NodeJS.Timeout | undefined;
  private lastPing = Date.now();

  constructor(private readonly opts: HubOptions) {}

  /** Sweeps on a period tied to the grace (so a short test grace is honoured), at most a minute. */
  startSweeping(): void {
    const every = Math.min(60_000, Math.max(250, Math.floor(this.opts.graceMs / 2)));
    this.sweeper = setInterval(() => void this.sweep(), every);
    this.sweeper.unref();
  }

  async sweep(): Promise<string[]> {
    try {
      const removed = await sweepSessions(this.opts.pool, this.opts.graceMs);
      if (removed.length) this.opts.log.info({ endpoints: removed }, 'listen: removed endpoints of sessions gone past the grace period');
      return removed;
    } catch (err) {
      this.opts.log.warn({ err: (err as Error).message }, 'listen: sweep failed');
      return [];
    }
  }

  /** A new stream takes the session (ending an older one on this process); returns its release. */
  async attach(sessionId: string, stream: ListenStream): Promise<() => Promise<void>> {
    const holder = `lc_${randomBytes(9).toString('base64url')}`;
    await takeSession(this.opts.pool, sessionId, holder);
    const previous = this.held.get(sessionId);
    const entry: Held = { sessionId, holder, stream, pumping: false, again: false };
    this.held.set(sessionId, entry);
    if (previous) this.replaced(previous);
    this.ensureRunning();
    await this.channel!.start();
    void this.pump(entry);
    void this.wakeWaiters(sessionId);
    return async () => {
      if (this.held.get(sessionId) === entry) this.held.delete(sessionId);
      await releaseSession(this.opts.pool, sessionId, holder).catch(() => {});
      this.stopWhenEmpty();
    };
  }

  /** The deliveries that paused while nobody listened go now, not at their recheck timers. */
  private async wakeWaiters(sessionId: string): Promise<void> {
    const wake = this.opts.wake;
    if (!wake) return;
    try {
      const waiters = await takeWaiters(this.opts.pool, sessionId);
      // A workflow closed meanwhile, or Temporal unreachable: that delivery's own timer covers it.
      await Promise.all(waiters.map((w) => wake(w.workflowId, w.endpointId).catch(() => {})));
    } catch (err) {
      this.opts.log.warn({ err: (err as Error).message }, 'listen: could not wake paused deliveries');
    }
  }

  private replaced(entry: Held): void {
    entry.stream.send('replaced', { session: sessionName(entry.sessionId), message: 'another hookline listen took over this session' });
    entry.stream.end();
  }

  private ensureRunning(): void {
    this.channel ??= new PgChannel(
      this.opts.databaseUrl,
      REQUEST_CHANNEL,
      (sessionId) => {
        const entry = this.held.get(sessionId);
        if (entry) void this.pump(entry);
      },
      () => this.held.size > 0,
    );
    if (!this.beat) {
      this.beat = setInterval(() => void this.tick(), HEARTBEAT_MS);
      this.beat.unref();
    }
  }

  private stopWhenEmpty(): void {
    if (this.held.size > 0) return;
    clearInterval(this.beat);
    this.beat = undefined;
    const c = this.channel;
    this.channel = null;
    void c?.close();
  }

  private async tick(): Promise<void> {
    const entries = [...this.held.values()];
    let still: Set<string>;
    let exist: Set<string>;
    try {
      still = await heartbeat(this.opts.pool, entries.map((e) => ({ id: e.sessionId, holder: e.holder })));
      const lost = entries.filter((e) => !still.has(e.sessionId)).map((e) => e.sessionId);
      exist = lost.length > 0 ? await existingSessions(this.opts.pool, lost) : new Set();
    } catch (err) {
      this.opts.log.warn({ err: (err as Error).message }, 'listen: heartbeat failed');
      return;
    }
    const ping = Date.now() - this.lastPing >= PING_MS;
    if (ping) this.lastPing = Date.now();
    for (const e of entries) {
      if (this.held.get(e.sessionId) !== e) continue;
      if (!still.has(e.sessionId)) {
        this.held.delete(e.sessionId);
        if (exist.has(e.sessionId)) {
          this.replaced(e); // a newer stream holds it, here or on another replica
        } else {
          e.stream.send('removed', { session: sessionName(e.sessionId), message: 'the session was removed (its endpoint was deleted)' });
          e.stream.end();
        }
        continue;
      }
      if (ping) e.stream.ping();
      void this.pump(e);
    }
    this.stopWhenEmpty();
  }

  /** Sends every queued request of the session down its stream; one pump per session at a time. */
  private async pump(entry: Held): Promise<void> {
    if (entry.pumping) {
      entry.again = true;
      return;
    }
    entry.pumping = true;
    try {
      do {
        entry.again = false;
        let batch: ClaimedRequest[];
        do {
          if (this.held.get(entry.sessionId) !== entry) return;
          batch = await claimRequests(this.opts.pool, entry.sessionId, entry.holder);
          for (const r of batch) entry.stream.send('delivery', r);
        } while (batch.length > 0);
      } while (entry.again);
    } catch (err) {
      // The heartbeat pumps again shortly; a claimed request that was not sent times out and retries.
      this.opts.log.warn({ err: (err as Error).message }, 'listen: could not read queued requests');
    } finally {
      entry.pumping = false;
    }
  }

  /** Ends every stream (API shutdown): their sessions go offline and can resume elsewhere. */
  async close(): Promise<void> {
    clearInterval(this.sweeper);
    const entries = [...this.held.values()];
    this.held.clear();
    for (const e of entries) {
      e.stream.end();
      await releaseSession(this.opts.pool, e.sessionId, e.holder).catch(() => {});
    }
    this.stopWhenEmpty();
  }
}
