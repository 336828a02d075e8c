// The production roles' start and stop (src/roles/start-role.ts): each refuses to start without its
// services, naming them, and exits 0 once a SIGTERM has drained it. The worker's and the relay's
// drain order is pinned in relay.test.ts; a start that fails half-way in secrets-at-rest.test.ts.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findFreePort } from '../src/dev/processes';
import { createHarness, spawnRole, waitFor, type Harness } from './helpers';

const MAIN = path.join(__dirname, '../src/cli/main.ts');

describe('a role without its services', () => {
  it.each(['api', 'relay', 'worker'])('`hookline %s` exits 1 naming DATABASE_URL and TEMPORAL_ADDRESS', async (role) => {
    const run = promisify(execFile)(process.execPath, ['--import', 'tsx', MAIN, role], {
      env: { PATH: process.env.PATH ?? '', HOOKLINE_LOG_LEVEL: 'silent' }, timeout: 30_000,
    });
    await expect(run).rejects.toMatchObject({
      code: 1,
      stderr: expect.stringContaining(`hookline ${role} needs DATABASE_URL and TEMPORAL_ADDRESS (or run \`hookline dev\`)`),
    });
  });
});

describe('`hookline api` on SIGTERM', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await createHarness({ noRelay: true, noWorker: true });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('stops serving and exits 0', async () => {
    const port = await findFreePort();
    const child = spawnRole(h, 'api', { PORT: String(port), HOOKLINE_LOG_LEVEL: 'silent' });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/healthz`)).ok, 60_000, 'the api up');
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      await expect(fetch(`http://127.0.0.1:${port}/healthz`)).rejects.toThrow();
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});
