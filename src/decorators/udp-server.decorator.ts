import { optionTexts } from '../errors/configuration.messages';
import type { UdpServerOptions } from '../metadata/definition';
import { TransportSpec, transportDecorator } from './class-decorator.factory';
import { integerFrom, nonEmptyString } from './options.validation';

/** The largest UDP payload over IPv4: 65535 - 8 (UDP header) - 20 (IP header). */
const MAX_UDP_PAYLOAD = 65507;

const spec: TransportSpec<UdpServerOptions> = {
  decorator: '@UdpServer',
  address: { name: 'port', type: 'number' },
  expected: 'a port number or an options object',
  example: '@UdpServer(9000) or @UdpServer({ port: 9000 })',
  rules: [
    { name: 'port', text: optionTexts.port, valid: integerFrom(0, 65535), required: true },
    { name: 'host', text: optionTexts.host, valid: nonEmptyString },
    { name: 'maxPacketSize', text: optionTexts.udpMaxPacketSize, valid: integerFrom(1, MAX_UDP_PAYLOAD) },
  ],
  define: (options) => ({ kind: 'udp', options }),
};

/**
 * Serves the handler over UDP: `@UdpServer(9000)` or `@UdpServer({ port, host?, maxPacketSize? })`.
 * `host: '::1'` gives IPv6. Each datagram is a `DatagramRequest`. Exactly one transport per class.
 */
export function UdpServer(portOrOptions: number | UdpServerOptions): ClassDecorator;
export function UdpServer(...args: unknown[]): ClassDecorator {
  return transportDecorator(spec, args);
}
