// The typed client (hookline/client): its generated files match what the routes generate now
// (the drift check CI runs), and it works against a real API: the key as a Bearer header, typed
// bodies and query parameters, refusals thrown with the API's status and message.
import { execFile } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHooklineClient, HooklineApiError, ok, type HooklineClient } from '../src/client';
import { driftedFiles, generateClientFiles } from '../scripts/generate-client';
import { createApiOnly } from './helpers';

const API_KEY = 'client-test-key-0123456789';

describe('generated client files', () => {
  it('are up to date with the routes (run `npm run client:generate` when this fails)', async () => {
    expect(await driftedFiles()).toEqual([]);
  });

  it('type the consumer portal: its browser code compiles against them', async () => {
    // The root tsconfig has no DOM, so the portal (src/portal/web) has its own; run it here so CI
    // catches a route change that breaks the page, as `tsc --noEmit` does for the CLI.
    const repo = path.resolve(__dirname, '..');
    const tsc = promisify(execFile)(process.execPath, [require.resolve('typescript/bin/tsc'), '--noEmit', '-p', 'src/portal/web'], { cwd: repo });
    await expect(tsc).resolves.toMatchObject({ stdout: '' });
  });

  it('describe every /v1 route of the API with its types', async () => {
    const files = await generateClientFiles();
    const doc = JSON.parse(files['openapi.json']);
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/v1/endpoints', '/v1/events', '/v1/dead-letters/replay', '/v1/event-types']));
    expect(doc.components.securitySchemes.bearer).toMatchObject({ type: 'http', scheme: 'bearer' });
    expect(files['schema.ts']).toContain('"/v1/endpoints/{id}/secret/rotate"');
  });
});

describe('hookline/client against a real API', () => {
  let api: Awaited<ReturnType<typeof createApiOnly>>;
  let baseUrl: string;
  let hookline: HooklineClient;

  beforeAll(async () => {
    api = await createApiOnly({ HOOKLINE_API_KEY: API_KEY, HOOKLINE_ALLOWED_TARGETS: 'loopback' });
    await api.app.listen({ port: 0, host: '127.0.0.1' });
    baseUrl = `http://127.0.0.1:${(api.app.server.address() as AddressInfo).port}/`;
    hookline = createHooklineClient({ baseUrl, token: API_KEY });
  });
  afterAll(async () => {
    await api?.close();
  });

  it('creates, reads, pages and deletes with typed calls', async () => {
    const created = await ok(hookline.POST('/v1/endpoints', { body: { url: 'http://127.0.0.1:9/hooks', eventTypes: ['client.*'], description: 'typed' } }));
    expect(created.id).toMatch(/^ep_/);
    expect(created.secret).toMatch(/^whsec_/);
    const read = await ok(hookline.GET('/v1/endpoints/{id}', { params: { path: { id: created.id } } }));
    expect(read).toMatchObject({ id: created.id, description: 'typed', eventTypes: ['client.*'] });

    await ok(hookline.POST('/v1/endpoints', { body: { url: 'http://127.0.0.1:9/other' } }));
    // Query parameters left undefined are not sent (the API would refuse an empty cursor).
    const first = await ok(hookline.GET('/v1/endpoints', { params: { query: { limit: 1, cursor: undefined } } }));
    expect(first.data).toHaveLength(1);
    expect(first.nextCursor).toBeTruthy();
    const second = await ok(hookline.GET('/v1/endpoints', { params: { query: { limit: 1, cursor: first.nextCursor ?? undefined } } }));
    expect(second.data[0].id).not.toBe(first.data[0].id);

    const deleted = await hookline.DELETE('/v1/endpoints/{id}', { params: { path: { id: created.id } } });
    expect(deleted.response.status).toBe(204);
    await expect(hookline.GET('/v1/endpoints/{id}', { params: { path: { id: created.id } } })).rejects.toMatchObject({ status: 404 });
  });

  it('throws the API refusal with its status, code and message', async () => {
    const err = await hookline.POST('/v1/endpoints', { body: { url: 'ftp://example.com/' } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HooklineApiError);
    expect(err).toMatchObject({ status: 400 });
    expect((err as HooklineApiError).apiMessage).toMatch(/url/);
    expect((err as Error).message).toMatch(/^POST \/v1\/endpoints: 400 /);

    const anonymous = createHooklineClient({ baseUrl });
    await expect(anonymous.GET('/v1/endpoints')).rejects.toMatchObject({ status: 401, code: 'unauthorized' });
  });
});

// Compile-time checks, never called: each line is a type error, and `tsc --noEmit` (which covers
// test/) fails if the client stopped catching it.
export function typeErrorsTheClientCatches(hookline: HooklineClient) {
  return [
    // @ts-expect-error: no such route
    hookline.GET('/v1/endpointz'),
    // @ts-expect-error: the path parameter is required
    hookline.GET('/v1/endpoints/{id}', {}),
    // @ts-expect-error: url is required
    hookline.POST('/v1/endpoints', { body: { description: 'no url' } }),
  ];
}
