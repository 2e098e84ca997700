import * as fs from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { commonJsExports, isEsModule, modulePath } from '../../src/metadata/module-loader';
import { callerFile } from '../../src/metadata/source-location';
import { removeTempDir, tempDir } from '../helpers/clients';

describe('finding and loading a handler module', () => {
  let dir: string;
  beforeEach(() => (dir = tempDir()));
  afterEach(() => removeTempDir(dir));

  const write = (rel: string, text: string) => {
    const file = path.join(dir, rel);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, text);
    return file;
  };

  test('callerFile names the file that called, not the source-mapped text jest shows in stacks', () => {
    expect(callerFile()).toBe(__filename);
  });

  test('a file URL, as an ES module knows itself, becomes a path', () => {
    const file = path.join(dir, 'handler.mjs');
    expect(modulePath(pathToFileURL(file).href)).toBe(file);
    expect(modulePath(file)).toBe(file);
  });

  test('ES modules are told apart as Node does: by extension, else by the nearest package.json type', () => {
    write('esm/package.json', '{ "type": "module" }');
    write('esm/cjs/package.json', '{ "name": "inner" }');
    write('package.json', '{ "type": "commonjs" }');
    expect(isEsModule(path.join(dir, 'a.mjs'))).toBe(true);
    expect(isEsModule(path.join(dir, 'a.mts'))).toBe(true);
    expect(isEsModule(path.join(dir, 'esm', 'a.cjs'))).toBe(false);
    expect(isEsModule(path.join(dir, 'esm', 'a.js'))).toBe(true);
    expect(isEsModule(path.join(dir, 'esm', 'deeper', 'a.ts'))).toBe(true);
    expect(isEsModule(path.join(dir, 'esm', 'cjs', 'a.js'))).toBe(false);
    expect(isEsModule(path.join(dir, 'a.js'))).toBe(false);
  });

  test('the main thread reads a CommonJS module\'s exports, and never imports an ES module itself', () => {
    const cjs = write('cjs/handler.js', 'exports.Handler = class Handler {};');
    write('esm/package.json', '{ "type": "module" }');
    const esm = write('esm/handler.js', 'export class Handler {}\nawait Promise.resolve();\n');
    expect(typeof commonJsExports(cjs)?.Handler).toBe('function');
    expect(commonJsExports(esm)).toBeUndefined();
  });
});
