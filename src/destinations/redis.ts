// Redis Streams destination (ioredis). Delivered means XADD answered with the new entry's id:
// Redis has the entry (how durably is the server's `appendfsync`, the operator's choice). The
// entry's fields are the Standard Webhooks headers (webhook-id, webhook-timestamp,
// webhook-signature) and `body`, the signed envelope. XADD creates the stream on first use, as
// Redis streams are; `maxLen` trims with `MAXLEN ~` (whole macro nodes, cheap). Redis does not
// dedupe: a consumer dedupes on the webhook-id field (the receiver kit's inbox does).
//
// Outcomes, decided here:
//   XADD reply                                              → ok
//   WRONGPASS / NOAUTH / NOPERM, WRONGTYPE, MOVED / ASK     → permanent
//   connection lost or refused, timeout, LOADING, READONLY,
//   OOM, BUSY, MASTERDOWN, TRYAGAIN, other replies          → retry
// ioredis's own safety nets are off — offline queue, per-request retries, resending in-flight
// commands after a reconnect, reconnecting at all — so a lost connection is one retryable
// failure the delivery's retry policy sees, and the pool reconnects to the checked address.
import { Redis, type RedisOptions } from 'ioredis';
import type { RedisConfig } from './config';
import {
  ConnectFailure, permanent, retry, socketCode, withTimeout,
  type BrokerConnection, type BrokerMessage, type ConnectTarget, type PublishFailure, type PublishResult,
} from './types';

const PERMANENT_REPLIES: Record<string, string> = {
  WRONGPASS: 'Redis refused the login (WRONGPASS): check the user and password',
  NOAUTH: 'Redis needs a password (NOAUTH): put it in the URL',
  NOPERM: 'Redis refused the command for this user (NOPERM): check its ACL',
  WRONGTYPE: 'the Redis key holds another type than a stream (WRONGTYPE)',
  MOVED: 'Redis Cluster is not supported: point the URL at a single node or primary (MOVED)',
  ASK: 'Redis Cluster is not supported: point the URL at a single node or primary (ASK)',
};

/** A Redis error as a result, by its reply prefix or socket code; never the raw text. */
export function classifyRedisError(err: unknown): PublishFailure {
  if (err instanceof ConnectFailure) return err.result;
  const message = err instanceof Error ? err.message : '';
  const prefix = /^([A-Z]+)\b/.exec(message)?.[1];
  if (prefix && PERMANENT_REPLIES[prefix]) return permanent(PERMANENT_REPLIES[prefix]);
  if ((err as { name?: unknown } | null)?.name === 'ReplyError') return retry(`Redis answered ${prefix ?? 'an error'}`);
  const code = socketCode(err);
  return retry(code ? `Redis connection failed (${code})` : 'Redis connection lost');
}

function redisOptions(config: RedisConfig, target: ConnectTarget): RedisOptions {
  const url = new URL(config.url);
  return {
    host: target.address,
    port: url.port ? Number(url.port) : 6379,
    username: url.username ? decodeURIComponent(url.username) : undefined,
    password: url.password ? decodeURIComponent(url.password) : undefined,
    db: url.pathname.length > 1 ? Number(url.pathname.slice(1)) : 0,
    ...(url.protocol === 'rediss:' ? { tls: { servername: target.servername } } : {}),
    connectionName: target.connectionName,
    connectTimeout: target.connectTimeoutMs,
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    retryStrategy: () => null,
  };
}

export async function connectRedis(config: RedisConfig, target: ConnectTarget): Promise<BrokerConnection> {
  const client = new Redis(redisOptions(config, target));
  // connect() rejects with a bare "Connection is closed."; the reason came as an 'error' event.
  let lastError: unknown = null;
  client.on('error', (err) => (lastError = err));
  try {
    await withTimeout(client.connect(), target.connectTimeoutMs, 'Redis connect');
  } catch (err) {
    client.disconnect();
    throw new ConnectFailure(classifyRedisError(lastError ?? err));
  }
  return new RedisConnection(config, client, target.publishTimeoutMs);
}

class RedisConnection implements BrokerConnection {
  // ioredis can report `ready` for a moment after the server closed the socket (CLIENT KILL),
  // failing every command meanwhile; a connection-level failure marks it for replacement.
  private broken = false;

  constructor(
    private readonly config: RedisConfig,
    private readonly client: Redis,
    private readonly publishTimeoutMs: number,
  ) {
    client.on('close', () => (this.broken = true));
    client.on('end', () => (this.broken = true));
  }

  get open(): boolean {
    return !this.broken && this.client.status === 'ready';
  }

  async publish(msg: BrokerMessage): Promise<PublishResult> {
    if (!this.open) return retry('Redis connection closed');
    const fields: string[] = [];
    for (const [name, value] of Object.entries(msg.headers)) if (name !== 'body') fields.push(name, value);
    fields.push('body', msg.body);
    const trim = this.config.maxLen === undefined ? [] : ['MAXLEN', '~', String(this.config.maxLen)];
    try {
      await withTimeout(this.client.xadd(this.config.stream, ...trim, '*', ...fields), this.publishTimeoutMs, 'Redis XADD');
      return { ok: true };
    } catch (err) {
      if ((err as { name?: unknown }).name !== 'ReplyError') this.broken = true;
      return classifyRedisError(err);
    }
  }

  async close(): Promise<void> {
    await this.client.quit().catch(() => this.client.disconnect());
  }
}
