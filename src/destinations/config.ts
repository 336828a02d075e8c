// What a non-HTTP endpoint's `config` may be (issue #27, DESIGN "Contract for the next
// capabilities"): one zod schema per broker type, so the API answers a bad config with a 422
// whose paths read `config.exchange`, and the deliver activity gets a typed config.
//
// The only secret in a config is the URL's userinfo: its password (and, for NATS, a lone
// username, which NATS reads as a token). `splitCredentials` takes it out so the rest can be
// stored, shown and logged in the clear while the secret is sealed at rest (src/at-rest.ts);
// `joinCredentials` puts it back in the worker. `redactConfig` is for anything a person reads.
import { z } from 'zod';

export const DESTINATION_TYPES = ['http', 'rabbitmq', 'nats', 'redis'] as const;
export type DestinationType = (typeof DESTINATION_TYPES)[number];
export type BrokerType = Exclude<DestinationType, 'http'>;

// AMQP 0-9-1 names (exchange, queue, routing key) are short strings: at most 255 bytes.
const AMQP_SHORTSTR = 255;
// A NATS subject token: no whitespace, no wildcards (a publish goes to one subject).
const NATS_SUBJECT = /^[^\s.*>]+(\.[^\s.*>]+)*$/;
// JetStream stream names may not contain whitespace, '.', '*', '>', path separators.
const NATS_STREAM = /^[^\s.*>/\\]{1,255}$/;
// A Redis stream key is binary-safe, but a config is typed by a person: bound it.
const REDIS_KEY_MAX = 1024;
// XADD MAXLEN ~ n trims to about n; below 1 it would drop what was just added.
const MAXLEN_MAX = 1_000_000_000;
// What redactConfig puts where the secret was; URL-safe, so the URL still parses.
export const REDACTED = '***';

const SCHEMES: Record<BrokerType, readonly string[]> = {
  rabbitmq: ['amqp:', 'amqps:'],
  nats: ['nats:'],
  redis: ['redis:', 'rediss:'],
};

/** The URL rules every broker shares: the type's scheme, a host, no query or fragment. */
function brokerUrl(type: BrokerType, pathRule: (path: string) => boolean, pathHint: string) {
  const schemes = SCHEMES[type];
  return z
    .string()
    .max(2048)
    .superRefine((raw, ctx) => {
      let url: URL;
      try {
        url = new URL(raw);
      } catch {
        // Never echo the value: it may hold a password.
        ctx.addIssue({ code: 'custom', message: `not a URL (expected ${schemes.join('//… or ')}//…)` });
        return;
      }
      const problem = !schemes.includes(url.protocol)
        ? `the scheme must be ${schemes.map((s) => s.slice(0, -1)).join(' or ')}`
        : !url.hostname
          ? 'the URL needs a host'
          : url.search || url.hash
            ? 'no query or fragment: connection options are Hookline\'s to choose'
            : !pathRule(url.pathname)
              ? pathHint
              : null;
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    });
}

export const RabbitMqConfig = z
  .object({
    // The path is the vhost: none, `/` (the default vhost) or `/<vhost>` (%2F-encoded as needed).
    url: brokerUrl('rabbitmq', (p) => !p.slice(1).includes('/'), 'the path is the vhost: /<vhost>, one segment'),
    // '' is the default exchange, which routes by queue name; any other must already exist.
    exchange: z.string().max(AMQP_SHORTSTR),
    routingKey: z.string().max(AMQP_SHORTSTR),
    // Declared (durable) and bound to exchange + routingKey on connect, so messages have a home.
    queue: z.string().min(1).max(AMQP_SHORTSTR).optional(),
  })
  .strict();

export const NatsConfig = z
  .object({
    url: brokerUrl('nats', (p) => p === '' || p === '/', 'a NATS URL has no path'),
    subject: z.string().max(AMQP_SHORTSTR).regex(NATS_SUBJECT, 'a subject like orders.created: dot-separated tokens, no spaces or wildcards'),
    // Set: the message must land in this stream (JetStream checks it). Absent: any stream
    // capturing the subject; either way a JetStream ack is what counts as delivered.
    stream: z.string().regex(NATS_STREAM, 'a stream name: no spaces, dots, *, >, / or \\').optional(),
  })
  .strict();

export const RedisConfig = z
  .object({
    // The path is the database number: none, `/` or `/<n>`.
    url: brokerUrl('redis', (p) => /^(\/\d{0,5})?$/.test(p), 'the path is the database number: /<n>'),
    stream: z.string().min(1).max(REDIS_KEY_MAX),
    maxLen: z.number().int().min(1).max(MAXLEN_MAX).optional(),
  })
  .strict();

export type RabbitMqConfig = z.infer<typeof RabbitMqConfig>;
export type NatsConfig = z.infer<typeof NatsConfig>;
export type RedisConfig = z.infer<typeof RedisConfig>;

export const BROKER_CONFIGS = { rabbitmq: RabbitMqConfig, nats: NatsConfig, redis: RedisConfig } as const;

/** An endpoint's broker destination: `type` picks the schema of `config` (errors at `config.<field>`). */
export const BrokerDestination = z.discriminatedUnion('type', [
  z.object({ type: z.literal('rabbitmq'), config: RabbitMqConfig }),
  z.object({ type: z.literal('nats'), config: NatsConfig }),
  z.object({ type: z.literal('redis'), config: RedisConfig }),
]);
export type BrokerDestination = z.infer<typeof BrokerDestination>;

/** The secret part of a config's URL, or null when it has none. */
function secretOf(type: BrokerType, url: URL): { field: 'password' | 'username'; value: string } | null {
  if (url.password) return { field: 'password', value: decodeURIComponent(url.password) };
  // nats://<token>@host: NATS reads a username without a password as a token.
  if (type === 'nats' && url.username) return { field: 'username', value: decodeURIComponent(url.username) };
  return null;
}

/**
 * The config without its secret (safe to store in the clear, show and log) and the secret to
 * seal at rest, or null. `joinCredentials(type, config, secret)` undoes it.
 */
export function splitCredentials<D extends BrokerDestination>(dest: D): { destination: D; secret: string | null } {
  const url = new URL(dest.config.url);
  const secret = secretOf(dest.type, url);
  if (!secret) return { destination: dest, secret: null };
  url[secret.field] = '';
  return { destination: { ...dest, config: { ...dest.config, url: url.href } }, secret: secret.value };
}

/** The config a connection needs: the sealed-apart secret back in its place in the URL. */
export function joinCredentials<D extends BrokerDestination>(dest: D, secret: string | null): D {
  if (secret === null) return dest;
  const url = new URL(dest.config.url);
  // A username with no password is a NATS token; otherwise the secret is the password.
  if (dest.type === 'nats' && !url.username) url.username = encodeURIComponent(secret);
  else url.password = encodeURIComponent(secret);
  return { ...dest, config: { ...dest.config, url: url.href } };
}

/** The URL with its secret replaced by `***`, for the API, the portal, logs and error reasons. */
export function redactUrl(type: BrokerType, raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return REDACTED; // unparseable: nothing in it can be shown safely
  }
  const secret = secretOf(type, url);
  if (secret) url[secret.field] = REDACTED;
  return url.href;
}

/** The destination as a person may see it: the config with its URL redacted. */
export function redactConfig<D extends BrokerDestination>(dest: D): D {
  return { ...dest, config: { ...dest.config, url: redactUrl(dest.type, dest.config.url) } };
}
