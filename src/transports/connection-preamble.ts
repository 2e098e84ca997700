import type * as net from 'node:net';
import type * as tls from 'node:tls';
import { ProxyProtocolError, TlsHandshakeError } from '../errors/errors';
import { edgeMessages as messages } from '../errors/edge.messages';
import type { ClientAddress } from './address';
import { DEFAULT_LINE_TIMEOUT, EdgeOptions, ProxyInfo, TlsInfo } from './edge-options';
import { MalformedHeader, scanProxyHeader } from './proxy-header';
import { TlsTerminator, tlsInfo } from './tls-terminate';
import { TrustedPeers } from './trusted-peers';

/**
 * What comes before the handler on a stream connection ([production](../../docs/production.md)), in this order: the PROXY protocol
 * header, then the TLS handshake. It needs nothing but the accepted socket and the options, so it runs the
 * same wherever the raw socket is owned: the main thread, a worker thread, a child process.
 *
 * Methods for the caller: `Preamble.from(options)` (undefined when there is nothing to do), `run(socket, peer)`.
 */
export class Preamble {
  private constructor(
    private readonly proxy: { trusted: TrustedPeers; required: boolean } | undefined,
    /** The TLS side, where `tls` is configured: its `setSecureContext()` swaps the certificate for new connections. */
    readonly tls: TlsTerminator | undefined,
    /** Seconds the whole preamble may take (limits.lineTimeout). */
    private readonly seconds: number,
  ) {}

  /** The preamble the options ask for; undefined without `tls` and `proxyProtocol`. Throws RangeError for a bad `trusted` entry. */
  static from(options: EdgeOptions): Preamble | undefined {
    if (!options.tls && !options.proxyProtocol) return undefined;
    const p = options.proxyProtocol === true ? {} : options.proxyProtocol;
    const proxy = p ? { trusted: new TrustedPeers(p.trusted), required: p.required ?? true } : undefined;
    return new Preamble(proxy, options.tls ? new TlsTerminator(options.tls) : undefined, options.limits?.lineTimeout ?? DEFAULT_LINE_TIMEOUT);
  }

  /**
   * Draining (SIGTERM's drainDelay): a connection whose PROXY header is v2 LOCAL (a proxy's own health
   * check) is closed after its header, quietly, instead of reaching the handler, so a health check that
   * expects an answer (HAProxy's `tcp-check send`/`expect`) fails and the proxy marks this server down
   * while it still accepts and serves clients.
   */
  draining = false;

  /** True when a connection's peer must be known before limits per client apply (the PROXY header names it). */
  get namesClient(): boolean {
    return this.proxy !== undefined;
  }

  /**
   * Reads the PROXY header (if configured), then runs the TLS handshake (if configured), bounded together by
   * `limits.lineTimeout` from now. Resolves with the connection to serve, or with undefined when the client
   * closed before sending a byte (a plain TCP health check) or was gone before it was accepted. Rejects with ProxyProtocolError or
   * TlsHandshakeError; the caller then ends the connection. Bytes read past the header are put back.
   */
  async run(raw: net.Socket, peer: ClientAddress): Promise<PreambleResult | undefined> {
    // No peer address: the client reset before Node accepted it (HAProxy ends its checks so), header or not.
    if (peer.host === '') return undefined;
    const deadline = Date.now() + this.seconds * 1000;
    let clientAddress = peer;
    let proxy: ProxyInfo | undefined;
    if (this.proxy) {
      const got = await this.readHeader(raw, peer, this.proxy, deadline);
      if (got === 'health-check') return undefined;
      if (got) {
        proxy = got;
        clientAddress = addressOf(got, peer);
        // A LOCAL header and nothing after it is the proxy's own health check (HAProxy sends one so with
        // send-proxy-v2): its end is as quiet as a plain TCP check's.
        if (got.command === 'LOCAL' && this.draining) return undefined;
        if (got.command === 'LOCAL' && raw.readableLength === 0 && (await firstBytes(raw, deadline)) === 'closed') return undefined;
      }
    } else if (this.tls && (await firstBytes(raw, deadline)) === 'closed') {
      return undefined;
    }
    if (!this.tls) return { socket: raw, clientAddress, proxy };
    const socket = await this.handshake(raw, clientAddress, deadline);
    return { socket, clientAddress, proxy, tls: tlsInfo(socket) };
  }

