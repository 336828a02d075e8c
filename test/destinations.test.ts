// Broker destinations (#27) on the real brokers of this machine: RabbitMQ 127.0.0.1:5672
// (guest/guest, rabbitmqctl for closing connections), NATS with JetStream 127.0.0.1:4222, Redis
// 127.0.0.1:6379. A broker that is down fails the file in beforeAll: nothing is skipped.
// Messages are signed with src/signing.ts and verified back with hookline/receiver/brokers, so
// the tests prove a consumer can verify what Hookline publishes. Every exchange, queue, stream
// and key is named per run and removed afterwards.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import amqp, { type Channel, type ChannelModel } from 'amqplib';
import { connect as natsConnect } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/nats-core';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { Redis } from 'ioredis';
import {
  BrokerDestination, DestinationPool, joinCredentials, redactConfig, signedBrokerMessage, splitCredentials,
  type BrokerMessage, type PublishResult,
} from '../src/destinations';
import { createTargetPolicy } from '../src/net/address-policy';
import { generateSecret } from '../src/signing';
import { verifyAmqpMessage, verifyNatsMessage, verifyRedisEntry } from '../src/receiver/brokers';
import { WebhookVerificationError } from '../src/receiver/verify';

const run = promisify(execFile);
const RUN = randomBytes(4).toString('hex');
const SECRET = generateSecret();
// As `hookline dev` allows: loopback brokers are reachable; production would not list it.
const LOOPBACK_POLICY = createTargetPolicy(['loopback']);
const AMQP_URL = 'amqp://guest:guest@127.0.0.1:5672/';
const NATS_URL = 'nats://127.0.0.1:4222';
const REDIS_URL = 'redis://127.0.0.1:6379';

let seq = 0;
const name = (what: string) => `hl_test_${RUN}_${what}_${++seq}`;

/** A signed envelope as the deliver activity will send it. */
function message(n = 0): BrokerMessage {
  const id = `evt_${RUN}_${++seq}`;
  const body = JSON.stringify({ id, type: 'test.sent', timestamp: new Date().toISOString(), data: { n } });
  return signedBrokerMessage({ id, body, secrets: [SECRET], timestampSeconds: Math.floor(Date.now() / 1000) });
}

const dest = (d: unknown) => BrokerDestination.parse(d);
const pools: DestinationPool[] = [];
function pool(options: ConstructorParameters<typeof DestinationPool>[0] = { targetPolicy: LOOPBACK_POLICY }) {
  const p = new DestinationPool(options);
  pools.push(p);
  return p;
}

/** Publishes each message with `concurrency` in flight; the results in message order. */
async function publishAll(p: DestinationPool, d: BrokerDestination, msgs: BrokerMessage[], concurrency: number, onResult?: (i: number) => unknown) {
  const results: PublishResult[] = new Array(msgs.length);
  let next = 0;
  const lane = async () => {
    while (next < msgs.length) {
      const i = next++;
      results[i] = await p.publish(d, msgs[i]);
      await onResult?.(i); // this lane waits; the others keep publishing
    }
  };
  await Promise.all(Array.from({ length: concurrency }, lane));
  return results;
}

/** What a delivery's retry policy does: re-send what failed retryably until all are accepted. */
async function retryUntilAccepted(p: DestinationPool, d: BrokerDestination, msgs: BrokerMessage[], results: PublishResult[]) {
  for (let round = 0; round < 20; round++) {
    const failed = msgs.filter((_, i) => !results[i].ok);
    if (failed.length === 0) return;
    for (const [i, m] of msgs.entries()) {
      const r = results[i];
      if (r.ok) continue;
      expect(r.retry, r.reason).toBe(true);
      results[i] = await p.publish(d, m);
    }
    await new Promise((res) => setTimeout(res, 200));
  }
  throw new Error('messages still not accepted after 20 rounds');
}

