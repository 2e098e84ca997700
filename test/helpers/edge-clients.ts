import * as net from 'node:net';
import * as tls from 'node:tls';
import { Duplex } from 'node:stream';
import { cert } from '../fixtures/edge-handlers';
import { within } from './clients';
import type { Server } from '../../src';

export type Endpoint = { host: string; port: number } | { path: string };

/** A decorated TCP server's `{ host, port }` (its `serverAddress`), where the edge tests connect. */
export function endpoint(s: Server): { host: string; port: number } {
  return s.serverAddress as { host: string; port: number };
}

/** Reads one '\n'-terminated line from a socket (TLS or not); bounded. */
export function readLine(socket: net.Socket, ms = 10000): Promise<string> {
  return within(ms, 'a line', new Promise<string>((resolve, reject) => {
    let got = '';
    const onData = (d: Buffer) => {
      got += d.toString();
      const nl = got.indexOf('\n');
      if (nl < 0) return;
      socket.off('data', onData);
      socket.off('error', reject);
      const rest = got.slice(nl + 1);
      if (rest) socket.unshift(Buffer.from(rest));
      socket.pause();
      resolve(got.slice(0, nl + 1));
    };
    socket.on('data', onData);
    socket.once('error', reject);
    socket.resume();
  }));
}

/** A raw connection that first writes `prefix` (a PROXY header, say); resolves once connected and written. */
export function rawConnect(target: Endpoint, prefix?: Buffer | string, localAddress?: string): Promise<net.Socket> {
  return within(5000, 'connect', new Promise<net.Socket>((resolve, reject) => {
    const s = net.connect({ ...(target as net.NetConnectOpts), ...(localAddress ? { localAddress } : {}) });
    s.once('error', reject);
    s.once('connect', () => {
      s.off('error', reject);
      s.on('error', () => undefined);
      if (prefix !== undefined) s.write(prefix);
      resolve(s);
    });
  }));
}

/** A TLS client of the test CA, with the test client certificate unless `anonymous`; over `raw` if given. */
export function tlsConnect(target: Endpoint, opts: { raw?: net.Socket; anonymous?: boolean; alpn?: string[]; servername?: string } = {}): Promise<tls.TLSSocket> {
  return within(10000, 'TLS handshake', new Promise<tls.TLSSocket>((resolve, reject) => {
    const s = tls.connect({
      ...(opts.raw ? { socket: opts.raw } : (target as tls.ConnectionOptions)),
      ca: cert('ca.crt'),
      servername: opts.servername ?? 'localhost',
      ALPNProtocols: opts.alpn ?? ['sockserve'],
      ...(opts.anonymous ? {} : { key: cert('client.key'), cert: cert('client.crt') }),
    });
    s.once('secureConnect', () => {
      s.off('error', reject);
      s.on('error', () => undefined);
      resolve(s);
    });
    s.once('error', reject);
  }));
}

/** Asks an edge fixture handler what it knows of the connection. */
export async function askInfo(socket: net.Socket): Promise<any> {
  socket.write('info\n');
  return JSON.parse(await readLine(socket));
}

/** A v1 header: `PROXY TCP4 src dst sport dport\r\n`. */
export function v1Header(src: string, srcPort: number, dst = '127.0.0.1', dstPort = 9000): string {
  return `PROXY ${src.includes(':') ? 'TCP6' : 'TCP4'} ${src} ${dst} ${srcPort} ${dstPort}\r\n`;
}

const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);

