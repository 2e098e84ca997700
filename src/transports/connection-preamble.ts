import type * as net from 'node:net';
import type * as tls from 'node:tls';
import { ProxyProtocolError, RequestTimeoutError, TlsHandshakeError } from '../errors/errors';
import { edgeMessages as messages } from '../errors/edge.messages';
import { opensslWords } from '../errors/messages';
import { ClientAddress, nameClient } from './address';
import { DEFAULT_LINE_TIMEOUT, EdgeOptions, ProxyInfo, TlsInfo } from './edge-options';
import { MalformedHeader, scanProxyHeader, startsWithSignature } from './proxy-header';
import { TlsTerminator, tlsInfo } from './tls-terminate';
import { TrustedPeers } from './trusted-peers';
import { OtherReader, registerReader } from '../classic/reader-registry';
import { FIRST_REQUEST_GRACE_MS } from './stream-reader';
import { countPreambleBytes, preambleBytes, stampHeldSince, stampLocalCheck } from './connection-stamps';
import { recordBytesBefore } from '../observability/connection-bytes';
import { isHangUp } from '../observability/error-kind';

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
    const proxy = p ? { trusted: blamed('proxyProtocol.trusted', () => new TrustedPeers(p.trusted)), required: p.required ?? true } : undefined;
    const tls = options.tls ? blamed('tls', () => new TlsTerminator(options.tls!)) : undefined;
    return new Preamble(proxy, tls, options.limits?.lineTimeout ?? DEFAULT_LINE_TIMEOUT);
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
  run(raw: net.Socket, peer: ClientAddress): Promise<PreambleResult | undefined> {
    return new Promise((resolve, reject) => this.start(raw, peer, (err, result) => (err ? reject(err) : resolve(result))));
  }

  /**
   * run() with a callback, which the server's listener uses: `done` is called once, with the error or the
   * result (undefined: a health check). Without TLS it is called from the event that brought the header,
   * so a PROXY connection costs no promise and no extra turn before it is queued. `admit` (the listener's
   * maxConnectionsPerClient) is asked once a header has named the client and a TLS handshake would follow:
   * false ends the preamble there, with a result marked `overLimit`, so a client over its limit costs no handshake.
   */
  start(raw: net.Socket, peer: ClientAddress, finish: PreambleDone, admit?: (raw: net.Socket, client: ClientAddress) => boolean): void {
    // No peer address: the client reset before Node accepted it (HAProxy ends its checks so), header or not. Its
    // header could not be believed (the proxy's address went with the reset, so `trusted` cannot be checked), nor
    // a TLS handshake made with it: a health check, closed quietly, whatever bytes it sent.
    if (peer.host === '') return finish(undefined, undefined);
    // The server closed the connection in its preamble (shutdownTimeout, close()): that reason, not a header
    // cut short or a handshake that failed, is what ended it (hostile-client run: the client was blamed).
    const done: PreambleDone = (err, result) => finish(err && closedByServer(raw) ? raw.errored : err, result);
    const deadline = Date.now() + this.seconds * 1000;
    if (!this.proxy) {
      if (!this.tls) return done(undefined, { socket: raw, clientAddress: peer });
      return this.secureOnceSpoken(raw, peer, undefined, deadline, done);
    }
    this.readHeader(raw, peer, this.proxy, deadline, (err, got) => {
      if (err) return done(err);
      if (got === 'health-check') return done(undefined, undefined);
      const clientAddress = got ? addressOf(got, peer) : peer;
      // The order of the edge (production.md): maxConnectionsPerClient once the header names the client (or
      // shows there is none: required false), then the handshake. Checked after it, a client over its limit
      // got a whole handshake (the server's signature included), or, sending no more, sat out lineTimeout
      // and was counted a TLS error, not rejected.
      if (this.tls && admit && got?.command !== 'LOCAL' && !admit(raw, clientAddress)) return done(undefined, { socket: raw, clientAddress, proxy: got ?? undefined, overLimit: true });
      if (!got) return this.secure(raw, peer, undefined, deadline, done);
      // A LOCAL header and nothing after it is the proxy's own health check (HAProxy sends one so with
      // send-proxy-v2): its end is as quiet as a plain TCP check's. So is a PROXY header and nothing after
      // it where TLS follows (a proxy's plain TCP check with send-proxy): without the wait for the first
      // TLS byte, as where no header comes, the handshake would sit out lineTimeout and end as a TLS error.
      if (got.command !== 'LOCAL' && !this.tls) return this.secure(raw, clientAddress, got, deadline, done);
      if (got.command === 'LOCAL' && this.draining) return done(undefined, undefined);
      this.secureOnceSpoken(raw, clientAddress, got, deadline, done);
    });
  }

  /**
   * secure() once the client has sent a byte (bytes already buffered count): a TLS client speaks first, and
   * a close before its first byte is a health check (`done` with undefined), not a failed handshake.
   */
  private secureOnceSpoken(raw: net.Socket, clientAddress: ClientAddress, proxy: ProxyInfo | undefined, deadline: number, done: PreambleDone): void {
    if (raw.readableLength > 0) return this.secure(raw, clientAddress, proxy, deadline, done);
    intake(raw, deadline, false, firstBytesDecision, (err, event) => {
      if (err) return done(err);
      if (event === 'closed') return done(undefined, undefined);
      this.secure(raw, clientAddress, proxy, deadline, done);
    });
  }

  /** After the PROXY header: the TLS handshake where configured, then `done` with the connection to serve. */
  private secure(raw: net.Socket, clientAddress: ClientAddress, proxy: ProxyInfo | undefined, deadline: number, done: PreambleDone): void {
    const local = proxy?.command === 'LOCAL';
    if (local) stampLocalCheck(raw);
    if (!this.tls) return done(undefined, { socket: raw, clientAddress, proxy });
    this.handshake(raw, clientAddress, deadline).then(
      (socket) => {
        if (local) stampLocalCheck(socket);
        // The header counts in bytesIn, as on a plain connection, though the TLS socket counts from after it
        // (and, as the raw socket's, it is no request: a health check's bytes, health-check.ts).
        const header = preambleBytes(raw);
        if (header > 0) {
          recordBytesBefore(socket, header);
          countPreambleBytes(socket, header);
        }
        done(undefined, { socket, clientAddress, proxy, tls: tlsInfo(socket) });
      },
      (err) => {
        // The balancer's own check (a LOCAL header) hanging up in its handshake, as HAProxy's check-ssl does
        // when its bound (`inter`) runs out on a busy server: the check's end, quiet as its end after one, not
        // a client's failed handshake (operator run: a warn line each). Its other failures are said as any.
        if (local && isHangUp(err)) return done(undefined, undefined);
        done(err);
      },
    );
  }

  private async handshake(raw: net.Socket, client: ClientAddress, deadline: number): Promise<tls.TLSSocket> {
    let timer: NodeJS.Timeout | undefined;
    let settled = false;
    let fail!: (err: Error) => void;
    const late = new Promise<never>((_, reject) => (fail = reject));
    const arm = (at: number, shutdown: boolean) => {
      clearTimeout(timer);
      timer = setTimeout(() => fail(new TlsHandshakeError(shutdown ? messages.tlsCutAtShutdown(client, SHUTDOWN_CUT_MS / 1000) : messages.tlsTimeout(client, this.seconds))), untilDeadline(at));
    };
    arm(deadline, false);
    // Shutdown (the server's stopReading, SIGTERM's stopListening): a handshake under way has a second
    // more, not lineTimeout's 30 s.
    cuttable(raw, {
      stopReading: () => {
        const cut = Date.now() + SHUTDOWN_CUT_MS;
        if (!settled && cut < deadline) arm(cut, true);
      },
      underWay: () => (settled ? undefined : 'TLS handshake'),
    });
    try {
      return await Promise.race([this.tls!.handshake(raw), late]);
    } catch (err) {
      const failed = err instanceof TlsHandshakeError ? err : new TlsHandshakeError(messages.tlsFailed(client, describeTlsError(err)), { cause: err });
      // Reported under `client`: where a PROXY header came, the client it named, not the proxy (as limits and handler errors are).
      nameClient(failed, client);
      throw failed;
    } finally {
      settled = true;
      clearTimeout(timer);
    }
  }

  /** The header, null for plain data (required: false), or 'health-check' for a connection closed with no byte; to `done`. */
  private readHeader(
    raw: net.Socket,
    peer: ClientAddress,
    config: { trusted: TrustedPeers; required: boolean },
    deadline: number,
    done: (err: unknown, got?: ProxyInfo | null | 'health-check') => void,
  ): void {
    const trusted = peer.host === undefined || config.trusted.has(peer.host);
    if (!trusted && config.required) return done(new ProxyProtocolError(messages.proxyUntrusted(peer)));
    // Only when a header is optional can bytes that end undecided be plain data worth keeping (holdEnd).
    intake<ProxyInfo | null | 'health-check'>(raw, deadline, !config.required, (bytes, event) => {
      if (event === 'closed' && bytes.length === 0) return { used: 0, value: 'health-check' };
      // An untrusted peer's header (required: false) is refused at its signature: read whole, up to 64 KB of v2
      // TLVs and lineTimeout, it cost the main thread ~140 ms of CPU a connection (hostile run).
      if (!trusted && startsWithSignature(bytes)) throw new ProxyProtocolError(messages.proxyUntrusted(peer));
      let scan;
      try {
        scan = scanProxyHeader(bytes);
      } catch (err) {
        throw new ProxyProtocolError(messages.proxyMalformed(peer, (err as MalformedHeader).message));
      }
      if (scan.kind === 'header') return { used: scan.length, value: scan.info };
      if (scan.kind === 'none' || event !== 'data') {
        // A signature's beginning that stalls or ends is plain data too, when a header is not required
        // (intake puts the bytes back before the end); when one is, the header was cut short or late.
        if (!config.required) return { used: 0, value: null };
        throw new ProxyProtocolError(
          event === 'timeout'
            ? messages.proxyTimeout(peer, this.seconds)
            : event === 'shutdown'
              ? messages.proxyCutAtShutdown(peer, SHUTDOWN_CUT_MS / 1000)
              : event === 'closed'
                ? messages.proxyIncomplete(peer)
                : messages.proxyMissing(peer),
        );
      }
      return undefined;
    }, done);
  }
}

