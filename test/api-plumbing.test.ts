// The API's per-request plumbing, without a database: the lazy request logger and the response
// serializer (both exist to make POST /v1/events cheaper; these pin that they change nothing else).
import { Writable } from 'node:stream';
import Fastify, { type FastifyBaseLogger } from 'fastify';
import { validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { requestLogger } from '../src/api/request-logger';
import { serializerCompiler } from '../src/api/response-serializer';
import { createLogger } from '../src/logger';

async function loggedApp(level: 'warn' | 'debug') {
  const lines: Record<string, unknown>[] = [];
  const out = new Writable({
    write(chunk, _enc, cb) {
      lines.push(JSON.parse(String(chunk)));
      cb();
    },
  });
  const app = Fastify({
    loggerInstance: createLogger({ HOOKLINE_LOG_LEVEL: level, HOOKLINE_LOG_FORMAT: 'json' }, 'api', out) as FastifyBaseLogger,
    childLoggerFactory: requestLogger,
  });
  app.get('/quiet', async () => ({ ok: true }));
  app.get('/warns', async (req) => {
    req.log.warn({ headers: { authorization: 'Bearer s3cret' } }, 'careful');
    req.log.info('not at warn');
    return { ok: true };
  });
  return { app, lines };
}

describe('request logger', () => {
  it('at warn, writes only what a route warns, with its reqId and redaction', async () => {
    const { app, lines } = await loggedApp('warn');
    await app.inject('/quiet');
    const res = await app.inject('/warns');
    expect(res.statusCode).toBe(200);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 40, msg: 'careful', reqId: 'req-2', role: 'api', headers: { authorization: '[redacted]' } });
    await app.close();
  });

  it('at debug, writes every request line with its reqId', async () => {
    const { app, lines } = await loggedApp('debug');
    await app.inject('/warns');
    expect(lines.map((l) => [l.msg, l.reqId])).toEqual([
      ['incoming request', 'req-1'],
      ['careful', 'req-1'],
      ['not at warn', 'req-1'],
      ['request completed', 'req-1'],
    ]);
    await app.close();
  });
});

describe('response serializer', () => {
  async function serve(schema: z.ZodType, value: unknown) {
    const app = Fastify().withTypeProvider<ZodTypeProvider>();
    app.setValidatorCompiler(validatorCompiler);
    app.setSerializerCompiler(serializerCompiler);
    app.get('/', { schema: { response: { 200: schema } } }, async () => value as never);
    const res = await app.inject('/');
    await app.close();
    return res;
  }

  it('drops keys the schema does not name and refuses a value that breaks it', async () => {
    const Out = z.object({ id: z.string(), n: z.number().nullable() });
    expect((await serve(Out, { id: 'a', n: null, secret: 'x' })).json()).toEqual({ id: 'a', n: null });
    expect((await serve(Out, { id: 'a', n: 'one' })).statusCode).toBe(500);
  });

  it('encodes a schema whose two sides differ (a codec), as fastify-type-provider-zod does', async () => {
    const Out = z.object({ n: z.codec(z.string(), z.number(), { decode: Number, encode: String }) });
    expect((await serve(Out, { n: 5 })).json()).toEqual({ n: '5' });
  });
});
