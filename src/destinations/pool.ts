// Broker connections of one worker, pooled per destination identity: every attempt to the same
// destination reuses one connection (a connection per message would cost a TCP + AMQP/NATS/Redis
// handshake each time and churn the broker). Idle connections close after a while, the worker
// holds at most `maxConnections`, and a connection the broker dropped is replaced on next use,
// after the host is checked against the target policy again.
//
// Identity is a SHA-256 of the normalized destination, credentials included (a changed password
// must not reuse the old login); it is a map key only, never logged. What brokers are shown
// as the connection name is a hash of the redacted destination.
import { createHash } from 'node:crypto';
import type { TargetPolicy } from '../net/address-policy';
import { policyResolver, type HostResolver } from './address';
import { redactConfig, type BrokerDestination, type BrokerType } from './config';
import { connectNats } from './nats';
import { connectRabbitMq } from './rabbitmq';
import { connectRedis } from './redis';
import {
  ConnectFailure, retry, type BrokerConnection, type BrokerMessage, type ConnectTarget, type Destination, type PublishResult,
} from './types';

/** Connections per worker: one per destination in use; beyond this, idle ones make room. */
export const DEFAULT_MAX_CONNECTIONS = 64;
/** An unused connection closes after this: long enough to span a burst's retries, short enough not to hold broker slots for endpoints that went quiet. */
export const DEFAULT_IDLE_MS = 60_000;
/** TCP + TLS + broker handshake. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
/** Confirm / ack / reply; shorter than the HTTP request timeout's default (15 s), as a broker answers fast or is in trouble. */
export const DEFAULT_PUBLISH_TIMEOUT_MS = 10_000;

type Connector = (config: never, target: ConnectTarget) => Promise<BrokerConnection>;
const CONNECTORS: Record<BrokerType, Connector> = { rabbitmq: connectRabbitMq, nats: connectNats, redis: connectRedis };

export interface PoolOptions {
  /** The worker's target policy (src/net/address-policy); or `resolveHost` to decide otherwise. */
  targetPolicy?: TargetPolicy;
  resolveHost?: HostResolver;
  maxConnections?: number;
  idleMs?: number;
  connectTimeoutMs?: number;
  publishTimeoutMs?: number;
}

interface Entry {
  connection: Promise<BrokerConnection>;
  inFlight: number;
  lastUsed: number;
  idleTimer?: NodeJS.Timeout;
}