/** How `Preamble.start()` ends: with the error, or with the connection to serve (undefined: a health check). */
export type PreambleDone = (err: unknown, result?: PreambleResult) => void;

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
  /** The client the header named is over maxConnectionsPerClient (start()'s `admit`): no handshake ran, close it. */
  overLimit?: true;
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
  if (e?.code === 'ERR_SSL_HTTP_REQUEST' || e?.code === 'ERR_SSL_WRONG_VERSION_NUMBER') return `the client spoke plain text, not TLS (${e.code}); a load balancer's health check must speak TLS too (HAProxy: check-ssl)`;
  // OpenSSL's words ("peer did not return a certificate") did not say that the server's own options asked for one (new-user run).
  if (e?.code === 'ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE') return `the client sent no certificate, which requestCert with rejectUnauthorized requires (${e.code})`;
  // OpenSSL's reason in words, not its queue entry with source paths (hostile re-check: "unsupported protocol", "no shared cipher")
  const words = typeof e?.message === 'string' ? opensslWords(e.message) : undefined;
  if (words) return `${words}${e.code ? ` (${e.code})` : ''}`;
  return e?.code ? `${e.code}: ${e.message}` : String(e?.message ?? err);
}

/** The decision that waits for a connection's first bytes (left unread) or its end: a TLS client speaks first. */
const firstBytesDecision: Decide<IntakeEvent> = (bytes, event) => ({ used: 0, value: event === 'closed' && bytes.length > 0 ? 'data' : event });

