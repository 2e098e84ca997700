/**
 * sockserve as a user gets it: `npm pack`, installed from the tarball into a fresh application
 * (test/fixtures/packed-app, copied to a temp dir), then run every way people run Node programs. The
 * application's tools (typescript, ts-node, jest, ts-jest, @types) are this repo's, linked in, so the
 * whole file stays within about a minute and a half; sockserve and its dependencies are installed by npm
 * from the tarball (from the local npm cache), as a user's `npm install` would.
 */
import { execFile, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { freePort } from '../helpers/ports';
import { testOnce } from '../helpers/node-lines';

const root = path.join(__dirname, '..', '..');
const fixture = path.join(root, 'test', 'fixtures', 'packed-app');

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to its end, bounded by `ms` (then killed, code null). */
function run(cmd: string, args: string[], cwd: string, ms = 60000): Promise<Ran> {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd, timeout: ms, killSignal: 'SIGKILL', maxBuffer: 16 * 1024 * 1024, env: appEnv() }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : null) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** The environment of the app's processes: no jest or CI variables of this run leak into them. */
function appEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!/^(JEST_|NODE_OPTIONS$|TS_NODE_|SOCKSERVE_CHILD$)/.test(k)) env[k] = v;
  }
  return { ...env, npm_config_update_notifier: 'false', npm_config_fund: 'false', npm_config_audit: 'false' };
}

const node = (args: string[], cwd: string, ms?: number) => run(process.execPath, args, cwd, ms);

let work: string;
let app: string;
let packedFiles: string[];
let setupError: Error | undefined;

/** Links one of this repo's installed packages into the app's node_modules. */
function linkTool(name: string): void {
  const target = path.join(app, 'node_modules', name);
  fs.mkdirSync(path.dirname(target), { recursive: true });
  if (!fs.existsSync(target)) fs.symlinkSync(path.join(root, 'node_modules', name), target, 'dir');
}

function expectClean(r: Ran, what: string): void {
  if (r.code !== 0 || r.stderr.trim() !== '') {
    throw new Error(`${what} failed (exit ${r.code}):\n${r.stderr}\n${r.stdout}`);
  }
}

beforeAll(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'sockserve-packed-'));
  app = path.join(work, 'app');
  try {
    // dist/ is fresh: jest's globalSetup (scripts/build-if-stale.js) built it; prepare is not run again.
    const packed = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work], root, 60000);
    if (packed.code !== 0) throw new Error(`npm pack failed:\n${packed.stderr}`);
    const [info] = JSON.parse(packed.stdout) as Array<{ filename: string; files: Array<{ path: string }> }>;
    packedFiles = info.files.map((f) => f.path);
    fs.cpSync(fixture, app, { recursive: true });
    expectClean(await run('npm', ['init', '-y'], app), 'npm init -y');
    const install = await run('npm', ['install', path.join(work, info.filename), '--prefer-offline', '--ignore-scripts', '--loglevel=error'], app, 120000);
    expectClean(install, 'npm install <tarball>');
    for (const tool of ['typescript', 'ts-node', 'jest', 'ts-jest', '@types/node', '@types/jest']) linkTool(tool);
    const tsc = path.join(app, 'node_modules', 'typescript', 'bin', 'tsc');
    const [cjs, esm] = await Promise.all([node([tsc, '-p', 'tsconfig.json'], app), node([tsc, '-p', 'tsconfig.esm.json'], app)]);
    expectClean(cjs, 'tsc -p tsconfig.json (CommonJS, moduleResolution node10)');
    expectClean(esm, 'tsc -p tsconfig.esm.json (ES module, nodenext)');
  } catch (err) {
    setupError = err as Error;
  }
}, 240000);

