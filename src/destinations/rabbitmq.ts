// RabbitMQ destination (AMQP 0-9-1, amqplib): one connection with one confirm channel per
// destination, owned by the pool. Delivered means the broker confirmed the publish (basic.ack on
// a confirm channel) of a persistent message published with `mandatory`, so a message that no
// queue took comes back (basic.return, which RabbitMQ sends before the ack) and is a failure.
//
// Outcomes, decided here:
//   confirmed                                   → ok
//   returned unroutable (312 NO_ROUTE)          → retry: the exchange exists but nothing is bound
//                                                 yet; a consumer that declares its queue on
//                                                 start heals it, and the endpoint's deadline
//                                                 bounds the wait (HTTP's 503, not its 404)
//   nack, connection/channel lost, timeout      → retry (at most the unconfirmed are duplicated;
//                                                 message-id = webhook-id lets consumers dedupe)
//   403 ACCESS_REFUSED (login or permissions),
//   vhost refused, 404 no exchange,
//   406 queue declared with other arguments     → permanent
// The exchange is never declared (its type and bindings are the operator's); `queue`, when set,
// is declared durable and bound, which is what makes a fresh setup routable.
import amqp from 'amqplib';
import type { ConfirmChannel, ChannelModel, Options } from 'amqplib';
import type { RabbitMqConfig } from './config';
import {
  ConnectFailure, permanent, retry, socketCode, withTimeout,
  type BrokerConnection, type BrokerMessage, type ConnectTarget, type PublishFailure, type PublishResult,
} from './types';

// The broker notices a dead client (and the client a dead broker) within two of these.
const HEARTBEAT_SECONDS = 15;

/** amqplib's connect options for a config, aimed at the address the policy checked. */
function connectOptions(config: RabbitMqConfig, target: ConnectTarget): Options.Connect {
  const url = new URL(config.url);
  const tls = url.protocol === 'amqps:';
  return {
    protocol: tls ? 'amqps' : 'amqp',
    hostname: target.address,
    port: url.port ? Number(url.port) : tls ? 5671 : 5672,
    username: url.username ? decodeURIComponent(url.username) : 'guest',
    password: url.password ? decodeURIComponent(url.password) : 'guest',
    vhost: url.pathname.length > 1 ? decodeURIComponent(url.pathname.slice(1)) : '/',
    heartbeat: HEARTBEAT_SECONDS,
  };
}

/** Why a connect failed, as a result; never the library's text, which may carry the URL. */
export function classifyAmqpConnectError(err: unknown): PublishFailure {
  if (err instanceof ConnectFailure) return err.result;
  const message = err instanceof Error ? err.message : '';
  if (/\b403\b|ACCESS.REFUSED/.test(message)) return permanent('RabbitMQ refused the login (ACCESS_REFUSED): check the user and password');
  // RabbitMQ answers connection.open on a missing or forbidden vhost by closing the connection.
  if (/Expected ConnectionOpenOk; got <ConnectionClose/.test(message) || /\b530\b|NOT.ALLOWED/.test(message)) {
    return permanent('RabbitMQ refused the vhost (missing, or the user has no access to it)');
  }
  const code = socketCode(err);
  return retry(code ? `RabbitMQ connection failed (${code})` : 'RabbitMQ connection failed');
}

/** Why a channel closed under a publish or a topology check (AMQP reply codes). */
export function classifyAmqpChannelError(err: unknown, config: RabbitMqConfig): PublishFailure {
  const code = (err as { code?: unknown } | null)?.code;
  if (code === 404) return permanent(`RabbitMQ exchange '${config.exchange}' does not exist`);
  if (code === 403) return permanent('RabbitMQ refused access to the exchange or queue (ACCESS_REFUSED): check the user\'s permissions');
  if (code === 406) return permanent(`RabbitMQ queue '${config.queue}' exists with other arguments (PRECONDITION_FAILED)`);
  return retry('RabbitMQ channel closed before the publish was confirmed');
}

