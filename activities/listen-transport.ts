// The wire for endpoints whose url is `listen://<session>` (made only by `hookline listen`,
// src/api/routes/listen.ts): instead of an HTTP POST, the attempt is queued in Postgres for the
// API process that holds that session's stream, which hands it to the CLI; the CLI re-POSTs it to
// the local app and its answer comes back the same way. Going through Postgres works with any
// number of API replicas and workers. The result has post()'s shape, so the deliver activity
// judges a listener's 500 or timeout exactly like an HTTP endpoint's.
//
// No listener connected: ELISTENEROFFLINE at once, without waiting, and the asking workflow is
// noted in listen_waiters. The deliver activity turns that into a gate refusal (the endpoint is
// paused): nothing is recorded, the delivery sleeps in a durable timer, and the API that takes
// the next stream of the session wakes it with a gateOpen signal (src/listen/hub.ts).
import type { Pool } from '../src/db/pool';
import { PgChannel } from '../src/listen/channel';
import { ANSWER_CHANNEL, dropRequest, enqueueRequest, takeAnswer, type ListenAnswer } from '../src/db/listen-requests';
import { sessionOfUrl } from '../src/listen/sessions';
import type { PostOptions, PostResult } from './http';

/** The failure code of an attempt made while no `hookline listen` serves the session. */
export const LISTENER_OFFLINE = 'ELISTENEROFFLINE';
/**
 * How long a delivery paused for an absent listener sleeps before it looks again by itself: the
 * listener's reconnect wakes it sooner (a signal); this only bounds a lost signal's cost.
 */
export const LISTENER_RECHECK_MS = 60_000;
/** A lost notification costs at most this much delay. */
const POLL_MS = 500;
/** The LISTEN connection closes after this long without an attempt waiting on it. */
const IDLE_CLOSE_MS = 30_000;

export type ListenPost = Pick<PostOptions, 'url' | 'headers' | 'body' | 'timeoutMs' | 'maxResponseBytes'> & {
  /** The workflow to wake when a listener attaches, if nobody listens now. */
  waiter?: string | null;
};

export function createListenTransport(pool: Pool) {
  const waiters = new Map<string, () => void>();
  let channel: PgChannel | null = null;
  let idle: NodeJS.Timeout | undefined;

  async function openChannel(): Promise<void> {
    clearTimeout(idle);
    channel ??= new PgChannel(pool.options.connectionString!, ANSWER_CHANNEL, (id) => waiters.get(id)?.(), () => waiters.size > 0);
    await channel.start();
  }
  function closeWhenIdle(): void {
    if (waiters.size > 0) return;
    clearTimeout(idle);
    idle = setTimeout(() => {
      const c = channel;
      channel = null;
      void c?.close();
    }, IDLE_CLOSE_MS).unref();
  }

  /** Resolves on the request's notification or after `ms`, whichever is first. */
  function wake(requestId: string, ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        waiters.delete(requestId);
        resolve();
      }
      waiters.set(requestId, done);
    });
  }

  async function waitForAnswer(requestId: string, deadline: number): Promise<ListenAnswer | null> {
    for (;;) {
      // Registered before looking, so an answer written between the look and the wait still wakes it.
      const woken = wake(requestId, Math.max(0, Math.min(POLL_MS, deadline - performance.now())));
      const answer = await takeAnswer(pool, requestId);
      if (answer || performance.now() >= deadline) {
        waiters.get(requestId)?.();
        return answer ?? (await dropRequest(pool, requestId));
      }
      await woken;
    }
  }

  async function post(opts: ListenPost): Promise<PostResult> {
    const started = performance.now();
    const latency = () => Math.round(performance.now() - started);
    const sessionId = sessionOfUrl(opts.url);
    await openChannel();
    try {
      const requestId = await enqueueRequest(pool, sessionId, opts.headers, opts.body, opts.timeoutMs, opts.waiter ?? null);
      if (!requestId) {
        return { kind: 'error', code: LISTENER_OFFLINE, message: `no hookline listen is connected for session ${sessionId}`, latencyMs: latency() };
      }
      const answer = await waitForAnswer(requestId, started + opts.timeoutMs);
      if (!answer) return { kind: 'error', code: 'ETIMEDOUT', message: `the listener did not answer within ${opts.timeoutMs} ms`, latencyMs: latency() };
      if (answer.status === null) {
        return { kind: 'error', code: answer.errorCode ?? 'ELISTENER', message: answer.errorMessage ?? 'the listener could not reach the local app', latencyMs: latency() };
      }
      const body = (answer.body ?? Buffer.alloc(0)).subarray(0, opts.maxResponseBytes);
      return { kind: 'response', status: answer.status, headers: answer.headers ?? {}, body, latencyMs: latency() };
    } finally {
      closeWhenIdle();
    }
  }

  async function close(): Promise<void> {
    clearTimeout(idle);
    const c = channel;
    channel = null;
    await c?.close();
  }

  return { post, close };
}
