// The logger each request gets (req.log, reply.log). Fastify makes a pino child per request to
// bind its reqId, and a child costs the redaction of its bindings (src/logger.ts redacts by
// wildcard paths): about 3% of the API's CPU per submitted event, for a logger that at the
// default level (warn) writes nothing on the happy path. This one makes the child on the first
// record a level lets through, so only requests that log pay for it; what is written is the same.
import type { FastifyBaseLogger } from 'fastify';
import type { Bindings, ChildLoggerOptions, LevelWithSilent } from 'pino';

type Method = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace';

class RequestLogger implements FastifyBaseLogger {
  private made: FastifyBaseLogger | null = null;

  constructor(
    private readonly parent: FastifyBaseLogger,
    private readonly bindings: Bindings,
    private readonly options: ChildLoggerOptions,
  ) {}

  private real(): FastifyBaseLogger {
    return (this.made ??= this.parent.child(this.bindings, this.options));
  }

  get level(): LevelWithSilent | string {
    return this.made?.level ?? this.parent.level;
  }

  set level(level: LevelWithSilent | string) {
    this.real().level = level;
  }

  private log(method: Method, args: unknown[]): void {
    // Until the child exists its level is the parent's (options.level makes it at once, below).
    if (!this.made && !(this.parent as { isLevelEnabled?: (l: string) => boolean }).isLevelEnabled?.(method)) return;
    (this.real()[method] as (...a: unknown[]) => void)(...args);
  }

  fatal(...args: unknown[]): void {
    this.log('fatal', args);
  }
  error(...args: unknown[]): void {
    this.log('error', args);
  }
  warn(...args: unknown[]): void {
    this.log('warn', args);
  }
  info(...args: unknown[]): void {
    this.log('info', args);
  }
  debug(...args: unknown[]): void {
    this.log('debug', args);
  }
  trace(...args: unknown[]): void {
    this.log('trace', args);
  }
  silent(): void {}

  child(bindings: Bindings, options?: ChildLoggerOptions): FastifyBaseLogger {
    return this.real().child(bindings, options);
  }
}

/** Fastify's childLoggerFactory: a lazy child, or a real one when the route sets its own level or serializers. */
export function requestLogger(parent: FastifyBaseLogger, bindings: Bindings, options: ChildLoggerOptions): FastifyBaseLogger {
  if (options.level || options.serializers) return parent.child(bindings, options);
  return new RequestLogger(parent, bindings, options) as FastifyBaseLogger;
}
