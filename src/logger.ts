// Structured logs (pino), one logger per process role. Secrets and signatures are redacted by
// path so a careless log call cannot leak them; payload bodies are never logged.
// Two formats: JSON lines (for log shippers; the default when stdout is not a terminal) and one
// readable line per record (a terminal, `hookline dev`, or HOOKLINE_LOG_FORMAT=pretty).
import pino, { type Logger } from 'pino';
import pretty from 'pino-pretty';
import type { Config } from './config';

export const REDACT_PATHS = [
  'secret', '*.secret', 'secrets', '*.secrets',
  'req.headers.authorization', 'headers.authorization', '*.headers.authorization',
  'headers["webhook-signature"]', '*.headers["webhook-signature"]',
];

type LogConfig = Pick<Config, 'HOOKLINE_LOG_LEVEL'> & Partial<Pick<Config, 'HOOKLINE_LOG_FORMAT'>>;

/** `destination`: where lines go instead of stdout (tests). */
export function createLogger(config: LogConfig, role: string, destination?: NodeJS.WritableStream): Logger {
  const options: pino.LoggerOptions = {
    level: config.HOOKLINE_LOG_LEVEL,
    base: { role },
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
  };
  if (usePrettyLogs(config)) return pino(options, prettyStream(destination));
  return destination ? pino(options, destination) : pino(options);
}

export function usePrettyLogs(config: Partial<Pick<Config, 'HOOKLINE_LOG_FORMAT'>>): boolean {
  return (config.HOOKLINE_LOG_FORMAT ?? (process.stdout.isTTY ? 'pretty' : 'json')) === 'pretty';
}

// Shown by the line's prefix (`hookline dev` prints the role) or not worth a terminal's width.
const PRETTY_HIDDEN = new Set(['level', 'time', 'pid', 'hostname', 'role', 'msg', 'kind', 'err']);

/** "[12:00:01.123] INFO: message key=value …" — records with a `kind` (attempt, dead_letter) carry it all in the message. */
function prettyStream(destination?: NodeJS.WritableStream) {
  return pretty({
    ...(destination ? { destination, colorize: false } : { sync: true }), // sync: a line is never lost to process.exit()
    translateTime: 'SYS:HH:MM:ss.l',
    ignore: 'pid,hostname,role',
    hideObject: true,
    // Only `err` is an Error; the attempt lines' `error` is a plain string.
    errorLikeObjectKeys: ['err'],
    messageFormat: (log, messageKey, _level, { colors }) => {
      const msg = String(log[messageKey] ?? '');
      if (typeof log.kind === 'string') return msg;
      const extras = Object.entries(log)
        .filter(([k, v]) => !PRETTY_HIDDEN.has(k) && v !== undefined)
        .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`);
      return extras.length > 0 ? `${msg} ${colors.gray(extras.join(' '))}` : msg;
    },
  });
}

export type { Logger };
