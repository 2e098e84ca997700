import type { EdgeFacts, Trace } from './executors';
import 'reflect-metadata';
import type * as dgram from 'node:dgram';
import * as net from 'node:net';
import { finished } from 'node:stream';
import { isMainThread, threadId } from 'node:worker_threads';
import { endShutdownGraceOf, partialHeldOn, stopReaderOf } from '../../classic/reader-registry';
import { ClientAddress, clientNamedBy, toServerAddress } from '../../transports/address';
import { endGracefully, FLUSH_LIMIT_MS, lingeringClose } from '../../transports/lingering-close';
import { BufferWriter, deliveredBytes, destroyUndelivered, markClosedByServer } from '../../transports/stream-writer';
import { closedForSend } from '../../transports/socket-closed';
import { isResetBeforeAccept, peerAddress, readFirstBytes } from '../../transports/reset-before-accept';
import { disposeAbandoned, Executor, loadExecutor, reportedOn, verifyFailedOn, verifyingOn } from './executors';
import { PortDuplex } from './port-duplex';
import { SharedDatagrams } from './shared-datagrams';
import { ClosingAs, deserializeError, DroppedInWorker, FromWorker, replySent, SerializedError, serializeError, thrownValue, ToWorker, UnreadConnection, WorkerSpec } from './protocol';
import { WorkerEdge } from './worker-edge';
import { WorkerServerFace } from './worker-face';
import { eventsWantedByServer, plainError, RequestEndData, requestObserved, traceRequest } from '../../observability/events';
import { WorkerReporter } from '../../observability/worker-reporter';
import { isHealthCheckOn } from '../../observability/health-check';
import { bytesBefore } from '../../observability/connection-bytes';
import { stampCloseAsked, stampHeldSince, stampLocalCheck } from '../../transports/connection-stamps';
import { afterPollPhase } from '../../transports/event-loop';
import { preambleAbandonedError } from '../../transports/connection-preamble';
import { RequestTimeoutError } from '../../errors/errors';
import { closedWhen, messages } from '../../errors/messages';
import { AcceptWatch } from '../../observability/accept-watch';

/** How a worker talks to the server: a worker thread's parentPort, or a child process's IPC channel. */
export interface Channel {
  post(msg: FromWorker, transfer?: ArrayBuffer[]): void;
  /** Records that the worker took datagram `id` (datagrams-taken.ts), before its handler runs. */
  tookDatagram?(id: number): void;
  /** `handle`: a connection that came with the message (a child process's IPC handle). */
  onMessage(listener: (msg: ToWorker, handle?: unknown) => void): void;
  /** Ends the worker once the messages posted so far have gone. */
  exit(code: number): void;
}

/** How long an owned connection waits for the client to close, at the end (its reply's drain: FLUSH_LIMIT_MS). */
const LINGER_MS = 2000;
/**
 * Milliseconds close() gives a worker's requests to end on their own once their connections are closed,
 * before it abandons the rest with the close() error: the server's own close() waits as long (base-server's
 * ABANDON_GRACE_MS), and the pool waits at most ABANDON_MS (500) for the worker to answer.
 */
const CLOSE_GRACE_MS = 100;

/** One connection or datagram this worker serves: a relayed connection has a duplex, an owned one its socket. */
interface Conn {
  duplex?: PortDuplex;
  socket?: net.Socket;
  /** The TLS socket this worker terminates over a relayed connection's `duplex` (its preamble made it). */
  secure?: net.Socket;
  /** Shutdown told this connection to stop reading (kept for the TLS socket its preamble may still make). */
  stopped?: boolean;
  /** Its request, from run() on (the 'abandon' message ends it from outside). */
  state?: RunState;
  /** The server's limits count it until its socket here closes (the `stream` message's `counted`): see lingersPast. */
  counted?: true;
  /**
   * A relayed connection: the bytes its handler had written when the server's process first said the client
   * was gone (a reset, EPIPE). What the handler wrote after that never reached the client, as a write to a
   * reset socket of its own fails: the health check's count leaves it out.
   */
  outAtHangUp?: number;
}

/** The server's process said `conn`'s client is gone: the bytes its handler had written by then (Conn.outAtHangUp). */
function noteHangUp(conn: Conn): void {
  const stream = conn.secure ?? conn.duplex;
  if (conn.outAtHangUp === undefined && stream) conn.outAtHangUp = deliveredBytes(stream);
}

/** One request's facts from its start to its end (worker-runtime's run, serveRequest, finishRun). */
interface RunState {
  id: number;
  /** The client it came from (the one its PROXY header names is in `ending.client`). */
  client: ClientAddress;
  conn: Conn;
  /** Its bytes in and out; undefined: those of `conn.socket`, the socket this worker owns (bytesOf, socketBytes). */
  bytes: (() => [number, number]) | undefined;
  reply: BufferWriter | undefined;
  preamble: (() => Promise<ClientAddress | 'health-check'>) | undefined;
  replyHere: ((bytes: Buffer) => Promise<void>) | undefined;
  /** Its preamble has passed (or it has none): it is a request, and its bytes count. */
  passed: boolean;
  /** When it started (performance.now()). */
  t0: number;
  /** The pool ended it from outside ('abandon'): its `done` has been sent, finishRun sends none. */
  abandoned?: boolean;
  /**
   * A datagram's reply sent ahead of its `done`, before its request scope's disposal (replyAhead): its size, and,
   * sent from here, its send's outcome (`failed`: undefined once it has left) and whether it has left.
   */
  ahead?: { bytes: number; failed?: Promise<{ error: unknown } | undefined>; left?: boolean };
  /** What `done` carries besides the outcome. */
  ending: { bytes?: [number, number]; end?: RequestEndData; ms?: number; client?: ClientAddress; messages?: number };
}

/** A request's bytes in and out (RunState.bytes). */
function bytesOf(state: RunState): [number, number] {
  return state.bytes ? state.bytes() : socketBytes(state.conn.socket!);
}

