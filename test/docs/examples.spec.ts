import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { Example, extractExamples } from './extract-examples';

// Every ```ts block of README.md and docs/*.md is type-checked against src/, as a user's module importing
// 'sockserve', 'sockserve/classic' and 'sockserve/testing'. One Program for every block keeps it fast.

const root = path.resolve(__dirname, '../..');
const pages = ['README.md', ...fs.readdirSync(path.join(root, 'docs')).filter((f) => f.endsWith('.md')).sort().map((f) => `docs/${f}`)];
const examples = pages.flatMap((page) => extractExamples(page, fs.readFileSync(path.join(root, page), 'utf8')));
const checked = examples.filter((e) => !e.skip);

function virtualPath(e: Example): string {
  return path.join(root, '.docs-examples', `${e.file.replace(/[/.]/g, '_')}_L${e.line}.ts`);
}

/** What compile-examples.js says of one example: a diagnostic with its position in the block (0-based). */
interface Diagnostic {
  line?: number;
  character?: number;
  code: number;
  text: string;
}

/** Type-checks every example in one TypeScript Program, in a child process (see compile-examples.js). */
function compileAll(): Map<string, Diagnostic[]> {
  const files = Object.fromEntries(checked.map((e) => [virtualPath(e), e.code]));
  const out = execFileSync(process.execPath, [path.join(__dirname, 'compile-examples.js')], {
    input: JSON.stringify({ root, files }), encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, timeout: 110_000,
  });
  return new Map(Object.entries(JSON.parse(out) as Record<string, Diagnostic[]>));
}

function describeDiagnostic(e: Example, d: Diagnostic): string {
  if (d.line === undefined) return `${e.file}: ${d.text}`;
  return `${e.file}:${e.line + d.line}:${(d.character ?? 0) + 1} TS${d.code}: ${d.text}`;
}

describe('the code examples of README.md and docs/', () => {
  let diagnostics: Map<string, Diagnostic[]>;
  beforeAll(() => { diagnostics = compileAll(); }, 120_000);

  test('there are examples to check, in the README and in the docs pages', () => {
    expect(checked.some((e) => e.file === 'README.md')).toBe(true);
    expect(checked.some((e) => e.file.startsWith('docs/'))).toBe(true);
  });

  test.each(checked.map((e) => [`${e.file}:${e.line}`, e] as const))('%s type-checks against the sources', (_name, e) => {
    const found = diagnostics.get(virtualPath(e))!.map((d) => describeDiagnostic(e, d));
    expect(found).toEqual([]);
  });
});

describe('finding the examples of a page', () => {
  const page = [
    '# t', '```ts', 'const a = 1;', '```',
    '```ts no-compile', 'fragment(', '```',
    '<!-- no-compile -->', '', '```ts', 'also(', '```',
    '````md', '```ts', 'inside another block', '```', '````',
    '```sh', 'npm test', '```',
  ].join('\n');

  test('takes ts blocks with their page line, and marks the two no-compile forms as skipped', () => {
    expect(extractExamples('p.md', page)).toEqual([
      { file: 'p.md', line: 3, code: 'const a = 1;', skip: false },
      { file: 'p.md', line: 6, code: 'fragment(', skip: true },
      { file: 'p.md', line: 11, code: 'also(', skip: true },
    ]);
  });

  test('an unclosed fence is an error naming its line', () => {
    expect(() => extractExamples('p.md', 'x\n```ts\nconst a = 1;\n')).toThrow('line 2');
  });
});
