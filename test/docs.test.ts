// The README and docs/ stay true to the tree: the README is a front door (at most 400 lines),
// every relative link and anchor resolves, every npm script, `hookline` subcommand and repository
// path named in a shell block exists, and every variable in the README's configuration summary
// is one the code reads. Static checks only: no server is started, no command is run.
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(__dirname, '..');
const read = (rel: string) => readFileSync(path.join(ROOT, rel), 'utf8');

const DOC_FILES = [
  'README.md',
  ...readdirSync(path.join(ROOT, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .sort()
    .map((f) => `docs/${f}`),
];

// --- a small Markdown reader: fenced blocks, headings, links, code spans ---

interface Fence {
  lang: string;
  body: string;
  line: number;
}

interface ParsedDoc {
  /** The text outside fenced blocks (fence lines blanked, so line numbers hold). */
  prose: string;
  fences: Fence[];
  /** GitHub anchors of the headings, in order, duplicates numbered as GitHub does. */
  anchors: Set<string>;
}

/** GitHub's heading anchor: the rendered text, lower-cased, punctuation dropped, spaces → `-`. */
export function githubSlug(heading: string): string {
  const text = heading
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1') // [text](url) → text
    .replace(/<[^>]+>/g, '') // inline HTML
    .trim()
    .toLowerCase();
  return text.replace(/[^\p{L}\p{N}\p{M}\s_-]/gu, '').replace(/\s/g, '-');
}

export function parseMarkdown(md: string): ParsedDoc {
  const lines = md.split('\n');
  const proseLines: string[] = [];
  const fences: Fence[] = [];
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  let open: { marker: string; lang: string; line: number; body: string[] } | null = null;
  lines.forEach((line, i) => {
    const fence = /^\s*(`{3,}|~{3,})\s*([\w+-]*)/.exec(line);
    if (open) {
      if (fence && fence[1][0] === open.marker[0] && fence[1].length >= open.marker.length && fence[2] === '') {
        fences.push({ lang: open.lang, body: open.body.join('\n'), line: open.line });
        open = null;
      } else {
        open.body.push(line);
      }
      proseLines.push('');
      return;
    }
    if (fence) {
      open = { marker: fence[1], lang: fence[2].toLowerCase(), line: i + 1, body: [] };
      proseLines.push('');
      return;
    }
    proseLines.push(line);
    const heading = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (heading) {
      const base = githubSlug(heading[1]);
      const n = seen.get(base) ?? 0;
      seen.set(base, n + 1);
      anchors.add(n === 0 ? base : `${base}-${n}`);
    }
  });
  if (open) throw new Error(`unclosed code fence opened on line ${(open as { line: number }).line}`);
  return { prose: proseLines.join('\n'), fences, anchors };
}

/** Prose with inline code spans blanked (a link inside backticks is not a link). */
function withoutCodeSpans(prose: string): string {
  return prose.replace(/(`+)(?:(?!\1)[^])*?\1/g, (m) => m.replace(/[^\n]/g, ' '));
}

/** The inline code spans of the prose, newlines folded to spaces. */
function codeSpans(prose: string): string[] {
  return [...prose.matchAll(/(`+)((?:(?!\1)[^])*?)\1/g)].map((m) => m[2].replace(/\s+/g, ' ').trim());
}

/** Link targets: [text](target), [text](target "title"), and [label]: target definitions. */
function linkTargets(prose: string): Array<{ target: string; line: number }> {
  const text = withoutCodeSpans(prose);
  const out: Array<{ target: string; line: number }> = [];
  const lineOf = (index: number) => text.slice(0, index).split('\n').length;
  for (const m of text.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) out.push({ target: m[1], line: lineOf(m.index!) });
  for (const m of text.matchAll(/^\s{0,3}\[[^\]]+\]:\s+<?(\S+?)>?(?:\s|$)/gm)) out.push({ target: m[1], line: lineOf(m.index!) });
  return out;
}

const SHELL_LANGS = new Set(['sh', 'bash', 'shell', 'console', 'zsh']);

/** The simple commands of a shell block: continuations joined, comments dropped, split at && || ; | $( */
export function shellCommands(body: string): string[] {
  const joined = body.replace(/\\\n/g, ' ');
  const commands: string[] = [];
  for (const rawLine of joined.split('\n')) {
    // A comment starts at a # at the start of a line or after whitespace (not "#0055ff" in a string).
    const line = rawLine.replace(/(^|\s)#.*$/, '');
    for (let part of line.split(/&&|\|\||;|\||\$\(|`/)) {
      part = part.trim();
      // Leading assignments (VAR=value, VAR="…", VAR='…') and wrappers.
      for (;;) {
        const next = part
          .replace(/^[A-Za-z_][A-Za-z0-9_]*=(?:"[^"]*"|'[^']*'|\S*)\s*/, '')
          .replace(/^(?:sudo(?:\s+-u\s+\S+)?|exec|time|env)\s+/, '');
        if (next === part) break;
        part = next;
      }
      if (part) commands.push(part);
    }
  }
  return commands;
}

/** What a command names, for the checks: npm scripts, `hookline` subcommands, repository paths. */
export function commandRefs(command: string): { npm?: { kind: 'run' | 'builtin'; name: string }; hookline?: string; paths: string[] } {
  const words = command.split(/\s+/).map((w) => w.replace(/^['"]|['"]\)?$/g, '').replace(/\)$/, ''));
  const refs: ReturnType<typeof commandRefs> = { paths: [] };
  if (words[0] === 'npm') {
    const rest = words.slice(1).filter((w) => !w.startsWith('-'));
    const sub = rest[0];
    if (sub === 'run' || sub === 'run-script') {
      refs.npm = { kind: 'run', name: rest[1] ?? '' };
      if (rest[1] === 'hookline') {
        const after = words.indexOf('--');
        const arg = after >= 0 ? words[after + 1] : undefined;
        if (arg) refs.hookline = arg;
      }
    } else if (sub) {
      refs.npm = { kind: 'builtin', name: sub };
    }
  }
  if (/^(?:\.\/)?(?:bin\/)?hookline$/.test(words[0]) && words[1]) refs.hookline = words[1];
  for (const w of words) {
    if (/^(?:\.\/)?(?:src|test|docs|deploy|scripts|bench|bin|workflows|activities|docker|\.ci)\/[\w.@/-]*$/.test(w)) refs.paths.push(w.replace(/^\.\//, ''));
  }
  return refs;
}

// npm's own commands (not package.json scripts) that the docs may name.
const NPM_BUILTINS = new Set(['ci', 'install', 'i', 'prune', 'exec', 'pack', 'ls', 'audit', 'outdated', 'update', 'version']);
// npm's shortcuts for scripts: `npm test` runs scripts.test.
const NPM_SCRIPT_SHORTCUTS = new Set(['test', 'start', 'stop', 'restart']);

function hooklineSubcommands(): Set<string> {
  const main = read('src/cli/main.ts');
  const names = new Set<string>();
  for (const m of main.matchAll(/case '([\w-]+)':/g)) names.add(m[1]);
  for (const m of main.matchAll(/command === '([\w-]+)'/g)) names.add(m[1]);
  // The command table: `const COMMANDS: Record<string, Command> = { dev: …, 'dead-letters': … };`
  const table = /const COMMANDS[^=]*= \{\n([\s\S]*?)\n\};/.exec(main)?.[1] ?? '';
  for (const m of table.matchAll(/^\s+'?([\w-]+)'?:/gm)) names.add(m[1]);
  return names;
}

/** Every environment variable the code reads: src/config.ts's schema keys, and env.X reads anywhere. */
function variablesTheCodeReads(): Set<string> {
  const names = new Set<string>();
  const config = read('src/config.ts');
  for (const m of config.matchAll(/^\s+([A-Z][A-Z0-9_]*):\s/gm)) names.add(m[1]);
  const walk = (dir: string): string[] =>
    readdirSync(path.join(ROOT, dir), { withFileTypes: true }).flatMap((e) =>
      e.isDirectory() ? (e.name === 'node_modules' ? [] : walk(`${dir}/${e.name}`)) : /\.(ts|js|cjs|mjs)$/.test(e.name) ? [`${dir}/${e.name}`] : [],
    );
  for (const file of ['src', 'activities', 'workflows'].flatMap(walk)) {
    const text = read(file);
    for (const m of text.matchAll(/\benv(?:\.([A-Z][A-Z0-9_]*)|\[\s*'([A-Z][A-Z0-9_]*)'\s*\])/g)) names.add(m[1] ?? m[2]);
  }
  return names;
}

/** The backticked variable names of one `## heading` section. */
function variablesInSection(md: string, heading: string): string[] {
  const start = md.search(new RegExp(`^## ${heading}\\s*$`, 'm'));
  if (start < 0) return [];
  const rest = md.slice(start + 3);
  const end = rest.search(/^## /m);
  const section = end < 0 ? rest : rest.slice(0, end);
  return [...new Set([...section.matchAll(/`([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+|PORT|HOST)`/g)].map((m) => m[1]))];
}

function pathExists(rel: string): boolean {
  if (rel.includes('*')) {
    const dir = path.dirname(rel);
    const pattern = new RegExp(`^${path.basename(rel).replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}$`);
    return existsSync(path.join(ROOT, dir)) && readdirSync(path.join(ROOT, dir)).some((f) => pattern.test(f));
  }
  return existsSync(path.join(ROOT, rel));
}

// --- the checks, as functions that return problems, so a test can show they find them ---

function linkProblems(docs: Map<string, ParsedDoc>, file: string): string[] {
  const doc = docs.get(file)!;
  const problems: string[] = [];
  for (const { target, line } of linkTargets(doc.prose)) {
    if (/^[a-z][a-z0-9+.-]*:/i.test(target) || target.startsWith('//')) continue; // https:, mailto:, …
    const hash = target.indexOf('#');
    const filePart = decodeURI(hash >= 0 ? target.slice(0, hash) : target);
    const anchor = hash >= 0 ? decodeURIComponent(target.slice(hash + 1)) : '';
    const resolved = filePart ? path.posix.normalize(path.posix.join(path.posix.dirname(file), filePart)) : file;
    if (resolved.startsWith('..') || !existsSync(path.join(ROOT, resolved))) {
      problems.push(`${file}:${line}: link to ${target}: no such file ${resolved}`);
      continue;
    }
    if (!anchor) continue;
    if (!resolved.endsWith('.md')) continue;
    const targetDoc = docs.get(resolved) ?? parseMarkdown(read(resolved));
    if (!targetDoc.anchors.has(anchor)) problems.push(`${file}:${line}: link to ${target}: ${resolved} has no heading #${anchor}`);
  }
  return problems;
}

function commandProblems(file: string, doc: ParsedDoc, scripts: Record<string, string>, subcommands: Set<string>): string[] {
  const problems: string[] = [];
  const checkHookline = (where: string, sub: string) => {
    if (sub.startsWith('<')) return; // a placeholder: `hookline <command>`
    if (!subcommands.has(sub)) problems.push(`${where}: hookline ${sub}: src/cli/main.ts has no such subcommand`);
  };
  for (const fence of doc.fences) {
    if (!SHELL_LANGS.has(fence.lang)) continue;
    for (const command of shellCommands(fence.body)) {
      const where = `${file} (block at line ${fence.line}): ${command.slice(0, 80)}`;
      const refs = commandRefs(command);
      if (refs.npm?.kind === 'run' && !(refs.npm.name in scripts)) problems.push(`${where}: npm run ${refs.npm.name}: no such script in package.json`);
      if (refs.npm?.kind === 'builtin') {
        const { name } = refs.npm;
        if (NPM_SCRIPT_SHORTCUTS.has(name) ? !(name in scripts) : !NPM_BUILTINS.has(name)) problems.push(`${where}: npm ${name}: neither a package.json script nor an npm command the docs may use`);
      }
      if (refs.hookline) checkHookline(where, refs.hookline);
      for (const p of refs.paths) if (!pathExists(p)) problems.push(`${where}: ${p} does not exist`);
    }
  }
  // Prose: `hookline listen`, `npm run bench -- …` in code spans name subcommands and scripts too.
  for (const span of codeSpans(doc.prose)) {
    const m = /^(?:npm run hookline -- |(?:bin\/)?hookline )([a-z][\w-]*)/.exec(span);
    if (m) checkHookline(`${file}: \`${span}\``, m[1]);
    const run = /^npm run ([\w:.-]+)/.exec(span);
    if (run && !(run[1] in scripts)) problems.push(`${file}: \`${span}\`: npm run ${run[1]}: no such script in package.json`);
  }
  return problems;
}

/** Repository paths named in code spans (`src/db/gate.ts`, `deploy/systemd/`) must exist. */
function pathProblems(file: string, doc: ParsedDoc): string[] {
  const problems: string[] = [];
  for (const span of codeSpans(doc.prose)) {
    for (const word of span.split(/[\s,]+/)) {
      if (!/^(?:src|test|docs|deploy|scripts|bench|bin|workflows|activities|docker|\.ci)\/[\w.@/*-]*$/.test(word)) continue;
      if (!pathExists(word.replace(/\/$/, ''))) problems.push(`${file}: \`${span}\`: ${word} does not exist`);
    }
  }
  return problems;
}

describe('docs', () => {
  const docs = new Map(DOC_FILES.map((f) => [f, parseMarkdown(read(f))] as const));
  const readme = read('README.md');
  const scripts = JSON.parse(read('package.json')).scripts as Record<string, string>;
  const subcommands = hooklineSubcommands();

  it('README.md is a front door: at most 400 lines', () => {
    const lines = readme.replace(/\n$/, '').split('\n').length;
    expect(lines, `README.md has ${lines} lines`).toBeLessThanOrEqual(400);
  });

  it('README.md keeps the two commands exactly', () => {
    const shell = docs.get('README.md')!.fences.filter((f) => SHELL_LANGS.has(f.lang)).map((f) => f.body.trim());
    expect(shell).toContain('npm ci && npm start');
    expect(shell).toContain('npm ci && npm test');
  });

  it('README.md links every docs/*.md file, so every fact is reachable from it', () => {
    const linked = new Set(
      linkTargets(docs.get('README.md')!.prose)
        .map(({ target }) => target.split('#')[0])
        .filter((t) => t.startsWith('docs/')),
    );
    const missing = DOC_FILES.filter((f) => f.startsWith('docs/') && !linked.has(f));
    expect(missing, 'docs files no README link reaches').toEqual([]);
  });

  it('every relative link and anchor in README.md and docs/*.md resolves', () => {
    const relative = linkTargets(docs.get('README.md')!.prose).filter(({ target }) => !/^[a-z][a-z0-9+.-]*:/i.test(target));
    expect(relative.length, 'relative links found in README.md (the feature map)').toBeGreaterThan(30);
    const problems = DOC_FILES.flatMap((f) => linkProblems(docs, f));
    expect(problems).toEqual([]);
  });

  it('every npm script, hookline subcommand and repository path named in a shell block exists', () => {
    expect(subcommands.has('dev') && subcommands.has('listen'), `subcommands found: ${[...subcommands]}`).toBe(true);
    const checked = DOC_FILES.flatMap((f) => docs.get(f)!.fences.filter((fence) => SHELL_LANGS.has(fence.lang)).flatMap((fence) => shellCommands(fence.body)))
      .map(commandRefs)
      .filter((r) => r.npm || r.hookline || r.paths.length > 0);
    expect(checked.length, 'npm, hookline and path commands found in shell blocks').toBeGreaterThan(20);
    const problems = DOC_FILES.flatMap((f) => commandProblems(f, docs.get(f)!, scripts, subcommands));
    expect(problems).toEqual([]);
  });

  it('every repository path named in a code span exists', () => {
    const problems = DOC_FILES.flatMap((f) => pathProblems(f, docs.get(f)!));
    expect(problems).toEqual([]);
  });

  it("every variable in the README's configuration summary and docs/configuration.md is read by the code", () => {
    const known = variablesTheCodeReads();
    const summary = variablesInSection(readme, 'Configuration');
    expect(summary.length, 'variables found in README "## Configuration"').toBeGreaterThan(30);
    const reference = [...read('docs/configuration.md').matchAll(/^\| `([A-Z][A-Z0-9_]*)`(?:, `([A-Z][A-Z0-9_]*)`)?/gm)].flatMap((m) => [m[1], m[2]].filter(Boolean));
    expect(reference.length, 'variables found in docs/configuration.md').toBeGreaterThan(30);
    const unknown = [...new Set([...summary, ...reference])].filter((v) => !known.has(v));
    expect(unknown, 'documented variables no code reads').toEqual([]);
  });

  // The checks themselves: each finds what it is there to find.
  it('the checks catch a broken link, a missing anchor, an unknown script and subcommand', () => {
    const fake = parseMarkdown(
      [
        '# Title',
        'See [gone](docs/no-such-file.md), [here](#title), [nowhere](#no-such-heading) and `[not a link](x.md)`.',
        '```sh',
        'npm run no-such-script && npm test',
        'FOO=1 npm run hookline -- no-such-command --flag',
        'bin/hookline listen --forward-to http://127.0.0.1:4000',
        'npx vitest run test/no-such.test.ts',
        '```',
      ].join('\n'),
    );
    const docsWithFake = new Map(docs).set('README.md', fake);
    const links = linkProblems(docsWithFake, 'README.md');
    expect(links).toHaveLength(2);
    expect(links[0]).toMatch(/no such file docs\/no-such-file\.md/);
    expect(links[1]).toMatch(/no heading #no-such-heading/);
    const commands = commandProblems('README.md', fake, scripts, subcommands);
    expect(commands).toHaveLength(3);
    expect(commands.join('\n')).toMatch(/npm run no-such-script/);
    expect(commands.join('\n')).toMatch(/hookline no-such-command/);
    expect(commands.join('\n')).toMatch(/test\/no-such\.test\.ts does not exist/);
    expect(githubSlug('Producing events from your own transaction (`hookline/producer`)')).toBe('producing-events-from-your-own-transaction-hooklineproducer');
    expect(githubSlug('Webhooks to localhost: hookline listen')).toBe('webhooks-to-localhost-hookline-listen');
  });
});