let amqpAdmin: ChannelModel;
let amqpChannel: Channel;
let nats: NatsConnection;
let jsm: JetStreamManager;
let redis: Redis;
const cleanups: Array<() => Promise<unknown>> = [];

beforeAll(async () => {
  // Loud, not skipped: a missing broker is a broken environment.
  amqpAdmin = await amqp.connect(AMQP_URL).catch((err) => {
    throw new Error(`RabbitMQ is not reachable at 127.0.0.1:5672 (${err.message}); these tests need it running`);
  });
  amqpChannel = await amqpAdmin.createChannel();
  nats = await natsConnect({ servers: '127.0.0.1:4222', reconnect: false }).catch((err) => {
    throw new Error(`NATS is not reachable at 127.0.0.1:4222 (${err.message}); these tests need it with JetStream (-js)`);
  });
  jsm = await jetstreamManager(nats);
  redis = new Redis({ host: '127.0.0.1', port: 6379, lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null });
  await redis.connect().catch((err) => {
    throw new Error(`Redis is not reachable at 127.0.0.1:6379 (${err.message}); these tests need it running`);
  });
});

afterAll(async () => {
  await Promise.all(pools.map((p) => p.closeAll()));
  for (const fn of cleanups.reverse()) await fn().catch(() => {});
  await amqpAdmin?.close().catch(() => {});
  await nats?.close().catch(() => {});
  redis?.disconnect();
});

describe('config', () => {
  it('accepts the contract shapes and reports bad fields at config.<field>', () => {
    expect(dest({ type: 'rabbitmq', config: { url: AMQP_URL, exchange: 'ex', routingKey: 'rk', queue: 'q' } }).type).toBe('rabbitmq');
    expect(dest({ type: 'nats', config: { url: NATS_URL, subject: 'orders.created', stream: 'ORDERS' } }).type).toBe('nats');
    expect(dest({ type: 'redis', config: { url: 'redis://:pw@127.0.0.1:6379/2', stream: 'hooks', maxLen: 1000 } }).type).toBe('redis');

    const bad = BrokerDestination.safeParse({ type: 'rabbitmq', config: { url: 'http://u:hunter2@host/', exchange: 'x', routingKey: 'k' } });
    expect(bad.success).toBe(false);
    expect(bad.error!.issues[0].path).toEqual(['config', 'url']);
    expect(bad.error!.issues[0].message).toMatch(/amqp or amqps/);
    expect(JSON.stringify(bad.error!.issues)).not.toContain('hunter2');

    const wildcard = BrokerDestination.safeParse({ type: 'nats', config: { url: NATS_URL, subject: 'orders.*' } });
    expect(wildcard.error!.issues[0].path).toEqual(['config', 'subject']);
    const extra = BrokerDestination.safeParse({ type: 'redis', config: { url: REDIS_URL, stream: 's', maxlen: 5 } });
    expect(extra.success).toBe(false);
    const query = BrokerDestination.safeParse({ type: 'redis', config: { url: `${REDIS_URL}?password=x`, stream: 's' } });
    expect(query.error!.issues[0].message).toMatch(/no query/);
  });

  it('splits the password (or NATS token) out for sealing, joins it back, and redacts it', () => {
    const amqpDest = dest({ type: 'rabbitmq', config: { url: 'amqp://app:s%40cret@broker.example:5672/vh', exchange: 'e', routingKey: 'k' } });
    const { destination, secret } = splitCredentials(amqpDest);
    expect(secret).toBe('s@cret');
    expect(destination.config.url).toBe('amqp://app@broker.example:5672/vh');
    expect(joinCredentials(destination, secret)).toEqual(amqpDest);
    expect(redactConfig(amqpDest).config.url).toBe('amqp://app:***@broker.example:5672/vh');

    const token = dest({ type: 'nats', config: { url: 'nats://t0ken@nats.example:4222', subject: 's' } });
    const split = splitCredentials(token);
    expect(split.secret).toBe('t0ken');
    expect(split.destination.config.url).not.toContain('t0ken');
    expect(joinCredentials(split.destination, split.secret)).toEqual(token);
    expect(redactConfig(token).config.url).toBe('nats://***@nats.example:4222');

    const none = dest({ type: 'redis', config: { url: REDIS_URL, stream: 's' } });
    expect(splitCredentials(none)).toEqual({ destination: none, secret: null });
  });
});

