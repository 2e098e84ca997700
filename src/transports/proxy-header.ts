import * as net from 'node:net';
import {
  AddressFamilyType, IPv4ProxyAddress, IPv6ProxyAddress, UnixProxyAddress, V1ProxyProtocol, V2ProxyProtocol,
} from 'proxy-protocol-js';
import type { ProxyInfo } from './edge-options';

/**
 * Finds and parses a PROXY protocol header (HAProxy's spec, versions 1 and 2) at the start of a connection's
 * bytes. The fields are decoded by `proxy-protocol-js`; this module frames the header (how many bytes it
 * has, whether they have all arrived), checks what the library leaves unchecked (v1 addresses and ports, a
 * v2 length that runs past the bytes) and splits v2's TLVs, which the library returns as raw bytes.
 */

export const V1_SIGNATURE = Buffer.from('PROXY ', 'latin1');
export const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
/** The longest v1 header, CRLF included (the spec's 107 bytes). */
const V1_MAX = 107;
const V2_FIXED = 16;

export type HeaderScan =
  /** What has arrived is a signature's beginning, or a header not complete yet: read more. */
  | { kind: 'more' }
  /** The bytes do not start with a header's signature. */
  | { kind: 'none' }
  /** A whole header of `length` bytes. */
  | { kind: 'header'; length: number; info: ProxyInfo };

/** A header that starts with a signature but is not a valid header; the message says why. */
export class MalformedHeader extends Error {}

const MORE: HeaderScan = Object.freeze({ kind: 'more' });
const NONE: HeaderScan = Object.freeze({ kind: 'none' });
const CR = 0x0d;
const LF = 0x0a;

/** Scans the bytes received so far; throws MalformedHeader for a header that can never be valid. */
export function scanProxyHeader(bytes: Buffer): HeaderScan {
  // The first byte tells the signatures apart ('\r' for v2, 'P' for v1). Every connection comes through
  // here, so the common path allocates nothing until the header's line is read.
  const first = bytes[0];
  if (first === V1_SIGNATURE[0]) return !startsLike(bytes, V1_SIGNATURE) ? NONE : bytes.length < V1_SIGNATURE.length ? MORE : scanV1(bytes);
  if (first === V2_SIGNATURE[0]) return !startsLike(bytes, V2_SIGNATURE) ? NONE : bytes.length < V2_SIGNATURE.length ? MORE : scanV2(bytes);
  return NONE;
}

/**
 * Whether `bytes` begin with a whole v1 or v2 signature: what follows can only be a PROXY header or a malformed
 * one (either way no plain client's data), before the header itself has come whole.
 */
export function startsWithSignature(bytes: Buffer): boolean {
  const signature = bytes[0] === V1_SIGNATURE[0] ? V1_SIGNATURE : bytes[0] === V2_SIGNATURE[0] ? V2_SIGNATURE : undefined;
  return signature !== undefined && bytes.length >= signature.length && startsLike(bytes, signature);
}

/** `bytes` and `signature` agree on their common length (so a short `bytes` may still become a header). */
function startsLike(bytes: Buffer, signature: Buffer): boolean {
  const n = Math.min(bytes.length, signature.length);
  for (let i = 0; i < n; i++) if (bytes[i] !== signature[i]) return false;
  return n > 0;
}

function scanV1(bytes: Buffer): HeaderScan {
  // A v1 header is one line ending in CRLF, at most V1_MAX bytes with it. A LF without CR before it ends
  // a header that can never be valid, except in "PROXY UNKNOWN", whose receiver ignores all before the CRLF.
  const window = bytes.length > V1_MAX ? bytes.subarray(0, V1_MAX) : bytes;
  let lf = window.indexOf(LF);
  while (lf >= 0 && bytes[lf - 1] !== CR) {
    if (!isUnknown(bytes)) throw new MalformedHeader(`the v1 header ${JSON.stringify(bytes.toString('latin1', 0, lf))} ends in LF without CR`);
    lf = window.indexOf(LF, lf + 1);
  }
  if (lf < 0) {
    if (bytes.length >= V1_MAX) throw new MalformedHeader(`a v1 header has no CRLF within ${V1_MAX} bytes`);
    return MORE;
  }
  const end = lf - 1;
  const empty = { host: '', port: 0 };
  // "PROXY UNKNOWN" may carry anything up to CRLF, which the receiver ignores (the spec, 2.1).
  if (isUnknown(bytes)) return header(end + 2, { version: 1, command: 'PROXY', protocol: 'UNKNOWN', source: empty, destination: empty, tlvs: [] });
  const framed = bytes.toString('latin1', 0, end + 2); // the line with its CRLF, as the library takes it
  let parsed: V1ProxyProtocol;
  try {
    parsed = V1ProxyProtocol.parse(framed);
  } catch (err) {
    throw new MalformedHeader(`the v1 header ${JSON.stringify(framed.slice(0, end))} is not valid (${(err as Error).message})`);
  }
  // The library's pattern has exactly six fields ending in CRLF (this is the first CRLF), the two ports last,
  // as digits; they must also fit in 16 bits, with no leading zero ("heading zeroes are not permitted", the
  // spec, 2.1: `01` may be read as octal). Read where they are, not by splitting the line (measured: the
  // split was a third of reading a header).
  const last = framed.lastIndexOf(' ', end);
  const before = framed.lastIndexOf(' ', last - 1);
  const sourcePort = portAt(framed, before + 1, last);
  const destinationPort = portAt(framed, last + 1, end);
  const protocol = parsed.inetProtocol as 'TCP4' | 'TCP6';
  const v4 = protocol === 'TCP4';
  const source = parsed.source.ipAddress;
  const destination = parsed.destination.ipAddress;
  // isIPv6 takes a scope ('fe80::1%eth0'), which names an interface of the proxy's host, not an address.
  const addressed = v4 ? net.isIPv4(source) && net.isIPv4(destination) : net.isIPv6(source) && net.isIPv6(destination) && !source.includes('%') && !destination.includes('%');
  if (!addressed || !(sourcePort <= 65535 && destinationPort <= 65535)) {
    throw new MalformedHeader(`the v1 header ${JSON.stringify(framed.slice(0, end))} does not hold two ${protocol} addresses and two ports`);
  }
  return header(end + 2, {
    version: 1,
    command: 'PROXY',
    protocol,
    // A valid IPv4 address is already in Node's form (isIPv4 takes no leading zeros); IPv6 is written as Node writes it.
    source: { host: v4 ? source : normaliseHost(source), port: sourcePort },
    destination: { host: v4 ? destination : normaliseHost(destination), port: destinationPort },
    tlvs: [],
  });
}