afterAll(() => {
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

function ready(): void {
  if (setupError) throw setupError;
}

/**
 * Asserts the app's output: the main process, then a thread of it and a child process, each loading
 * `file`; with `classic`, then a thread of sockserve/classic's ThreadingTCPServer too.
 */
function expectServedByWorkers(r: Ran, file: string, classic = false): void {
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  const lines = r.stdout.trim().split('\n');
  expect(lines).toHaveLength(classic ? 4 : 3);
  const main = /^main pid=(\d+)$/.exec(lines[0]);
  expect(main).not.toBeNull();
  const esc = file.replace(/\./g, '\\.');
  expect(lines[1]).toMatch(new RegExp(`^thread ${esc} thread=[1-9]\\d* pid=${main![1]} hi$`));
  const child = new RegExp(`^child ${esc} thread=0 pid=(\\d+) hi$`).exec(lines[2]);
  expect(child).not.toBeNull();
  expect(child![1]).not.toBe(main![1]);
  if (classic) expect(lines[3]).toMatch(new RegExp(`^classic ${esc} thread=[1-9]\\d* pid=${main![1]} hi$`));
}

describe('the packed tarball', () => {
  test('holds the compiled package, its LICENSE, the manual the README links to and the samples the manual names, with no other TypeScript sources and no build state', () => {
    ready();
    expect(packedFiles).toEqual(expect.arrayContaining(['LICENSE', 'README.md', 'package.json', 'dist/index.js', 'dist/index.d.ts', 'dist/classic.js', 'dist/classic.d.ts',
      'CHANGELOG.md', 'docs/getting-started.md', 'bench/results/latest.svg']));
    const extra = ['LICENSE', 'README.md', 'package.json', 'CHANGELOG.md', 'CONTRIBUTING.md', 'bench/README.md', 'bench/results/latest.md', 'bench/results/latest.svg'];
    const sample = (f: string) => f.startsWith('samples/') && f.endsWith('.ts') && !f.slice('samples/'.length).includes('/');
    expect(packedFiles.filter((f) => !f.startsWith('dist/') && !(f.startsWith('docs/') && f.endsWith('.md')) && !sample(f) && !extra.includes(f))).toEqual([]);
    // Every samples/*.ts the manual names is in the package, for readers of the installed docs.
    const docs = packedFiles.filter((f) => f.startsWith('docs/')).map((f) => fs.readFileSync(path.join(root, f), 'utf8')).join('\n');
    const named = [...new Set([...docs.matchAll(/samples\/[\w-]+\.ts/g)].map((m) => m[0]))];
    expect(named.length).toBeGreaterThan(0);
    expect(named.filter((f) => !packedFiles.includes(f))).toEqual([]);
    // Every relative link of the README and of the manual resolves inside the package (npm readers get the manual
    // too; docs/benchmarks.md pointed at bench files the package left out: new-user run).
    const installed = path.join(app, 'node_modules', 'sockserve');
    const linksOf = (file: string) =>
      [...fs.readFileSync(path.join(installed, file), 'utf8').matchAll(/\]\(([^)#:\s]+)(?:#[^)]*)?\)/g)].map((m) => path.join(path.dirname(file), m[1]));
    const links = ['README.md', ...packedFiles.filter((f) => f.startsWith('docs/'))].flatMap(linksOf);
    expect(links.length).toBeGreaterThan(50);
    expect(links.filter((l) => !fs.existsSync(path.join(installed, l)))).toEqual([]);
    expect(packedFiles.filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts') && !sample(f))).toEqual([]); // samples are there to read
    expect(packedFiles.filter((f) => f.includes('tsbuildinfo'))).toEqual([]);
  });

  test('ships each source map with the sources it points at, inline', () => {
    ready();
    const maps = packedFiles.filter((f) => f.endsWith('.js.map'));
    expect(maps.length).toBeGreaterThan(0);
    for (const map of maps) {
      const json = JSON.parse(fs.readFileSync(path.join(app, 'node_modules', 'sockserve', map), 'utf8')) as { sources: string[]; sourcesContent?: unknown[] };
      expect({ map, inline: json.sourcesContent?.length }).toEqual({ map, inline: json.sources.length });
      expect(json.sourcesContent!.every((s) => typeof s === 'string' && s.length > 0)).toBe(true);
    }
  });

  test('runs a @Threading and a @Forking handler from compiled CommonJS', async () => {
    ready();
    expectServedByWorkers(await node(['out-cjs/src/main.js'], app, 60000), 'handlers.js');
  }, 70000);

  test('runs them from compiled CommonJS under node --enable-source-maps, loading the JavaScript that runs', async () => {
    ready();
    expectServedByWorkers(await node(['--enable-source-maps', 'out-cjs/src/main.js'], app, 60000), 'handlers.js');
  }, 70000);

  test('runs them in a process started with V8 flags (either spelling) and Node\'s permission model: threads share the process\'s, children get them', async () => {
    ready();
    // --permission since Node 22.13 (--experimental-permission before); network access is a grant of its own where it exists.
    const has = (flag: string) => process.allowedNodeEnvironmentFlags.has(flag);
    const permission = [has('--permission') ? '--permission' : '--experimental-permission', '--allow-fs-read=*', '--allow-child-process', '--allow-worker', ...(has('--allow-net') ? ['--allow-net'] : [])];
    const flags = ['--max_old_space_size=256', '--expose-gc', '--stack-trace-limit=30', '--no-warnings', ...permission];
    expectServedByWorkers(await node([...flags, 'out-cjs/src/main.js'], app, 60000), 'handlers.js');
  }, 70000);

  test('runs them, and a classic ThreadingTCPServer, from an ES module with top-level await, which workers import()', async () => {
    ready();
    expectServedByWorkers(await node(['out-esm/app.mjs'], app, 60000), 'app.mjs', true);
  }, 70000);

  test('runs them from TypeScript under ts-node, started as the README says (node -r ts-node/register)', async () => {
    ready();
    expectServedByWorkers(await node(['-r', 'ts-node/register', 'src/main.ts'], app, 90000), 'handlers.ts');
  }, 100000);

  test('runs them under jest with ts-jest', async () => {
    ready();
    const r = await node([path.join(app, 'node_modules', 'jest', 'bin', 'jest.js'), '--ci', '--colors=false'], app, 90000);
    if (r.code !== 0) throw new Error(`the app's jest run failed (exit ${r.code}):\n${r.stderr}\n${r.stdout}`);
    expect(r.stderr).toMatch(/Tests:\s+2 passed, 2 total/);
  }, 100000);

  test('runs them under jest in an ES-module package (docs/testing.md\'s config), whose workers load its TypeScript and its `./x.js` imports', async () => {
    ready();
    const dir = path.join(app, 'esm-jest');
    const r = await node([path.join(app, 'node_modules', 'jest', 'bin', 'jest.js'), '--ci', '--colors=false'], dir, 90000);
    if (r.code !== 0) throw new Error(`the ES-module app's jest run failed (exit ${r.code}):\n${r.stderr}\n${r.stdout}`);
    expect(r.stderr).toMatch(/Tests:\s+2 passed, 2 total/);
    expect(r.stderr).not.toMatch(/TS151002|ts-jest\[/); // no hybrid-module warning, no ts-jest complaint
  }, 100000);

  // Once per CI run: tsc's verdict does not depend on the Node line (helpers/node-lines.ts).
  testOnce('gives types for every entry point under moduleResolution node10, node16, nodenext and bundler', async () => {
    ready();
    const modes: Array<[string, Record<string, string>, string[]]> = [
      ['node10', { module: 'commonjs', moduleResolution: 'node10' }, ['check.ts']],
      ['node16', { module: 'node16', moduleResolution: 'node16' }, ['check.ts', 'check.mts']],
      ['nodenext', { module: 'nodenext', moduleResolution: 'nodenext' }, ['check.ts', 'check.mts']],
      ['bundler', { module: 'esnext', moduleResolution: 'bundler' }, ['check.ts']],
    ];
    // Every subpath package.json exports (sockserve, sockserve/classic, and any added later), names from
    // the two documented ones, and a subpath that does not exist: proof that a failure is reported.
    const exported = Object.keys((JSON.parse(fs.readFileSync(path.join(app, 'node_modules', 'sockserve', 'package.json'), 'utf8')) as { exports: Record<string, unknown> }).exports)
      .filter((k) => k !== './package.json')
      .map((k) => `sockserve${k.slice(1)}`);
    expect(exported).toEqual(expect.arrayContaining(['sockserve', 'sockserve/classic']));
    const check = [
      ...exported.map((spec, i) => `import * as entry${i} from '${spec}';`),
      `import { bootstrap, TcpServer, type StreamRequest } from 'sockserve';`,
      `import { TCPServer, StreamRequestHandler } from 'sockserve/classic';`,
      `// @ts-expect-error: no such entry point`,
      `import * as missing from 'sockserve/no-such-entry';`,
      `export const entries: object[] = [${exported.map((_, i) => `entry${i}`).join(', ')}, missing];`,
      `export const names: [typeof bootstrap, typeof TcpServer, typeof TCPServer, typeof StreamRequestHandler] = [bootstrap, TcpServer, TCPServer, StreamRequestHandler];`,
      `export type Req = StreamRequest['clientAddress'];`,
      '',
    ].join('\n');
    const results = await Promise.all(modes.map(async ([mode, options, files]) => {
      const dir = path.join(work, `types-${mode}`);
      fs.mkdirSync(dir);
      fs.symlinkSync(path.join(app, 'node_modules'), path.join(dir, 'node_modules'), 'dir');
      fs.writeFileSync(path.join(dir, 'package.json'), '{ "name": "types-check", "private": true }\n');
      for (const file of files) fs.writeFileSync(path.join(dir, file), check);
      fs.writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify({
        compilerOptions: { ...options, target: 'ES2022', strict: true, noEmit: true, skipLibCheck: true, types: ['node'] },
        files,
      }, null, 2));
      const r = await node([path.join(app, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', dir], dir, 80000);
      return { mode, code: r.code, output: r.stdout + r.stderr };
    }));
    expect(results).toEqual(modes.map(([mode]) => ({ mode, code: 0, output: '' })));
  }, 90000);
});

/** The README's first ```ts block, as a user pastes it. */
function readmeExample(): string {
  const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8');
  const m = /```ts\n([\s\S]*?)```/.exec(readme);
  if (!m) throw new Error('README.md has no ```ts block');
  return m[1];
}

/** Connects to `port`, retrying while nothing listens yet (bounded: `ms`), sends `line`, resolves to the reply. */
async function askWhenListening(port: number, line: string, ms: number): Promise<string> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      return await new Promise<string>((resolve, reject) => {
        const socket = net.connect(port, '127.0.0.1');
        let reply = '';
        socket.setEncoding('utf8');
        socket.on('data', (chunk: string) => (reply += chunk)).on('error', reject).on('close', () => resolve(reply));
        socket.setTimeout(10000, () => socket.destroy(new Error('no reply in 10 s')));
        socket.end(line);
      });
    } catch (err) {
      if ((err as { code?: string }).code !== 'ECONNREFUSED' || Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

describe("the README's first example, pasted into a fresh project", () => {
  test.each([
    ['CommonJS', {}, { module: 'commonjs' }],
    // verbatimModuleSyntax, as `tsc --init` (TypeScript 5.9) sets it: a type imported without `import type` fails (new-user run)
    ['ESM ("type": "module")', { type: 'module' }, { module: 'nodenext', verbatimModuleSyntax: true }],
  ])('compiles and serves in a %s project, and stops on SIGTERM', async (_kind, pkg, options) => {
    ready();
    const dir = path.join(work, `readme-${options.module}`);
    fs.mkdirSync(dir);
    expectClean(await run('npm', ['init', '-y'], dir), 'npm init -y');
    const json = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as Record<string, unknown>;
    fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ ...json, ...pkg }, null, 2));
    fs.symlinkSync(path.join(app, 'node_modules'), path.join(dir, 'node_modules'), 'dir');
    const port = await freePort();
    const example = readmeExample();
    expect(example).toMatch(/\b9000\b/);
    fs.writeFileSync(path.join(dir, 'index.ts'), example.replace(/\b9000\b/g, String(port))); // the port: one free here
    fs.writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify({
      compilerOptions: { ...options, target: 'ES2022', strict: true, experimentalDecorators: true, emitDecoratorMetadata: true, esModuleInterop: true, skipLibCheck: true, types: ['node'] },
      files: ['index.ts'],
    }, null, 2));
    const tsc = await node([path.join(app, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', dir], dir, 60000);
    expect(tsc.stdout + tsc.stderr).toBe('');
    expect(tsc.code).toBe(0);

    const child = spawn(process.execPath, ['index.js'], { cwd: dir, env: appEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const killer = setTimeout(() => child.kill('SIGKILL'), 30000);
    try {
      const reply = await Promise.race([askWhenListening(port, 'world\n', 15000), exited.then((code) => `exited early with ${code}: ${stderr}`)]);
      expect(reply).toBe('hello world\n');
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(stderr).toBe('');
    } finally {
      clearTimeout(killer);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  }, 120000);
});
