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
 * cache), where sockserve's loader reads its disk cache. The parent has type-checked already.
 */
function withoutTsNodeRegister(argv: string[]): string[] {
  const isTsNode = (spec: string) => /^ts-node[\\/]register([\\/]transpile-only)?$|[\\/]ts-node[\\/]register[\\/]?(transpile-only(\.js)?|index\.js)?$/.test(spec);
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
const PASSABLE = /^--(enable-source-maps|no-warnings|no-deprecation|trace-warnings|trace-uncaught|expose-gc|experimental-[\w-]+|max-old-space-size=\d+|stack-trace-limit=\d+|conditions=.+|require=.+|import=.+|(experimental-)?loader=.+)$/;
/** Preloads and module hooks (ts-node/esm, tsx…) that an ES module handler may need in the worker too. */
const TAKES_VALUE = new Set(['-r', '--require', '--import', '--loader', '--experimental-loader']);

/**
 * V8's own flags among those: a worker thread's execArgv may not hold them (Node throws
 * ERR_WORKER_INVALID_EXEC_ARGV, every line 20-26), and it needs none of them, since V8 flags hold for every
 * isolate of the process. A child process is a new V8 and gets them.
 */
const V8_FLAG = /^--(expose-gc|max-old-space-size=|stack-trace-limit=)/;

function inheritableExecArgv(argv: readonly string[], thread: boolean): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (TAKES_VALUE.has(a) && i + 1 < argv.length) out.push(a, argv[++i]);
    else if (PASSABLE.test(a) && !(thread && V8_FLAG.test(a))) out.push(a);
  }
  return out;
}
