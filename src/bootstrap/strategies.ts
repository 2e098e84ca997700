import * as v8 from 'node:v8';
import { DEFAULT_SHUTDOWN_TIMEOUT } from '../classic/base-server';
import { ConcurrentStrategy } from '../concurrency/concurrent.strategy';
import { findExport } from '../concurrency/remote/class-ref';
import type { PortableToken, WorkerSpec } from '../concurrency/remote/protocol';
import { portableEdge } from '../concurrency/remote/worker-edge';
import { workerLaunch } from '../concurrency/remote/worker-launch';
import type { ConcurrencyStrategy } from '../concurrency/strategy';
import { threadingStrategy } from '../concurrency/threading.strategy';
import { forkingStrategy } from '../concurrency/forking.strategy';
import { DEFAULT_HEARTBEAT_TIMEOUT, PoolTuning, reportPeriodMs } from '../concurrency/worker-pool.strategy';
import type { Provider } from '../container';
import { tokenName } from '../container';
import { readInjectable } from '../container/reflection';
import { ConfigurationError } from '../errors/errors';
import { messages } from '../errors/messages';
import { DEFAULT_LINE_TIMEOUT } from '../transports/edge-options';
import type { HandlerDefinition } from '../metadata/definition';
import { isStreamTransport } from '../metadata/definition';
import { resolveLogger } from '../observability/logger';
import type { BootstrapOptions } from './options';

/**
 * The concurrency strategy a definition asks for, started: for threading, the warm pool is up and has
 * loaded the handler module, so a handler that cannot run in a worker fails here, before binding.
 * `undefined` means the classic server's own serial strategy.
 */
export async function startStrategy(def: HandlerDefinition, options: BootstrapOptions, owner?: unknown): Promise<ConcurrencyStrategy<any> | undefined> {
  const c = def.concurrency;
  switch (c.kind) {
    case 'serial':
      return undefined;
    case 'concurrent':
      // maxConnections is the transport's limits.maxConnections (accepted and closed at once past it): see assemble.
      return new ConcurrentStrategy(isStreamTransport(def.transport) ? Infinity : (c.options.maxConnections ?? Infinity));
    case 'threading': {
      const spec = workerSpec(def, options, 'threading');
      const strategy = threadingStrategy(spec, workerLaunch('thread-entry', spec.source, def.handler.name), c.options, def.handler.name, poolTuning(options, owner));
      await strategy.start();
      return strategy;
    }
    case 'forking': {
      const spec = workerSpec(def, options, 'forking');
      const strategy = forkingStrategy(spec, workerLaunch('child-entry', spec.source, def.handler.name), c.options, def.handler.name, poolTuning(options, owner));
      await strategy.start();
      return strategy;
    }
  }
}

/** The pool's heartbeat bound, the logger's warn (else error) for its backoff notices, its info for restarts, and the Server its worker events name. */
function poolTuning(options: BootstrapOptions, owner: unknown): PoolTuning {
  const logger = resolveLogger(options.logger);
  return {
    heartbeatTimeout: options.heartbeatTimeout ?? DEFAULT_HEARTBEAT_TIMEOUT,
    log: (message) => logger.warn(message),
    error: (message) => logger.error(message),
    info: (message) => logger.info(message),
    owner,
  };
}

/** What a worker needs to rebuild the handler and its container: the module path and the portable providers. */
function workerSpec(def: HandlerDefinition, options: BootstrapOptions, mode: 'threading' | 'forking'): WorkerSpec {
  const name = def.handler.name;
  if (!def.source) throw new ConfigurationError(messages.handlerSourceUnknown(name));
  const t = def.transport;
  const limits = isStreamTransport(t) ? t.options.limits : undefined;
  const reader = { requestTimeout: options.requestTimeout ?? null, lineLimit: limits?.maxLineLength, lineTimeout: limits?.lineTimeout ?? DEFAULT_LINE_TIMEOUT };
  const spec: WorkerSpec = {
    source: def.source,
    // The name it is exported under (a default export, `export { X as Y }`), else its own (ES modules).
    exportName: findExport(def.handler, [def.source])?.exportName ?? name,
    values: [],
    classes: [],
    reader,
    reportMs: reportPeriodMs(options.heartbeatTimeout ?? DEFAULT_HEARTBEAT_TIMEOUT),
    owner: name,
    shutdownTimeout: options.shutdownTimeout === undefined ? DEFAULT_SHUTDOWN_TIMEOUT : options.shutdownTimeout,
  };
  if (def.hooks.message !== undefined) spec.messages = true;
  if (!isStreamTransport(t)) spec.datagrams = true;
  // TLS and PROXY run in the workers for the connections they own unread (API.md §3); checked to cross here.
  const edge = isStreamTransport(t) ? portableEdge(name, mode, t.options) : undefined;
  if (edge) spec.edge = edge;
  for (const provider of options.providers ?? []) addPortable(spec, provider, def, mode);
  return spec;
}

/**
 * Adds a provider in the form a worker can rebuild, or says why it cannot cross: plain data by value
 * (string or Symbol.for() token), classes by module path (the class exported from the file that
 * declares it, found through its @Injectable() or the handler's module). Factories are closures over
 * this process: they cannot cross.
 */
