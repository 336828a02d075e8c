// The production files outside the code: the env template against src/config.ts, the systemd
// units' hardening, docker-compose.yml's layout rules (parsed; Docker cannot run here), and
// `npm run build` producing plain JavaScript that runs with node alone: --help, migrations, and
// a worker from dist delivering a real event with the prebuilt workflow bundle.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { inject } from 'vitest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { loadConfig } from '../src/config';
import { createEndpoint, createHarness, FAST_RETRY, sendEvent, startReceiver, TEST_ENCRYPTION_KEY, waitFor } from './helpers';

const REPO = path.resolve(__dirname, '..');
const read = (p: string) => readFileSync(path.join(REPO, p), 'utf8');
const run = promisify(execFile);

/** Every variable name loadConfig asks the environment for, read by watching it look. */
function configVariables(): string[] {
  const asked = new Set<string>();
  loadConfig(new Proxy({}, { get: (_t, key) => { if (typeof key === 'string') asked.add(key); return undefined; } }));
  return [...asked].sort();
}

describe('deploy/hookline.env.example', () => {
  const template = read('deploy/hookline.env.example');
  // Set or commented out (`#NAME=default`): either way the operator sees the name.
  const named = new Set([...template.matchAll(/^#?([A-Z][A-Z0-9_]*)=/gm)].map((m) => m[1]));

  it('names every variable src/config.ts reads, and none it does not', () => {
    const vars = configVariables();
    expect(vars.length).toBeGreaterThan(20);
    expect(vars.filter((v) => !named.has(v))).toEqual([]);
    expect([...named].filter((v) => !vars.includes(v))).toEqual([]);
  });

  it('is a valid production configuration once the placeholders are filled', () => {
    const env = Object.fromEntries([...template.matchAll(/^([A-Z][A-Z0-9_]*)=(.*)$/gm)].map((m) => [m[1], m[2]]));
    expect(env.HOOKLINE_ENCRYPTION_KEY).toMatch(/CHANGE-ME/);
    const config = loadConfig({ ...env, HOOKLINE_ENCRYPTION_KEY: TEST_ENCRYPTION_KEY });
    expect(config.HOST).toBe('127.0.0.1');
    expect(config.HOOKLINE_ALLOW_PRIVATE_TARGETS).toBe(false);
    expect(config.HOOKLINE_TRUST_PROXY).toEqual(['127.0.0.1']);
    expect(config.HOOKLINE_API_KEY).toMatch(/CHANGE-ME/);
  });
});

describe('deploy/systemd units', () => {
  const units = readdirSync(path.join(REPO, 'deploy/systemd')).filter((f) => f.endsWith('.service')).sort();

  /** key → values of a unit file (a key may repeat). */
  const parseUnit = (text: string) => {
    const out = new Map<string, string[]>();
    for (const line of text.split('\n')) {
      const m = /^([A-Za-z]+)=(.*)$/.exec(line.trim());
      if (m) out.set(m[1], [...(out.get(m[1]) ?? []), m[2]]);
    }
    return out;
  };

  it('one per role, each running the compiled code as the hookline user with hardening', () => {
    expect(units).toEqual(['hookline-api.service', 'hookline-relay.service', 'hookline-worker@.service']);
    for (const file of units) {
      const unit = parseUnit(read(`deploy/systemd/${file}`));
      const role = /hookline-(\w+)/.exec(file)![1];
      const one = (k: string) => ({ file, [k]: unit.get(k)?.at(-1) });
      expect(one('ExecStart')).toEqual({ file, ExecStart: `/usr/bin/node /opt/hookline/dist/src/cli/main.js ${role}` });
      expect(one('User')).toEqual({ file, User: 'hookline' });
      expect(one('EnvironmentFile')).toEqual({ file, EnvironmentFile: '/etc/hookline/hookline.env' });
      for (const [k, v] of [['NoNewPrivileges', 'yes'], ['ProtectSystem', 'strict'], ['ProtectHome', 'yes'], ['PrivateTmp', 'yes'], ['CapabilityBoundingSet', '']]) {
        expect(one(k)).toEqual({ file, [k]: v });
      }
      // V8's JIT needs writable executable memory: this option would kill node at start.
      expect(unit.has('MemoryDenyWriteExecute')).toBe(false);
    }
  });

  it('stops a worker only after its shutdown grace has had time to drain', () => {
    const unit = parseUnit(read('deploy/systemd/hookline-worker@.service'));
    const graceMs = loadConfig({}).HOOKLINE_WORKER_SHUTDOWN_GRACE_MS;
    expect(Number(unit.get('TimeoutStopSec')![0]) * 1000).toBeGreaterThan(graceMs);
    expect(unit.get('Environment')).toContain('HOOKLINE_WORKER_METRICS_PORT=946%i');
  });
});

describe('docker-compose.yml', () => {
  const compose = parse(read('docker-compose.yml'), { merge: true }) as { services: Record<string, any>; networks: Record<string, any> };
  const services = compose.services;
  const published = (svc: any): string[] => (svc.ports ?? []).map(String);

  it('publishes only nginx on all interfaces; everything else on 127.0.0.1 or not at all', () => {
    expect(published(services.nginx).sort()).toEqual(['443:443', '80:80']);
    for (const [name, svc] of Object.entries(services)) {
      expect(svc.network_mode, name).toBeUndefined();
      if (name === 'nginx') continue;
      for (const p of published(svc)) expect({ name, port: p }).toEqual({ name, port: expect.stringMatching(/^127\.0\.0\.1:\d+:\d+$/) });
    }
    // Temporal's gRPC and Web UI have no authentication: loopback only.
    expect(published(services.temporal)).toEqual(['127.0.0.1:7233:7233']);
    expect(published(services['temporal-ui'])).toEqual(['127.0.0.1:8080:8080']);
    expect(published(services.postgres)).toEqual([]);
    expect(published(services.api)).toEqual([]);
  });

  it('runs Temporal on Postgres, nginx with the shipped config in front, and several APIs and workers (relaying)', () => {
    expect(services.temporal.environment.DB).toBe('postgres12');
    expect(services.temporal.image).toMatch(/:1\.29\.1$/);
    expect(services.nginx.volumes).toContain('./deploy/nginx/hookline.conf:/etc/hookline/hookline.conf:ro');
    expect(services.nginx.command.join(' ')).toContain('server api:3000;');
    expect(read('deploy/nginx/hookline.conf')).toContain('server 127.0.0.1:3000;'); // what that sed replaces
    expect(services.worker.deploy.replicas).toBeGreaterThanOrEqual(2);
    expect(services.api.deploy.replicas).toBeGreaterThanOrEqual(2);
    // The workers relay (HOOKLINE_WORKER_RELAY defaults to true): two of them are two relays.
    expect(services.relay).toBeUndefined();
    expect(services.worker.environment.HOOKLINE_WORKER_RELAY).toBeUndefined();
    for (const role of ['api', 'worker']) expect({ role, command: services[role].command }).toEqual({ role, command: [role] });
  });

  it('requires the API key and a database password, and trusts forwarded headers only from nginx', () => {
    for (const role of ['api', 'worker']) {
      const env = services[role].environment;
      expect({ role, key: env.HOOKLINE_API_KEY }).toEqual({ role, key: expect.stringMatching(/^\$\{HOOKLINE_API_KEY:\?.+\}$/) });
      expect(env.DATABASE_URL).toMatch(/\$\{POSTGRES_PASSWORD:\?/);
      expect(env.TEMPORAL_ADDRESS).toBe('temporal:7233');
    }
    const nginxAddress = services.nginx.networks.hookline.ipv4_address;
    expect(services.api.environment.HOOKLINE_TRUST_PROXY).toBe(nginxAddress);
    const subnet = compose.networks.hookline.ipam.config[0].subnet as string;
    expect(nginxAddress.startsWith(subnet.split('.').slice(0, 3).join('.') + '.')).toBe(true);
    expect(loadConfig({ HOOKLINE_TRUST_PROXY: nginxAddress }).HOOKLINE_TRUST_PROXY).toEqual([nginxAddress]);
  });

  it('builds the image from the compiled code and runs it with node', () => {
    const dockerfile = read('Dockerfile');
    expect(dockerfile).toMatch(/RUN npm run build/);
    expect(dockerfile).toMatch(/npm ci --omit=dev/);
    expect(dockerfile).toContain('ENTRYPOINT ["node", "/app/dist/src/cli/main.js"]');
  });
});

describe('npm run build', () => {
  let dir: string;
  let dist: string;
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    // The production layout: dist/ beside node_modules/ (linked from the checkout).
    dir = mkdtempSync(path.join(tmpdir(), 'hookline-build-'));
    dist = path.join(dir, 'dist');
    symlinkSync(path.join(REPO, 'node_modules'), path.join(dir, 'node_modules'));
    await run(process.execPath, [path.join(REPO, 'scripts/build.js'), '--out-dir', dist], { cwd: REPO });
  }, 180_000);

  afterAll(async () => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** node on the compiled entry, with no TypeScript loader anywhere in sight. */
  const node = (args: string[], env: Record<string, string> = {}) =>
    run(process.execPath, [path.join(dist, 'src/cli/main.js'), ...args], { cwd: dir, env: { PATH: process.env.PATH!, ...env } });

  it('writes plain JavaScript with the migrations, console assets, version and workflow bundle', async () => {
    for (const f of ['src/cli/main.js', 'src/db/migrations/001_init.sql', 'src/db/functions.sql', 'src/ui/index.html', 'src/portal/web/index.html', 'src/portal/web/app.js', 'package.json', 'workflow-bundle.js']) {
      expect({ f, exists: existsSync(path.join(dist, f)) }).toEqual({ f, exists: true });
    }
    const { stdout } = await node(['--help']);
    expect(stdout).toMatch(/usage: hookline <command>/);
  });

  it('bin/hookline runs dist with node when the install has no sources', async () => {
    mkdirSync(path.join(dir, 'bin'));
    copyFileSync(path.join(REPO, 'bin/hookline'), path.join(dir, 'bin/hookline'));
    // This install has no src/: the tsx path would fail, so an answer means dist ran.
    const { stdout } = await run(path.join(dir, 'bin/hookline'), ['--help'], { cwd: dir, env: { PATH: process.env.PATH! } });
    expect(stdout).toMatch(/usage: hookline <command>/);
  });

  it('migrates a database and delivers an event from the compiled worker', async () => {
    const h = await createHarness({ noWorker: true });
    const receiver = await startReceiver();
    try {
      const env = {
        DATABASE_URL: h.config.DATABASE_URL!, TEMPORAL_ADDRESS: inject('temporalAddress'), TEMPORAL_TASK_QUEUE: h.taskQueue,
        HOOKLINE_ALLOW_PRIVATE_TARGETS: 'true', HOOKLINE_WORKER_METRICS_PORT: '0', HOOKLINE_LOG_LEVEL: 'warn',
        HOOKLINE_ENCRYPTION_KEY: TEST_ENCRYPTION_KEY,
      };
      expect((await node(['migrate'], env)).stdout).toMatch(/database is up to date/);
      const worker = spawn(process.execPath, [path.join(dist, 'src/cli/main.js'), 'worker'], { cwd: dir, env: { PATH: process.env.PATH!, ...env }, stdio: 'inherit' });
      children.push(worker);
      const ep = await createEndpoint(h.app, { url: receiver.url, retry: FAST_RETRY });
      const evt = await sendEvent(h.app, { type: 'build.check', data: { ok: true } });
      await waitFor(() => receiver.requests.find((r) => r.headers['webhook-id'] === evt.id), 60_000, 'delivery by the compiled worker');
      await waitFor(async () => (await h.pool.query(
        `SELECT 1 FROM deliveries WHERE event_id = $1 AND endpoint_id = $2 AND status = 'delivered'`, [evt.id, ep.id])).rowCount === 1,
      10_000, 'delivery recorded as delivered');
      worker.kill('SIGTERM');
      const code = await new Promise((r) => worker.once('exit', r));
      expect(code).toBe(0);
    } finally {
      await receiver.close();
      await h.close();
    }
  });
});
