import * as dgram from 'node:dgram';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import type { ClientAddress } from '../../src/transports/address';
import { createUnixDatagramSocket, ReceivedDatagram } from '../../src/transports/datagram-socket';

export type Target = { host: string; port: number } | { path: string };

/** A fresh temp dir for Unix socket paths; remove it with `removeTempDir`. */
export function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'sockserve-'));
}
export function removeTempDir(dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true });
}

/** Rejects after `ms` with a message naming what was awaited. */
export function within<T>(ms: number, what: string, p: Promise<T>): Promise<T> {
  let timer!: NodeJS.Timeout;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/** Opens a stream connection; the caller ends it. */
export function connect(target: Target): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(target as net.NetConnectOpts);
    s.once('connect', () => resolve(s)).once('error', reject);
  });
}

/** Reads until the server closes the connection (EOF, or a reset after some data). */
export function readToEnd(socket: net.Socket): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    socket.on('data', (c) => chunks.push(c));
    socket.once('end', () => resolve(Buffer.concat(chunks)));
    socket.once('error', (e) => (chunks.length ? resolve(Buffer.concat(chunks)) : reject(e)));
  });
}

/** Connect, send, optionally half-close, and read everything until the server closes; bounded. */
export async function streamExchange(target: Target, payload: string | Buffer, opts: { halfClose?: boolean; ms?: number } = {}): Promise<Buffer> {
  const socket = await within(opts.ms ?? 5000, 'connect', connect(target));
  try {
    const reply = readToEnd(socket);
    socket.write(payload);
    if (opts.halfClose) socket.end();
    return await within(opts.ms ?? 5000, 'stream reply', reply);
  } finally {
    socket.destroy();
  }
}

/** Send one datagram and wait for one reply; bounded. Unix clients bind their own path in `dir`. */
export async function datagramExchange(target: Target, payload: string | Buffer, dir?: string, ms = 5000): Promise<ReceivedDatagram> {
  const data = typeof payload === 'string' ? Buffer.from(payload) : payload;
  if ('path' in target) {
    const client = createUnixDatagramSocket({ path: path.join(dir ?? os.tmpdir(), `client-${process.pid}-${Math.random().toString(36).slice(2)}.sock`), maxPacketSize: 65534 });
    try {
      const reply = new Promise<ReceivedDatagram>((resolve) => client.onMessage(resolve));
      await client.bind();
      await client.send(data, target as ClientAddress);
      return await within(ms, 'unix datagram reply', reply);
    } finally {
      await client.close();
    }
  }
  const client = dgram.createSocket(target.host.includes(':') ? 'udp6' : 'udp4');
  try {
    const reply = new Promise<ReceivedDatagram>((resolve) =>
      client.once('message', (msg, rinfo) => resolve({ data: msg, from: { host: rinfo.address, port: rinfo.port, family: rinfo.family as 'IPv4' }, truncated: false })),
    );
    await new Promise<void>((resolve, reject) => client.send(data, target.port, target.host, (e) => (e ? reject(e) : resolve())));
    return await within(ms, 'udp reply', reply);
  } finally {
    client.close();
  }
}

/** Send one datagram, expecting no reply within `ms`: resolves true when none came. */
export async function datagramSilence(target: Target, payload: string, dir?: string, ms = 300): Promise<boolean> {
  try {
    await datagramExchange(target, payload, dir, ms);
    return false;
  } catch (e) {
    if (String((e as Error).message).includes('no answer')) return true;
    throw e;
  }
}

/**
 * Sends the first part of a request, lets the server take it (`arrived`), starts its shutdown, then
 * sends the rest: a graceful shutdown must serve the request whole, not as the half it had. Returns
 * the reply read until the server closed the connection; `shutdown` must settle too. Bounded.
 */
export async function requestAcrossShutdown(
  target: Target,
  head: string,
  tail: string,
  arrived: () => Promise<void>,
  shutdown: () => Promise<void>,
): Promise<string> {
  const socket = await within(5000, 'connect', connect(target));
  try {
    const reply = readToEnd(socket);
    socket.write(head);
    await arrived();
    const stopping = shutdown();
    await new Promise((r) => setTimeout(r, 50));
    socket.write(tail);
    const [bytes] = await within(10000, 'reply and shutdown', Promise.all([reply, stopping]));
    return bytes.toString();
  } finally {
    socket.destroy();
  }
}

/**
 * Connects to `port` on 127.0.0.1, writes `line` (no half-close), and resolves with what came back and whether EOF
 * came within 3 s (the connection is destroyed either way).
 */
export function askUntilEof(port: number, line: string): Promise<{ reply: string; eof: boolean }> {
  return new Promise((resolve) => {
    const c = net.connect(port, '127.0.0.1', () => c.write(line));
    let reply = '';
    c.setEncoding('utf8');
    c.on('data', (d: string) => (reply += d));
    c.on('error', () => undefined);
    c.on('end', () => {
      c.destroy();
      resolve({ reply, eof: true });
    });
    c.setTimeout(3000, () => {
      c.destroy();
      resolve({ reply, eof: false });
    });
  });
}