describe('address policy', () => {
  it('refuses a broker host the target policy does not allow, before connecting', async () => {
    const p = pool({ targetPolicy: createTargetPolicy([]) });
    const r = await p.publish(dest({ type: 'redis', config: { url: REDIS_URL, stream: name('s') } }), message());
    expect(r).toEqual({ ok: false, retry: false, reason: expect.stringMatching(/127\.0\.0\.1 is not an allowed target.*HOOKLINE_ALLOWED_TARGETS/) });
    const local = await p.publish(dest({ type: 'nats', config: { url: 'nats://localhost:4222', subject: 'x' } }), message());
    expect(local).toMatchObject({ ok: false, retry: false, reason: expect.stringMatching(/localhost is not an allowed target/) });
    expect(p.stats().connects).toBe(0);
  });
});

// --- RabbitMQ -------------------------------------------------------------------------------

/** A direct exchange of this run, removed afterwards (its queues too). */
async function amqpExchange(): Promise<string> {
  const exchange = name('ex');
  await amqpChannel.assertExchange(exchange, 'direct', { durable: false, autoDelete: false });
  cleanups.push(() => amqpChannel.deleteExchange(exchange));
  return exchange;
}

function amqpQueueCleanup(queue: string) {
  cleanups.push(() => amqpChannel.deleteQueue(queue));
}

/** A fresh exchange and a queue the destination declares and binds, both removed after the run. */
async function amqpQueueDestination(routingKey: string) {
  const exchange = await amqpExchange();
  const queue = name('q');
  amqpQueueCleanup(queue);
  return { exchange, queue, d: dest({ type: 'rabbitmq', config: { url: AMQP_URL, exchange, routingKey, queue } }) };
}

/** Everything in `queue` now, acknowledged. */
async function drainAmqp(queue: string) {
  const out = [];
  for (;;) {
    const m = await amqpChannel.get(queue, { noAck: true });
    if (m === false) return out;
    out.push(m);
  }
}

/** The pids (as rabbitmqctl takes them) of connections whose client properties carry `connectionName`. */
async function brokerConnections(connectionName: string): Promise<string[]> {
  const { stdout } = await run('rabbitmqctl', ['-q', 'list_connections', 'pid', 'client_properties'], { timeout: 30_000 });
  return stdout.split('\n').filter((line) => line.includes(connectionName)).map((line) => line.split('\t')[0]);
}

/** The name the pool gave its connections (a hash of the redacted destination). */
async function hooklineConnectionNames(): Promise<string[]> {
  const { stdout } = await run('rabbitmqctl', ['-q', 'list_connections', 'client_properties', '--formatter', 'json'], { timeout: 30_000 });
  return [...stdout.matchAll(/hookline\/[0-9a-f]{12}/g)].map((m) => m[0]);
}

