// The one shape every broker destination has: publish a signed message, get back plain data
// the deliver activity maps to its outcome table (delivered / retry / dead-letter). Outcomes
// are data, not thrown errors, so the classification is decided here, next to the broker's own
// error codes, and a reason never carries a client library's raw message (it may echo a URL).

/** One message: the Standard Webhooks headers travel as broker headers, the envelope as body. */
export interface BrokerMessage {
  /** The event id (`webhook-id`): AMQP message-id, NATS Nats-Msg-Id, the dedupe key. */
  id: string;
  /** `webhook-id`, `webhook-timestamp`, `webhook-signature` (and any custom headers). */
  headers: Record<string, string>;
  /** The signed envelope, byte for byte as signed. */
  body: string;
}

/**
 * Not accepted. `retry`: the same message may succeed later (connection lost, nack, timeout);
 * otherwise it cannot until the config or the broker changes (auth, missing exchange/stream).
 * `reason` names no credentials and no resolved address.
 */
export interface PublishFailure {
  ok: false;
  retry: boolean;
  reason: string;
}

export type PublishResult =
  /** The broker durably accepted it (confirm, JetStream ack, XADD reply); `duplicate`: it already had this id. */
  | { ok: true; duplicate?: boolean }
  | PublishFailure;

export interface Destination {
  publish(msg: BrokerMessage): Promise<PublishResult>;
}

/** A live connection to one broker destination, owned by the pool (src/destinations/pool.ts). */
export interface BrokerConnection {
  publish(msg: BrokerMessage): Promise<PublishResult>;
  /** False once the broker dropped it or close() ran; the pool then opens a new one. */
  readonly open: boolean;
  close(): Promise<void>;
}

/** Where to connect: the address the policy approved, and the host name for TLS. */
export interface ConnectTarget {
  address: string;
  servername: string;
  /** A name the broker shows for the connection (no credentials), e.g. `hookline/1a2b3c4d`. */
  connectionName: string;
  connectTimeoutMs: number;
  publishTimeoutMs: number;
}

export const retry = (reason: string): PublishFailure => ({ ok: false, retry: true, reason });
export const permanent = (reason: string): PublishFailure => ({ ok: false, retry: false, reason });

/** A failure to open a connection, already classified (the pool turns it into a result). */
export class ConnectFailure extends Error {
  override name = 'ConnectFailure';
  constructor(readonly result: PublishFailure) {
    super(result.reason);
  }
}

/** `code` of a Node socket error (ECONNREFUSED, ETIMEDOUT, …), if it is one. */
export function socketCode(err: unknown): string | null {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^E[A-Z]+$/.test(code) ? code : null;
}

/** Rejects with a retryable timeout after `ms` so no publish waits on a broker forever. */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new ConnectFailure({ ok: false, retry: true, reason: `${what} timed out after ${ms} ms` })), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
