// Event-type schemas cannot stall or break the API (issue 10): linear-time patterns, bounded
// uniqueItems, self-referencing schemas refused at registration, and validation of unbounded
// cost run in a worker under a deadline while the API keeps answering. Real Postgres, no Temporal.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { createApiOnly } from './helpers';

describe('schema limits', () => {
  let app: FastifyInstance;
  let close: () => Promise<void>;

  beforeAll(async () => {
    ({ app, close } = await createApiOnly());
  });
  afterAll(async () => {
    await close?.();
  });

  const register = (name: string, schema: unknown) => app.inject({ method: 'POST', url: '/v1/event-types', payload: { name, schema } });
  const submit = (type: string, data: unknown) => app.inject({ method: 'POST', url: '/v1/events', payload: { type, data } });

  it('matches a catastrophic-backtracking pattern in linear time', async () => {
    const schema = { type: 'object', properties: { x: { type: 'string', pattern: '^(a+)+$' } } };
    expect((await register('redos.pattern', schema)).statusCode).toBe(201);
    // 40 a's and a b: a backtracking engine would need about 2^40 steps.
    const res = await submit('redos.pattern', { x: `${'a'.repeat(40)}b` });
    expect(res.statusCode).toBe(422);
    expect(res.json()).toMatchObject({ code: 'schema_violation', message: expect.stringContaining('data.x') });
    expect((await submit('redos.pattern', { x: 'aaaa' })).statusCode).toBe(202);
  });

  it('runs patternProperties and format: regex on the same engine', async () => {
    const schema = {
      type: 'object',
      patternProperties: { '^(a|aa)+$': { type: 'number' } },
      properties: { re: { type: 'string', format: 'regex' } },
    };
    expect((await register('redos.props', schema)).statusCode).toBe(201);
    const res = await submit('redos.props', { [`${'a'.repeat(40)}`]: 'not a number' });
    expect(res.statusCode).toBe(422);
    expect((await submit('redos.props', { re: '(?<=x)y' })).statusCode).toBe(422); // lookbehind: not RE2
    expect((await submit('redos.props', { re: '^[a-z]+$' })).statusCode).toBe(202);
  });

  it('refuses a pattern RE2 cannot run (lookaround, backreference) at registration', async () => {
    for (const pattern of ['^(?!x)', '(a)\\1']) {
      const res = await register('redos.lookaround', { type: 'object', properties: { x: { type: 'string', pattern } } });
      expect(res.statusCode).toBe(422);
      expect(res.json()).toMatchObject({ code: 'invalid_schema', message: expect.stringMatching(/^schema/) });
    }
  });

  it('refuses uniqueItems without a small maxItems, naming where it is', async () => {
    const res = await register('unique.unbounded', { type: 'object', properties: { tags: { type: 'array', uniqueItems: true } } });
    expect(res.statusCode).toBe(422);
    expect(res.json()).toMatchObject({ code: 'invalid_schema', message: expect.stringContaining('schema.properties.tags.uniqueItems') });
    const bounded = { type: 'object', properties: { tags: { type: 'array', uniqueItems: true, maxItems: 1000 } } };
    expect((await register('unique.bounded', bounded)).statusCode).toBe(201);
    const big = await submit('unique.bounded', { tags: Array.from({ length: 20_000 }, (_, i) => ({ i })) });
    expect(big.statusCode).toBe(422);
    expect(big.json().message).toContain('data.tags');
    expect((await submit('unique.bounded', { tags: [{ a: 1 }, { a: 1 }] })).json().code).toBe('schema_violation');
    expect((await submit('unique.bounded', { tags: [{ a: 1 }, { a: 2 }] })).statusCode).toBe(202);
  });

  it('refuses a schema that refers to itself without end, instead of 500 on every event', async () => {
    const res = await register('self.ref', { $id: 'x', $ref: 'x' });
    expect(res.statusCode).toBe(422);
    expect(res.json()).toMatchObject({ code: 'invalid_schema', message: expect.stringMatching(/^schema: .*\$ref/) });
    expect((await app.inject({ method: 'GET', url: '/v1/event-types/self.ref' })).statusCode).toBe(404);
    // A later version through PATCH gets the same check.
    expect((await app.inject({ method: 'POST', url: '/v1/event-types', payload: { name: 'self.later' } })).statusCode).toBe(201);
    const patched = await app.inject({ method: 'PATCH', url: '/v1/event-types/self.later', payload: { schema: { $id: 'y', $ref: 'y' } } });
    expect(patched.statusCode).toBe(422);
  });

  it('answers 422, not 500, when the data walks into a $ref cycle', async () => {
    const schema = { type: 'object', properties: { a: { $ref: '#/definitions/loop' } }, definitions: { loop: { allOf: [{ $ref: '#/definitions/loop' }] } } };
    expect((await register('cycle.data', schema)).statusCode).toBe(201); // {} never reaches the cycle
    const res = await submit('cycle.data', { a: 1 });
    expect(res.statusCode).toBe(422);
    expect(res.json()).toMatchObject({ code: 'schema_unusable', message: expect.stringContaining('data') });
    expect((await submit('cycle.data', {})).statusCode).toBe(202);
  });

  it('keeps answering /healthz while a costly validation runs, then stops it with a 422', async () => {
    // Each level tries both branches of anyOf on a value that fails the leaf: 2^30 leaf checks.
    const definitions: Record<string, unknown> = { d30: { type: 'string' } };
    for (let i = 0; i < 30; i++) definitions[`d${i}`] = { anyOf: [{ $ref: `#/definitions/d${i + 1}` }, { $ref: `#/definitions/d${i + 1}` }] };
    const schema = { type: 'object', properties: { x: { $ref: '#/definitions/d0' } }, definitions };
    expect((await register('costly.schema', schema)).statusCode).toBe(201);

    // More hostile events than the API has database connections (5): a validation that waits
    // in the worker pool must not hold one, or every other route would wait too.
    let pending = 6;
    const hostile = Array.from({ length: pending }, () => submit('costly.schema', { x: 1 }).finally(() => pending--));
    let answeredMeanwhile = 0;
    while (pending > 0) {
      const [health, list] = await Promise.all([app.inject({ method: 'GET', url: '/healthz' }), app.inject({ method: 'GET', url: '/v1/endpoints' })]);
      expect(health.statusCode).toBe(200);
      expect(list.statusCode).toBe(200);
      if (pending > 0) answeredMeanwhile++;
      await new Promise((r) => setTimeout(r, 20));
    }
    for (const res of await Promise.all(hostile)) {
      expect(res.statusCode).toBe(422);
      expect(res.json()).toMatchObject({ code: 'validation_timeout', message: expect.stringContaining('data') });
    }
    // The event loop and the database pool were free while the hostile validations ran (each
    // takes at least the deadline).
    expect(answeredMeanwhile).toBeGreaterThan(5);
    // The pool recovered: the same type still validates a harmless payload.
    expect((await submit('costly.schema', { x: 'fine' })).statusCode).toBe(202);
    // Each stopped worker is replaced by a fresh one that loads tsx and Ajv: seconds on a busy box.
  }, 120_000);

  it('keeps a process alive while a worker validates, and lets it exit once the pool is idle', async () => {
    // The producer library validates in the caller's process: a pending validation must hold it
    // open (or the await would never return), an idle pool must not (or a script would never end).
    const script = `
      const { schemaPool } = require(${JSON.stringify(path.join(__dirname, '../src/schema-pool.ts'))});
      schemaPool.validate('k', { type: 'object', required: ['a'] }, {}).then((r) => console.log(JSON.stringify(r)));`;
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', '-e', script], { cwd: path.join(__dirname, '..'), timeout: 30_000 });
    expect(JSON.parse(stdout)).toEqual([{ path: 'data.a', message: 'is required' }]);
  });
});
