// `hookline/receiver`: what a webhook receiver needs, usable without the rest of Hookline.
// verify (node:crypto only), a Fastify plugin and a Postgres inbox (type-only imports of fastify
// and pg, so importing this module loads neither). The example server lives in ./example.
export {
  verifyWebhook,
  normalizeSecrets,
  WebhookVerificationError,
  DEFAULT_TOLERANCE_SECONDS,
  type VerifyWebhookInput,
  type VerifiedWebhook,
  type WebhookHeaders,
  type WebhookVerificationReason,
} from './verify';
export { webhookReceiver, type WebhookReceiverOptions } from './fastify';
export { createInbox, type Inbox, type InboxOptions, type InboxResult } from './inbox';
