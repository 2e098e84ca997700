import { optionTexts } from '../errors/configuration.messages';
import type { UnixDatagramServerOptions } from '../metadata/definition';
import { MAX_UNIX_DATAGRAM_PACKET } from '../transports/unix-dgram.socket';
import { TransportSpec, transportDecorator } from './class-decorator.factory';
import { checkPathLength, integerFrom, nonEmptyString } from './options.validation';

const spec: TransportSpec<UnixDatagramServerOptions> = {
  kind: 'unix-dgram',
  decorator: '@UnixDatagramServer',
  address: { name: 'path', type: 'string' },
  expected: 'a socket path or an options object',
  example: "@UnixDatagramServer('/tmp/echo.sock') or @UnixDatagramServer({ path: '/tmp/echo.sock' })",
  rules: [
    { name: 'path', text: optionTexts.path, valid: nonEmptyString, required: true, more: checkPathLength },
    { name: 'maxPacketSize', text: optionTexts.unixMaxPacketSize, valid: integerFrom(1, MAX_UNIX_DATAGRAM_PACKET) },
    { name: 'mode', text: optionTexts.mode, valid: integerFrom(0, 0o777) },
  ],
  define: (options) => ({ kind: 'unix-dgram', options }),
};

/**
 * Serves the handler over a Unix datagram socket: `@UnixDatagramServer(path)` or `@UnixDatagramServer({
 * path, maxPacketSize? })`. Each datagram is a `DatagramRequest`. Exactly one transport per class.
 */
export function UnixDatagramServer(pathOrOptions: string | UnixDatagramServerOptions): ClassDecorator;
export function UnixDatagramServer(...args: unknown[]): ClassDecorator {
  return transportDecorator(spec, args);
}