  private async handshake(raw: net.Socket, client: ClientAddress, deadline: number): Promise<tls.TLSSocket> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new TlsHandshakeError(messages.tlsTimeout(client, this.seconds))), untilDeadline(deadline));
    });
    try {
      return await Promise.race([this.tls!.handshake(raw), late]);
    } catch (err) {
      if (err instanceof TlsHandshakeError) throw err;
      throw new TlsHandshakeError(messages.tlsFailed(client, describeTlsError(err)), { cause: err });
    } finally {
      clearTimeout(timer);
    }
  }

  /** The header, null for plain data (required: false), or 'health-check' for a connection closed with no byte. */
  private readHeader(
    raw: net.Socket,
    peer: ClientAddress,
    config: { trusted: TrustedPeers; required: boolean },
    deadline: number,
  ): Promise<ProxyInfo | null | 'health-check'> {
    const trusted = peer.host === undefined || config.trusted.has(peer.host);
    if (!trusted && config.required) return Promise.reject(new ProxyProtocolError(messages.proxyUntrusted(peer)));
    return intake<ProxyInfo | null | 'health-check'>(raw, deadline, (bytes, event) => {
      if (event === 'closed' && bytes.length === 0) return { used: 0, value: 'health-check' };
      let scan;
      try {
        scan = scanProxyHeader(bytes);
      } catch (err) {
        throw new ProxyProtocolError(messages.proxyMalformed(peer, (err as MalformedHeader).message));
      }
      if (scan.kind === 'header') {
        if (!trusted) throw new ProxyProtocolError(messages.proxyUntrusted(peer));
        return { used: scan.length, value: scan.info };
      }
      if (scan.kind === 'none' || event !== 'data') {
        // A signature's beginning that stalls or ends is plain data too, when a header is not required
        // (intake puts the bytes back before the end); when one is, the header was cut short or late.
        if (!config.required) return { used: 0, value: null };
        throw new ProxyProtocolError(event === 'timeout' ? messages.proxyTimeout(peer, this.seconds) : event === 'closed' ? messages.proxyIncomplete(peer) : messages.proxyMissing(peer));
      }
      return undefined;
    });
  }
}

/** What `Preamble.run()` resolves with: the connection to serve, and what its PROXY header and TLS handshake said. */
export interface PreambleResult {
  /** The connection to serve: the accepted socket, or the TLS socket over it. */
  socket: net.Socket;
  /** The original client behind a proxy (its own address for LOCAL and UNKNOWN headers), else the peer. */
  clientAddress: ClientAddress;
  /** The PROXY header, where one was read; undefined otherwise. */
  proxy?: ProxyInfo;
  /** The TLS session's facts, where TLS was terminated; undefined otherwise. */
  tls?: TlsInfo;
}

/** The client a header speaks for: its source for PROXY over TCP4/TCP6/UNIX; the proxy itself for LOCAL and UNKNOWN. */
function addressOf(info: ProxyInfo, peer: ClientAddress): ClientAddress {
  if (info.command === 'LOCAL') return peer;
  if (info.protocol === 'TCP4') return { host: info.source.host, port: info.source.port, family: 'IPv4' };
  if (info.protocol === 'TCP6') return { host: info.source.host, port: info.source.port, family: 'IPv6' };
  if (info.protocol === 'UNIX') return { path: info.source.host };
  return peer;
}

function describeTlsError(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  if (e?.code === 'ERR_SSL_HTTP_REQUEST' || e?.code === 'ERR_SSL_WRONG_VERSION_NUMBER') return `the client spoke plain text, not TLS (${e.code})`;
  return e?.code ? `${e.code}: ${e.message}` : String(e?.message ?? err);
}

/** Waits for the connection's first bytes (left unread) or its end: a TLS client speaks first. */
function firstBytes(raw: net.Socket, deadline: number): Promise<'data' | 'closed' | 'timeout'> {
  return intake(raw, deadline, (bytes, event) => ({ used: 0, value: event === 'closed' && bytes.length > 0 ? 'data' : event }));
}

type IntakeEvent = 'data' | 'closed' | 'timeout';
/** A decision on the bytes so far: the value, and how many bytes it used (the rest is put back). */
type Decide<T> = (bytes: Buffer, event: IntakeEvent) => { used: number; value: T } | undefined;

/**
 * Reads a paused socket for the preamble until `decide` decides (it must on 'closed' and 'timeout'), then
 * puts back the bytes it did not use (`unshift`), so the handler reads every byte after them, and leaves
 * the socket paused. `decide` runs inside the 'data' event. Once Node has emitted 'end' nothing can be put
 * back, so the end of the client's bytes (Node's `push(null)`) is held while the intake lasts: bytes that
 * end undecided ('P', '\r\n' with `required: false`) are decided on 'closed', put back, and only then
 * ended, so the handler reads them and then its EOF. A reset counts as the end.
 */