describe('RabbitMQ', () => {
  it('publishes signed, persistent messages a consumer verifies, message-id = webhook-id', async () => {
    const { exchange, queue, d } = await amqpQueueDestination('rk');
    const p = pool();
    const msgs = [message(1), message(2), message(3)];
    for (const m of msgs) expect(await p.publish(d, m)).toEqual({ ok: true });

    const got = await drainAmqp(queue);
    expect(got.map((m) => m.properties.messageId)).toEqual(msgs.map((m) => m.id));
    for (const [i, m] of got.entries()) {
      expect(m.properties.deliveryMode).toBe(2);
      const verified = verifyAmqpMessage<{ data: { n: number } }>(m, { secrets: SECRET });
      expect(verified.id).toBe(msgs[i].id);
      expect(verified.payload.data.n).toBe(i + 1);
    }
    // One broken thing: a consumer with another secret refuses it.
    expect(() => verifyAmqpMessage(got[0], { secrets: generateSecret() })).toThrow(WebhookVerificationError);
  });

  it('unroutable (mandatory, nothing bound) is a retryable failure naming exchange and routing key', async () => {
    const exchange = await amqpExchange();
    const r = await pool().publish(dest({ type: 'rabbitmq', config: { url: AMQP_URL, exchange, routingKey: 'nobody' } }), message());
    expect(r).toEqual({ ok: false, retry: true, reason: `RabbitMQ could not route the message: no queue is bound to exchange '${exchange}' with routing key 'nobody'` });
  });

  it('a missing exchange is permanent, before and after the connection is pooled', async () => {
    const missing = name('gone');
    const p = pool();
    const r = await p.publish(dest({ type: 'rabbitmq', config: { url: AMQP_URL, exchange: missing, routingKey: 'k' } }), message());
    expect(r).toEqual({ ok: false, retry: false, reason: `RabbitMQ exchange '${missing}' does not exist` });

    // Deleted while pooled: the publish's channel closes with 404, the next connect says why.
    const { exchange, queue, d } = await amqpQueueDestination('k');
    expect(await p.publish(d, message())).toEqual({ ok: true });
    await amqpChannel.deleteExchange(exchange);
    const after = [await p.publish(d, message()), await p.publish(d, message())];
    expect(after.some((x) => !x.ok && !x.retry && x.reason === `RabbitMQ exchange '${exchange}' does not exist`)).toBe(true);
  });

  it('a wrong password is permanent and the reason holds no credential', async () => {
    const r = await pool().publish(dest({ type: 'rabbitmq', config: { url: 'amqp://guest:wr0ngpass@127.0.0.1:5672/', exchange: 'amq.direct', routingKey: 'k' } }), message());
    expect(r).toMatchObject({ ok: false, retry: false, reason: expect.stringMatching(/ACCESS_REFUSED/) });
    expect(JSON.stringify(r)).not.toMatch(/wr0ngpass|guest/);
  });

  it('pools one connection for many publishes, counted at the broker', async () => {
    const { exchange, queue, d } = await amqpQueueDestination('rk');
    const p = pool();
    const before = new Set(await hooklineConnectionNames());
    const results = await publishAll(p, d, Array.from({ length: 100 }, (_, i) => message(i)), 10);
    expect(results.every((r) => r.ok)).toBe(true);
    expect(p.stats()).toEqual({ open: 1, connects: 1 });
    const mine = (await hooklineConnectionNames()).filter((n) => !before.has(n));
    expect(mine).toHaveLength(1);
    expect((await drainAmqp(queue)).length).toBe(100);
  });

  it('a connection closed mid-burst: later publishes reconnect, every confirmed message is in the queue', async () => {
    const { exchange, queue, d } = await amqpQueueDestination('rk');
    const p = pool();
    const before = new Set(await hooklineConnectionNames());
    expect(await p.publish(d, message())).toEqual({ ok: true }); // open it, so rabbitmqctl can find it
    const [connectionName] = (await hooklineConnectionNames()).filter((n) => !before.has(n));
    const [pid] = await brokerConnections(connectionName);

    // Publishing goes on until the close has landed and 50 publishes after it, so the drop falls
    // inside the burst however fast or loaded the box is (bounded: 30,000 messages at most).
    const msgs: BrokerMessage[] = [];
    const results: PublishResult[] = [];
    let closed = false;
    const kill = run('rabbitmqctl', ['close_connection', pid, 'test: broker drop mid-burst'], { timeout: 30_000 })
      .finally(() => { closed = true; });
    let afterClose = 0;
    const lane = async () => {
      while (msgs.length < 30_000 && afterClose < 50) {
        const i = msgs.push(message(msgs.length)) - 1;
        results[i] = await p.publish(d, msgs[i]);
        if (closed) afterClose++;
      }
    };
    await Promise.all(Array.from({ length: 10 }, lane));
    await kill;
    expect(closed).toBe(true);
    const confirmedFirstTime = msgs.filter((_, i) => results[i].ok).map((m) => m.id);
    const failedFirstTime = msgs.length - confirmedFirstTime.length;
    expect(failedFirstTime).toBeGreaterThan(0); // the drop hit publishes in flight
    expect(p.stats().connects).toBeGreaterThanOrEqual(2); // and the pool reconnected

    await retryUntilAccepted(p, d, msgs, results);
    const ids = (await drainAmqp(queue)).map((m) => String(m.properties.messageId));
    const counts = new Map<string, number>();
    for (const id of ids) counts.set(id, (counts.get(id) ?? 0) + 1);
    for (const m of msgs) expect(counts.get(m.id) ?? 0, m.id).toBeGreaterThanOrEqual(1); // nothing lost
    for (const id of confirmedFirstTime) expect(counts.get(id), id).toBe(1); // confirmed ones never duplicated
    const duplicates = ids.length - 1 - msgs.length; // minus the opener
    expect(duplicates).toBeLessThanOrEqual(failedFirstTime); // only what was not confirmed
  });
});