/** A v2 header built by hand: PROXY over TCP4 (or LOCAL with no addresses), with TLVs. */
export function v2Header(opts: { local?: boolean; src?: string; srcPort?: number; dst?: string; dstPort?: number; tlvs?: { type: number; value: Buffer }[]; ipv6?: boolean }): Buffer {
  const tlvs = Buffer.concat((opts.tlvs ?? []).map((t) => {
    const head = Buffer.alloc(3);
    head[0] = t.type;
    head.writeUInt16BE(t.value.length, 1);
    return Buffer.concat([head, t.value]);
  }));
  let family = 0x00;
  let addresses = Buffer.alloc(0);
  if (!opts.local) {
    if (opts.ipv6) {
      family = 0x21;
      addresses = Buffer.concat([ipv6Bytes(opts.src ?? '::1'), ipv6Bytes(opts.dst ?? '::1'), port(opts.srcPort ?? 1), port(opts.dstPort ?? 9000)]);
    } else {
      family = 0x11;
      addresses = Buffer.concat([Buffer.from((opts.src ?? '127.0.0.1').split('.').map(Number)), Buffer.from((opts.dst ?? '127.0.0.1').split('.').map(Number)), port(opts.srcPort ?? 1), port(opts.dstPort ?? 9000)]);
    }
  }
  const fixed = Buffer.alloc(4);
  fixed[0] = opts.local ? 0x20 : 0x21;
  fixed[1] = family;
  fixed.writeUInt16BE(addresses.length + tlvs.length, 2);
  return Buffer.concat([V2_SIGNATURE, fixed, addresses, tlvs]);
}

function port(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}

function ipv6Bytes(address: string): Buffer {
  const [head, tail] = address.split('::');
  const parts = (s?: string) => (s ? s.split(':').filter(Boolean) : []);
  const h = parts(head);
  const t = parts(tail);
  const groups = address.includes('::') ? [...h, ...Array(8 - h.length - t.length).fill('0'), ...t] : h;
  return Buffer.concat(groups.map((g) => port(parseInt(g, 16))));
}

/** Resolves when the socket closes; `reset` says whether it ended with an error (ECONNRESET) rather than EOF. */
export function closed(socket: net.Socket, ms = 10000): Promise<{ reset: boolean; data: string }> {
  return within(ms, 'the server to close the connection', new Promise((resolve) => {
    // Already closed (its 'close' event is past): say so at once rather than wait for an event that has gone.
    if (socket.closed) return resolve({ reset: socket.errored !== null, data: '' });
    let data = '';
    let reset = false;
    socket.on('data', (d) => (data += d.toString()));
    socket.on('error', () => (reset = true));
    socket.once('close', () => resolve({ reset, data }));
    socket.resume();
  }));
}

/**
 * A TLS client whose handshake stops after its ClientHello: its later flights are held until `release()`.
 * `serverSpoke` resolves when the server's first bytes (its ServerHello) came back, which proves the
 * server accepted the connection and is in its handshake; `secure` resolves once the handshake completes.
 * `over`: a connection already open (one that has sent a PROXY header, say) to run the handshake on.
 */
export async function heldTlsClient(target: Endpoint, over?: net.Socket): Promise<{ serverSpoke: Promise<void>; release(): void; secure: Promise<tls.TLSSocket>; destroy(): void }> {
  const raw = over ?? (await rawConnect(target));
  let spoke!: () => void;
  const serverSpoke = new Promise<void>((resolve) => (spoke = resolve));
  let writes = 0;
  let held: Buffer[] | undefined = [];
  const pipe = new Duplex({
    read() {},
    write(chunk: Buffer, _encoding, callback) {
      if (writes++ === 0 || !held) raw.write(chunk);
      else held.push(chunk);
      callback();
    },
    final(callback) {
      raw.end();
      callback();
    },
    destroy(err, callback) {
      raw.destroy();
      callback(err);
    },
  });
  raw.on('data', (d: Buffer) => {
    spoke();
    pipe.push(d);
  });
  raw.on('end', () => pipe.push(null));
  raw.on('close', () => pipe.destroy());
  const secure = tlsConnect(target, { raw: pipe as unknown as net.Socket });
  secure.catch(() => undefined);
  return {
    serverSpoke: within(10000, 'the server\'s ServerHello', serverSpoke),
    release: () => {
      const flights = held ?? [];
      held = undefined;
      for (const chunk of flights) raw.write(chunk);
    },
    secure,
    destroy: () => {
      pipe.destroy();
      raw.destroy();
    },
  };
}

/** Everything the server sends until it closes the connection, as latin1; bounded by `ms`. */
export function replyOf(socket: net.Socket, ms = 10000): Promise<string> {
  return within(ms, 'the reply to its end', new Promise<string>((resolve) => {
    let got = '';
    socket.on('data', (d: Buffer) => (got += d.toString('latin1')));
    socket.on('error', () => undefined);
    socket.once('close', () => resolve(got));
    socket.resume();
  }));
}
