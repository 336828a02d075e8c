// NATS destination (JetStream, @nats-io/transport-node + @nats-io/jetstream). Delivered means
// a JetStream publish ack: the message is stored in a stream. Nats-Msg-Id is the webhook-id, so
// JetStream itself drops a re-sent message within the stream's duplicate window (the ack then
// says `duplicate`, which is delivered too). Core NATS publishing (fire and forget) is not
// offered: nothing would say the message was kept.
//
// Outcomes, decided here:
//   ack (new or duplicate)                         → ok
//   no stream captures the subject / `stream` does
//   not exist (asked of JetStream after a publish
//   found no responder), wrong expected stream     → permanent
//   authorization violation, publish permission   → permanent
//   connection lost, timeout, JetStream not ready  → retry
// The client's own reconnect is off, and so are cluster updates: a reconnect to a server the
// broker advertised would skip the address policy; the pool reconnects to the checked address.
import { connect } from '@nats-io/transport-node';
// The transport re-exports these from nats-core's internal entry, which TypeScript's `node`
// module resolution (this repo's) cannot see through; nats-core's own entry it can.
import { headers, type NatsConnection } from '@nats-io/nats-core';
import { jetstream, jetstreamManager, type JetStreamClient } from '@nats-io/jetstream';
import type { NatsConfig } from './config';
import {
  ConnectFailure, permanent, retry, socketCode,
  type BrokerConnection, type BrokerMessage, type ConnectTarget, type PublishFailure, type PublishResult,
} from './types';

// JetStream API error codes (nats-server's errors.json).
const STREAM_NOT_FOUND = 10059;
const STREAM_MISMATCH = 10060;

const errorName = (err: unknown): string => (err instanceof Error ? err.constructor.name : '');

/** Why a connect failed; never the library's text, which may carry the URL. */
export function classifyNatsConnectError(err: unknown): PublishFailure {
  if (err instanceof ConnectFailure) return err.result;
  if (errorName(err) === 'AuthorizationError') return permanent('NATS refused the login (authorization violation): check the user, password or token');
  const code = socketCode((err as { cause?: unknown } | null)?.cause) ?? socketCode(err);
  return retry(code ? `NATS connection failed (${code})` : 'NATS connection failed');
}

export async function connectNats(config: NatsConfig, target: ConnectTarget): Promise<BrokerConnection> {
  const url = new URL(config.url);
  const user = url.username ? decodeURIComponent(url.username) : undefined;
  const pass = url.password ? decodeURIComponent(url.password) : undefined;
  let nc: NatsConnection;
  try {
    nc = await connect({
      servers: `${target.address.includes(':') ? `[${target.address}]` : target.address}:${url.port || 4222}`,
      // nats://<token>@host: a username alone is a token.
      ...(user !== undefined && pass === undefined ? { token: user } : { user, pass }),
      name: target.connectionName,
      timeout: target.connectTimeoutMs,
      reconnect: false,
      ignoreClusterUpdates: true,
    });
  } catch (err) {
    throw new ConnectFailure(classifyNatsConnectError(err));
  }
  return new NatsDestinationConnection(config, nc, target.publishTimeoutMs);
}

class NatsDestinationConnection implements BrokerConnection {
  private readonly js: JetStreamClient;
  private isOpen = true;

  constructor(
    private readonly config: NatsConfig,
    private readonly nc: NatsConnection,
    private readonly publishTimeoutMs: number,
  ) {
    this.js = jetstream(nc, { timeout: publishTimeoutMs });
    void nc.closed().then(() => (this.isOpen = false));
  }

  get open(): boolean {
    return this.isOpen && !this.nc.isClosed();
  }

  async publish(msg: BrokerMessage): Promise<PublishResult> {
    if (!this.open) return retry('NATS connection closed');
    const h = headers();
    for (const [name, value] of Object.entries(msg.headers)) h.set(name, value);
    try {
      const ack = await this.js.publish(this.config.subject, msg.body, {
        msgID: msg.id,
        headers: h,
        timeout: this.publishTimeoutMs,
        ...(this.config.stream ? { expect: { streamName: this.config.stream } } : {}),
      });
      return { ok: true, duplicate: ack.duplicate };
    } catch (err) {
      return this.classifyPublishError(err);
    }
  }

  private async classifyPublishError(err: unknown): Promise<PublishFailure> {
    const name = errorName(err);
    const code = (err as { code?: unknown }).code;
    if (code === STREAM_MISMATCH) return permanent(`NATS subject '${this.config.subject}' is not captured by stream '${this.config.stream}'`);
    if (name === 'PermissionViolationError') return permanent(`NATS refused to let this user publish to '${this.config.subject}'`);
    // No responder: either no stream listens on the subject (permanent) or JetStream is not up
    // yet, e.g. still recovering its streams after a restart (retry). Ask it which.
    if (name === 'JetStreamNotEnabled') return this.whyNoStream();
    if (name === 'TimeoutError') return retry('NATS JetStream publish ack timed out');
    return retry(this.open ? 'NATS JetStream publish failed' : 'NATS connection lost before the publish was acknowledged');
  }

  private async whyNoStream(): Promise<PublishFailure> {
    const { subject, stream } = this.config;
    let asking: 'stream' | 'subject' = 'stream';
    try {
      const jsm = await jetstreamManager(this.nc, { timeout: this.publishTimeoutMs });
      if (stream) await jsm.streams.info(stream);
      asking = 'subject';
      await jsm.streams.find(subject);
    } catch (err) {
      if ((err as { code?: unknown }).code === STREAM_NOT_FOUND) {
        return permanent(asking === 'stream' ? `NATS JetStream stream '${stream}' does not exist` : `no NATS JetStream stream captures subject '${subject}'`);
      }
      return retry('NATS JetStream is not available (not enabled, or not ready)');
    }
    // The stream exists and covers the subject, yet nobody answered: a transient state.
    return retry('NATS JetStream did not answer the publish');
  }

  async close(): Promise<void> {
    this.isOpen = false;
    await this.nc.close().catch(() => {});
  }
}