// --- NATS JetStream -------------------------------------------------------------------------

describe('NATS JetStream', () => {
  it('publishes signed messages a consumer verifies; JetStream drops a repeated Nats-Msg-Id', async () => {
    const stream = name('S').toUpperCase();
    const subject = `${name('subj')}.created`;
    await jsm.streams.add({ name: stream, subjects: [subject] });
    cleanups.push(() => jsm.streams.delete(stream));
    const d = dest({ type: 'nats', config: { url: NATS_URL, subject, stream } });
    const p = pool();
    const m = message(7);
    expect(await p.publish(d, m)).toEqual({ ok: true, duplicate: false });
    expect(await p.publish(d, m)).toEqual({ ok: true, duplicate: true });
    expect((await jsm.streams.info(stream)).state.messages).toBe(1);

    const stored = (await jsm.streams.getMessage(stream, { seq: 1 }))!;
    expect(stored.header.get('Nats-Msg-Id')).toBe(m.id);
    const verified = verifyNatsMessage<{ data: { n: number } }>({ data: stored.data, headers: stored.header }, { secrets: SECRET });
    expect(verified).toMatchObject({ id: m.id, payload: { data: { n: 7 } } });
    expect(() => verifyNatsMessage({ data: Buffer.from('{}'), headers: stored.header }, { secrets: SECRET })).toThrow(WebhookVerificationError);
  });

  it('a missing stream, or a subject no stream captures, is permanent with a clear reason', async () => {
    const p = pool();
    const missing = name('NOPE').toUpperCase();
    const r1 = await p.publish(dest({ type: 'nats', config: { url: NATS_URL, subject: `${name('x')}.y`, stream: missing } }), message());
    expect(r1).toEqual({ ok: false, retry: false, reason: `NATS JetStream stream '${missing}' does not exist` });
    const subject = `${name('uncaptured')}.y`;
    const r2 = await p.publish(dest({ type: 'nats', config: { url: NATS_URL, subject } }), message());
    expect(r2).toEqual({ ok: false, retry: false, reason: `no NATS JetStream stream captures subject '${subject}'` });
  });
});

// --- Redis Streams --------------------------------------------------------------------------