function socketBytes(socket: net.Socket): [number, number] {
  return [socket.bytesRead, deliveredBytes(socket)];
}

/**
 * Runs in a worker thread or child process: loads the handler module by path, then serves every
 * connection and datagram the server sends, all at once on this event loop (a Map of connections by
 * id, each running its own lifecycle), as the main thread would. A connection handed over whole is
 * closed here at the end, as Python's child runs shutdown_request; a relayed one is the main thread's
 * to close, once every byte the handler wrote (awaited or not) has been handed over.
 *
 * Every `spec.reportMs` the worker reports its figures and counters (WorkerReporter); the report is
 * also its heartbeat.
 */
export function startWorkerRuntime(spec: WorkerSpec, channel: Channel): void {
  let executor: Executor;
  const conns = new Map<number, Conn>();
  // Shutdowns asked by this worker's requests, waiting for the server's 'shutdown-done'.
  const asks = new Map<number, () => void>();
  let nextAsk = 0;
  const face = new WorkerServerFace((id) => {
    // After its request has ended the server no longer knows it: nothing to shut down on its behalf.
    if (!conns.has(id)) return Promise.resolve();
    const ask = ++nextAsk;
    return new Promise<void>((resolve) => {
      asks.set(ask, resolve);
      channel.post({ t: 'shutdown', id, ask });
    });
  });
  face.handlerName = spec.owner ?? spec.exportName;
  try {
    executor = loadExecutor(spec);
  } catch (err) {
    channel.post({ t: 'load-error', message: err instanceof Error ? err.message : String(err) });
    channel.exit(1); // a child's IPC channel would keep it alive, counted in the pool, for nothing
    return;
  }

  // Observability (worker-report.ts): counters kept here (the messages of @OnMessage, through the face's
  // counters), this worker's figures, and the events the server's process wants, in one report every
  // reportMs (≤ 1 s), never one per request. The report is also the heartbeat (remote-slot.ts).
  const reporter = new WorkerReporter(
    isMainThread ? process.pid : threadId,
    (report) => channel.post({ t: 'report', report }),
    isMainThread ? { pid: process.pid, child: true } : { threadId, child: false },
    spec.reportMs,
  );
  face.counters = reporter.metrics;
  /** The messages total last sent with a request's `done` (countEnding). */
  let messagesSent = 0;

  // Connections handed over unread: their PROXY header and TLS handshake run here (API.md §3).
  const edge = new WorkerEdge(spec.edge);

  /**
   * One request, its lifecycle then its end: `bytes()` gives its bytes in and out. Errors are counted in
   * the server's process, which each one reaches in `done` (so none is lost with a worker); an owned
   * connection's bytes go with `done` too, since they never passed through the server's process, and so
   * does its `request.end` when the server's process wants it (never lost with the worker). `work`
   * may say that a connection handed over unread never reached its lifecycle (DroppedInWorker).
   * `preamble` (a connection handed over unread: its PROXY header and TLS handshake) runs first, outside
   * the request, as it does in the server's process: a failed or empty preamble starts no request and
   * publishes no request.start/end, and the request it leads to is published with the client it names.
   *
   * A chain, not an async function, up to the request's end (finishRun): an idle keep-alive connection
   * waits here for as long as it lives, and a suspended frame (its registers and context) cost about 0.8 KB
   * a connection, 8 MB for 10,000 idle ones (issue 12's target is RSS per idle connection).
   */
  const run = (
    id: number,
    client: ClientAddress,
    work: (trace?: Trace) => Promise<void | DroppedInWorker>,
    conn: Conn,
    bytes: (() => [number, number]) | undefined,
    reply?: BufferWriter,
    preamble?: () => Promise<ClientAddress | 'health-check'>,
    /** A datagram this child read itself: its reply goes out from here (not with `done`), and `done` carries its bytes. */
    replyHere?: (bytes: Buffer) => Promise<void>,
    /** @Verify runs here, in `work` (a connection handed over unread, or accepted here, with no preamble to run). */
    verifies = false,
  ): Promise<void> => {
    conns.set(id, conn);
    reporter.connections = conns.size;
    // A connection with a preamble (PROXY header, TLS handshake) becomes a request, and has bytes to count,
    // only once the preamble has passed, as in the server's own process: a health check or a failed handshake
    // is neither (its bytes, the TLS records of a failed handshake, count nowhere).
    const state: RunState = {
      id, client, conn, bytes, reply, preamble, replyHere,
      passed: preamble === undefined || !edge.runsPreamble,
      t0: performance.now(),
      ending: conn.socket ? { bytes: bytes ? bytes() : socketBytes(conn.socket) } : {},
    };
    conn.state = state;
    if (state.passed) reporter.requests++;
    let served: Promise<void | DroppedInWorker>;
    try {
      served = preamble ? preamble().then((prepared) => serveRequest(state, work, prepared, verifies)) : serveRequest(state, work, client, verifies);
    } catch (err) {
      served = Promise.reject(err);
    }
    return untilServed(served, state);
  };

  /** finishRun once `served` settles. Apart from run(): its reactions keep `state` only, not `work` nor `preamble`. */
  const untilServed = (served: Promise<void | DroppedInWorker>, state: RunState): Promise<void> =>
    served.then((dropped) => finishRun(state, undefined, dropped ?? undefined), (err: unknown) => finishRun(state, thrownValue(err), undefined));

  /** After the preamble (`prepared`: the client it names, or a health check): the request itself; resolves with how it was dropped, if it was. */
  const serveRequest = (state: RunState, work: (trace?: Trace) => Promise<void | DroppedInWorker>, prepared: ClientAddress | 'health-check', verifies: boolean): Promise<void | DroppedInWorker> => {
    if (prepared === 'health-check') return Promise.resolve('health-check');
    const who = prepared;
    // The client a PROXY header named: the server's process knows the proxy's address only, and reports the
    // request's error with this one (its log line named the proxy, hostile run).
    if (state.preamble) state.ending.client = who;
    if (!state.passed) {
      state.passed = true;
      reporter.requests++;
      if (eventsWantedByServer()) channel.post({ t: 'opened', id: state.id, client: who });
    }
    // request.start/end and the tracing channel, published here where the request runs (API.md §14);
    // after the preamble, the executor wraps only the request @Verify let through.
    // Unobserved, a request runs bare: an idle keep-alive connection holds no traced frame, nor its
    // closures, for its life.
    const trace: Trace | undefined = state.preamble || requestObserved()
      ? (lifecycle) => (requestObserved() ? traceRequest(face, who, lifecycle, () => bytesOf(state), (end) => (state.ending.end = end), state.conn.secure ?? state.conn.socket ?? state.conn.duplex) : lifecycle())
      : undefined;
    // A connection handed over unread, or a datagram read here: @Verify runs first, and the trace wraps
    // only what it lets through (a refused client starts no request).
    if (state.preamble || state.replyHere || verifies) return work(trace);
    if (!trace) return work();
    let dropped: void | DroppedInWorker;
    return trace(() => work().then((d) => void (dropped = d))).then(() => dropped);
  };

  /**
   * Puts into `state.ending` what `done` says of the connection besides its outcome. Its bytes: a relayed
   * connection's are counted where it is relayed, unless its preamble ran here (then the server's process
   * relayed TLS records, or a header that failed, and these counts replace its own); `refused`: none. And for
   * a connection this worker accepted itself, whose news the server's process hears late (a child's records
   * are read in batches), the duration measured here, for its connection.close.
   */
  const countEnding = (state: RunState, refused: boolean): void => {
    const { conn, ending } = state;
    // @OnMessage's count, with the request's end when it moved: stats().messages is then current as the request
    // ends, as its bytes are, not up to a report (a second) later (hostile run).
    const messages = reporter.metrics.messages;
    if (messages !== messagesSent) ending.messages = messagesSent = messages;
    // Refused: what @Verify wrote went out (the server's process counts it too); what came in made no request.
    if (conn.socket || state.preamble) ending.bytes = !state.passed ? [0, 0] : refused ? [0, bytesOf(state)[1]] : bytesOf(state);
    if (state.id < 0 && !state.replyHere) ending.ms = performance.now() - state.t0;
  };

  /**
   * The request's end: waits for every write the handler issued, closes an owned connection, and tells the
   * server (`done`) with its bytes, its error (`failed`) or how it was dropped.
   */
  const finishRun = async (state: RunState, failed: unknown, dropped: DroppedInWorker | undefined): Promise<void> => {
    if (state.abandoned) return; // ended from outside: its done went then
    const { id, conn, reply, replyHere, ending } = state;
    const bytes = () => bytesOf(state);
    // A handshake that failed after a PROXY header: the server's process reports it under the client the header named.
    if (!state.passed && failed !== undefined) ending.client ??= clientNamedBy(failed);
    try {
      // The end waits for every write the handler issued, awaited or not, before the connection closes.
      const flushError = conn.socket
        ? await endGracefully(conn.socket, FLUSH_LIMIT_MS).then(() => lingeringClose(conn.socket!, LINGER_MS))
        : conn.duplex && (await flushedThrough(conn.duplex, conn.secure));
      // A client @Verify refused (or failed on) made no request, and counts no byte in, as in the server's process
      // (which never reads it); this worker's reader may have read what it sent while @Verify ran.
      const refused = dropped === 'rejected' || (conn.socket !== undefined && verifyFailedOn(conn.socket));
      countEnding(state, refused);
      if (dropped === 'rejected' && state.passed) reporter.requests--; // refused by @Verify: no request (it counted in workers[].requests)
      const endFailed = failed === undefined && flushError !== undefined;
      if (endFailed) failed = flushError;
      // A plain TCP health check (closed or reset with no byte either way): dropped quietly, as a preamble's.
      // A reset that came while nothing read (an async @Verify pending) destroyed the socket quietly, and the
      // handler then read an end: the stream's own error (`errored`) says it was reset.
      // A PROXY header this worker read, and then the client's end, is one too (HAProxy's check-send-proxy).
      // Asked of the connection whose bytes were counted: over relayed bytes, the TLS socket (conn.secure), not
      // the duplex beneath it (a TLS check behind a header was counted nowhere); its header is in both its
      // bytes() (bytesBefore) and its preamble bytes, as on the raw socket.
      const stream = conn.secure ?? conn.socket ?? conn.duplex;
      const [bytesIn, bytesOut] = bytes();
      // A TLS client that closes right after its handshake, its session tickets unread, is reset: a handler
      // that wrote after the reset (an error reply) made it no health check over a relay only (hostile run).
      const reachedClient = conn.outAtHangUp === undefined ? bytesOut : Math.min(bytesOut, conn.outAtHangUp);
      if (stream && state.passed && dropped === undefined && isHealthCheckOn(stream, bytesIn, reachedClient, stream.readableEnded, failed ?? stream.errored ?? undefined)) {
        failed = undefined;
        dropped = 'health-check';
        reporter.requests--; // counted when it passed its preamble (or at once): a health check is no request
      }
      // Its end failed after the handler had returned (a relayed reply the main thread could not deliver: close()
      // had closed the connection): its request.end, made then, says so too, as its report does (hostile re-check).
      if (endFailed && failed !== undefined && ending.end && ending.end.error === undefined) ending.end = { ...ending.end, error: plainError(failed) };
      // A datagram's reply is owed even when its handler threw, as Python's DatagramRequestHandler.finish()
      // sends it (and the server's own process does): sent first, then the error. Usually it went ahead already,
      // before the request scope's disposal (replyAhead).
      reply?.seal();
      const ahead = state.ahead;
      const owed = ahead === undefined && reply?.written && dropped === undefined ? reply.getValue() : undefined;
      if (replyHere) {
        let sent = 0;
        const sending = ahead?.failed ?? (owed ? replySent(replyHere, owed) : undefined);
        if (sending) {
          const size = ahead?.bytes ?? owed!.length;
          const outcome = await sending;
          if (outcome === undefined) sent = size;
          else {
            failed ??= outcome.error;
            // request.end counted the reply the handler wrote: say that it did not leave, and why
            const end = ending.end;
            if (end) ending.end = { ...end, bytesOut: Number(end.bytesOut ?? 0) - size, error: end.error ?? plainError(outcome.error) };
          }
        }
        const counted = { ...ending, bytes: [bytes()[0], sent] as [number, number] };
        if (failed !== undefined) channel.post({ t: 'done', id, error: serializeError(failed), ...counted });
        else channel.post({ t: 'done', id, ...counted, ...(dropped ? { dropped } : {}) });
        return;
      }
      const replied = owed ? new Uint8Array(owed) : undefined;
      if (failed !== undefined && !replied) throw failed;
      const outcome = failed !== undefined ? { error: serializeError(failed) } : dropped ? { dropped } : {};
      channel.post({ t: 'done', id, reply: replied, ...ending, ...outcome, ...lingersPast(id, conn) }, replied ? [replied.buffer as ArrayBuffer] : undefined);
    } catch (err) {
      // A datagram read here that failed sent no reply: its bytes in only.
      channel.post({ t: 'done', id, error: serializeError(err), ...ending, ...(replyHere ? { bytes: [bytes()[0], 0] as [number, number] } : {}), ...lingersPast(id, conn) });
    } finally {
      conns.delete(id);
      reporter.connections = conns.size;
    }
  };

  /**
   * `done`'s `lingers`, for a connection the server's limits count (`counted`) whose socket here is still open,
   * lingering for its client's FIN (lingeringClose, LINGER_MS at most): its `closed` goes when it closes. The server
   * counted it out at its `done` before, and a client that never closed its side held a descriptor here past the
   * limit (hostile run: 225 to 858 sockets open with maxConnections 4).
   */
  const lingersPast = (id: number, conn: Conn): { lingers?: true } => {
    const socket = conn.socket;
    if (!conn.counted || !socket || socket.destroyed) return {};
    socket.once('close', () => channel.post({ t: 'closed', id }));
    return { lingers: true };
  };

  /**
   * The pool is ending this worker while `state` runs ('abandon'): its `done` goes now, with `error` and the
   * bytes counted here (an owned socket's, which die with the worker otherwise), and its connection closes.
   * The handler may still be running; the worker ends soon after. A request whose own error its @HandleError is
   * reporting (or has reported) goes with that error instead, marked reported: counted once, no hook run again.
   * `why`: givenUpWhen's 'shutdownTimeout', 'closed' or the signal that closed the server; none for a recycled worker.
   */
  const abandon = (state: RunState, given: SerializedError, replied?: SerializedError, why?: string): void => {
    if (state.abandoned) return;
    // A datagram whose reply went ahead: only its request scope's disposal was still running. A connection part-way
    // through its PROXY header or TLS handshake, or awaiting its @Verify, here ran no hook of the handler's: not the
    // handler's Fix (hostile re-checks).
    const { conn, reply } = state;
    // What its hooks ran on (executors' carriers): its @Verify's, its @HandleError's report, its abandoned scope.
    const carriers = [conn.secure, conn.socket, conn.duplex, reply];
    const inPreamble = preambleClosed(conn, why);
    const verifying = why !== undefined && inPreamble === undefined && carriers.some(verifyingOn);
    // A client part-way through a message: its bytes, not the handler, held the request (as stream-servers.ts says it).
    const held = why === 'shutdownTimeout' ? Math.max(0, ...[conn.secure, conn.socket, conn.duplex].map((c) => (c ? partialHeldOn(c) : 0))) : 0;
    const error = state.ahead !== undefined && replied !== undefined
      ? replied
      : inPreamble !== undefined
        ? serializeError(inPreamble)
        : verifying
          ? serializeError(new RequestTimeoutError(messages.verifyAbandoned(why!, conn.socket === undefined && conn.duplex === undefined)))
          : held > 0
            ? serializeError(new RequestTimeoutError(messages.abandonedMidMessage(spec.shutdownTimeout ?? 0, held, isMainThread ? 'forking' : 'threading')))
            : given;
    state.abandoned = true;
    const { id, ending, replyHere } = state;
    // An owned socket is closed first, so that its bytes out are what the kernel took, not all the handler wrote
    // (bytesOut counted every byte written to a client that stopped reading, up to megabytes it never got)
    if (conn.socket) destroyUndelivered(conn.socket);
    countEnding(state, false);
    // Its error as its own @HandleError reports it, on whatever its hooks ran on.
    let reported: unknown;
    for (const carrier of carriers) {
      reported = reportedOn(carrier);
      if (reported !== undefined) break;
    }
    // A datagram read here: its bytes in, and no reply (none goes out later: finishRun sends nothing for it),
    // unless it went ahead of the request scope's disposal and has left.
    const bytes = replyHere ? { bytes: [bytesOf(state)[0], state.ahead?.left ? state.ahead.bytes : 0] as [number, number] } : {};
    channel.post({ t: 'done', id, error: reported === undefined ? error : serializeError(reported), ...ending, ...bytes });
    conns.delete(id);
    reporter.connections = conns.size;
    closeConn(conn, undefined, deserializeError(error));
    // Its @HandleError, still reporting, may fail after this `done`: its failure is reported then (serial and
    // @Concurrent servers wait for that hook and log its failure; here it was lost).
    for (const carrier of carriers) disposeAbandoned(carrier, (hookError) => hookFailed(state, hookError));
  };

  /**
   * A datagram's reply, complete, goes now, ahead of its `done`, while the worker disposes the request's scope
   * (Executor.datagram's replyMade), as the server's own process sends it: from here for a datagram read here,
   * else by the server ('reply'). finishRun then sends none, and waits for this one's outcome.
   */
  const replyAhead = (state: RunState | undefined): void => {
    if (state === undefined || state.abandoned || state.ahead !== undefined || !state.reply) return;
    const reply = state.reply;
    reply.seal();
    if (!reply.written) return;
    const owed = reply.getValue();
    if (state.replyHere) {
      const ahead: NonNullable<RunState['ahead']> = { bytes: owed.length };
      ahead.failed = replySent(state.replyHere, owed).then((outcome) => {
        if (outcome !== undefined) return outcome;
        ahead.left = true;
        // Told now: a death before `done` would count no reply, and say it was lost (hostile re-check).
        if (!state.abandoned) channel.post({ t: 'replied', id: state.id, bytes: owed.length });
        return undefined;
      });
      state.ahead = ahead;
      return;
    }
    const bytes = new Uint8Array(owed);
    channel.post({ t: 'reply', id: state.id, reply: bytes }, [bytes.buffer as ArrayBuffer]);
    state.ahead = { bytes: owed.length };
  };

  const hookFailed = (state: RunState, hookError: unknown): void =>
    channel.post({ t: 'hook-failed', error: serializeError(hookError), client: state.ending.client ?? state.client });

  /** A datagram's reply once close() has come (the 'abandon' of close()): not sent, as from a closed socket. */
  const refuseReply = (): Promise<void> => Promise.reject(closedForSend(spec.owner ?? spec.exportName));

  /**
   * `reason`: what the raw connection is destroyed with (a preamble under way then ends with it: preambleClosed).
   * `closedWith`: what a write its handler makes afterwards fails with (markClosedByServer: shutdownTimeout's or
   * close()'s error, as in the server's own process, not the client's EPIPE: hostile run and re-check).
   */
  const closeConn = (conn: Conn, reason?: Error, closedWith?: Error): void => {
    if (closedWith) for (const stream of [conn.secure, conn.socket, conn.duplex]) if (stream) markClosedByServer(stream, closedWith);
    conn.secure?.destroy();
    if (conn.socket) destroyUndelivered(conn.socket, reason);
    conn.duplex?.destroy(reason);
  };

  /**
   * The server closes a connection (close(), a second signal: `closing` says who) while its client was part-way
   * through a message: the error that says so, else undefined. The held bytes were parsed as if the client had ended
   * there (a FramingError blaming it, relayed) or dropped unreported, as in the server's own process (StreamServer.closeMidMessage).
   */
  const closedMidMessage = (conn: Conn, closing: ClosingAs | undefined): RequestTimeoutError | undefined => {
    if (closing === undefined) return undefined;
    const held = Math.max(0, ...[conn.secure, conn.socket, conn.duplex].map((c) => (c ? partialHeldOn(c) : 0)));
    return held > 0 ? new RequestTimeoutError(messages.closedMidMessage(closing.owner, closing.signal, held)) : undefined;
  };

  /** Closes `conn` with `cut` (closedMidMessage), through whatever reads it: a TLS socket too, which closeConn ends quietly. */
  const closeCut = (conn: Conn, cut: Error): void => {
    conn.secure?.destroy(cut);
    closeConn(conn, cut, cut);
  };

  /**
   * The server closes a connection still part-way through its PROXY header or TLS handshake here: destroyed with
   * edgeMessages.preambleAbandoned, which the preamble reports (closedByServer), not as a header the client cut
   * short or a handshake reset (ECONNRESET), which blamed the client (hostile re-check).
   */
  const preambleClosed = (conn: Conn, when: string | undefined): Error | undefined =>
    when !== undefined && !conn.state?.passed ? preambleAbandonedError(conn.socket ?? conn.duplex, when) : undefined;

  /** Where an owned connection is made ready before its lifecycle (the TLS and PROXY preamble goes here). */
  const prepareOwned = (socket: net.Socket): net.Socket => {
    socket.on('error', () => undefined); // a reset surfaces through rfile/wfile
    // Half-open, as the server's own sockets: a client that shuts its side down still gets its reply.
    socket.allowHalfOpen = true;
    return socket;
  };

  /**
   * A connection handed over unread: its preamble (PROXY header, TLS handshake), then @Verify and the
   * lifecycle, all here. `raw` is the socket this worker owns, or the duplex of the bytes the main thread
   * relays (a thread that cannot own the socket): the preamble reads, puts back and pauses as on a socket,
   * and TLS runs over any Duplex (Node wraps it). `secured` keeps the connection the preamble made.
   */
  const serveUnread = (id: number, client: ClientAddress, raw: net.Socket, unread: UnreadConnection, conn: Conn, secured: (socket: net.Socket) => void) => {
    let ready: Awaited<ReturnType<WorkerEdge['open']>>;
    const preamble = async (): Promise<ClientAddress | 'health-check'> => {
      ready = await edge.open(raw, client, unread);
      if (!ready) return 'health-check';
      secured(ready.socket);
      if (conn.stopped) stopReaderOf(ready.socket); // shutdown began during the handshake
      return ready.clientAddress;
    };
    // The bytes of the connection as its handler sees it, as in the server's own process: a TLS socket's
    // are the application's, not the records on the wire.
    // A PROXY header read before a TLS handshake counts too (bytesBefore), as on a plain connection.
    const counted = () => (ready ? ready.socket : raw);
    void run(id, client, (trace) => executor.stream(ready!.socket, ready!.clientAddress, face.forRequest(id), { tls: ready!.tls, proxy: ready!.proxy }, true, trace),
      conn, () => [counted().bytesRead + bytesBefore(counted()), deliveredBytes(counted())], undefined, preamble);
  };

  const startStream = (id: number, client: ClientAddress, socket: net.Socket | undefined, facts?: EdgeFacts, unread?: UnreadConnection, heldSince?: number, closeAsked?: boolean, counted?: true) => {
    // The server's preamble read a PROXY v2 LOCAL header: the balancer's health check (health-check.ts).
    const local = facts?.proxy?.command === 'LOCAL';
    if (socket) {
      const owned = prepareOwned(socket);
      if (local) stampLocalCheck(owned);
      if (heldSince !== undefined) stampHeldSince(owned, heldSince);
      if (closeAsked) stampCloseAsked(owned);
      const conn: Conn = counted ? { socket: owned, counted } : { socket: owned };
      // Unread, with no PROXY header nor TLS to run (a connection this worker accepted): @Verify, then the
      // lifecycle, without the preamble's closures, which an idle connection would keep for its life.
      if (unread && !edge.runsPreamble) {
        void run(id, client, (trace) => executor.stream(owned, client, face.forRequest(id), undefined, true, trace), conn, undefined, undefined, undefined, undefined, true);
        return;
      }
      // The TLS socket, once made, is the one to end and close.
      if (unread) return serveUnread(id, client, owned, unread, conn, (ready) => (conn.socket = ready));
      void run(id, client, () => executor.stream(owned, client, face.forRequest(id), facts), conn, undefined);
      return;
    }
    const duplex = new PortDuplex(id, channel.post);
    if (local) stampLocalCheck(duplex);
    if (heldSince !== undefined) stampHeldSince(duplex, heldSince); // the server's preamble put bytes back: their line began then
    if (closeAsked) stampCloseAsked(duplex);
    if (unread && edge.terminatesTls) duplex.holdReadsWhileWriting();
    const conn: Conn = { duplex };
    // A TLS socket over the duplex is ended before the duplex is flushed (flushedThrough).
    if (unread) {
      return serveUnread(id, client, duplex as unknown as net.Socket, unread, conn, (ready) => {
        if (ready !== (duplex as unknown)) conn.secure = ready;
      });
    }
    void run(id, client, () => executor.stream(duplex, client, face.forRequest(id), facts), conn, () => [duplex.bytesRead, duplex.bytesWritten]);
  };

  // Connections this worker accepts itself (API.md §3): from a shared listening socket or its own reusePort
  // listener. Numbered downwards from -1, so they never meet the ids the server gives.
  let listener: net.Server | undefined;
  let draining = false;
  // A child's accept failures for lack of descriptors (its own table), counted and logged by the server.
  // Threads share the server's process and its table: the server's own watch sees theirs.
  const acceptWatch = isMainThread
    ? new AcceptWatch((error, first) => channel.post({ t: 'accept-error', error: serializeError(error), first }), () => undefined)
    : undefined;
  let nextOwnId = 0;
  // maxConnectionsPerChild, counted here, where every connection and datagram this worker takes is seen at
  // once: the server hears of those a child accepts only when it reads its bookkeeping (every 20 ms at best),
  // and a child that accepted until told to stop took dozens past its count. `limit` comes with `listen`,
  // and only a listener on a shared socket obeys it (`sharedQueue`): closing it leaves the connections the
  // kernel queued there to the other processes that hold the socket (the server's own copy keeps it
  // listening), whereas closing a thread's own reusePort listener would reset those queued on it.
  let taken = 0;
  let limit = Infinity;
  let sharedQueue = false;
  /** One more connection or datagram taken: the one that makes `limit` closes the listener now, before libuv's loop accepts another. */
  const took = () => {
    if (++taken >= limit) reachedLimit();
    else if (taken === nearly(limit) && sharedQueue && (listener || datagrams)) channel.post({ t: 'nearly-full' });
  };
  const reachedLimit = () => {
    if (!sharedQueue || (!listener && !datagrams)) return;
    stopListening()?.close(() => undefined);
    channel.post({ t: 'full' });
  };
  /**
   * Where the server starts this worker's successor, so that it listens by the time this one stops (a
   * process takes 100–200 ms to start on a busy machine, and the rate of connections is unknown here): at
   * half the count (1 of 2, 100 of 200).
   */
  const nearly = (count: number) => count - Math.max(1, Math.floor(count / 2));
  /**
   * Whether this worker's listener is a TCP one (else Unix), from its `listen` (an address to listen on, or the
   * server's address: `[host, port]` or a path); undefined if it said neither, and each socket tells then.
   */
  let acceptsTcp: boolean | undefined;
  const acceptHere = (socket: net.Socket) => {
    const id = --nextOwnId;
    if (!(acceptsTcp ?? socket.localFamily !== undefined)) return serveAccepted(id, { path: '' }, socket);
    // A client that reset before it was accepted, as the server's process takes it (reset-before-accept.ts): its
    // address gone (it was read as a Unix client's, `{ path: '' }`), and with no byte a health check that ran
    // @Verify (new-user run). A preamble run here (PROXY, TLS) makes it a health check itself, as there.
    const client = peerAddress(socket);
    if (!isResetBeforeAccept(socket) || edge.runsPreamble) return serveAccepted(id, client, socket);
    // Counted now, as accepted: libuv accepts every queued connection in one go, and a count that waited for the
    // first read let the child take all of them past maxConnectionsPerChild (4 with a count of 3).
    channel.post({ t: 'accepted', id, client, unopened: true });
    took();
    readFirstBytes(socket, (gotBytes) => {
      if (gotBytes) {
        // Opened now, as the server's process opens such a connection once its bytes are read (acceptReset).
        if (eventsWantedByServer()) channel.post({ t: 'opened', id, client });
        return startStream(id, client, socket, undefined, { draining });
      }
      socket.destroy();
      channel.post({ t: 'done', id, dropped: 'health-check', bytes: [0, 0], ms: 0 });
    });
  };
  const serveAccepted = (id: number, client: ClientAddress, socket: net.Socket) => {
    channel.post({ t: 'accepted', id, client });
    took();
    startStream(id, client, socket, undefined, { draining });
  };
  // Datagrams this child reads itself from the server's UDP socket (shared-datagrams.ts).
  let datagrams: SharedDatagrams | undefined;
  const readDatagrams = (socket: dgram.Socket, maxPacketSize: number, maxHeld?: number) => {
    const reader: SharedDatagrams = new SharedDatagrams(socket, maxPacketSize, spec.owner ?? spec.exportName, (data, truncated, client, replyHere) => {
      const id = --nextOwnId;
      channel.post({ t: 'accepted', id, client, datagram: true, bytes: data.length });
      took();
      const reply = new BufferWriter();
      const conn: Conn = {};
      void run(id, client, (trace) => executor.datagram(data, truncated, client, reply, face.forRequest(id), true, trace, () => replyAhead(conn.state)), conn, () => [data.length, reply.length], reply, undefined, replyHere)
        .finally(() => reader.done());
    }, maxHeld);
    datagrams = reader;
    channel.post({ t: 'listening' });
  };
  const listen = (msg: ToWorker & { t: 'listen' }, handle: unknown) => {
    draining = msg.draining;
    if (msg.server !== undefined) face.serverAddress = toServerAddress(msg.server);
    acceptsTcp = msg.address !== undefined ? true : msg.server !== undefined ? typeof msg.server !== 'string' : acceptsTcp;
    if (!msg.prime && msg.limit !== undefined) limit = msg.limit;
    if (listener || datagrams) return channel.post({ t: 'listening' });
    if (!msg.prime && taken >= limit && handle && !msg.datagrams) {
      // Already at its count (connections handed over, a listener closed and asked back): it takes no more.
      channel.post({ t: 'listening' });
      return channel.post({ t: 'full' });
    }
    if (msg.datagrams) {
      if (!handle) return channel.post({ t: 'listening', error: serializeError(new Error('listen: the UDP socket did not come along')) });
      // Not sharedQueue: a UDP child does not stop its own reads at its count. libuv reads datagrams in
      // batches, and those read after the stop were dropped, counted nowhere (hostile re-check: 55 replies of
      // 100 with maxConnectionsPerChild 5); the server retires it as it hears of them (its count may be passed).
      const maxHeld = msg.datagrams.maxHeld;
      return readDatagrams(handle as dgram.Socket, msg.datagrams.maxPacketSize, Number.isSafeInteger(maxHeld) && maxHeld! > 0 ? maxHeld : undefined);
    }
    // Not pauseOnConnect: the connection is read here, as one handed over (a TLS handshake needs its socket reading).
    const server = net.createServer({ allowHalfOpen: true }, acceptHere);
    server.once('error', (err) => channel.post({ t: 'listening', error: serializeError(err) }));
    const target = handle ?? (msg.address && { ...msg.address, reusePort: true });
    if (!target) return channel.post({ t: 'listening', error: serializeError(new Error('listen: neither a handle nor an address came')) });
    server.listen(target as net.ListenOptions, () => {
      server.removeAllListeners('error');
      server.on('error', (err: NodeJS.ErrnoException) => acceptWatch?.onError(err)); // EMFILE on accept: libuv keeps the socket
      if (msg.prime) server.close(); // the shared socket stays listening: the server's process holds it too
      else {
        listener = server;
        sharedQueue = handle !== undefined;
        acceptWatch?.start();
      }
      channel.post({ t: 'listening' });
    });
  };
  /** Takes no more connections from here on: returns the listener to close, if there is one. */
  const stopListening = (): net.Server | undefined => {
    datagrams?.stop();
    datagrams = undefined;
    const server = listener;
    listener = undefined;
    acceptWatch?.stop();
    return server;
  };
  const unlisten = (stop: boolean) => {
    const server = stopListening();
    const done = () => {
      if (stop) {
        for (const conn of conns.values()) {
          conn.stopped = true;
          const stream = conn.secure ?? conn.socket ?? conn.duplex;
          if (stream) stopReaderOf(stream);
        }
      }
      channel.post({ t: 'unlistened' });
    };
    if (!server) return done();
    // After a poll phase, which accepts every connection the kernel holds for this listener.
    afterPollPhase(() => server.close(() => undefined) && done());
  };

  channel.onMessage(function receive(msg: ToWorker | { t: 'batch'; msgs: ToWorker[] }, handle?: unknown): void {
    switch (msg.t) {
      case 'batch':
        for (const one of msg.msgs) receive(one);
        return;
      case 'listen':
        return listen(msg, handle);
      case 'unlisten':
        return unlisten(msg.stop);
      case 'exit':
        return channel.exit(0);
      case 'draining':
        draining = true;
        return;
      case 'stream': {
        if (msg.server !== undefined) face.serverAddress = toServerAddress(msg.server);
        const socket = (handle ?? msg.socket) as net.Socket | undefined;
        // A descriptor that came by the channel (a child): the server's process keeps its copy until told, so
        // that a connection handed to a child that died before it got there is not lost with it.
        if (handle) channel.post({ t: 'took', id: msg.id });
        took(); // as the server counted it
        if (msg.owned && !socket) {
          // The descriptor did not come along (the connection was closed on its way): nothing to serve.
          channel.post({ t: 'done', id: msg.id, error: serializeError(new Error('the connection reached the worker without its descriptor')) });
          return;
        }
        const facts = msg.tls !== undefined || msg.proxy !== undefined ? { tls: msg.tls, proxy: msg.proxy } : undefined;
        return startStream(msg.id, msg.client, msg.owned ? socket : undefined, facts, msg.unread, msg.heldSince, msg.closeAsked, msg.counted);
      }
      case 'dgram': {
        channel.tookDatagram?.(msg.id); // before its handler runs, which may block this loop for good
        if (msg.server !== undefined) face.serverAddress = toServerAddress(msg.server);
        const data = Buffer.from(msg.data.buffer, msg.data.byteOffset, msg.data.byteLength);
        const reply = new BufferWriter();
        took();
        const conn: Conn = {};
        void run(msg.id, msg.client, () => executor.datagram(data, msg.truncated, msg.client, reply, face.forRequest(msg.id), undefined, undefined, () => replyAhead(conn.state)), conn, () => [data.length, reply.length], reply);
        return;
      }
      case 'events':
        reporter.setWanted(msg.wanted);
        return;
      case 'report-now':
        reporter.send();
        return;
      case 'dispose':
        executor.dispose(msg.withinMs).then(
          () => channel.post({ t: 'disposed' }),
          (err: unknown) => channel.post({ t: 'disposed', error: serializeError(err) }),
        );
        return;
      case 'abandon': {
        // Datagrams too: the pool waited for their `done` (ABANDON_MS) before it ended the worker otherwise.
        const running = () => [...conns.values()].filter((conn) => conn.state !== undefined);
        if (!msg.closeFirst) {
          for (const conn of running()) {
            // Still waiting out shutdown's first-request grace (shutdownTimeout under a second): an idle
            // connection, whose reads now see EOF as after the grace, not a request still running.
            const stream = conn.secure ?? conn.socket ?? conn.duplex;
            if (stream && endShutdownGraceOf(stream)) continue;
            abandon(conn.state!, msg.error, msg.replied, msg.why);
          }
          return;
        }
        // close(): the connections close, and each request ends as it would on the server's own close();
        // those still running after the grace (a handler awaiting something else) are abandoned with the error.
        // A datagram read here sends no reply from now on, as the server's closed socket sends none: its handler
        // back within the grace had its reply sent from this child's copy of the socket, after close(), and
        // counted as served (serial, @Concurrent and @Threading report it unsent).
        // A write the handler makes in the grace fails with the close's error (closeConn's closedWith).
        const closedWith = deserializeError(msg.error);
        const why = msg.closing ? closedWhen(msg.closing) : msg.why;
        for (const conn of running()) {
          const cut = closedMidMessage(conn, msg.closing);
          if (cut) closeCut(conn, cut);
          else closeConn(conn, preambleClosed(conn, why), closedWith);
          if (conn.state!.replyHere) conn.state!.replyHere = refuseReply;
        }
        setTimeout(() => {
          for (const conn of running()) abandon(conn.state!, msg.error, msg.replied, why);
        }, CLOSE_GRACE_MS);
        return;
      }
      case 'secure-context':
        edge.setSecureContext(msg.options);
        channel.post({ t: 'secure-context-set' });
        return;
      case 'shutdown-done': {
        asks.get(msg.ask)?.();
        asks.delete(msg.ask);
        return;
      }
      default: {
        const conn = conns.get(msg.id);
        if (!conn) return; // a late message for a finished request
        if (msg.t === 'stop' && msg.preamble) {
          // serverClose() by itself: as the server's own process closes the connections still in their preamble
          // (stream-listener's closeListening), not waiting lineTimeout (30 s) for a header that may never come.
          if (!conn.state?.passed) closeConn(conn, preambleAbandonedError(conn.socket ?? conn.duplex, 'serverClose()'));
        } else if (msg.t === 'stop') {
          conn.stopped = true;
          const stream = conn.secure ?? conn.socket ?? conn.duplex;
          if (stream) stopReaderOf(stream);
        } else if (msg.t === 'eof') {
          // The server closed it (close(), a second signal) part-way through a message, or through its PROXY header or TLS
          // handshake read here from relayed bytes: said so, not as the client's cut (a ProxyProtocolError: hostile re-check).
          const cut = closedMidMessage(conn, msg.closing) ?? (msg.closing ? preambleClosed(conn, closedWhen(msg.closing)) : undefined);
          if (cut) return closeCut(conn, cut);
          if (msg.error) noteHangUp(conn);
          conn.duplex?.eof(msg.error);
        } else if (msg.t === 'data') conn.duplex?.feed(msg.chunk);
        else if (msg.t === 'written') {
          conn.duplex?.written(msg.seq, msg.error); // a failed write's bytes leave its count first
          if (msg.error) noteHangUp(conn);
        }
      }
    }
  });
  // The first report goes before 'ready', so the worker's row in stats() has its figures (heapUsedBytes)
  // from the moment bootstrap() resolves, not zeros until the first interval.
  reporter.send();
  channel.post({ t: 'ready' });
  reporter.start();
}

/**
 * A relayed connection's end: the TLS socket over it, if any, is ended first (its close_notify and every
 * record still queued go into the duplex, bounded by FLUSH_LIMIT_MS), then the duplex is flushed.
 */
async function flushedThrough(duplex: PortDuplex, secure: net.Socket | undefined): Promise<Error | undefined> {
  if (!secure) return flushed(duplex);
  await endGracefully(secure, FLUSH_LIMIT_MS);
  const failed = await flushed(duplex);
  secure.destroy();
  return failed;
}

/**
 * Resolves once every write queued on a relayed connection has been handed to the kernel by the main
 * thread (or has failed: then with that error), bounded by FLUSH_LIMIT_MS. Ending the duplex sends the
 * FIN after them, as closing the socket in the main thread would.
 */
function flushed(duplex: PortDuplex): Promise<Error | undefined> {
  if (duplex.destroyed) return Promise.resolve(undefined);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(undefined), FLUSH_LIMIT_MS);
    finished(duplex, { readable: false }, (err) => {
      clearTimeout(timer);
      resolve(err && (err as NodeJS.ErrnoException).code !== 'ERR_STREAM_PREMATURE_CLOSE' ? err : undefined);
    });
    if (!duplex.writableEnded) duplex.end();
  });
}