export async function connectRabbitMq(config: RabbitMqConfig, target: ConnectTarget): Promise<BrokerConnection> {
  let model: ChannelModel;
  try {
    model = await amqp.connect(connectOptions(config, target), {
      servername: target.servername,
      timeout: target.connectTimeoutMs,
      clientProperties: { connection_name: target.connectionName },
    });
  } catch (err) {
    throw new ConnectFailure(classifyAmqpConnectError(err));
  }
  const connection = new RabbitMqConnection(config, model, target.publishTimeoutMs);
  await connection.prepare();
  return connection;
}

class RabbitMqConnection implements BrokerConnection {
  private channel: ConfirmChannel | null = null;
  private connectionOpen = true;
  private channelError: unknown = null;
  // message-ids RabbitMQ returned as unroutable, waiting for the ack that follows the return.
  private readonly returned = new Map<string, number>();

  constructor(
    private readonly config: RabbitMqConfig,
    private readonly model: ChannelModel,
    private readonly publishTimeoutMs: number,
  ) {
    model.on('close', () => (this.connectionOpen = false));
    model.on('error', () => (this.connectionOpen = false)); // 'close' follows; an unhandled 'error' would crash the worker
  }

  get open(): boolean {
    return this.connectionOpen && this.channel !== null;
  }

  /** The confirm channel, the exchange check and the queue declaration; a failure closes all. */
  async prepare(): Promise<void> {
    try {
      const channel = await this.model.createConfirmChannel();
      channel.on('error', (err) => (this.channelError = err));
      channel.on('close', () => (this.channel = null));
      channel.on('return', (msg) => this.noteReturned(String(msg.properties.messageId)));
      const { exchange, routingKey, queue } = this.config;
      if (exchange !== '') await channel.checkExchange(exchange);
      if (queue !== undefined) {
        await channel.assertQueue(queue, { durable: true });
        if (exchange !== '') await channel.bindQueue(queue, exchange, routingKey);
      }
      this.channel = channel;
    } catch (err) {
      await this.close();
      throw new ConnectFailure((err as { code?: unknown }).code ? classifyAmqpChannelError(err, this.config) : classifyAmqpConnectError(err));
    }
  }

  private noteReturned(id: string): void {
    this.returned.set(id, (this.returned.get(id) ?? 0) + 1);
  }

  /** True (once) when RabbitMQ returned this message-id before acking it. */
  private takeReturned(id: string): boolean {
    const n = this.returned.get(id) ?? 0;
    if (n === 0) return false;
    if (n === 1) this.returned.delete(id);
    else this.returned.set(id, n - 1);
    return true;
  }

  async publish(msg: BrokerMessage): Promise<PublishResult> {
    const channel = this.channel;
    if (!channel || !this.connectionOpen) return retry('RabbitMQ connection closed');
    const { exchange, routingKey } = this.config;
    const options: Options.Publish = {
      messageId: msg.id,
      headers: msg.headers,
      contentType: 'application/json',
      timestamp: Math.floor(Date.now() / 1000),
      persistent: true, // delivery-mode 2: a durable queue keeps it across a broker restart
      mandatory: true,
    };
    const confirmed = new Promise<unknown>((resolve) => {
      try {
        channel.publish(exchange, routingKey, Buffer.from(msg.body), options, (err) => resolve(err ?? null));
      } catch (err) {
        resolve(err); // the channel closed between the check and the publish
      }
    });
    try {
      const err = await withTimeout(confirmed, this.publishTimeoutMs, 'RabbitMQ publish confirm');
      if (err) return this.failure();
    } catch (err) {
      return (err as ConnectFailure).result;
    }
    if (this.takeReturned(msg.id)) {
      return retry(`RabbitMQ could not route the message: no queue is bound to exchange '${exchange}' with routing key '${routingKey}'`);
    }
    return { ok: true };
  }

  /** A publish that got an error callback: a nack, or the channel closed (why, if it said). */
  private failure(): PublishResult {
    if (this.channel && this.connectionOpen) return retry('RabbitMQ rejected the message (nack)');
    return this.channelError ? classifyAmqpChannelError(this.channelError, this.config) : retry('RabbitMQ connection closed before the publish was confirmed');
  }

  async close(): Promise<void> {
    this.connectionOpen = false;
    await this.model.close().catch(() => {}); // already closed by the broker: nothing to do
  }
}