/**
 * The decimal port in `text` from `start` to `end` (digits, as the library's pattern checked), or NaN when it has
 * more than five digits or a leading zero (the spec, 2.1: "heading zeroes are not permitted"; `0` alone is a port).
 */
function portAt(text: string, start: number, end: number): number {
  const digits = end - start;
  if (digits > 5 || (digits > 1 && text.charCodeAt(start) === 0x30)) return NaN;
  return Number(text.slice(start, end));
}

const UNKNOWN = Buffer.from('UNKNOWN', 'latin1');
const SP = 0x20;

/**
 * The v1 header says "PROXY UNKNOWN": the word, then a space, CR or LF (anything after it up to the CRLF is
 * ignored, a bare LF included). The LF check and the header's verdict both ask this, so they cannot disagree.
 */
function isUnknown(bytes: Buffer): boolean {
  const at = V1_SIGNATURE.length;
  if (bytes.length <= at + UNKNOWN.length) return false;
  for (let i = 0; i < UNKNOWN.length; i++) if (bytes[at + i] !== UNKNOWN[i]) return false;
  const next = bytes[at + UNKNOWN.length];
  return next === SP || next === CR || next === LF;
}

function scanV2(bytes: Buffer): HeaderScan {
  if (bytes.length < V2_FIXED) return MORE;
  if (bytes[12] >> 4 !== 2) throw new MalformedHeader(`a v2 header has version ${bytes[12] >> 4}, not 2`);
  const length = V2_FIXED + bytes.readUInt16BE(14);
  if (bytes.length < length) return MORE;
  const empty = { host: '', port: 0 };
  // LOCAL (command 0): the proxy speaks for itself (a health check). The receiver "must discard the protocol
  // block including the family which is ignored" (the spec, 2.2): whatever the block holds, the header is
  // valid. Its TLVs are kept when the block after the family's addresses reads as TLVs.
  if ((bytes[12] & 0x0f) === 0) {
    return header(length, { version: 2, command: 'LOCAL', protocol: 'UNKNOWN', source: empty, destination: empty, tlvs: localTlvs(bytes, length) });
  }
  checkV2Protocol(bytes[13]);
  let parsed: V2ProxyProtocol;
  try {
    parsed = V2ProxyProtocol.parse(new Uint8Array(bytes.subarray(0, length)));
  } catch (err) {
    throw new MalformedHeader(`the v2 header is not valid (${(err as { message?: string }).message ?? String(err)})`);
  }
  const data = parsed.data;
  const tlvs = data && data.length > 0 ? splitTlvs(Buffer.from(data)) : [];
  const a = parsed.proxyAddress;
  // The results are written out whole, not spread from a common part, and IPv4 addresses are formatted by
  // hand: measured (Node 20), an object spread and Array.join made a TCP4 header cost 5-6 µs to read, ~0.9 µs without.
  // UNSPEC: the receiver ignores the address information (the spec, 2.2).
  if (parsed.addressFamilyType === AddressFamilyType.UNSPEC) {
    return header(length, { version: 2, command: 'PROXY', protocol: 'UNKNOWN', source: empty, destination: empty, tlvs });
  }
  if (a instanceof IPv4ProxyAddress) {
    return header(length, {
      version: 2,
      command: 'PROXY',
      protocol: 'TCP4',
      source: { host: dotted(a.sourceAddress.address), port: a.sourcePort },
      destination: { host: dotted(a.destinationAddress.address), port: a.destinationPort },
      tlvs,
    });
  }
  if (a instanceof IPv6ProxyAddress) {
    return header(length, {
      version: 2,
      command: 'PROXY',
      protocol: 'TCP6',
      source: { host: ipv6(a.sourceAddress.address), port: a.sourcePort },
      destination: { host: ipv6(a.destinationAddress.address), port: a.destinationPort },
      tlvs,
    });
  }
  const u = a as UnixProxyAddress;
  return header(length, {
    version: 2,
    command: 'PROXY',
    protocol: 'UNIX',
    source: { host: unixPath(u.sourceAddress.address), port: 0 },
    destination: { host: unixPath(u.destinationAddress.address), port: 0 },
    tlvs,
  });
}

