import { isIPv6 } from 'node:net';
import { configurationMessages as messages, optionTexts } from '../errors/configuration.messages';
import type { UdpServerOptions } from '../metadata/definition';
import { TransportSpec, transportDecorator } from './class-decorator.factory';
import { fail, integerFrom, nonEmptyString } from './options.validation';

/** The largest UDP payload over IPv4: 65535 - 8 (UDP header) - 20 (IP header). */
export const MAX_UDP4_PAYLOAD = 65507;
/** Over IPv6 the 40-byte IP header is not counted in the payload length: 65535 - 8. */
export const MAX_UDP6_PAYLOAD = 65527;

const spec: TransportSpec<UdpServerOptions> = {
  kind: 'udp',
  decorator: '@UdpServer',
  address: { name: 'port', type: 'number' },
  expected: 'a port number or an options object',
  example: '@UdpServer(9000) or @UdpServer({ port: 9000 })',
  rules: [
    { name: 'port', text: optionTexts.port, valid: integerFrom(0, 65535), required: true },
    { name: 'host', text: optionTexts.host, valid: nonEmptyString },
    { name: 'maxPacketSize', text: optionTexts.udpMaxPacketSize, valid: integerFrom(1, MAX_UDP6_PAYLOAD) },
  ],
  check: (site, options) => {
    const { maxPacketSize, host } = options;
    if (maxPacketSize !== undefined && maxPacketSize > MAX_UDP4_PAYLOAD && !isIPv6(host ?? '127.0.0.1')) {
      fail(messages.badOption(site.decorator, site.cls, 'maxPacketSize', maxPacketSize, optionTexts.udpMaxPacketSize));
    }
  },
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
