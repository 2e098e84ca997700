import { ConcurrentStrategy } from '../concurrency/concurrent.strategy';
import type { WorkerSpec } from '../concurrency/remote/protocol';
import { workerLaunch } from '../concurrency/remote/worker-launch';
import type { ConcurrencyStrategy } from '../concurrency/strategy';
import { threadingStrategy } from '../concurrency/threading.strategy';
import { forkingStrategy } from '../concurrency/forking.strategy';
import type { Provider } from '../container';
import { tokenName } from '../container';
import { ConfigurationError } from '../errors/errors';
import { messages } from '../errors/messages';
import type { HandlerDefinition } from '../metadata/definition';
import type { BootstrapOptions } from './options';

/**
 * The concurrency strategy a definition asks for, started: for threading, the warm pool is up and has
 * loaded the handler module, so a handler that cannot run in a worker fails here, before binding.
 * `undefined` means the classic server's own serial strategy.
 */
export async function startStrategy(def: HandlerDefinition, options: BootstrapOptions): Promise<ConcurrencyStrategy<any> | undefined> {
  const c = def.concurrency;
  switch (c.kind) {
    case 'serial':
      return undefined;
    case 'concurrent':
      return new ConcurrentStrategy(c.options.maxConnections ?? Infinity);
    case 'threading': {
      const spec = workerSpec(def, options);
      const strategy = threadingStrategy(spec, workerLaunch('thread-entry', spec.source, def.handler.name), c.options, def.handler.name);
      await strategy.start();
      return strategy;
    }
    case 'forking': {
      const spec = workerSpec(def, options);
      const strategy = forkingStrategy(spec, workerLaunch('child-entry', spec.source, def.handler.name), c.options, def.handler.name);
      await strategy.start();
      return strategy;
    }
  }
}

/** What a worker needs to rebuild the handler and its container: the module path and the portable providers. */
function workerSpec(def: HandlerDefinition, options: BootstrapOptions): WorkerSpec {
  const name = def.handler.name;
  if (!def.source) throw new ConfigurationError(messages.handlerSourceUnknown(name));
  return {
    source: def.source,
    exportName: name,
    values: (options.providers ?? []).flatMap((p) => portable(p, name)),
    reader: { requestTimeout: options.requestTimeout ?? null },
  };
}

function portable(provider: Provider, handler: string): WorkerSpec['values'] {
  if (typeof provider === 'function') return []; // a class: the worker builds it from its own decorators
  const { provide } = provider;
  const label = tokenName(provide);
  if (!('useValue' in provider)) {
    if ('useClass' in provider && provider.useClass === provide) return [];
    throw new ConfigurationError(messages.providerCannotCross(handler, label, 'classes and factories chosen at bootstrap do not reach other threads'));
  }
  let key: string | undefined;
  if (typeof provide === 'string') key = provide;
  else if (typeof provide === 'symbol' && Symbol.keyFor(provide) !== undefined) key = Symbol.keyFor(provide);
  if (key === undefined) throw new ConfigurationError(messages.providerCannotCross(handler, label, 'its token is not a string or a Symbol.for() symbol'));
  try {
    structuredClone(provider.useValue);
  } catch (err) {
    throw new ConfigurationError(messages.providerCannotCross(handler, label, `its value cannot be copied (${(err as Error).message})`));
  }
  return [{ token: key, symbolKey: typeof provide === 'symbol', value: provider.useValue }];
}
