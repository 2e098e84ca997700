import * as path from 'node:path';
import { ConfigurationError } from '../../errors/errors';

/** How to start a worker thread or child process that can load the handler's module. */
export interface WorkerLaunch {
  file: string;
  execArgv: string[];
}

/** sockserve's own cached TypeScript loader (plain JS beside this file). */
const TS_REGISTER = path.join(__dirname, 'ts-register.js');

/**
 * The entry file `name` beside this module (`.ts` when sockserve runs from its sources, `.js` when
 * compiled), plus a TypeScript loader when the entry or the handler's module is TypeScript: Node cannot
 * load `.ts` in a fresh thread or process by itself (under jest, ts-node, or `npm start`). The loader is
 * sockserve's ts-register.js, which needs the `typescript` package where TypeScript sources run anyway.
 */
export function workerLaunch(name: string, handlerSource: string, handlerName: string): WorkerLaunch {
  const ext = path.extname(__filename);
  const file = path.join(__dirname, `${name}.js`); // always JS: see thread-entry.js
  const inherited = inheritableExecArgv(process.execArgv, name === 'thread-entry');
  const needsTs = ext === '.ts' || /\.[cm]?tsx?$/.test(handlerSource);
  if (!needsTs) return { file, execArgv: inherited };
  try {
    require.resolve('typescript', { paths: [process.cwd(), __dirname] });
  } catch {
    throw new ConfigurationError(
      `${handlerName} is declared in TypeScript (${handlerSource}), and workers need the typescript package to load it. ` +
        `Fix: install typescript (npm i -D typescript), or compile to JavaScript and run the compiled files.`,
    );
  }
  return { file, execArgv: [...withoutTsNodeRegister(inherited), '-r', TS_REGISTER] };
}

/**
 * ts-node's CommonJS register (`node -r ts-node/register …`) left out where sockserve's own loader goes in:
 * it would claim `.ts` first and compile every file again in each new worker (seconds of CPU each, no
 * cache), where sockserve's loader reads its disk cache. The parent has type-checked already. sockserve's
 * loader itself, when the program was started with it, is left out too: it goes in once.
 */
function withoutTsNodeRegister(argv: string[]): string[] {
  const isTsNode = (spec: string) => spec === TS_REGISTER || /^ts-node[\\/]register([\\/]transpile-only)?$|[\\/]ts-node[\\/]register[\\/]?(transpile-only(\.js)?|index\.js)?$/.test(spec);
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if ((a === '-r' || a === '--require') && isTsNode(argv[i + 1] ?? '')) i++;
    else if (!(a.startsWith('--require=') && isTsNode(a.slice('--require='.length)))) out.push(a);
  }
  return out;
}

/** Node flags worth passing on: preloads and a few harmless switches. Runners put their own arguments
 *  into execArgv (ts-node's bin puts its script and options there), which a worker must not get. */
const PASSABLE = /^--(enable-source-maps|no-warnings|no-deprecation|trace-warnings|trace-uncaught|experimental-[\w-]+(=.+)?|conditions=.+|require=.+|import=.+|(experimental-)?loader=.+)$/;
/** Preloads, module hooks (ts-node/esm, tsx…) and export conditions an ES module handler may need in the worker too, with their value next. */
const TAKES_VALUE = new Set(['-r', '--require', '--import', '--loader', '--experimental-loader', '-C', '--conditions']);

/**
 * V8's own flags (heap and stack sizes, `gc()`, stack traces, language switches): a child process is a new
 * V8 and gets them. A worker thread's execArgv may not hold them (Node throws ERR_WORKER_INVALID_EXEC_ARGV,
 * every line 20-26), and needs none: V8 flags hold for every isolate of the process.
 */
const V8_FLAG = /^--(expose-gc|(max-old-space-size|max-semi-space-size|max-heap-size|initial-heap-size|initial-old-space-size|stack-size|stack-trace-limit)=\d+|jitless|harmony(-[\w-]+)?)$/;
/**
 * Node's permission model (`--permission`, `--experimental-permission` before Node 22.13, and the `--allow-*`
 * grants): a child gets them all, or it would run restricted without its grants; a thread gets none, since
 * the model holds for the whole process and a thread given the switch alone would be denied everything.
 */
const PERMISSION = /^--(permission|experimental-permission|allow-[\w-]+(=.*)?)$/;
/** Grants that may take their value as the next argument (`--allow-fs-read /srv`). */
const PERMISSION_TAKES_VALUE = new Set(['--allow-fs-read', '--allow-fs-write']);

/** `--max_old_space_size=512` as `--max-old-space-size=512`: Node and V8 accept either spelling of a flag's name. */
function dashed(flag: string): string {
  return flag.replace(/^--[^=]*/, (name) => name.replace(/_/g, '-'));
}

function inheritableExecArgv(argv: readonly string[], thread: boolean): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const flag = dashed(a);
    if (TAKES_VALUE.has(flag) && i + 1 < argv.length) out.push(a, argv[++i]);
    else if (PERMISSION_TAKES_VALUE.has(flag) && i + 1 < argv.length) {
      const value = argv[++i];
      if (!thread) out.push(a, value);
    } else if (PERMISSION.test(flag) || V8_FLAG.test(flag)) {
      if (!thread) out.push(a);
    } else if (PASSABLE.test(flag)) out.push(a);
  }
  return out;
}
