// The message a broker destination publishes: the same Standard Webhooks headers an HTTP
// delivery sends (src/signing.ts signs both), so one receiver kit verifies either.
import { signatureHeader } from '../signing';
import type { BrokerMessage } from './types';

export interface SignInput {
  /** The event id: webhook-id, and the broker's dedupe key. */
  id: string;
  /** The envelope JSON, exactly as it will be sent. */
  body: string;
  /** The endpoint's active signing secrets (several during a rotation). */
  secrets: readonly string[];
  /** This attempt's time, unix seconds (a retry signs anew, as over HTTP). */
  timestampSeconds: number;
  /** The endpoint's custom headers; the webhook-* ones win over them. */
  headers?: Record<string, string>;
}

export function signedBrokerMessage(input: SignInput): BrokerMessage {
  const { id, body, secrets, timestampSeconds } = input;
  return {
    id,
    body,
    headers: {
      ...input.headers,
      'webhook-id': id,
      'webhook-timestamp': String(timestampSeconds),
      'webhook-signature': signatureHeader(secrets, id, timestampSeconds, body),
    },
  };
}
