// Fastify side of the receiver kit: keeps each request's body as raw bytes (the signature covers
// bytes, not a re-serialised object), verifies it before validation and the handler run, and
// answers 401 on failure so an unverified body never reaches application code.
//
// The plugin changes the scope it is registered in (as fastify-plugin would; that package is not
// a dependency, so it sets `skip-override` itself). Register it inside its own scope together
// with the webhook routes, so the rest of the app keeps its normal JSON parsing:
//
//   app.register(async (hooks) => {
//     await hooks.register(webhookReceiver, { secrets: process.env.WEBHOOK_SECRET! });
//     hooks.post('/webhooks', async (request) => {
//       const { id, payload } = request.webhook;   // verified; request.body is the payload too
//       return { ok: true };
//     });
//   });
//
// Hooks apply to every route of the scope whatever the order they were added in, so routes may
// also be declared before the plugin is registered. A second source with its own secret gets a
// sibling scope.
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import {
  normalizeSecrets,
  verifyWebhook,
  WebhookVerificationError,
  type VerifiedWebhook,
} from './verify';

declare module 'fastify' {
  interface FastifyRequest {
    /**
     * The verified event on routes inside a `webhookReceiver` scope. Typed non-null for the
     * handlers that use it; on routes outside such a scope it is null.
     */
    webhook: VerifiedWebhook;
  }
}

export interface WebhookReceiverOptions {
  /**
   * One key or several during a rotation: `whsec_` secrets verify v1 (HMAC), `whpk_` public keys
   * verify v1a (ed25519); give both while an endpoint moves from one scheme to the other.
   */
  secrets: string | readonly string[];
  toleranceSeconds?: number;
  /** Clock override for tests; called once per request. */
  now?: () => Date | number;
  /** Called for each rejected request, before the 401/400 is sent (logging, metrics). */
  onRejected?: (request: FastifyRequest, error: WebhookVerificationError) => void;
}

export const webhookReceiver: FastifyPluginAsync<WebhookReceiverOptions> = async (fastify, opts) => {
  // Fail at start, not with a 401 on every request, when the secret is misconfigured.
  const secrets = normalizeSecrets(opts.secrets);

  if (!fastify.hasRequestDecorator('webhook')) fastify.decorateRequest('webhook', null as unknown as VerifiedWebhook);

  // Every content type arrives as a Buffer: the sender signs the bytes, whatever it labels them,
  // and verifyWebhook parses the JSON itself.
  fastify.removeAllContentTypeParsers();
  fastify.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => done(null, body));

  fastify.addHook('preValidation', async (request, reply) => {
    const body = request.body;
    const rawBody = Buffer.isBuffer(body) ? body : typeof body === 'string' ? body : '';
    try {
      request.webhook = verifyWebhook({
        headers: request.headers,
        rawBody,
        secrets,
        toleranceSeconds: opts.toleranceSeconds,
        now: opts.now?.(),
      });
    } catch (err) {
      if (!(err instanceof WebhookVerificationError)) throw err;
      opts.onRejected?.(request, err);
      request.log.info({ reason: err.reason }, 'webhook rejected');
      // A signed body that is not JSON is the sender's bug, not an authentication failure:
      // 400, which Hookline (like most senders) treats as permanent, as it does 401.
      const status = err.reason === 'bad_payload' ? 400 : 401;
      const code = err.reason === 'bad_payload' ? 'invalid_payload' : 'invalid_signature';
      return reply.code(status).send({ code, message: err.message, reason: err.reason });
    }
    // Route schemas and handlers see the parsed event, as they would without the plugin.
    request.body = request.webhook.payload;
  });
};

// Apply to the registering scope instead of a child one (what fastify-plugin does).
Object.assign(webhookReceiver, {
  [Symbol.for('skip-override')]: true,
  [Symbol.for('fastify.display-name')]: 'hookline-webhook-receiver',
});
