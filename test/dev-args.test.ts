// `hookline dev` starts each role with this process's node flags minus the debugger, its heap
// sizing and tsx's loaders, plus the lean tsx hook for a TypeScript entry (tsx-hook.cjs).
import { describe, expect, it } from 'vitest';
import { roleNodeArgs } from '../src/cli/dev';

const CJS_HOOK = require.resolve('../src/cli/tsx-hook.cjs');

describe('roleNodeArgs', () => {
  it('replaces the tsx CLI and ESM loader flags with the CommonJS hook', () => {
    const viaCli = ['--require', '/repo/node_modules/tsx/dist/preflight.cjs', '--import', 'file:///repo/node_modules/tsx/dist/loader.mjs'];
    expect(roleNodeArgs('/repo/src/cli/main.ts', viaCli)).toEqual(['--require', CJS_HOOK]);
    expect(roleNodeArgs('/repo/src/cli/main.ts', ['--import', 'tsx'])).toEqual(['--require', CJS_HOOK]);
    expect(roleNodeArgs('/repo/src/cli/main.ts', ['--import=tsx'])).toEqual(['--require', CJS_HOOK]);
    expect(roleNodeArgs('/repo/src/cli/main.ts', ['--require', 'tsx/cjs'])).toEqual(['--require', CJS_HOOK]);
    expect(roleNodeArgs('/repo/src/cli/main.ts', ['--require', './src/cli/tsx-hook.cjs'])).toEqual(['--require', CJS_HOOK]);
  });

  it('keeps other flags, drops debugger flags, and adds no hook for compiled JavaScript', () => {
    expect(roleNodeArgs('/repo/src/cli/main.ts', ['--inspect=9229', '--max-old-space-size=512', '--require', './other.js'])).toEqual([
      '--max-old-space-size=512', '--require', './other.js', '--require', CJS_HOOK,
    ]);
    expect(roleNodeArgs('/app/dist/src/cli/main.js', ['--enable-source-maps', '--inspect-brk'])).toEqual(['--enable-source-maps']);
    // The supervisor's young-generation size is its own; each role gets one of its own.
    expect(roleNodeArgs('/app/dist/src/cli/main.js', ['--max-semi-space-size=1', '--max-semi-space-size', '2'])).toEqual([]);
  });
});
