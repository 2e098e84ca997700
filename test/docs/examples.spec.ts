import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ts from 'typescript';
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

function compileAll(): Map<string, readonly ts.Diagnostic[]> {
  const options: ts.CompilerOptions = {
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.ESNext,                       // ES modules: top-level await is allowed in examples
    moduleResolution: ts.ModuleResolutionKind.Bundler,
    moduleDetection: ts.ModuleDetectionKind.Force,      // each block is its own module
    lib: ['lib.es2022.d.ts', 'lib.esnext.disposable.d.ts'],
    types: ['node', 'jest'],
    strict: true,
    experimentalDecorators: true,
    emitDecoratorMetadata: true,
    useDefineForClassFields: false,
    esModuleInterop: true,
    skipLibCheck: true,
    noEmit: true,
    baseUrl: root,
    paths: {
      sockserve: ['src/index.ts'],
      'sockserve/classic': ['src/classic.ts'],
      'sockserve/testing': ['src/testing.ts'],
    },
  };
  const sources = new Map(checked.map((e) => [virtualPath(e), e.code]));
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (name, version, onError, create) => {
    const code = sources.get(path.resolve(name));
    return code !== undefined ? ts.createSourceFile(name, code, version, true) : getSourceFile(name, version, onError, create);
  };
  const fileExists = host.fileExists.bind(host);
  host.fileExists = (name) => sources.has(path.resolve(name)) || fileExists(name);
  const readFile = host.readFile.bind(host);
  host.readFile = (name) => sources.get(path.resolve(name)) ?? readFile(name);

  const program = ts.createProgram([...sources.keys()], options, host);
  const result = new Map<string, readonly ts.Diagnostic[]>();
  for (const file of sources.keys()) {
    const sf = program.getSourceFile(file)!;
    result.set(file, [...program.getSyntacticDiagnostics(sf), ...program.getSemanticDiagnostics(sf)]);
  }
  return result;
}

function describeDiagnostic(e: Example, d: ts.Diagnostic): string {
  const text = ts.flattenDiagnosticMessageText(d.messageText, '\n');
  if (!d.file || d.start === undefined) return `${e.file}: ${text}`;
  const { line, character } = d.file.getLineAndCharacterOfPosition(d.start);
  return `${e.file}:${e.line + line}:${character + 1} TS${d.code}: ${text}`;
}

describe('the code examples of README.md and docs/', () => {
  let diagnostics: Map<string, readonly ts.Diagnostic[]>;
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
