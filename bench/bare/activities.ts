// The baseline's one activity: POST the body with Hookline's own HTTP client (activities/http),
// so the comparison measures Hookline's pipeline and not a different client.
import { ApplicationFailure } from '@temporalio/activity';
import { post as httpPost } from '../../activities/http';
import { createTargetPolicy } from '../../src/net/address-policy';

// The bench receivers listen on 127.0.0.1.
const LOOPBACK_ONLY = createTargetPolicy(['loopback']);

export const REQUEST_TIMEOUT_MS = 15_000;
export const RESPONSE_BODY_MAX_BYTES = 64 * 1024;

export function createBareActivities() {
  async function post(input: { url: string; id: string; body: string }): Promise<number> {
    const result = await httpPost({
      url: input.url,
      body: input.body,
      headers: { 'content-type': 'application/json', 'webhook-id': input.id },
      timeoutMs: REQUEST_TIMEOUT_MS,
      maxResponseBytes: RESPONSE_BODY_MAX_BYTES,
      targetPolicy: LOOPBACK_ONLY,
    });
    if (result.kind === 'response' && result.status >= 200 && result.status < 300) return result.status;
    throw ApplicationFailure.retryable(result.kind === 'response' ? `HTTP ${result.status}` : result.message);
  }
  return { post };
}

export type BareActivities = ReturnType<typeof createBareActivities>;
