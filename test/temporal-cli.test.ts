// findTemporalCli's lookup order, on temp dirs with fake executables (no real CLI or Go needed).
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TEMPORAL_CLI_VERSION, findOnPath, findTemporalCli } from '../src/dev/temporal-cli';

let root: string;

beforeEach(() => {
  root = mkdtempSync(path.join(tmpdir(), 'hookline-cli-test-'));
});
afterEach(() => {
  rmSync(root, { recursive: true, force: true });
});

/** Creates an executable shell script at dir/name. */
function fakeExe(dir: string, name: string, body = 'echo fake'): string {
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, name);
  writeFileSync(file, `#!/bin/sh\n${body}\n`);
  chmodSync(file, 0o755);
  return file;
}

function dirs() {
  return {
    explicitDir: path.join(root, 'explicit'),
    pathDir: path.join(root, 'on-path'),
    emptyDir: path.join(root, 'empty'),
    goDir: path.join(root, 'go-bin'),
    toolsDir: path.join(root, 'tools'),
  };
}

describe('findTemporalCli', () => {
  it('pins v1.5.1', () => {
    expect(TEMPORAL_CLI_VERSION).toBe('v1.5.1');
  });

  it('prefers TEMPORAL_CLI_PATH over PATH and the tools dir', async () => {
    const d = dirs();
    const explicit = fakeExe(d.explicitDir, 'my-temporal');
    fakeExe(d.pathDir, 'temporal');
    fakeExe(path.join(d.toolsDir, 'bin'), 'temporal');
    const found = await findTemporalCli({
      env: { TEMPORAL_CLI_PATH: explicit, PATH: d.pathDir },
      toolsDir: d.toolsDir,
    });
    expect(found).toBe(explicit);
  });

  it('rejects a TEMPORAL_CLI_PATH that is not executable instead of silently using another CLI', async () => {
    const d = dirs();
    mkdirSync(d.explicitDir, { recursive: true });
    const notExecutable = path.join(d.explicitDir, 'temporal');
    writeFileSync(notExecutable, 'not a program');
    fakeExe(d.pathDir, 'temporal');
    await expect(
      findTemporalCli({ env: { TEMPORAL_CLI_PATH: notExecutable, PATH: d.pathDir }, toolsDir: d.toolsDir }),
    ).rejects.toThrow(/TEMPORAL_CLI_PATH=.*not an executable file/);
    await expect(
      findTemporalCli({ env: { TEMPORAL_CLI_PATH: path.join(root, 'missing'), PATH: d.pathDir }, toolsDir: d.toolsDir }),
    ).rejects.toThrow(/TEMPORAL_CLI_PATH/);
  });

  it('uses `temporal` on PATH before the tools dir, skipping non-executables and directories', async () => {
    const d = dirs();
    // Earlier PATH entries: a non-executable file and a directory, both named temporal.
    const nonExecDir = path.join(root, 'non-exec');
    mkdirSync(nonExecDir, { recursive: true });
    writeFileSync(path.join(nonExecDir, 'temporal'), 'nope');
    const dirDir = path.join(root, 'dir-named-temporal');
    mkdirSync(path.join(dirDir, 'temporal'), { recursive: true });
    const onPath = fakeExe(d.pathDir, 'temporal');
    fakeExe(path.join(d.toolsDir, 'bin'), 'temporal');
    const found = await findTemporalCli({
      env: { PATH: [nonExecDir, dirDir, d.pathDir].join(path.delimiter) },
      toolsDir: d.toolsDir,
    });
    expect(found).toBe(onPath);
    expect(await findOnPath('temporal', { PATH: [nonExecDir, dirDir].join(path.delimiter) })).toBeNull();
  });

  it('falls back to <toolsDir>/bin/temporal', async () => {
    const d = dirs();
    mkdirSync(d.emptyDir, { recursive: true });
    const local = fakeExe(path.join(d.toolsDir, 'bin'), 'temporal');
    fakeExe(d.goDir, 'go', 'echo "go must not run" >&2; exit 1');
    const found = await findTemporalCli({
      env: { PATH: [d.emptyDir, d.goDir].join(path.delimiter) },
      toolsDir: d.toolsDir,
    });
    expect(found).toBe(local);
  });

  it('builds the pinned CLI with `go install` into <toolsDir>/bin when go exists', async () => {
    const d = dirs();
    const argsFile = path.join(root, 'go-args');
    // A fake go that records its arguments and GOBIN, then "installs" a temporal binary there.
    fakeExe(
      d.goDir,
      'go',
      [
        `echo "$@" > '${argsFile}'`,
        `echo "GOBIN=$GOBIN" >> '${argsFile}'`,
        'printf "#!/bin/sh\\necho built\\n" > "$GOBIN/temporal"',
        '/bin/chmod +x "$GOBIN/temporal"',
      ].join('\n'),
    );
    const logs: string[] = [];
    const found = await findTemporalCli({
      env: { PATH: d.goDir, HOME: root },
      toolsDir: d.toolsDir,
      log: (m) => logs.push(m),
    });
    expect(found).toBe(path.join(d.toolsDir, 'bin', 'temporal'));
    const recorded = readFileSync(argsFile, 'utf8').trim().split('\n');
    expect(recorded[0]).toBe('install github.com/temporalio/cli/cmd/temporal@v1.5.1');
    expect(recorded[1]).toBe(`GOBIN=${path.join(d.toolsDir, 'bin')}`);
    expect(logs.join('\n')).toMatch(/go install.*minutes/s);
  });

  it('reports go install failures with go output', async () => {
    const d = dirs();
    fakeExe(d.goDir, 'go', 'echo "go: module lookup disabled" >&2; exit 1');
    await expect(findTemporalCli({ env: { PATH: d.goDir }, toolsDir: d.toolsDir })).rejects.toThrow(
      /go install github\.com\/temporalio\/cli\/cmd\/temporal@v1\.5\.1` failed[\s\S]*module lookup disabled/,
    );
  });

  it('says exactly how to install it when nothing is found and there is no go', async () => {
    const d = dirs();
    mkdirSync(d.emptyDir, { recursive: true });
    const attempt = findTemporalCli({ env: { PATH: d.emptyDir }, toolsDir: d.toolsDir });
    await expect(attempt).rejects.toThrow(/Temporal CLI/);
    const message = await attempt.catch((err: Error) => err.message);
    expect(message).toContain(`GOBIN=${path.join(d.toolsDir, 'bin')} go install github.com/temporalio/cli/cmd/temporal@v1.5.1`);
    expect(message).toContain('TEMPORAL_CLI_PATH');
    expect(message).toContain('TEMPORAL_ADDRESS');
    expect(message).toContain('https://go.dev/dl/');
  });
});
