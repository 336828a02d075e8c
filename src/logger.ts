// Structured logs (pino), one logger per process role. Secrets and signatures are redacted by
// path so a careless log call cannot leak them; payload bodies are never logged.
import pino, { type Logger } from 'pino';
import type { Config } from './config';

export const REDACT_PATHS = [
  'secret', '*.secret', 'secrets', '*.secrets',
  'req.headers.authorization', 'headers.authorization', '*.headers.authorization',
  'headers["webhook-signature"]', '*.headers["webhook-signature"]',
];

export function createLogger(config: Pick<Config, 'HOOKLINE_LOG_LEVEL'>, role: string): Logger {
  return pino({
    level: config.HOOKLINE_LOG_LEVEL,
    base: { role },
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
  });
}

export type { Logger };