/** `shutdown`: shutdown's cut passed with part of the preamble read (a connection that sent nothing is 'closed' then). */
type IntakeEvent = 'data' | 'closed' | 'timeout' | 'shutdown';
/** A decision on the bytes so far: the value, and how many bytes it used (the rest is put back). */
type Decide<T> = (bytes: Buffer, event: IntakeEvent) => { used: number; value: T } | undefined;

/**
 * Reads a paused socket for the preamble until `decide` decides (it must on 'closed' and 'timeout'), then
 * puts back the bytes it did not use (`unshift`), so the handler reads every byte after them, leaves the
 * socket paused, and calls `done` with the value, or with the error `decide` threw. `decide` and `done` run
 * inside the socket's event that decided. Once Node has emitted 'end' nothing can be put
 * back. With `holdEnd`, the end of the client's bytes (Node's `push(null)`) is held while the intake lasts:
 * bytes that end undecided ('P', '\r\n' with `required: false`) are decided on 'closed', put back, and
 * only then ended, so the handler reads them and then its EOF. Without it (the bytes are worth nothing
 * once they end undecided) the socket is left as Node made it. A reset counts as the end.
 */
function intake<T>(raw: net.Socket, deadline: number, holdEnd: boolean, decide: Decide<T>, done: (err: unknown, value?: T) => void): void {
  new Intake(raw as IntakeSocket, deadline, holdEnd, decide, done);
}

/**
 * One intake's state. Its listeners are shared by every connection and find it on the socket (INTAKE), and
 * its timer gets it as an argument: a connection's preamble makes this object and no closure (PROXY headers
 * come with every connection of a server behind a load balancer).
 */
class Intake<T> implements IntakeSteps {
  private chunks: Buffer[] = [];
  private settled = false;
  private timer: NodeJS.Timeout;
  private readonly born = Date.now();
  /** Shutdown came (stopReading): the timer's end is the shutdown's cut, not lineTimeout. */
  private cut = false;
  /** The socket's own push(), while holdEnd replaces it. */
  private readonly push: IntakeSocket['push'] | undefined;