function addPortable(spec: WorkerSpec, provider: Provider, def: HandlerDefinition, mode: 'threading' | 'forking'): void {
  const handler = def.handler.name;
  if (typeof provider === 'function') return; // a class: the worker builds it from its own decorators
  const { provide } = provider;
  const label = tokenName(provide);
  const cannot = (why: string) => new ConfigurationError(messages.providerCannotCross(handler, label, why));
  if ('useFactory' in provider) throw cannot('a factory is a function of this process');
  if ('useClass' in provider) {
    // A class for itself, with its own @Injectable scope: the worker builds it from its decorators, as before.
    const declared = readInjectable(provider.useClass);
    if (provider.useClass === provide && (provider.scope === undefined || provider.scope === declared?.scope)) return;
    const useClass = findExport(provider.useClass, [declared?.source, def.source]);
    if (!useClass) throw cannot(`${provider.useClass.name} is not exported from the module that declares it (with @Injectable()) or from the handler's module`);
    const token = portableToken(provide, [declared?.source, def.source, useClass.source]);
    if (!token) throw cannot('its token is not a string, a Symbol.for() symbol or an exported class');
    spec.classes.push({ token, useClass, ...(provider.scope ? { scope: provider.scope } : {}) });
    return;
  }
  let key: string | undefined;
  if (typeof provide === 'string') key = provide;
  else if (typeof provide === 'symbol' && Symbol.keyFor(provide) !== undefined) key = Symbol.keyFor(provide);
  if (key === undefined) throw cannot('its token is not a string or a Symbol.for() symbol');
  try {
    structuredClone(provider.useValue);
    // A child process gets it through IPC's serialization, which takes less than threads' structured clone (no
    // SharedArrayBuffer, no Blob): refused here, not by the child's start.
    if (mode === 'forking') v8.serialize(provider.useValue);
  } catch (err) {
    throw cannot(`its value cannot be copied${mode === 'forking' ? ' to a child process' : ''} (${(err as Error).message})`);
  }
  // A Buffer crosses as a Uint8Array: made a Buffer again in the worker. Anything else that a copy would not keep
  // whole (a class instance arrived as a plain object without its methods, and the handler failed on its first call:
  // new-user run) is refused.
  const buffer = Buffer.isBuffer(provider.useValue);
  const lost = buffer ? undefined : partCopiedWithoutItsClass(provider.useValue, 'the value');
  if (lost !== undefined) throw cannot(lost);
  spec.values.push({ token: key, symbolKey: typeof provide === 'symbol', value: provider.useValue, ...(buffer ? { buffer: true as const } : {}) });
}

/** The prototypes whose objects a structured clone (how workers get their values) copies as what they are. */
const COPIED_WHOLE = new Set<object | null>([
  null, Object.prototype, Array.prototype, Map.prototype, Set.prototype, Date.prototype, RegExp.prototype, ArrayBuffer.prototype,
  SharedArrayBuffer.prototype, DataView.prototype, Boolean.prototype, Number.prototype, String.prototype, BigInt.prototype, Blob.prototype,
  Error.prototype, EvalError.prototype, RangeError.prototype, ReferenceError.prototype, SyntaxError.prototype, TypeError.prototype, URIError.prototype,
  ...[Int8Array, Uint8Array, Uint8ClampedArray, Int16Array, Uint16Array, Int32Array, Uint32Array, Float32Array, Float64Array, BigInt64Array, BigUint64Array].map((t) => t.prototype),
]);

/**
 * Where in `value` (named `where`) is an object a structured clone copies without its class, as what that is
 * ("the value.db is a DbPool instance"), or undefined when every part arrives as it is: a class instance, a
 * Buffer (a Uint8Array there) or a custom Error arrive as other things, their methods gone.
 */
function partCopiedWithoutItsClass(value: unknown, where: string, seen = new Set<object>()): string | undefined {
  if (typeof value !== 'object' || value === null || seen.has(value)) return undefined;
  seen.add(value);
  const proto = Object.getPrototypeOf(value) as { constructor?: { name?: string } } | null;
  if (!COPIED_WHOLE.has(proto)) {
    if (Buffer.isBuffer(value)) return `${where} is a Buffer, which a worker would get as a plain Uint8Array (only a Buffer given as the whole value is made a Buffer again)`;
    return `${where} is a ${proto?.constructor?.name || 'class'} instance, which a worker would get as a copy of its fields without its class (its methods gone: structured clone)`;
  }
  const parts: Array<[unknown, string]> =
    value instanceof Error
      // An error's cause and own fields cross with it (a class instance there arrived as a plain object: hostile re-check).
      ? [[value.cause, `${where}.cause`] as [unknown, string], ...Object.keys(value).map((k): [unknown, string] => [(value as unknown as Record<string, unknown>)[k], `${where}.${k}`])]
      : value instanceof Map
      ? [...value].flatMap(([k, v]): Array<[unknown, string]> => [[k, `a key of ${where}`], [v, `${where}.get(${typeof k === 'string' ? JSON.stringify(k) : '…'})`]])
      : value instanceof Set
        ? [...value].map((v): [unknown, string] => [v, `a member of ${where}`])
        : Array.isArray(value) || proto === Object.prototype || proto === null
          ? Object.keys(value).map((k): [unknown, string] => [(value as Record<string, unknown>)[k], Array.isArray(value) ? `${where}[${k}]` : `${where}.${k}`])
          : [];
  for (const [part, at] of parts) {
    const lost = partCopiedWithoutItsClass(part, at, seen);
    if (lost !== undefined) return lost;
  }
  return undefined;
}

function portableToken(provide: unknown, files: Array<string | undefined>): PortableToken | undefined {
  if (typeof provide === 'string') return { kind: 'string', key: provide };
  if (typeof provide === 'symbol') {
    const key = Symbol.keyFor(provide);
    return key === undefined ? undefined : { kind: 'symbol', key };
  }
  if (typeof provide === 'function') {
    const ref = findExport(provide, [readInjectable(provide as never)?.source, ...files]);
    return ref && { kind: 'class', ref };
  }
  return undefined;
}
