import { MalformedHeader, scanProxyHeader } from '../../src/transports/proxy-header';
import { TrustedPeers } from '../../src/transports/trusted-peers';
import { v1Header, v2Header } from '../helpers/edge-clients';

describe('scanProxyHeader', () => {
  test('parses a v1 TCP4 header and says how many bytes it took', () => {
    const bytes = Buffer.from(`${v1Header('203.0.113.7', 51000, '192.0.2.1', 443)}GET`);
    const scan = scanProxyHeader(bytes);
    expect(scan).toEqual({
      kind: 'header',
      length: bytes.length - 3,
      info: { version: 1, command: 'PROXY', protocol: 'TCP4', source: { host: '203.0.113.7', port: 51000 }, destination: { host: '192.0.2.1', port: 443 }, tlvs: [] },
    });
  });

  test('parses a v1 TCP6 header and writes the addresses as Node does', () => {
    const scan = scanProxyHeader(Buffer.from('PROXY TCP6 2001:DB8:0:0:0:0:0:1 ::1 4000 80\r\n'));
    expect(scan.kind === 'header' && scan.info.source).toEqual({ host: '2001:db8::1', port: 4000 });
  });

  test('"PROXY UNKNOWN" ends at its CRLF, whatever comes before it, a bare LF included (the spec, 2.1)', () => {
    const scan = scanProxyHeader(Buffer.from('PROXY UNKNOWN what\never\r\nafter'));
    expect(scan).toMatchObject({ kind: 'header', length: 'PROXY UNKNOWN what\never\r\n'.length, info: { protocol: 'UNKNOWN' } });
    expect(scanProxyHeader(Buffer.from('PROXY UNKNOWN\n'))).toEqual({ kind: 'more' });
  });

  test('"PROXY UNKNOWN" followed at once by a bare LF is a header up to its CRLF, as the LF check lets it be', () => {
    for (const head of ['PROXY UNKNOWN\nwhat\r\n', 'PROXY UNKNOWN\nwhat\never\r\n', 'PROXY UNKNOWN\rwhat\r\n']) {
      expect(scanProxyHeader(Buffer.from(`${head}after`))).toMatchObject({ kind: 'header', length: head.length, info: { protocol: 'UNKNOWN' } });
    }
    expect(() => scanProxyHeader(Buffer.from('PROXY UNKNOWNX\r\n'))).toThrow(MalformedHeader);
    expect(() => scanProxyHeader(Buffer.from('PROXY UNKNOW\n'))).toThrow(MalformedHeader);
  });

  test('a v1 header ends at byte 107 at the latest: a CRLF at 106-107 ends one, a CR at 107 or later cannot', () => {
    const longest = `PROXY UNKNOWN ${'x'.repeat(107 - 16)}\r\n`;
    expect(longest.length).toBe(107);
    expect(scanProxyHeader(Buffer.from(`${longest}data`))).toMatchObject({ kind: 'header', length: 107 });
    for (let n = 1; n < longest.length; n++) expect(scanProxyHeader(Buffer.from(longest.slice(0, n)))).toEqual({ kind: 'more' });
    const tooLong = `PROXY UNKNOWN ${'x'.repeat(108 - 16)}\r\n`;
    expect(() => scanProxyHeader(Buffer.from(tooLong.slice(0, 107)))).toThrow(MalformedHeader); // its CR is byte 107
    expect(() => scanProxyHeader(Buffer.from(tooLong))).toThrow(/no CRLF within 107 bytes/);
  });

  test.each([
    ['0.0.0.0 255.255.255.255 0 65535', 'TCP4', { host: '0.0.0.0', port: 0 }, { host: '255.255.255.255', port: 65535 }],
    [':: ::1 0 65535', 'TCP6', { host: '::', port: 0 }, { host: '::1', port: 65535 }],
    ['::FFFF:1.2.3.4 2001:DB8::A 1 2', 'TCP6', { host: '::ffff:1.2.3.4', port: 1 }, { host: '2001:db8::a', port: 2 }],
    ['0:0:0:0:0:FFFF:0102:0304 ::ffff:10.0.0.1 1 2', 'TCP6', { host: '::ffff:1.2.3.4', port: 1 }, { host: '::ffff:10.0.0.1', port: 2 }],
  ])('writes the v1 addresses %s as Node writes remoteAddress', (rest, protocol, source, destination) => {
    const scan = scanProxyHeader(Buffer.from(`PROXY ${protocol} ${rest}\r\n`));
    expect(scan).toMatchObject({ kind: 'header', info: { protocol, source, destination } });
  });

  test('refuses a v1 TCP6 address with a scope (fe80::1%eth0) as MalformedHeader, not a TypeError', () => {
    expect(() => scanProxyHeader(Buffer.from('PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n'))).toThrow(MalformedHeader);
    expect(() => scanProxyHeader(Buffer.from('PROXY TCP6 ::1 fe80::1%1 1 2\r\n'))).toThrow(MalformedHeader);
  });

  test('reads "PROXY UNKNOWN" as a header with no addresses', () => {
    const scan = scanProxyHeader(Buffer.from('PROXY UNKNOWN ffff::1 ::1 1 2\r\nrest'));
    expect(scan).toMatchObject({ kind: 'header', length: 31, info: { protocol: 'UNKNOWN', source: { host: '', port: 0 } } });
  });

  test('asks for more bytes while a header is incomplete, one byte at a time', () => {
    for (const header of [Buffer.from(v1Header('10.1.2.3', 1234)), v2Header({ src: '10.1.2.3', srcPort: 1234 })]) {
      for (let n = 1; n < header.length; n++) expect(scanProxyHeader(header.subarray(0, n))).toEqual({ kind: 'more' });
      expect(scanProxyHeader(header)).toMatchObject({ kind: 'header', length: header.length });
    }
  });

  test('says none for bytes that do not start with a signature', () => {
    expect(scanProxyHeader(Buffer.from('GET / HTTP/1.1\r\n'))).toEqual({ kind: 'none' });
    expect(scanProxyHeader(Buffer.from('PROXZ'))).toEqual({ kind: 'none' });
    expect(scanProxyHeader(Buffer.from([0x0d, 0x0a, 0x0d, 0x0b]))).toEqual({ kind: 'none' });
  });

  test.each([
    ['a v1 header without CRLF in 107 bytes', `PROXY TCP4 ${'1'.repeat(120)}`],
    ['a v1 header with a bad address', 'PROXY TCP4 300.1.1.1 127.0.0.1 1 2\r\n'],
    ['a v1 header with a port past 65535', 'PROXY TCP4 1.1.1.1 127.0.0.1 70000 2\r\n'],
    ['a v1 header with an IPv6 address under TCP4', 'PROXY TCP4 ::1 127.0.0.1 1 2\r\n'],
    ['a v1 header with an IPv4 address under TCP6', 'PROXY TCP6 ::1 127.0.0.1 1 2\r\n'],
    ['a v1 header with an IPv4 address written with a leading zero', 'PROXY TCP4 198.051.100.7 127.0.0.1 1 2\r\n'],
    ['a v1 header with a port of six digits', 'PROXY TCP4 1.1.1.1 127.0.0.1 000001 2\r\n'],
    ['a v1 header with a destination port past 65535', 'PROXY TCP4 1.1.1.1 127.0.0.1 1 65536\r\n'],
    ['a v1 header with a destination port of six digits', 'PROXY TCP4 1.1.1.1 127.0.0.1 1 000002\r\n'],
    ['a v1 header with a seventh field', 'PROXY TCP4 1.1.1.1 127.0.0.1 1 2 3\r\n'],
    ['a v1 header with two spaces between fields', 'PROXY TCP4 1.1.1.1  127.0.0.1 1 2\r\n'],
    ['a v1 header with five fields', 'PROXY TCP4 1.1.1.1 127.0.0.1 1\r\n'],
    ['a v1 header that ends in LF without CR', 'PROXY TCP4 1.1.1.1 127.0.0.1 1 2\n'],
    ['a v1 header of an unknown protocol', 'PROXY UDP4 1.1.1.1 127.0.0.1 1 2\r\n'],
    ['a v1 header with a source port written with a leading zero', 'PROXY TCP4 1.1.1.1 127.0.0.1 01 2\r\n'],
    ['a v1 header with a destination port written with a leading zero', 'PROXY TCP6 ::1 ::1 1 0443\r\n'],
    ['a v1 header with a port of two zeros', 'PROXY TCP4 1.1.1.1 127.0.0.1 00 2\r\n'],
  ])('throws MalformedHeader for %s', (_what, text) => {
    expect(() => scanProxyHeader(Buffer.from(text))).toThrow(MalformedHeader);
  });

  test('parses a v2 PROXY header with its TLVs, in order', () => {
    const tlvs = [{ type: 0x01, value: Buffer.from('h2') }, { type: 0x05, value: Buffer.from([1, 2, 3]) }];
    const header = v2Header({ src: '198.51.100.9', srcPort: 40000, dst: '192.0.2.5', dstPort: 8443, tlvs });
    const scan = scanProxyHeader(Buffer.concat([header, Buffer.from('payload')]));
    expect(scan).toEqual({
      kind: 'header',
      length: header.length,
      info: { version: 2, command: 'PROXY', protocol: 'TCP4', source: { host: '198.51.100.9', port: 40000 }, destination: { host: '192.0.2.5', port: 8443 }, tlvs },
    });
  });

  test('parses a v2 TCP6 header', () => {
    const scan = scanProxyHeader(v2Header({ ipv6: true, src: '2001:db8::7', srcPort: 5, dst: '::1', dstPort: 6 }));
    expect(scan).toMatchObject({ kind: 'header', info: { protocol: 'TCP6', source: { host: '2001:db8::7', port: 5 }, destination: { host: '::1', port: 6 } } });
  });

  test('parses a v2 LOCAL header (a health check) with no addresses', () => {
    expect(scanProxyHeader(v2Header({ local: true }))).toMatchObject({ kind: 'header', length: 16, info: { version: 2, command: 'LOCAL', protocol: 'UNKNOWN' } });
  });

  test('takes a v2 LOCAL header whatever its address block holds, as the spec says (the block and its family are discarded)', () => {
    const tlv = { type: 0xe0, value: Buffer.from('check') };
    const block = (family: number, body: Buffer) => {
      const head = v2Header({ local: true });
      head[13] = family;
      head.writeUInt16BE(body.length, 14);
      return Buffer.concat([head, body, Buffer.from('after')]);
    };
    const local = (length: number, tlvs: unknown[]) => ({ kind: 'header', length, info: { version: 2, command: 'LOCAL', protocol: 'UNKNOWN', source: { host: '', port: 0 }, destination: { host: '', port: 0 }, tlvs } });
    // TCP4 family with no addresses at all, and with 5 bytes that are neither addresses nor TLVs
    expect(scanProxyHeader(block(0x11, Buffer.alloc(0)))).toEqual(local(16, []));
    expect(scanProxyHeader(block(0x11, Buffer.from([1, 2, 3, 4, 5])))).toEqual(local(21, []));
    // an unknown family (0x4) and a block that claims a TLV longer than itself
    expect(scanProxyHeader(block(0x41, Buffer.from([0xe0, 0xff, 0xff, 1])))).toEqual(local(20, []));
    // TLVs are kept where they read as TLVs: after UNSPEC's nothing, and after INET's 12 bytes of addresses
    const tlvBytes = Buffer.from([0xe0, 0, 5, ...Buffer.from('check')]);
    expect(scanProxyHeader(block(0x00, tlvBytes))).toEqual(local(16 + tlvBytes.length, [tlv]));
    expect(scanProxyHeader(block(0x11, Buffer.concat([Buffer.alloc(12), tlvBytes])))).toEqual(local(28 + tlvBytes.length, [tlv]));
  });

  test('takes port 0 in a v1 header: a single zero is no leading zero', () => {
    expect(scanProxyHeader(Buffer.from('PROXY TCP4 1.1.1.1 127.0.0.1 0 0\r\n'))).toMatchObject({ kind: 'header', info: { source: { port: 0 }, destination: { port: 0 } } });
  });

  test.each([
    ['0x12', 0x12, /0x12 says INET \(IPv4\) over DGRAM/],
    ['0x22', 0x22, /0x22 says INET6 \(IPv6\) over DGRAM/],
    ['0x32', 0x32, /0x32 says UNIX over DGRAM/],
    ['0x10', 0x10, /0x10 says INET \(IPv4\) over UNSPEC/],
    ['0x13', 0x13, /0x13 says INET \(IPv4\) over an unknown transport/],
    ['0x03', 0x03, /0x03 says UNSPEC over an unknown transport/],
  ])('throws MalformedHeader for a v2 PROXY header whose protocol byte is %s: a stream server takes STREAM or UNSPEC (the spec, 2.2)', (_hex, byte, message) => {
    const header = v2Header({ src: '198.51.100.9', srcPort: 40000, ipv6: (byte >> 4) === 2 });
    header[13] = byte;
    expect(() => scanProxyHeader(header)).toThrow(MalformedHeader);
    expect(() => scanProxyHeader(header)).toThrow(message);
  });

  test('takes a v2 PROXY header of family UNSPEC whatever its transport (0x00, 0x01, 0x02): its addresses are ignored', () => {
    for (const byte of [0x00, 0x01, 0x02]) {
      const header = v2Header({ src: '198.51.100.9' });
      header[13] = byte;
      header.writeUInt16BE(0, 14);
      expect(scanProxyHeader(header.subarray(0, 16))).toMatchObject({ kind: 'header', length: 16, info: { command: 'PROXY', protocol: 'UNKNOWN', source: { host: '', port: 0 } } });
    }
  });

  test('throws MalformedHeader for a v2 command other than LOCAL (0) and PROXY (1)', () => {
    const other = v2Header({ src: '1.2.3.4' });
    other[12] = 0x22;
    expect(() => scanProxyHeader(other)).toThrow(MalformedHeader);
  });

  test('throws MalformedHeader for a v2 header of another version, or whose TLV runs past its end', () => {
    const badVersion = v2Header({ src: '1.2.3.4' });
    badVersion[12] = 0x11;
    expect(() => scanProxyHeader(badVersion)).toThrow(/version 1, not 2/);
    const badTlv = v2Header({ src: '1.2.3.4', tlvs: [{ type: 2, value: Buffer.from('abc') }] });
    badTlv.writeUInt16BE(0xffff, badTlv.length - 5); // the TLV claims more than the header holds
    expect(() => scanProxyHeader(badTlv)).toThrow(/runs past the header/);
    const shortFamily = v2Header({ src: '1.2.3.4' });
    shortFamily.writeUInt16BE(4, 14); // IPv4 needs 12 bytes of addresses
    expect(() => scanProxyHeader(shortFamily.subarray(0, 20))).toThrow(MalformedHeader);
  });
});

describe('TrustedPeers', () => {
  test('trusts loopback by default, IPv4-mapped addresses included, and nothing else', () => {
    const peers = new TrustedPeers();
    expect(['127.0.0.1', '127.9.9.9', '::1', '::ffff:127.0.0.1'].map((h) => peers.has(h))).toEqual([true, true, true, true]);
    expect(['10.0.0.1', '::2', '', undefined].map((h) => peers.has(h))).toEqual([false, false, false, false]);
  });

  test('takes addresses and CIDR blocks, and rejects anything else naming the entry', () => {
    const peers = new TrustedPeers(['10.0.0.0/8', '2001:db8::/32', '192.0.2.1']);
    expect(['10.200.1.1', '2001:db8:1::5', '192.0.2.1', '192.0.2.2'].map((h) => peers.has(h))).toEqual([true, true, true, false]);
    expect(() => new TrustedPeers(['10.0.0.0/33'])).toThrow(/"10.0.0.0\/33" is not an IP address or a CIDR block/);
    expect(() => new TrustedPeers(['loadbalancer'])).toThrow(RangeError);
  });
});