  constructor(
    private readonly raw: IntakeSocket,
    deadline: number,
    holdEnd: boolean,
    private readonly decide: Decide<T>,
    private readonly done: (err: unknown, value?: T) => void,
  ) {
    if (holdEnd) {
      const push = raw.push;
      this.push = push;
      raw.push = (chunk: unknown, encoding?: BufferEncoding): boolean => {
        if (chunk !== null || this.settled) return push.call(raw, chunk, encoding);
        // The client's end: first the bytes still buffered (read() emits them as 'data', which may decide).
        while (!this.settled && raw.readableLength > 0 && raw.read() !== null);
        this.step('closed');
        return push.call(raw, null);
      };
    }
    this.timer = setTimeout(onIntakeTimeout, untilDeadline(deadline), this);
    this.deadline = deadline;
    cuttable(raw, this); // shutdown shortens the wait
    raw[INTAKE] = this;
    raw.on('data', onIntakeData);
    raw.on('end', onIntakeEnd);
    raw.on('close', onIntakeEnd);
    raw.on('error', onIntakeEnd);
    raw[READ_HERE] = true;
    raw.resume();
  }

  private readonly deadline: number;

  /** When the first byte came (Date.now()); 0 before. */
  private firstAt = 0;

  /** Bytes from the socket (the shared 'data' listener). */
  data(chunk: Buffer): void {
    if (this.firstAt === 0) this.firstAt = Date.now();
    this.chunks.push(chunk);
    this.step('data');
  }

  /**
   * Shutdown (the server's stopReading(), API.md §6): a connection that has sent nothing yet has what is left
   * of its first second (as an rfile's first request), then ends quietly, as a health check does; one part-way
   * through its header has a second more. Either waited out lineTimeout (30 s), which held shutdown as long.
   */
  stopReading(): void {
    if (this.settled) return;
    const now = Date.now();
    const cut = this.chunks.length === 0 ? Math.max(now, this.born + FIRST_REQUEST_GRACE_MS) : now + SHUTDOWN_CUT_MS;
    if (cut >= this.deadline) return;
    this.cut = true;
    clearTimeout(this.timer);
    this.timer = setTimeout(onIntakeTimeout, untilDeadline(cut), this);
  }

  /**
   * shutdownTimeout passed within shutdown's cut (a shutdownTimeout under a second) before a first byte came: the
   * connection ends now as a close (a health check), as after the cut; in workers it was reported as a request
   * still running, with the handler's Fix (hostile re-check). One part-way through its header stays the server's
   * timeout (RequestTimeoutError), not the client's fault: it had the cut's second to finish.
   */
  endShutdownGrace(): boolean {
    if (this.settled || !this.cut || this.chunks.length > 0) return false;
    clearTimeout(this.timer);
    this.timedOut();
    return true;
  }

  /** A PROXY header part-way (preambleUnderWay): bytes have come and not decided yet. */
  underWay(): string | undefined {
    return this.settled || this.chunks.length === 0 ? undefined : 'PROXY header';
  }

  /** The timer: lineTimeout passed, or shutdown's cut, which ends a connection that sent nothing as a close. */
  timedOut(): void {
    this.step(!this.cut ? 'timeout' : this.bytes().length === 0 ? 'closed' : 'shutdown');
  }

  /** Asks `decide` about the bytes so far; once it decides (or throws), ends the intake and calls `done`. */
  step(event: IntakeEvent): void {
    if (this.settled) return;
    let decision;
    try {
      decision = this.decide(this.bytes(), event);
    } catch (err) {
      this.stop();
      return this.done(err);
    }
    if (!decision) return;
    this.stop();
    const rest = this.bytes().subarray(decision.used);
    if (decision.used > 0) countPreambleBytes(this.raw, decision.used);
    if (rest.length > 0 && !this.raw.readableEnded) {
      this.raw.unshift(rest);
      // Not a header after all (required: false): the bytes' line or message began when they came.
      if (decision.used === 0) stampHeldSince(this.raw, this.firstAt);
    }
    this.done(undefined, decision.value);
  }

  private bytes(): Buffer {
    const chunks = this.chunks;
    if (chunks.length === 1) return chunks[0];
    if (chunks.length === 0) return EMPTY;
    this.chunks = [Buffer.concat(chunks)];
    return this.chunks[0];
  }

