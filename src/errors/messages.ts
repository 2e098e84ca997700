/** Message builders for the transport and classic-server errors. Each names the class, the member and one fix. */
import { ClientAddress, formatAddress } from '../transports/address';

/** An error as one line: its name, its message's lines joined, and its code. */
function oneLine(error: unknown): string {
  if (!(error instanceof Object)) return String(error);
  const { name, message, code } = error as { name?: unknown; message?: unknown; code?: unknown };
  const text = `${String(name ?? 'Error')}: ${String(message ?? '').replace(/\s*\n\s*/g, ' ')}`;
  return typeof code === 'string' && !text.includes(code) ? `${text} (${code})` : text;
}

export const messages = {
  addressInUse: (owner: string, address: string) =>
    `${owner}: address ${address} is already in use. Fix: stop the other server, pick another port ` +
    `(0 lets the OS choose), or wait for the old socket to leave TIME_WAIT.`,
  lineTooLong: (limit: number) =>
    `rfile.readline(): the line is longer than ${limit} bytes. Fix: pass a larger limit, ` +
    `readline(limit), or read with read()/read1() when lines may be long.`,
  requestTimeout: (seconds: number) =>
    `rfile: no data arrived for ${seconds} s (requestTimeout). Fix: raise requestTimeout, ` +
    `or make the client send sooner.`,
  serverClosed: (owner: string, member: string) =>
    `${owner}.${member}(): the server is closed. Fix: build a new server; close() is final.`,
  alreadyServing: (owner: string) =>
    `${owner}.serveForever(): the loop is already running. Fix: call shutdown() and await it before serving again.`,
  /** Python's handle_error block, without its last newline (a logger adds one). */
  errorBlock: (client: ClientAddress | undefined, trace: string) =>
    `${'-'.repeat(40)}\nException occurred during processing of request from ${formatAddress(client)}\n${trace}\n${'-'.repeat(40)}`,
  /** Routine client behaviour (a reset, a timeout…): one line, no traceback. */
  clientError: (owner: string, client: ClientAddress | undefined, error: unknown) =>
    `${owner}: client ${formatAddress(client)}: ${oneLine(error)}`,
  acceptFailing: (owner: string, address: string, code: string | undefined) =>
    `${owner}: accepting on ${address} fails (${code ?? 'EMFILE'}: out of file descriptors); new connections are dropped ` +
    `until descriptors are free. Fix: raise the limit (ulimit -n, LimitNOFILE=), or lower limits.maxConnections.`,
  acceptRecovered: (owner: string, address: string, failures: number, ms: number) =>
    `${owner}: accepting on ${address} again after ${(ms / 1000).toFixed(1)} s out of file descriptors (${failures} accept failures counted).`,
  listening: (owner: string, address: string, mode: string) => `${owner}: listening on ${address} (${mode})`,
  draining: (owner: string, active: number) => `${owner}: shutting down; draining ${active} request${active === 1 ? '' : 's'} in flight`,
  closed: (owner: string) => `${owner}: closed`,
  badServerClass: (handler: string, given: string, expected: string) =>
    `${handler}: serverClass ${given} does not extend ${expected}, the classic server of its transport decorator. ` +
    `Fix: declare it as \`class ${given} extends ${expected}\`.`,
  handlerNotExported: (name: string, file: string) =>
    `${name} is not exported from ${file}, so a worker cannot load it. Fix: declare the class at the module's ` +
    `top level with \`export class ${name}\` (a class defined inside a function cannot be loaded by path).`,
  handlerSourceUnknown: (name: string) =>
    `${name}: sockserve could not tell which file declares the class, so a worker cannot load it. ` +
    `Fix: declare it at the top level of a module of its own and export it.`,
  workerLoadFailed: (name: string, mode: string, reason: string) =>
    `${name}: the ${mode} worker could not load the handler. Reason:\n  ${reason.split('\n').join('\n  ')}`,
  providerCannotCross: (handler: string, token: string, why: string) =>
    `${handler}: the provider for ${token} cannot be used in worker threads or child processes: ${why}. ` +
    `Fix: give workers plain data with { provide: 'name', useValue: ... } (a string or Symbol.for() token, a ` +
    `structured-cloneable value), or classes with { provide, useClass } where the class (and a class token) is ` +
    `exported from the module that declares it with @Injectable(); workers build them there.`,
  workerStartFailed: (name: string, mode: string, reason: string) =>
    `${name}: no ${mode} worker could be started for this request. Reason:\n  ${reason.split('\n').join('\n  ')}`,
  workerCrashed: (mode: string, detail: string) =>
    `the ${mode} worker running this request died: ${detail}. The request was closed; a new worker takes the next one.`,
  workerSilent: (seconds: number) =>
    `the handler ran for more than requestTimeout (${seconds} s) without a sign of life, so its worker was ended.`,
  badAddress: (owner: string, address: unknown) =>
    `${owner}: ${JSON.stringify(address)} is not an address. Fix: pass [host, port] or { host, port }` +
    ` (port 0 lets the OS choose); Unix servers take a path or { path }.`,
};
