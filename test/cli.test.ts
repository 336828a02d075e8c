// The `hookline` command from a shell: dead letters listed and replayed through the API, and
// the address policy enforced at delivery time when private targets are not allowed.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTargetPolicy } from '../src/net/address-policy';
import { createEndpoint, createHarness, FAST_RETRY, sendEvent, startReceiver, waitFor, type Harness, type Receiver } from './helpers';

const run = promisify(execFile);
const CLI = path.join(__dirname, '../bin/hookline');

describe('hookline dead-letters / replay', () => {
  let h: Harness;
  let rx: Receiver;
  let base: string;

  beforeAll(async () => {
    h = await createHarness();
    rx = await startReceiver();
    await h.app.listen({ port: 0, host: '127.0.0.1' });
    base = `http://127.0.0.1:${(h.app.server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await rx?.close();
    await h?.close();
  });

  const hookline = (...args: string[]) => run(CLI, args, { env: { ...process.env, HOOKLINE_URL: base }, timeout: 30_000 });

  it('lists dead letters and replays them', async () => {
    let healthy = false;
    rx.respond = () => ({ status: healthy ? 200 : 404 });
    const ep = await createEndpoint(h.app, { url: rx.url, eventTypes: ['cli.test'], retry: FAST_RETRY });
    const a = await sendEvent(h.app, { type: 'cli.test', data: { n: 1 } });
    const b = await sendEvent(h.app, { type: 'cli.test', data: { n: 2 } });
    const status = (id: string) => async () => (await h.app.inject({ method: 'GET', url: `/v1/events/${id}` })).json().deliveries[0]?.status;
    for (const id of [a.id, b.id]) await waitFor(async () => (await status(id)()) === 'dead_lettered', 30_000, 'dead letter');

    const listed = await hookline('dead-letters', '--endpoint', ep.id);
    expect(listed.stdout).toContain(a.id);
    expect(listed.stdout).toContain(b.id);
    expect(listed.stdout).toContain('HTTP 404');

    healthy = true;
    const one = await hookline('replay', a.id, ep.id);
    expect(one.stdout).toContain(`replaying ${a.id}`);
    await waitFor(async () => (await status(a.id)()) === 'delivered', 30_000, 'a delivered');

    const all = await hookline('replay', '--all', '--endpoint', ep.id);
    expect(all.stdout).toContain('replayed 1 dead letter');
    await waitFor(async () => (await status(b.id)()) === 'delivered', 30_000, 'b delivered');
  });

  it('lists and replays one tenant\'s dead letters with --tenant', async () => {
    let healthy = false;
    rx.respond = () => ({ status: healthy ? 200 : 404 });
    const inject = async (method: 'GET' | 'POST', url: string, payload?: object) => (await h.app.inject({ method, url, payload })).json();
    await inject('POST', '/v1/tenants', { id: 'cli-tenant' });
    const ep = await inject('POST', '/v1/tenants/cli-tenant/endpoints', { url: rx.url, eventTypes: ['cli.tenant'], retry: FAST_RETRY });
    const ev = await inject('POST', '/v1/tenants/cli-tenant/events', { type: 'cli.tenant', data: {} });
    const status = async () => (await inject('GET', `/v1/tenants/cli-tenant/events/${ev.id}`)).deliveries?.[0]?.status;
    await waitFor(async () => (await status()) === 'dead_lettered', 30_000, 'dead letter');

    expect((await hookline('dead-letters', '--tenant', 'cli-tenant')).stdout).toContain(ev.id);
    expect((await hookline('dead-letters')).stdout).not.toContain(ev.id); // the default tenant's
    healthy = true;
    expect((await hookline('replay', '--tenant', 'cli-tenant', ev.id, ep.id)).stdout).toContain(`replaying ${ev.id}`);
    await waitFor(async () => (await status()) === 'delivered', 30_000, 'delivered');
    await expect(hookline('dead-letters', '--tenant', 'no-such-tenant')).rejects.toMatchObject({ stderr: expect.stringContaining('404') });
  });

  it('fails with a clear message on a bad command', async () => {
    await expect(hookline('replay')).rejects.toMatchObject({ stderr: expect.stringContaining('usage: hookline replay') });
    await expect(hookline('frobnicate')).rejects.toMatchObject({ stderr: expect.stringContaining('unknown command') });
  });
});

describe('address policy at delivery time', () => {
  let h: Harness;
  let rx: Receiver;
  beforeAll(async () => {
    // The API lets the endpoint in (as an older config might have); the worker refuses it.
    h = await createHarness({ activities: { targetPolicy: createTargetPolicy([]) } });
    rx = await startReceiver();
  });
  afterAll(async () => {
    await rx?.close();
    await h?.close();
  });

  it('dead-letters a delivery to a private address without sending it', async () => {
    for (const url of [rx.url, rx.url.replace('127.0.0.1', 'localhost')]) {
      const ep = await createEndpoint(h.app, { url, eventTypes: [`private.${url.includes('localhost') ? 'name' : 'ip'}`], retry: FAST_RETRY });
      const ev = await sendEvent(h.app, { type: `private.${url.includes('localhost') ? 'name' : 'ip'}`, data: {} });
      await waitFor(
        async () => (await h.app.inject({ method: 'GET', url: `/v1/events/${ev.id}` })).json().deliveries[0]?.status === 'dead_lettered',
        30_000,
        'dead letter',
      );
      const d = (await h.app.inject({ method: 'GET', url: `/v1/events/${ev.id}` })).json().deliveries[0];
      expect(d.endpointId).toBe(ep.id);
      expect(d.reason).toMatch(/PrivateTarget/);
    }
    expect(rx.requests).toHaveLength(0);
  });
});
