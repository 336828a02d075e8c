// The operator console (/ui) in a real headless Chromium against the real pipeline: a receiver
// that answers 400 leaves a dead letter; the operator pastes the API key, sees the dead letter
// and the endpoint failing, the receiver is fixed, one click replays it, and the page shows it
// delivered. Needs Chromium: `apt-get install -y chromium` (or CHROMIUM_PATH).
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BrowserContext, Page } from 'playwright-core';
import { launchChromium, type Browser } from './browser';
import { createHarness, FAST_RETRY, startReceiver, waitFor, type Harness, type Receiver } from './helpers';

const API_KEY = 'test-key-0123456789abcdef';

describe('operator console', () => {
  let h: Harness;
  let rx: Receiver;
  let base: string;
  let chrome: Browser | null = null;
  let browser: BrowserContext | null = null;

  const api = async (method: string, url: string, payload?: unknown) => {
    const res = await h.app.inject({ method: method as 'GET', url, payload: payload as object, headers: { authorization: `Bearer ${API_KEY}` } });
    if (res.statusCode >= 300) throw new Error(`${method} ${url}: ${res.statusCode} ${res.body}`);
    return res.json();
  };
  const status = async (eventId: string, endpointId: string) =>
    (await api('GET', `/v1/events/${eventId}`)).deliveries.find((d: any) => d.endpointId === endpointId)?.status;

  beforeAll(async () => {
    h = await createHarness({ env: { HOOKLINE_API_KEY: API_KEY, HOOKLINE_TEMPORAL_UI_URL: 'http://temporal-ui.example:8233/' } });
    await h.app.listen({ port: 0, host: '127.0.0.1' });
    base = `http://127.0.0.1:${(h.app.server.address() as AddressInfo).port}`;
    rx = await startReceiver();
    chrome = await launchChromium('operator console');
    browser = chrome.context;
  });
  afterAll(async () => {
    await chrome?.close();
    await rx?.close();
    await h?.close();
  });

  it('serves the page publicly while the data needs the key', async () => {
    const page = await h.app.inject({ method: 'GET', url: '/ui' });
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-security-policy']).toContain("script-src 'self'");
    expect((await h.app.inject({ method: 'GET', url: '/ui/app.js' })).headers['content-type']).toMatch(/javascript/);
    const cfg = (await h.app.inject({ method: 'GET', url: '/ui/config.json' })).json();
    expect(cfg).toMatchObject({ authRequired: true, namespace: 'default', temporalUiUrl: 'http://temporal-ui.example:8233' });
    expect(JSON.stringify(cfg)).not.toContain(API_KEY);
    expect((await h.app.inject({ method: 'GET', url: '/v1/dead-letters' })).statusCode).toBe(401);
  });

  it('shows a dead letter, replays it in one click, and shows it delivered', async () => {
    let healthy = false;
    rx.respond = () => ({ status: healthy ? 200 : 400, body: healthy ? 'ok' : 'bad payload' });
    const ep = await api('POST', '/v1/endpoints', { url: `${rx.url}?token=hidden-from-the-page`, eventTypes: ['ui.test'], description: 'billing service', retry: FAST_RETRY });
    const ev = await api('POST', '/v1/events', { type: 'ui.test', data: { n: 1 } });
    await waitFor(async () => (await status(ev.id, ep.id)) === 'dead_lettered', 30_000, 'dead-lettered');

    const page: Page = await browser!.newPage();
    const problems: string[] = [];
    page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
    page.on('console', (msg) => {
      if (msg.type() === 'error') problems.push(`console: ${msg.text()}`);
    });
    await page.goto(`${base}/ui`);

    // The key prompt, then the data.
    await page.locator('#auth').waitFor({ state: 'visible' });
    await page.fill('#api-key', API_KEY);
    await page.click('#auth-form button[type=submit]');
    await page.locator('#auth').waitFor({ state: 'hidden' });
    expect(await page.evaluate('sessionStorage.getItem("hookline.apiKey")')).toBe(API_KEY);
    expect(await page.evaluate('localStorage.length')).toBe(0);

    // The endpoint with its health; the URL without its query string.
    const epRow = page.locator(`#endpoints tr[data-endpoint-id="${ep.id}"]`);
    await epRow.waitFor();
    await expect.poll(() => epRow.locator('.badge').textContent()).toBe('failing');
    expect(await epRow.textContent()).toContain('billing service');
    expect(await epRow.textContent()).toContain('HTTP 400');
    expect(await page.content()).not.toContain('hidden-from-the-page');

    // The dead letter, linked to its workflow in the Temporal Web UI.
    const dl = page.locator(`#dead-letters tr[data-event-id="${ev.id}"][data-endpoint-id="${ep.id}"]`);
    await dl.waitFor();
    expect(await dl.textContent()).toContain('PermanentHttpError: HTTP 400');
    expect(await dl.locator('a').getAttribute('href')).toBe(`http://temporal-ui.example:8233/namespaces/default/workflows/${encodeURIComponent(ev.id)}`);

    // Filters: another endpoint's dead letters hide it; clearing the filter brings it back.
    await page.fill('#dl-type', 'no.such.type');
    await page.click('#dl-filter button[type=submit]');
    await dl.waitFor({ state: 'detached' });
    await page.fill('#dl-type', 'ui.test');
    await page.selectOption('#dl-endpoint', ep.id);
    await page.click('#dl-filter button[type=submit]');
    await dl.waitFor();

    // Fix the receiver, replay with one click, see it delivered.
    healthy = true;
    await dl.locator('button.replay').click();
    await page.locator('#notice').filter({ hasText: `Replay requested: ${ev.id} → ${ep.id}` }).waitFor();
    await page.locator(`#deliveries tr[data-event-id="${ev.id}"][data-endpoint-id="${ep.id}"][data-status="delivered"]`).waitFor({ timeout: 30_000 });
    await dl.waitFor({ state: 'detached', timeout: 15_000 });
    expect(await status(ev.id, ep.id)).toBe('delivered');
    expect(rx.requests).toHaveLength(2);

    // Its attempts, from the deliveries table.
    const row = page.locator(`#deliveries tr[data-event-id="${ev.id}"]`);
    await row.getByRole('button', { name: 'Attempts' }).click();
    const attempts = page.locator('#deliveries tr.attempts');
    await attempts.waitFor();
    expect(await attempts.textContent()).toMatch(/#1.*400.*#2.*200/s);

    expect(problems).toEqual([]);
    await page.close();
  });

  it('replays every matching dead letter with "Replay all matching"', async () => {
    let healthy = false;
    rx.respond = () => ({ status: healthy ? 200 : 422 });
    const ep = await api('POST', '/v1/endpoints', { url: rx.url, eventTypes: ['ui.bulk'], retry: FAST_RETRY });
    const events = [await api('POST', '/v1/events', { type: 'ui.bulk', data: {} }), await api('POST', '/v1/events', { type: 'ui.bulk', data: {} })];
    for (const ev of events) await waitFor(async () => (await status(ev.id, ep.id)) === 'dead_lettered', 30_000, 'dead-lettered');

    const page = await browser!.newPage();
    page.on('dialog', (d) => void d.accept());
    await page.goto(`${base}/ui`); // same tab session: the key is asked again in a new tab
    await page.fill('#api-key', API_KEY);
    await page.click('#auth-form button[type=submit]');
    await page.selectOption('#dl-endpoint', ep.id);
    await page.click('#dl-filter button[type=submit]');
    await expect.poll(() => page.locator('#dead-letters tr[data-event-id]').count(), { timeout: 15_000 }).toBe(2);
    healthy = true;
    await page.click('#dl-replay-all');
    await page.locator('#notice').filter({ hasText: 'Replay requested for 2 dead letter(s)' }).waitFor();
    for (const ev of events) await waitFor(async () => (await status(ev.id, ep.id)) === 'delivered', 30_000, 'delivered');
    await page.close();
  });
});