function intake<T>(raw: net.Socket, deadline: number, decide: Decide<T>): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    const ownPush = Object.prototype.hasOwnProperty.call(raw, 'push') ? raw.push : undefined;
    const push = raw.push;
    raw.push = (chunk: unknown, encoding?: BufferEncoding): boolean => {
      if (chunk !== null || settled) return push.call(raw, chunk, encoding);
      // The client's end: first the bytes still buffered (read() emits them as 'data', which may decide).
      while (!settled && raw.readableLength > 0 && raw.read() !== null);
      if (!settled) step('closed');
      return push.call(raw, null);
    };
    let chunks: Buffer[] = [];
    const bytes = () => (chunks.length === 1 ? chunks[0] : (chunks = [Buffer.concat(chunks)])[0] ?? Buffer.alloc(0));
    const step = (event: IntakeEvent) => {
      let decision;
      try {
        decision = decide(bytes(), event);
      } catch (err) {
        stop();
        return reject(err);
      }
      if (!decision) return;
      stop();
      const rest = bytes().subarray(decision.used);
      if (rest.length > 0 && !raw.readableEnded) raw.unshift(rest);
      resolve(decision.value);
    };
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      step('data');
    };
    const onEnd = () => step('closed');
    const timer = setTimeout(() => step('timeout'), untilDeadline(deadline));
    const stop = () => {
      settled = true;
      if (ownPush) raw.push = ownPush;
      else delete (raw as { push?: unknown }).push;
      clearTimeout(timer);
      raw.pause();
      raw.off('data', onData);
      raw.off('end', onEnd);
      raw.off('close', onEnd);
      raw.off('error', onEnd);
    };
    raw.on('data', onData);
    raw.on('end', onEnd);
    raw.on('close', onEnd);
    raw.on('error', onEnd);
    (raw as Marked)[READ_HERE] = true;
    raw.resume();
  });
}

// Marks kept on the sockets themselves (symbol-keyed properties, as Node keeps its own), not in WeakMaps or
// WeakSets: every connection would add an entry there, and weak tables cost the garbage collector per entry.
/** The PROXY and TLS facts of a connection that went through a preamble, for its request objects. */
const FACTS = Symbol('sockserve.preambleFacts');
/** This process has started reading the connection's bytes (the preamble's intake). */
const READ_HERE = Symbol('sockserve.readHere');
/** The connection's preamble and @Verify run in its worker (deferPreamble). */
const DEFERRED = Symbol('sockserve.preambleDeferred');
type Marked = { [FACTS]?: { proxy?: ProxyInfo; tls?: TlsInfo }; [READ_HERE]?: true; [DEFERRED]?: true };

export function recordPreamble(result: PreambleResult): void {
  if (result.proxy || result.tls) (result.socket as Marked)[FACTS] = { proxy: result.proxy, tls: result.tls };
}

/** `{ proxy, tls }` of a connection that went through a preamble; empty otherwise. */
export function preambleFacts(socket: object | undefined): {
  /** The connection's PROXY header, if one was read. */
  proxy?: ProxyInfo;
  /** The connection's TLS facts, if TLS was terminated. */
  tls?: TlsInfo } {
  return (socket && (socket as Marked)[FACTS]) || {};
}

/** Milliseconds until `deadline`, within what setTimeout accepts (a longer delay would fire at once). */
function untilDeadline(deadline: number): number {
  return Math.min(2 ** 31 - 1, Math.max(0, deadline - Date.now()));
}

/**
 * Whether a connection can be handed to another thread or process as a bare descriptor: not when TLS runs
 * over it here (the keys live in this process), nor when this process has read from it (a PROXY header):
 * a paused socket's handle goes on reading into its buffer up to the high-water mark, and what it reads
 * after the hand-over is dropped, so bytes the client sends meanwhile would be lost. Such a connection is
 * relayed instead.
 */
export function canHandOver(socket: net.Socket): boolean {
  return !(socket as { encrypted?: boolean }).encrypted && socket.readableLength === 0 && (socket as Marked)[READ_HERE] !== true;
}

/**
 * Marks an accepted socket as one whose preamble (PROXY header, TLS handshake) and @Verify run in the
 * worker that will own it (API.md §3): accepted here, queued unread, and handed over whole before anything
 * reads it.
 */
export function deferPreamble(socket: net.Socket): void {
  (socket as Marked)[DEFERRED] = true;
}

/** Whether the preamble and @Verify of this connection run in its worker (see deferPreamble). */
export function preambleDeferred(socket: object): boolean {
  return (socket as Marked)[DEFERRED] === true;
}
