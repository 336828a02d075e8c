// Finds the Temporal CLI (which runs the dev server), building the pinned version with
// `go install` as a last resort. Lookup order: TEMPORAL_CLI_PATH, `temporal` on PATH,
// <toolsDir>/bin/temporal, `go install` into <toolsDir>/bin, else an error saying how to install.
import { spawn } from 'node:child_process';
import { constants, promises as fs } from 'node:fs';
import path from 'node:path';

/** Newest CLI tag whose go.mod has no `replace` (so `go install …@tag` works); server 1.29.1. */
export const TEMPORAL_CLI_VERSION = 'v1.5.1';
export const TEMPORAL_CLI_MODULE = 'github.com/temporalio/cli/cmd/temporal';

export interface FindTemporalCliOptions {
  /** Where TEMPORAL_CLI_PATH and PATH are read from; default process.env. */
  env?: NodeJS.ProcessEnv;
  /** e.g. <repo>/.tools; the CLI is looked for (and built) in <toolsDir>/bin. */
  toolsDir: string;
  log?: (msg: string) => void;
}

const exe = (name: string) => (process.platform === 'win32' ? `${name}.exe` : name);

async function isExecutableFile(file: string): Promise<boolean> {
  try {
    const stat = await fs.stat(file);
    if (!stat.isFile()) return false;
    await fs.access(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Like `which`: the first executable `name` in env.PATH, or null. */
export async function findOnPath(name: string, env: NodeJS.ProcessEnv = process.env): Promise<string | null> {
  const dirs = (env.PATH ?? '').split(path.delimiter).filter((d) => d !== '');
  for (const dir of dirs) {
    const candidate = path.join(path.resolve(dir), exe(name));
    if (await isExecutableFile(candidate)) return candidate;
  }
  return null;
}

export function installInstructions(toolsDir: string): string {
  const bin = path.join(toolsDir, 'bin');
  return [
    `Hookline needs the Temporal CLI (${TEMPORAL_CLI_VERSION}) to run a local Temporal dev server, and none was found`,
    `(looked at TEMPORAL_CLI_PATH, \`temporal\` on PATH and ${path.join(bin, exe('temporal'))}), and \`go\` is not on PATH to build it.`,
    'Do one of:',
    `  - install Go >= 1.25 (https://go.dev/dl/), then: GOBIN=${bin} go install ${TEMPORAL_CLI_MODULE}@${TEMPORAL_CLI_VERSION}`,
    '    (or just start Hookline again with `go` on PATH: it builds the CLI there itself; it takes a few minutes)',
    '  - install a Temporal CLI binary (https://docs.temporal.io/cli#install, e.g. `brew install temporal` or',
    '    `curl -sSf https://temporal.download/cli.sh | sh`) and put `temporal` on PATH or set TEMPORAL_CLI_PATH=/path/to/temporal',
    '  - or set TEMPORAL_ADDRESS=host:port to use a Temporal server you already run.',
  ].join('\n');
}

/** Runs `go install` with GOBIN=<binDir>; rejects with the tail of go's output on failure. */
async function goInstall(goPath: string, binDir: string, env: NodeJS.ProcessEnv): Promise<void> {
  await fs.mkdir(binDir, { recursive: true });
  const target = `${TEMPORAL_CLI_MODULE}@${TEMPORAL_CLI_VERSION}`;
  await new Promise<void>((resolve, reject) => {
    const child = spawn(goPath, ['install', target], {
      env: { ...env, GOBIN: binDir },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    const keep = (chunk: Buffer) => {
      output = (output + chunk.toString('utf8')).slice(-4000);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.on('error', (err) => reject(new Error(`could not run ${goPath}: ${err.message}`)));
    child.on('close', (code, signal) => {
      if (code === 0) resolve();
      else
        reject(
          new Error(
            `\`GOBIN=${binDir} go install ${target}\` failed (${signal ?? `exit code ${code}`}):\n${output.trim()}`,
          ),
        );
    });
  });
}

export async function findTemporalCli(opts: FindTemporalCliOptions): Promise<string> {
  const env = opts.env ?? process.env;
  const log = opts.log ?? (() => {});

  const explicit = env.TEMPORAL_CLI_PATH;
  if (explicit) {
    const resolved = path.resolve(explicit);
    if (await isExecutableFile(resolved)) return resolved;
    // An explicit setting that is wrong is an error, not a reason to silently pick another binary.
    throw new Error(`TEMPORAL_CLI_PATH=${explicit} is not an executable file`);
  }

  const onPath = await findOnPath('temporal', env);
  if (onPath) return onPath;

  const binDir = path.resolve(opts.toolsDir, 'bin');
  const local = path.join(binDir, exe('temporal'));
  if (await isExecutableFile(local)) return local;

  const go = await findOnPath('go', env);
  if (!go) throw new Error(installInstructions(opts.toolsDir));

  log(
    `Temporal CLI not found; building ${TEMPORAL_CLI_MODULE}@${TEMPORAL_CLI_VERSION} with \`go install\` into ${binDir}. ` +
      'This takes a few minutes the first time…',
  );
  const started = Date.now();
  await goInstall(go, binDir, env);
  if (!(await isExecutableFile(local))) {
    throw new Error(`\`go install\` succeeded but ${local} is not there\n\n${installInstructions(opts.toolsDir)}`);
  }
  log(`Temporal CLI built in ${Math.round((Date.now() - started) / 1000)} s: ${local}`);
  return local;
}