/** The v2 protocol byte's names: the family (high nibble) and the transport (low nibble). */
const V2_FAMILIES = ['UNSPEC', 'INET (IPv4)', 'INET6 (IPv6)', 'UNIX'];
const V2_TRANSPORTS = ['UNSPEC', 'STREAM', 'DGRAM'];

/**
 * Refuses a PROXY command's protocol byte (byte 13) that a stream server cannot take: a transport other than
 * UNSPEC, STREAM and DGRAM, which "must be rejected as invalid by receivers" (the spec, 2.2), and an address
 * family given with any transport but STREAM (`0x12`, UDP over IPv4, is a datagram flow's header: its addresses
 * are not this connection's client; `0x10` is not among the spec's values). UNSPEC (`0x00`) stays valid: its
 * addresses are ignored. The library took `0x12` as TCP over IPv4.
 */
function checkV2Protocol(byte: number): void {
  const family = byte >> 4;
  const transport = byte & 0x0f;
  if (family === 0 && transport <= 2) return;
  if (family <= 3 && transport === 1) return;
  const hex = `0x${byte.toString(16).padStart(2, '0')}`;
  const names = `${V2_FAMILIES[family] ?? 'an unknown family'} over ${V2_TRANSPORTS[transport] ?? 'an unknown transport'}`;
  throw new MalformedHeader(`the v2 header's protocol byte ${hex} says ${names}; a stream server takes STREAM over INET, INET6 or UNIX (0x11, 0x21, 0x31) or UNSPEC (0x00, 0x01, 0x02)`);
}

/** Four bytes as a dotted IPv4 address. */
function dotted(b: readonly number[]): string {
  return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
}

function header(length: number, info: ProxyInfo): HeaderScan {
  return { kind: 'header', length, info };
}

/** Bytes of addresses per v2 address family (the high nibble of byte 13): UNSPEC, INET, INET6, UNIX. */
const V2_ADDRESS_BYTES = [0, 12, 36, 216];

/** A LOCAL header's TLVs: those after the family's addresses, when they read as TLVs; else none (the block is discarded). */
function localTlvs(bytes: Buffer, length: number): ProxyInfo['tlvs'] {
  const addresses = V2_ADDRESS_BYTES[bytes[13] >> 4];
  if (addresses === undefined) return []; // an unknown family: its block cannot be read
  const start = V2_FIXED + addresses;
  if (start >= length) return [];
  try {
    return splitTlvs(bytes.subarray(start, length));
  } catch {
    return [];
  }
}

/** v2's TLVs: one type byte, a two-byte big-endian length, the value. */
function splitTlvs(data: Buffer): ProxyInfo['tlvs'] {
  const tlvs: ProxyInfo['tlvs'] = [];
  for (let at = 0; at < data.length; ) {
    if (at + 3 > data.length) throw new MalformedHeader('a v2 TLV is cut short');
    const type = data[at];
    const size = data.readUInt16BE(at + 1);
    if (at + 3 + size > data.length) throw new MalformedHeader(`the v2 TLV of type 0x${type.toString(16)} runs past the header`);
    tlvs.push({ type, value: Buffer.from(data.subarray(at + 3, at + 3 + size)) });
    at += 3 + size;
  }
  return tlvs;
}

/** An IPv6 address as Node writes `remoteAddress`: lower case, the longest run of zeros compressed. */
function ipv6(bytes: readonly number[]): string {
  if (bytes.slice(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff) return `::ffff:${bytes.slice(12).join('.')}`;
  const groups = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i] << 8) | bytes[i + 1]).toString(16));
  return normaliseHost(groups.join(':'));
}

function normaliseHost(host: string): string {
  if (net.isIPv4(host) || /^::ffff:\d+\.\d+\.\d+\.\d+$/i.test(host)) return host.toLowerCase();
  const written = new URL(`http://[${host}]/`).hostname.slice(1, -1);
  // The WHATWG writer gives an IPv4-mapped address in hex ('::ffff:102:304'); Node (libuv's inet_ntop) and
  // ipv6() above write its IPv4 part dotted ('::ffff:1.2.3.4'), however the header spelled it.
  const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(written);
  if (!mapped) return written;
  const hi = parseInt(mapped[1], 16);
  const lo = parseInt(mapped[2], 16);
  return `::ffff:${hi >> 8}.${hi & 0xff}.${lo >> 8}.${lo & 0xff}`;
}

function unixPath(bytes: readonly number[]): string {
  const end = bytes.indexOf(0);
  return Buffer.from(end < 0 ? bytes : bytes.slice(0, end)).toString('utf8');
}