/** Canonical JSON (sorted keys, URL normalized) of a destination, as hashing input. */
function canonical(dest: BrokerDestination): string {
  const config = { ...dest.config, url: new URL(dest.config.url).href } as Record<string, unknown>;
  const sorted = Object.fromEntries(Object.keys(config).sort().map((k) => [k, config[k]]));
  return JSON.stringify([dest.type, sorted]);
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/** The pool key of a destination (credentials included). Never log it. */
export const destinationKey = (dest: BrokerDestination): string => sha256(canonical(dest));

export class DestinationPool {
  private readonly entries = new Map<string, Entry>();
  private readonly resolveHost: HostResolver;
  private readonly maxConnections: number;
  private readonly idleMs: number;
  private readonly connectTimeoutMs: number;
  private readonly publishTimeoutMs: number;
  private connects = 0;
  private closed = false;

  constructor(options: PoolOptions) {
    if (!options.resolveHost && !options.targetPolicy) throw new TypeError('DestinationPool needs a targetPolicy (or resolveHost)');
    this.resolveHost = options.resolveHost ?? policyResolver(options.targetPolicy!);
    this.maxConnections = options.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
    this.idleMs = options.idleMs ?? DEFAULT_IDLE_MS;
    this.connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    this.publishTimeoutMs = options.publishTimeoutMs ?? DEFAULT_PUBLISH_TIMEOUT_MS;
  }

  /** A handle for one destination; cheap, holds nothing until it publishes. */
  destination(dest: BrokerDestination): Destination {
    return { publish: (msg) => this.publish(dest, msg) };
  }

  /** Publishes on the destination's pooled connection, opening it first if needed. */
  async publish(dest: BrokerDestination, msg: BrokerMessage): Promise<PublishResult> {
    if (this.closed) return retry('the worker is shutting down');
    const key = destinationKey(dest);
    let entry: Entry;
    try {
      entry = await this.acquire(key, dest);
    } catch (err) {
      if (err instanceof ConnectFailure) return err.result;
      return retry('broker connection failed');
    }
    try {
      return await (await entry.connection).publish(msg);
    } finally {
      this.release(key, entry);
    }
  }

  /** Open connections and connections opened so far (tests, metrics). */
  stats(): { open: number; connects: number } {
    return { open: this.entries.size, connects: this.connects };
  }

  /** Closes every connection (worker shutdown); publishes after this are retryable failures. */
  async closeAll(): Promise<void> {
    this.closed = true;
    const entries = [...this.entries.values()];
    this.entries.clear();
    await Promise.all(entries.map((e) => this.closeEntry(e)));
  }

  /** The live entry for `key`, replacing one whose connection the broker dropped. */
  private async acquire(key: string, dest: BrokerDestination): Promise<Entry> {
    let entry = this.entries.get(key);
    if (entry) {
      entry.inFlight++;
      let connection: BrokerConnection;
      try {
        connection = await entry.connection;
      } catch (err) {
        // Publishes that waited on a connect share its failure instead of each connecting again.
        entry.inFlight--;
        throw err;
      }
      if (connection.open) return this.touch(entry);
      entry.inFlight--;
      // Dropped by the broker: the first publish to notice replaces it.
      if (this.entries.get(key) === entry) {
        this.entries.delete(key);
        void this.closeEntry(entry);
      }
      return this.acquire(key, dest);
    }
    this.makeRoom();
    entry = { connection: this.open(dest), inFlight: 1, lastUsed: Date.now() };
    this.entries.set(key, entry);
    const opened = entry;
    // A failed open leaves no entry behind, so the next attempt tries afresh.
    opened.connection.catch(() => {
      if (this.entries.get(key) === opened) this.entries.delete(key);
    });
    await opened.connection;
    return this.touch(opened);
  }

  private touch(entry: Entry): Entry {
    entry.lastUsed = Date.now();
    clearTimeout(entry.idleTimer);
    entry.idleTimer = undefined;
    return entry;
  }

  private release(key: string, entry: Entry): void {
    entry.inFlight--;
    entry.lastUsed = Date.now();
    if (entry.inFlight > 0 || this.entries.get(key) !== entry) return;
    entry.idleTimer = setTimeout(() => {
      if (entry.inFlight > 0 || this.entries.get(key) !== entry) return;
      this.entries.delete(key);
      void this.closeEntry(entry);
    }, this.idleMs);
    entry.idleTimer.unref(); // an idle connection never keeps the process alive
  }

  /** At the cap, closes the least recently used idle connection; none idle: a retryable failure. */
  private makeRoom(): void {
    if (this.entries.size < this.maxConnections) return;
    let oldest: [string, Entry] | null = null;
    for (const pair of this.entries) {
      if (pair[1].inFlight === 0 && (!oldest || pair[1].lastUsed < oldest[1].lastUsed)) oldest = pair;
    }
    if (!oldest) {
      throw new ConnectFailure(retry(`this worker holds its maximum of ${this.maxConnections} broker connections, all busy`));
    }
    this.entries.delete(oldest[0]);
    void this.closeEntry(oldest[1]);
  }

  /** Resolves and checks the host, then connects to the checked address. */
  private async open(dest: BrokerDestination): Promise<BrokerConnection> {
    const host = new URL(dest.config.url).hostname.replace(/^\[|\]$/g, '');
    const address = await this.resolveHost(host);
    const target: ConnectTarget = {
      address,
      servername: host,
      connectionName: `hookline/${sha256(canonical(redactConfig(dest))).slice(0, 12)}`,
      connectTimeoutMs: this.connectTimeoutMs,
      publishTimeoutMs: this.publishTimeoutMs,
    };
    this.connects++;
    return (CONNECTORS[dest.type] as (c: typeof dest.config, t: ConnectTarget) => Promise<BrokerConnection>)(dest.config, target);
  }

  private async closeEntry(entry: Entry): Promise<void> {
    clearTimeout(entry.idleTimer);
    const connection = await entry.connection.catch(() => null);
    await connection?.close();
  }
}
