'use strict';
/**
 * Type-checks the docs' code examples in a process of its own (a TypeScript Program of the sources and
 * Node's types is a few hundred MB: in a jest worker it made the worker too slow to exit gracefully).
 * stdin: {"root": "...", "files": {"<virtual path>": "<code>"}}; stdout: {"<virtual path>": [{line, character, code, text}]}.
 */
const path = require('node:path');
const ts = require('typescript');

const input = JSON.parse(require('node:fs').readFileSync(0, 'utf8'));
const root = input.root;
const options = {
  target: ts.ScriptTarget.ES2022,
  module: ts.ModuleKind.ESNext,                       // ES modules: top-level await is allowed in examples
  moduleResolution: ts.ModuleResolutionKind.Bundler,
  moduleDetection: ts.ModuleDetectionKind.Force,      // each block is its own module
  lib: ['lib.es2022.d.ts', 'lib.esnext.disposable.d.ts'],
  types: ['node', 'jest'],
  strict: true,
  // What `tsc --init` (TypeScript 5.9) turns on: a type imported as a value, or an index read as defined, failed a
  // new user's project while these examples passed (new-user run).
  verbatimModuleSyntax: true,
  noUncheckedIndexedAccess: true,
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
const sources = new Map(Object.entries(input.files));
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
const result = {};
for (const file of sources.keys()) {
  const sf = program.getSourceFile(file);
  result[file] = [...program.getSyntacticDiagnostics(sf), ...program.getSemanticDiagnostics(sf)].map((d) => {
    const at = d.file && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start) : undefined;
    return { line: at?.line, character: at?.character, code: d.code, text: ts.flattenDiagnosticMessageText(d.messageText, '\n') };
  });
}
process.stdout.write(JSON.stringify(result));
