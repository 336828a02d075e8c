// `hookline/receiver/brokers`: verify a webhook that came through a broker instead of HTTP.
// Hookline's RabbitMQ, NATS and Redis destinations carry the same Standard Webhooks headers
// (webhook-id, webhook-timestamp, webhook-signature) as AMQP headers, NATS headers or Redis
// entry fields, and the signed envelope as the body (Redis: the `body` field); these helpers
// hand them to verifyWebhook (./verify) unchanged. The message shapes are structural, so this
// module imports no broker client: pass what amqplib, nats.js or ioredis gave you.
//
// The returned `id` is the dedupe key, as over HTTP: it is also the AMQP message-id and the
// NATS Nats-Msg-Id. Redis does not dedupe, so a Redis consumer should keep an inbox (./inbox).
import { verifyWebhook, type VerifiedWebhook, type VerifyWebhookInput } from './verify';

type VerifyOptions = Pick<VerifyWebhookInput, 'secrets' | 'toleranceSeconds' | 'now'>;

/** What amqplib's consume/get hands over (ConsumeMessage): `properties.headers`, `content`. */
export interface AmqpMessageLike {
  content: Buffer;
  properties: { headers?: Readonly<Record<string, unknown>> };
}

/** What nats.js hands over (Msg / JsMsg): `headers.get(name)` and `data`. */
export interface NatsMessageLike {
  data: Uint8Array;
  headers?: { get(name: string): string };
}

/** A Redis stream entry's fields: an object, or XREAD/XRANGE's flat [name, value, …] list. */
export type RedisEntryFields = Readonly<Record<string, string>> | readonly string[];

/** Only string headers are Standard Webhooks headers; AMQP may carry other types. */
function stringHeaders(headers: Readonly<Record<string, unknown>> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers ?? {})) {
    if (typeof value === 'string') out[name] = value;
    else if (Buffer.isBuffer(value)) out[name] = value.toString('utf8');
  }
  return out;
}

/** Verifies a RabbitMQ message; throws WebhookVerificationError as verifyWebhook does. */
export function verifyAmqpMessage<T = unknown>(msg: AmqpMessageLike, options: VerifyOptions): VerifiedWebhook<T> {
  return verifyWebhook<T>({ ...options, headers: stringHeaders(msg.properties.headers), rawBody: msg.content });
}

/** Verifies a NATS (JetStream) message; throws WebhookVerificationError as verifyWebhook does. */
export function verifyNatsMessage<T = unknown>(msg: NatsMessageLike, options: VerifyOptions): VerifiedWebhook<T> {
  // nats.js answers "" for a missing header; verifyWebhook reads "" as missing too.
  const headers = { get: (name: string) => msg.headers?.get(name) ?? null };
  return verifyWebhook<T>({ ...options, headers, rawBody: Buffer.from(msg.data) });
}

/** Verifies a Redis stream entry; throws WebhookVerificationError as verifyWebhook does. */
export function verifyRedisEntry<T = unknown>(fields: RedisEntryFields, options: VerifyOptions): VerifiedWebhook<T> {
  const record: Record<string, string> = {};
  if (Array.isArray(fields)) {
    for (let i = 0; i + 1 < fields.length; i += 2) record[fields[i]] = fields[i + 1];
  } else {
    Object.assign(record, fields);
  }
  const { body = '', ...headers } = record;
  return verifyWebhook<T>({ ...options, headers, rawBody: body });
}