describe('Redis Streams', () => {
  it('XADDs the headers as fields and the envelope as body; a consumer verifies the entry; MAXLEN ~ trims', async () => {
    const stream = name('stream');
    cleanups.push(() => redis.del(stream));
    const d = dest({ type: 'redis', config: { url: REDIS_URL, stream, maxLen: 10 } });
    const p = pool();
    const msgs = Array.from({ length: 300 }, (_, i) => message(i));
    expect((await publishAll(p, d, msgs, 10)).every((r) => r.ok)).toBe(true);
    expect(await redis.xlen(stream)).toBeLessThan(300); // trimmed (approximately, by whole nodes)
    const [[, fields]] = await redis.xrevrange(stream, '+', '-', 'COUNT', 1);
    const verified = verifyRedisEntry<{ id: string }>(fields, { secrets: SECRET });
    expect(verified.id).toBe(msgs[299].id);
    expect(verified.payload.id).toBe(msgs[299].id);
    expect(() => verifyRedisEntry(fields.map((f) => (f.startsWith('{') ? f.replace('"n":', '"n":1') : f)), { secrets: SECRET })).toThrow(WebhookVerificationError);
  });

  it('a wrong password (WRONGPASS) and a key of another type (WRONGTYPE) are permanent, no credential in the reason', async () => {
    const user = name('user');
    await redis.call('ACL', 'SETUSER', user, 'on', '>right-pass', '~*', '+@all');
    cleanups.push(() => redis.call('ACL', 'DELUSER', user));
    const p = pool();
    const stream = name('stream');
    cleanups.push(() => redis.del(stream));
    const wrong = await p.publish(dest({ type: 'redis', config: { url: `redis://${user}:wr0ngpass@127.0.0.1:6379`, stream } }), message());
    expect(wrong).toEqual({ ok: false, retry: false, reason: 'Redis refused the login (WRONGPASS): check the user and password' });
    expect(JSON.stringify(wrong)).not.toContain('wr0ngpass');
    const right = await p.publish(dest({ type: 'redis', config: { url: `redis://${user}:right-pass@127.0.0.1:6379`, stream } }), message());
    expect(right).toEqual({ ok: true });

    const key = name('string');
    await redis.set(key, 'not a stream');
    cleanups.push(() => redis.del(key));
    expect(await p.publish(dest({ type: 'redis', config: { url: REDIS_URL, stream: key } }), message())).toMatchObject({ ok: false, retry: false, reason: expect.stringMatching(/WRONGTYPE/) });
  });

  it('one connection for a burst (CLIENT LIST), CLIENT KILL mid-burst loses nothing, idle connections close', async () => {
    const stream = name('stream');
    cleanups.push(() => redis.del(stream));
    const d = dest({ type: 'redis', config: { url: REDIS_URL, stream } });
    const p = pool({ targetPolicy: LOOPBACK_POLICY, idleMs: 300 });
    const names = async () => ((await redis.client('LIST')) as string).split('\n').filter((l) => /name=hookline\//.test(l));
    const others = new Set((await names()).map((l) => /name=(\S+)/.exec(l)![1]));
    const mine = async () => (await names()).filter((l) => !others.has(/name=(\S+)/.exec(l)![1]));
    expect(await p.publish(d, message())).toEqual({ ok: true });
    const before = await mine();
    expect(before).toHaveLength(1);
    const id = /id=(\d+)/.exec(before[0])![1];

    const msgs = Array.from({ length: 3000 }, (_, i) => message(i));
    const results = await publishAll(p, d, msgs, 10, (i) => (i === 100 ? redis.client('KILL', 'ID', id).then((n) => expect(n).toBe(1)) : null));
    expect(p.stats().connects).toBe(2); // reconnected once, not per message
    await retryUntilAccepted(p, d, msgs, results);
    const entries = await redis.xrange(stream, '-', '+');
    const ids = new Set(entries.map(([, f]) => verifyRedisEntry(f, { secrets: SECRET }).id));
    for (const m of msgs) expect(ids.has(m.id), m.id).toBe(true);

    await new Promise((res) => setTimeout(res, 700));
    expect(p.stats().open).toBe(0); // closed when idle
    expect(await mine()).toHaveLength(0);
  });
});