  private stop(): void {
    const raw = this.raw;
    this.settled = true;
    // Put back as an own property, never deleted: a delete would turn the socket's properties into a
    // slow dictionary for the rest of its life (INTAKE likewise).
    if (this.push) raw.push = this.push;
    clearTimeout(this.timer);
    raw[INTAKE] = undefined;
    raw.pause();
    raw.off('data', onIntakeData);
    raw.off('end', onIntakeEnd);
    raw.off('close', onIntakeEnd);
    raw.off('error', onIntakeEnd);
  }
}

const EMPTY = Buffer.alloc(0);
/** The intake reading a socket, while one does. */
const INTAKE = Symbol('sockserve.intake');
/** What the shared listeners and the timer call on an intake. */
interface IntakeSteps {
  data(chunk: Buffer): void;
  step(event: IntakeEvent): void;
  timedOut(): void;
}
type IntakeSocket = net.Socket & Marked & { [INTAKE]?: IntakeSteps };

function onIntakeData(this: IntakeSocket, chunk: Buffer): void {
  this[INTAKE]?.data(chunk);
}
function onIntakeEnd(this: IntakeSocket): void {
  this[INTAKE]?.step('closed');
}
function onIntakeTimeout(intake: IntakeSteps): void {
  intake.timedOut();
}

/** At shutdown, how long a PROXY header or TLS handshake already under way may still take (milliseconds). */
const SHUTDOWN_CUT_MS = 1000;

/** What shortens a connection's preamble at shutdown (its intake, or its handshake's timer). */
const CUT = Symbol('sockserve.preambleCut');
type Cuttable = net.Socket & { [CUT]?: OtherReader & { underWay?(): string | undefined } };

/** Registers `step` to be cut short by shutdown's stopReading() (through the reader registry) or by cutPreambleOf(). */
function cuttable(raw: net.Socket, step: OtherReader & { underWay(): string | undefined }): void {
  (raw as Cuttable)[CUT] = step;
  registerReader(raw, step);
}

/**
 * SIGTERM's stopListening(), before shutdown() (API.md §6): a connection still in its PROXY header or TLS
 * handshake gets shutdown's cut (the rest of its first second when it has sent nothing, else a second), not
 * lineTimeout, which held the listener's drain as long.
 */
export function cutPreambleOf(raw: net.Socket): void {
  (raw as Cuttable)[CUT]?.stopReading();
}

/**
 * The step of its preamble a connection is part-way through ('PROXY header', 'TLS handshake'), or undefined (none
 * under way, or one that has not begun: no byte yet). What shutdownTimeout or close() gives up then is no request:
 * no hook ran, and the handler's Fix would be wrong (preambleAbandoned).
 */
export function preambleUnderWay(raw: object | undefined): string | undefined {
  return (raw as Cuttable | undefined)?.[CUT]?.underWay?.();
}

/**
 * What the server destroys `raw` with when it gives it up (`when`: edgeMessages.preambleAbandoned's) part-way
 * through its PROXY header or TLS handshake, which the preamble then reports (closedByServer); undefined when no
 * step is under way.
 */
export function preambleAbandonedError(raw: object | undefined, when: number | string): RequestTimeoutError | undefined {
  const step = preambleUnderWay(raw);
  return step === undefined ? undefined : new RequestTimeoutError(messages.preambleAbandoned(step, when));
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
  recordFacts(result.socket, result);
}

/**
 * Marks `connection` with what a preamble learnt of it, for preambleFacts(): also a worker's bridged connection,
 * whose preamble ran in the server's process (a classic handler under ThreadingMixIn read `{}`).
 */
export function recordFacts(connection: object, facts: { proxy?: ProxyInfo; tls?: TlsInfo }): void {
  if (facts.proxy || facts.tls) (connection as Marked)[FACTS] = { proxy: facts.proxy, tls: facts.tls };
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

/** Whether the server itself destroyed `raw` with its reason (a RequestTimeoutError: shutdownTimeout, close()). */
function closedByServer(raw: net.Socket): boolean {
  return (raw.errored as { name?: unknown } | null)?.name === 'RequestTimeoutError';
}

/** The option a Preamble.from() error came from (`'tls'` or `'proxyProtocol.trusted'`), for the server's message. */
export function blamedOption(err: unknown): string | undefined {
  return (err as { [BLAMED]?: string } | null)?.[BLAMED];
}

const BLAMED = Symbol('sockserve.blamedOption');

/** `build()`, its error marked with the option it came from (a bad key was reported as a bad trusted list). */
function blamed<T>(option: string, build: () => T): T {
  try {
    return build();
  } catch (err) {
    if (typeof err === 'object' && err !== null) Object.defineProperty(err, BLAMED, { value: option, configurable: true });
    throw err;
  }
}
