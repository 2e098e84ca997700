import { optionTexts } from '../errors/configuration.messages';
import type { UnixStreamServerOptions } from '../metadata/definition';
import { TransportSpec, transportDecorator } from './class-decorator.factory';
import { checkUnixPerClient, edgeRules } from './edge-options.validation';
import { checkPathLength, integerFrom, nonEmptyString, positiveInteger } from './options.validation';

const spec: TransportSpec<UnixStreamServerOptions> = {
  kind: 'unix-stream',
  decorator: '@UnixStreamServer',
  address: { name: 'path', type: 'string' },
  expected: 'a socket path or an options object',
  example: "@UnixStreamServer('/tmp/echo.sock') or @UnixStreamServer({ path: '/tmp/echo.sock' })",
  rules: [
    { name: 'path', text: optionTexts.path, valid: nonEmptyString, required: true, more: checkPathLength },
    { name: 'backlog', text: optionTexts.backlog, valid: positiveInteger },
    { name: 'mode', text: optionTexts.mode, valid: integerFrom(0, 0o777) },
    ...edgeRules,
  ],
  check: (site, options) => checkUnixPerClient(site, options),
  define: (options) => ({ kind: 'unix-stream', options }),
};

/**
 * Serves the handler over a Unix stream socket: `@UnixStreamServer(path)` or `@UnixStreamServer({ path,
 * backlog?, tls?, proxyProtocol?, limits? })` (those three: [production](../../docs/production.md)). Each connection is a `StreamRequest`. Exactly one transport per class.
 */
export function UnixStreamServer(pathOrOptions: string | UnixStreamServerOptions): ClassDecorator;
export function UnixStreamServer(...args: unknown[]): ClassDecorator {
  return transportDecorator(spec, args);
}
