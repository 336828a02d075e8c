// What the worker process logs: one line per delivery attempt and per dead letter, and the
// Temporal SDK's own logs forwarded into the same pino logger. The SDK logs every failed activity
// at WARN with a stack; for a webhook system a receiver answering 500 is routine, already told by
// the attempt line, so those failures go to DEBUG. Anything else the SDK says keeps its level.
// No secrets and no payload bodies: attempt reports carry ids, status, latency and an error text.
import { ApplicationFailure } from '@temporalio/common';
import { Runtime, type LogLevel, type LogMetadata, type Logger as TemporalLogger } from '@temporalio/worker';
import { FailureTypes, type AttemptReport, type DeliveryStatusReport } from '../../activities';
import type { Logger } from '../logger';

const EXPECTED_FAILURE_TYPES: ReadonlySet<string> = new Set(Object.values(FailureTypes));

/** A failure the delivery activity throws on purpose (receiver said no, endpoint gone, …). */
export function isExpectedDeliveryFailure(err: unknown): boolean {
  return err instanceof ApplicationFailure && err.type != null && EXPECTED_FAILURE_TYPES.has(err.type);
}

export function logAttempt(log: Logger, a: AttemptReport): void {
  const result = a.statusCode !== null && a.outcome === 'delivered' ? String(a.statusCode) : (a.error ?? `HTTP ${a.statusCode}`);
  const note = a.outcome === 'failed' ? `attempt ${a.attempt}, permanent` : `attempt ${a.attempt}`;
  const line = { kind: 'attempt', ...a };
  const msg = `${a.outcome} ${a.eventId} → ${a.endpointId}: ${result} in ${a.latencyMs} ms (${note})`;
  if (a.outcome === 'failed') log.warn(line, msg);
  else log.info(line, msg);
}

export function logDeliveryStatus(log: Logger, s: DeliveryStatusReport): void {
  if (s.status === 'dead_lettered') {
    log.warn({ kind: 'dead_letter', ...s }, `dead-lettered ${s.eventId} → ${s.endpointId}: ${s.reason ?? 'no reason'} (replay to retry)`);
  } else if (s.status === 'dropped') {
    log.warn({ kind: 'dead_letter', ...s }, `dropped ${s.eventId} → ${s.endpointId}: dead letter retention ended without a replay`);
  }
}

const PINO_LEVEL = { TRACE: 'trace', DEBUG: 'debug', INFO: 'info', WARN: 'warn', ERROR: 'error' } as const;

/** The Temporal SDK's logger interface on top of pino. */
export class PinoTemporalLogger implements TemporalLogger {
  constructor(private readonly pino: Logger) {}

  log(level: LogLevel, message: string, meta: LogMetadata = {}): void {
    const { error, ...rest } = meta as { error?: unknown } & Record<string, unknown>;
    if (error !== undefined && isExpectedDeliveryFailure(error)) {
      const f = error as ApplicationFailure;
      this.pino.debug({ ...rest, failureType: f.type, error: f.message }, message);
      return;
    }
    // The bundler's webpack report is many lines at INFO: detail for debugging, not a log line.
    const pinoLevel = level === 'INFO' && message.includes('\n') ? 'debug' : PINO_LEVEL[level];
    this.pino[pinoLevel](error instanceof Error ? { ...rest, err: error } : error !== undefined ? { ...rest, error } : rest, message);
  }
  trace(message: string, meta?: LogMetadata) {
    this.log('TRACE', message, meta);
  }
  debug(message: string, meta?: LogMetadata) {
    this.log('DEBUG', message, meta);
  }
  info(message: string, meta?: LogMetadata) {
    this.log('INFO', message, meta);
  }
  warn(message: string, meta?: LogMetadata) {
    this.log('WARN', message, meta);
  }
  error(message: string, meta?: LogMetadata) {
    this.log('ERROR', message, meta);
  }
}

/**
 * Routes the SDK's logs (TypeScript side and, forwarded, the Rust core's) through `log`. Once
 * per process, before the first NativeConnection or Worker is created. `shutdownSignals` as the
 * SDK's Runtime option: [] when the process stops its workers itself (src/worker/worker.ts).
 */
export function installRuntimeLogger(log: Logger, opts: { shutdownSignals?: NodeJS.Signals[] } = {}): void {
  Runtime.install({
    ...opts,
    logger: new PinoTemporalLogger(log.child({ component: 'temporal' })),
    telemetryOptions: { logging: { filter: { core: 'WARN', other: 'ERROR' }, forward: {} } },
  });
}
