// The consumer portal (/portal) in a real headless Chromium against the real pipeline: a page
// served under a strict CSP that runs without a single violation, a session for one tenant that
// shows only that tenant's data, an expired session refused, a read-only session that shows no
// button that changes anything (and the API refuses those changes), an endpoint created, edited,
// rotated, tested, replayed and deleted through the page as the API then sees it, and the page
// working inside an iframe on another origin. Needs Chromium: `apt-get install -y chromium`.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BrowserContext, Page } from 'playwright-core';
import { launchChromium, type Browser } from './browser';
import { mintPortalToken, portalSigningKey } from '../src/api/portal-token';
import { exampleFromSchema } from '../src/portal/web/example';
import { createHarness, FAST_RETRY, startReceiver, waitFor, type Harness, type Receiver } from './helpers';

const API_KEY = 'portal-test-admin-key-0123456789';
const PNG_1PX = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==', 'base64');

describe('consumer portal', () => {
  let h: Harness;
  let rx: Receiver;
  let base: string;
  let chrome: Browser | null = null;
  let browser: BrowserContext | null = null;

  /** The admin's call (the sender's back end); throws on anything but 2xx. */
  const admin = async (method: string, url: string, payload?: unknown) => {
    const res = await h.app.inject({ method: method as 'GET', url, payload: payload as object, headers: { authorization: `Bearer ${API_KEY}` } });
    if (res.statusCode >= 300) throw new Error(`${method} ${url}: ${res.statusCode} ${res.body}`);
    return res.statusCode === 204 ? null : res.json();
  };
  /** A call with a portal session token, as the page makes it; the raw response. */
  const asSession = (token: string, method: string, url: string, payload?: unknown) =>
    h.app.inject({ method: method as 'GET', url, payload: payload as object, headers: { authorization: `Bearer ${token}` } });
  /** A portal session as the sender mints it: {url, token, expiresAt}. */
  const session = (tenantId: string, body: Record<string, unknown> = {}) => admin('POST', `/v1/tenants/${tenantId}/portal-sessions`, body);

  /** A page that records every script error and every console error (CSP violations are those). */
  async function open(url: string): Promise<{ page: Page; problems: string[] }> {
    const page = await browser!.newPage();
    // The sender's logo host, answered by the browser harness (the test has no internet).
    await page.route('https://logo.example/**', (route) => route.fulfill({ contentType: 'image/png', body: PNG_1PX }));
    const problems: string[] = [];
    page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
    page.on('console', (msg) => {
      if (msg.type() === 'error') problems.push(`console: ${msg.text()}`);
    });
    await page.goto(url);
    return { page, problems };
  }

  beforeAll(async () => {
    h = await createHarness({ env: { HOOKLINE_API_KEY: API_KEY } });
    await h.app.listen({ port: 0, host: '127.0.0.1' });
    base = `http://127.0.0.1:${(h.app.server.address() as AddressInfo).port}`;
    rx = await startReceiver();
    await admin('POST', '/v1/tenants', { id: 'acme', name: 'Acme Corp' });
    await admin('POST', '/v1/tenants', { id: 'globex', name: 'Globex' });
    await admin('POST', '/v1/event-types', {
      name: 'invoice.paid',
      description: 'An invoice was paid in full.',
      schema: { type: 'object', properties: { invoiceId: { type: 'string', examples: ['inv_42'] }, amount: { type: 'integer' } }, required: ['invoiceId'] },
    });
    chrome = await launchChromium('portal');
    browser = chrome.context;
  });
  afterAll(async () => {
    await chrome?.close();
    await rx?.close();
    await h?.close();
  });

  it('serves a public page with no inline script or style, under a strict CSP', async () => {
    const page = await h.app.inject({ method: 'GET', url: '/portal' });
    expect(page.statusCode).toBe(200);
    const csp = page.headers['content-security-policy'] as string;
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("style-src 'self'");
    expect(csp).toContain("connect-src 'self'");
    expect(csp).not.toMatch(/unsafe-(inline|eval)/);
    expect(page.headers['referrer-policy']).toBe('no-referrer');
    // Inline code would need 'unsafe-inline': every script has a src, no <style>, no style="".
    expect(page.body).not.toMatch(/<script(?![^>]*\ssrc=)[^>]*>/);
    expect(page.body).not.toMatch(/<style|\sstyle=|\son[a-z]+=/i);

    const script = await h.app.inject({ method: 'GET', url: '/portal/app.js' });
    expect(script.statusCode).toBe(200);
    expect(script.headers['content-type']).toMatch(/javascript/);
    expect(script.body).toContain('Bearer'); // the typed client is bundled in
    expect((await h.app.inject({ method: 'GET', url: '/portal/style.css' })).headers['content-type']).toMatch(/text\/css/);
  });

  it('says so when the link carries no session, without a CSP violation', async () => {
    const { page, problems } = await open(`${base}/portal`);
    await page.locator('#session-error').waitFor({ state: 'visible' });
    expect(await page.locator('#session-error-message').textContent()).toContain('No portal session');
    expect(await page.locator('#portal').isHidden()).toBe(true);
    expect(problems).toEqual([]);
    await page.close();
  });

  it("shows one tenant's endpoints only, branded, with the token gone from the address bar", async () => {
    const mine = await admin('POST', '/v1/tenants/acme/endpoints', { url: `${rx.url}/acme-only`, description: 'acme billing', eventTypes: ['acme.only'] });
    const theirs = await admin('POST', '/v1/tenants/globex/endpoints', { url: `${rx.url}/globex-only`, description: 'globex billing', eventTypes: ['globex.only'] });
    const s = await session('acme', { branding: { title: 'Acme Webhooks', accentColor: '#ff5500', logoUrl: 'https://logo.example/acme.png' } });
    expect(s.url).toMatch(/\/portal#token=/);

    const { page, problems } = await open(`${base}${new URL(s.url).pathname}${new URL(s.url).hash}`);
    await page.locator(`#endpoints tr[data-endpoint-id="${mine.id}"]`).waitFor();
    expect(await page.locator('#endpoints tr[data-endpoint-id]').count()).toBe(1);
    expect(await page.content()).not.toContain('globex-only');
    expect(await page.locator(`[data-endpoint-id="${theirs.id}"]`).count()).toBe(0);
    expect(await page.locator('#brand-title').textContent()).toBe('Acme Webhooks');
    expect(await page.title()).toBe('Acme Webhooks');
    expect(await page.evaluate('getComputedStyle(document.documentElement).getPropertyValue("--accent").trim()')).toBe('#ff5500');
    expect(await page.locator('#brand-logo').getAttribute('src')).toBe('https://logo.example/acme.png');
    await expect.poll(() => page.evaluate('document.getElementById("brand-logo").naturalWidth')).toBe(1); // the CSP lets it in
    expect(await page.locator('#session-info').textContent()).toContain('Acme Corp');
    expect(page.url()).toBe(`${base}/portal`);
    expect(await page.evaluate('[localStorage.length, sessionStorage.length, document.cookie]')).toEqual([0, 0, '']);

    // The catalogue, with an example payload built from the schema.
    const type = page.locator('#event-types [data-event-type="invoice.paid"]');
    expect(await type.textContent()).toContain('An invoice was paid in full.');
    expect(JSON.parse((await type.locator('pre').textContent())!)).toEqual({ invoiceId: 'inv_42', amount: 0 });

    // And the API behind it: the same token opens nothing of the other tenant, not even its name.
    expect((await asSession(s.token, 'GET', '/v1/tenants/globex/endpoints')).statusCode).toBe(404);
    expect((await asSession(s.token, 'GET', `/v1/tenants/acme/endpoints/${theirs.id}`)).statusCode).toBe(404);
    expect((await asSession(s.token, 'GET', '/v1/endpoints')).statusCode).toBe(404);
    expect(problems).toEqual([]);
    await page.close();
  });

  it('refuses an expired session, and so does the API', async () => {
    const key = portalSigningKey(h.config)!;
    const { token } = await mintPortalToken(key, { tenantId: 'acme', readOnly: false, branding: { title: 'Acme Webhooks' }, ttlSeconds: -60 });
    expect((await asSession(token, 'GET', '/v1/tenants/acme/endpoints')).statusCode).toBe(401);

    const { page } = await open(`${base}/portal#token=${token}`);
    await page.locator('#session-error').waitFor({ state: 'visible' });
    expect(await page.locator('#session-error-message').textContent()).toMatch(/expired or is not valid/);
    expect(await page.locator('#portal').isHidden()).toBe(true);
    expect(await page.locator('#endpoints tr[data-endpoint-id]').count()).toBe(0);
    await page.close();
  });

  it('gives a read-only session no button that changes anything, and the API refuses the changes', async () => {
    const ep = await admin('POST', '/v1/tenants/acme/endpoints', { url: `${rx.url}/read-only`, retry: FAST_RETRY, eventTypes: ['ro.test'] });
    rx.respond = () => ({ status: 400 });
    const ev = await admin('POST', '/v1/tenants/acme/events', { type: 'ro.test', data: {} });
    const status = async () => (await admin('GET', `/v1/tenants/acme/events/${ev.id}`)).deliveries.find((d: any) => d.endpointId === ep.id)?.status;
    await waitFor(async () => (await status()) === 'dead_lettered', 30_000, 'dead-lettered');
    const s = await session('acme', { readOnly: true });

    const { page, problems } = await open(`${base}/portal#token=${s.token}`);
    await page.locator(`#endpoints tr[data-endpoint-id="${ep.id}"]`).waitFor();
    await page.locator(`#dead-letters tr[data-event-id="${ev.id}"]`).waitFor();
    expect(await page.locator('#session-info').textContent()).toContain('read-only');
    expect(await page.locator('#new-endpoint').isHidden()).toBe(true);
    expect(await page.locator('#replay-all').isHidden()).toBe(true);
    expect(await page.locator('button.edit, button.delete, button.rotate, button.replay, button.test').count()).toBe(0);
    // Reading still works: the attempts of the delivery.
    await page.locator(`#deliveries tr[data-event-id="${ev.id}"] button.attempts`).click();
    await page.locator('#deliveries tr.attempts').filter({ hasText: 'HTTP 400' }).waitFor();
    expect(problems).toEqual([]);
    await page.close();

    const refused = [
      await asSession(s.token, 'POST', '/v1/tenants/acme/endpoints', { url: `${rx.url}/sneaky` }),
      await asSession(s.token, 'PATCH', `/v1/tenants/acme/endpoints/${ep.id}`, { description: 'changed' }),
      await asSession(s.token, 'DELETE', `/v1/tenants/acme/endpoints/${ep.id}`),
      await asSession(s.token, 'POST', `/v1/tenants/acme/endpoints/${ep.id}/secret/rotate`, {}),
      await asSession(s.token, 'POST', `/v1/tenants/acme/deliveries/${ev.id}/${ep.id}/replay`),
      await asSession(s.token, 'POST', '/v1/tenants/acme/dead-letters/replay', {}),
    ];
    expect(refused.map((r) => r.statusCode)).toEqual([403, 403, 403, 403, 403, 403]);
    const after = await admin('GET', `/v1/tenants/acme/endpoints/${ep.id}`);
    expect(after.description).toBe('');
    expect(await status()).toBe('dead_lettered');
  });

  it('creates an endpoint through the page (the API sees it), shows the URL policy refusal, rotates, replays, tests', async () => {
    const s = await session('acme');
    const { page, problems } = await open(`${base}/portal#token=${s.token}`);
    page.on('dialog', (d) => void d.accept());
    await page.locator('#new-endpoint').waitFor({ state: 'visible' });

    // The server's URL policy speaks through the page.
    await page.click('#new-endpoint');
    await page.fill('#ep-url', 'http://10.1.2.3/hooks');
    await page.click('#endpoint-form button[type=submit]');
    await expect.poll(() => page.locator('#notice').textContent()).toMatch(/^Adding the endpoint failed: .*url/);
    expect(await page.locator('#notice').getAttribute('class')).toBe('error');
    // Chromium logs every 4xx response as a console error; this one was the point.
    expect(problems).toEqual([expect.stringContaining('status of 422')]);
    problems.length = 0;

    // A good one, subscribed to a type picked from the catalogue.
    await page.fill('#ep-url', `${rx.url}/from-portal`);
    await page.fill('#ep-description', 'made in the portal');
    await page.check('#ep-event-types input[value="invoice.paid"]');
    await page.click('#endpoint-form button[type=submit]');
    await page.locator('#notice').filter({ hasText: /^Added ep_/ }).waitFor();
    const created = (await admin('GET', '/v1/tenants/acme/endpoints?limit=250')).data.find((e: any) => e.url === `${rx.url}/from-portal`);
    expect(created).toMatchObject({ description: 'made in the portal', eventTypes: ['invoice.paid'] });
    expect(await page.locator('#secret-value').textContent()).toMatch(/^whsec_/);
    expect((await admin('GET', '/v1/tenants/globex/endpoints')).data.some((e: any) => e.url.includes('from-portal'))).toBe(false);

    // Rotate: a new secret, shown; the old one keeps signing for a while.
    const row = page.locator(`#endpoints tr[data-endpoint-id="${created.id}"]`);
    const first = await page.locator('#secret-value').textContent();
    await row.locator('button.rotate').click();
    await page.locator('#notice').filter({ hasText: `Rotated the secret of ${created.id}` }).waitFor();
    expect(await page.locator('#secret-value').textContent()).not.toBe(first);

    // A dead letter for this endpoint, replayed from the page once the receiver is fixed.
    let healthy = false;
    rx.respond = () => ({ status: healthy ? 200 : 400 });
    await admin('PATCH', `/v1/tenants/acme/endpoints/${created.id}`, { retry: FAST_RETRY });
    const ev = await admin('POST', '/v1/tenants/acme/events', { type: 'invoice.paid', data: { invoiceId: 'inv_1' } });
    const status = async () => (await admin('GET', `/v1/tenants/acme/events/${ev.id}`)).deliveries.find((d: any) => d.endpointId === created.id)?.status;
    await waitFor(async () => (await status()) === 'dead_lettered', 30_000, 'dead-lettered');
    await page.click('#refresh');
    const dl = page.locator(`#dead-letters tr[data-event-id="${ev.id}"][data-endpoint-id="${created.id}"]`);
    await dl.waitFor();
    healthy = true;
    await dl.locator('button.replay').click();
    await page.locator('#notice').filter({ hasText: `Replay requested: ${ev.id}` }).waitFor();
    await waitFor(async () => (await status()) === 'delivered', 30_000, 'delivered after replay');
    await page.click('#refresh');
    await page.locator(`#deliveries tr[data-event-id="${ev.id}"][data-status="delivered"]`).waitFor();

    // Two more dead letters, both replayed with "Replay all".
    healthy = false;
    const more = [
      await admin('POST', '/v1/tenants/acme/events', { type: 'invoice.paid', data: { invoiceId: 'inv_2' } }),
      await admin('POST', '/v1/tenants/acme/events', { type: 'invoice.paid', data: { invoiceId: 'inv_3' } }),
    ];
    const statusOf = async (id: string) => (await admin('GET', `/v1/tenants/acme/events/${id}`)).deliveries.find((d: any) => d.endpointId === created.id)?.status;
    for (const e of more) await waitFor(async () => (await statusOf(e.id)) === 'dead_lettered', 30_000, 'dead-lettered');
    await page.click('#refresh');
    for (const e of more) await page.locator(`#dead-letters tr[data-event-id="${e.id}"]`).waitFor();
    healthy = true;
    // Batches of one (the API's default is 100): Replay all must follow nextCursor to the end.
    const batches: string[] = [];
    await page.route('**/dead-letters/replay', (route) => {
      const body = { ...JSON.parse(route.request().postData() || '{}'), limit: 1 };
      batches.push(JSON.stringify(body));
      return route.continue({ postData: JSON.stringify(body) });
    });
    await page.click('#replay-all');
    await page.locator('#notice').filter({ hasText: /^Replay requested for \d+ dead letter/ }).waitFor();
    expect(batches.length).toBeGreaterThanOrEqual(2);
    expect(batches.slice(1).every((b) => 'cursor' in JSON.parse(b))).toBe(true);
    expect(await page.locator('#notice').textContent()).toBe(`Replay requested for ${batches.length} dead letter(s).`);
    await page.unroute('**/dead-letters/replay');
    for (const e of more) await waitFor(async () => (await statusOf(e.id)) === 'delivered', 30_000, 'delivered after replay all');

    // A test event with the catalogue's example payload: only this endpoint gets it, signed.
    const before = rx.requests.length;
    await row.locator('button.test').click();
    await page.selectOption('#test-type', 'invoice.paid');
    await page.click('#test-form button[type=submit]');
    const sent = page.locator('#notice').filter({ hasText: /^Sent test event evt_/ });
    await sent.waitFor();
    const testId = /evt_[0-9A-Za-z]+/.exec((await sent.textContent())!)![0];
    const got = await waitFor(() => rx.requests.slice(before).find((r) => r.headers['webhook-id'] === testId), 30_000, 'the test event');
    expect(JSON.parse(got.body)).toMatchObject({ type: 'invoice.paid', data: { invoiceId: 'inv_42', amount: 0 } });
    expect(got.headers['webhook-signature']).toMatch(/^v1,/);

    // Edit, then delete: both reach the API.
    await row.locator('button.edit').click();
    await page.fill('#ep-description', 'renamed');
    await page.click('#endpoint-form button[type=submit]');
    await page.locator('#notice').filter({ hasText: `Saved ${created.id}` }).waitFor();
    expect((await admin('GET', `/v1/tenants/acme/endpoints/${created.id}`)).description).toBe('renamed');
    await row.locator('button.delete').click();
    await page.locator('#notice').filter({ hasText: `Deleted ${created.id}` }).waitFor();
    await expect(admin('GET', `/v1/tenants/acme/endpoints/${created.id}`)).rejects.toThrow(/404/);
    expect(problems).toEqual([]);
    await page.close();
  });

  it('works embedded in an iframe on the sender\'s own site', async () => {
    const s = await session('acme', { branding: { title: 'Embedded' } });
    // The sender's page, on another origin, framing the portal URL it got.
    const sender = http.createServer((_req, res) => {
      res.setHeader('content-type', 'text/html');
      res.end(`<!doctype html><title>Sender app</title><iframe id="portal" src="${base}/portal#token=${s.token}" width="1000" height="800"></iframe>`);
    });
    await new Promise<void>((r) => sender.listen(0, '127.0.0.1', r));
    try {
      const { page, problems } = await open(`http://127.0.0.1:${(sender.address() as AddressInfo).port}/`);
      const frame = page.frameLocator('#portal');
      await frame.locator('#brand-title').filter({ hasText: 'Embedded' }).waitFor();
      await frame.locator('#new-endpoint').click();
      await frame.locator('#ep-url').fill(`${rx.url}/from-iframe`);
      await frame.locator('#endpoint-form button[type=submit]').click();
      await frame.locator('#notice').filter({ hasText: /^Added ep_/ }).waitFor();
      const list = (await admin('GET', '/v1/tenants/acme/endpoints?limit=250')).data;
      expect(list.some((e: any) => e.url === `${rx.url}/from-iframe`)).toBe(true);
      expect(problems).toEqual([]);
      await page.close();
    } finally {
      sender.closeAllConnections(); // the browser keeps its connection alive
      await new Promise((r) => sender.close(r));
    }
  });
});

describe('example payloads from event-type schemas', () => {
  it('prefers what the schema says, else builds a value of each declared type', () => {
    expect(exampleFromSchema({ type: 'object', examples: [{ a: 1 }], properties: { b: { type: 'string' } } })).toEqual({ a: 1 });
    expect(exampleFromSchema({
      type: 'object',
      properties: {
        id: { type: 'string', example: 'inv_1' },
        status: { enum: ['paid', 'void'] },
        at: { type: 'string', format: 'date-time' },
        lines: { type: 'array', items: { type: 'object', properties: { qty: { type: 'integer', minimum: 1 } } } },
        note: { type: ['string', 'null'] },
        kind: { oneOf: [{ const: 'card' }, { const: 'bank' }] },
        flag: { type: 'boolean', default: true },
      },
    })).toEqual({ id: 'inv_1', status: 'paid', at: '2026-01-01T00:00:00Z', lines: [{ qty: 1 }], note: 'string', kind: 'card', flag: true });
  });

  it('gives nothing for no schema, and stops on a schema that nests without end', () => {
    expect(exampleFromSchema(undefined)).toBeUndefined();
    expect(exampleFromSchema({})).toBeUndefined();
    const deep: Record<string, unknown> = { type: 'object', properties: {} };
    let at = deep;
    for (let i = 0; i < 50; i++) {
      const next = { type: 'object', properties: {} };
      (at.properties as Record<string, unknown>).x = next;
      at = next;
    }
    expect(JSON.stringify(exampleFromSchema(deep)).length).toBeLessThan(100);
  });
});
