import { optionTexts } from '../errors/configuration.messages';
import type { TcpServerOptions } from '../metadata/definition';
import { TransportSpec, transportDecorator } from './class-decorator.factory';
import { edgeRules } from './edge-options.validation';
import { boolean, integerFrom, nonEmptyString, positiveInteger } from './options.validation';

const spec: TransportSpec<TcpServerOptions> = {
  kind: 'tcp',
  decorator: '@TcpServer',
  address: { name: 'port', type: 'number' },
  expected: 'a port number or an options object',
  example: '@TcpServer(9000) or @TcpServer({ port: 9000 })',
  rules: [
    { name: 'port', text: optionTexts.port, valid: integerFrom(0, 65535), required: true },
    { name: 'host', text: optionTexts.host, valid: nonEmptyString },
    { name: 'backlog', text: optionTexts.backlog, valid: positiveInteger },
    { name: 'reuseAddress', text: optionTexts.reuseAddress, valid: boolean },
    { name: 'ipv6Only', text: optionTexts.ipv6Only, valid: boolean },
    ...edgeRules,
  ],
  define: (options) => ({ kind: 'tcp', options }),
};

/**
 * Serves the handler over TCP: `@TcpServer(9000)` or `@TcpServer({ port, host?, backlog?, reuseAddress?,
 * ipv6Only?, tls?, proxyProtocol?, limits? })`. Port 0 lets the OS pick.
 * `tls`, `proxyProtocol` and `limits`: [production](../../docs/production.md). Each request is a `StreamRequest`. Exactly one
 * transport per class.
 */
export function TcpServer(portOrOptions: number | TcpServerOptions): ClassDecorator;
export function TcpServer(...args: unknown[]): ClassDecorator {
  return transportDecorator(spec, args);
}
