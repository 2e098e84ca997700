/** Message builders for the transport and classic-server errors. Each names the class, the member and one fix. */
import { constants as osConstants } from 'node:os';
import { ClientAddress, formatAddress } from '../transports/address';
import { describeThrown, errorFields } from './thrown';

/**
 * When the server gave something up, for the abandon messages (verifyAbandoned, edgeMessages.preambleAbandoned):
 * `when` shutdownTimeout's seconds, 'shutdownTimeout' (a worker, which does not know them), 'closed' (a worker's
 * server closed: by close(), or a second signal), the signal ('SIGTERM') whose repeat during handleSignals' drain
 * closed the server (isSignalName), or the close() call that gave it up.
 */
export function givenUpWhen(when: number | string): string {
  return typeof when === 'number'
    ? `${when} s after shutdown began (shutdownTimeout)`
    : when === 'shutdownTimeout'
      ? 'when shutdownTimeout passed after shutdown began'
      : when === 'closed'
        ? 'when the server was closed'
        : isSignalName(when)
          ? `when another signal (${when}) came during the drain (handleSignals)`
          : `when ${when} was called`;
}

/**
 * givenUpWhen's `when` for a server that is closing, from who closes it (BaseServer.closingAs, sent to workers): the
 * signal whose repeat during the drain closed it, else its close() call (`owner`.close()).
 */
export function closedWhen(closing: { owner: string; signal?: string }): string {
  return closing.signal ?? `${closing.owner}.close()`;
}

/** Whether givenUpWhen's `when` is a signal's name (the server closed by a second signal), not a call. */
export function isSignalName(when: number | string): when is string {
  return typeof when === 'string' && /^SIG[A-Z0-9]+$/.test(when);
}

/** The exit code a signal's close gives the process, as a shell reports it: 128 + the signal's number (130 for SIGINT). */
function exitCodeOf(signal: string): string {
  const number = (osConstants.signals as Record<string, number | undefined>)[signal];
  return number === undefined ? "code 128 + the signal's number" : `code ${128 + number}`;
}

/** A second signal's Fix, for the messages of what it ended: it may have been meant. */
export const SECOND_SIGNAL_FIX = 'nothing, if that was meant (another Ctrl-C); otherwise send one signal';

/** A routine error as one line: `<name> from <client>: <message>`, its lines joined, and its code when the message lacks it. */
function routineLine(client: ClientAddress | undefined, error: unknown): string {
  const { name, message, code } = errorFields(error);
  const text = `${name} from ${formatAddress(client)}: ${opensslReason(code, message) ?? message.replace(/\s*\n\s*/g, ' ')}`;
  return code !== undefined && !text.includes(code) ? `${text} (${code})` : text;
}

/**
 * An OpenSSL error after the handshake (a failed one is a TlsHandshakeError) in words: Node's message is
 * OpenSSL's queue entry, `C0…:error:0A000119:SSL routines:ssl3_get_record:decryption failed or bad record
 * mac:../deps/openssl/…/ssl3_record.c:622:` (hostile run: "raw OpenSSL text"); its reason is what it says.
 */
function opensslReason(code: string | undefined, message: string): string | undefined {
  const reason = code?.startsWith('ERR_SSL_') ? opensslWords(message) : undefined;
  return reason ? `TLS failed after the handshake: ${reason}; the connection was closed` : undefined;
}

/**
 * The reason in an OpenSSL error's message (`…:error:0A000102:SSL routines:<function>:unsupported protocol:<file>:<line>:`),
 * or undefined when the message is not one.
 */
export function opensslWords(message: string): string | undefined {
  return /error:[0-9A-Fa-f]+:[^:]*:[^:]*:([^:]+)/.exec(message)?.[1]?.trim() || undefined;
}

/** Every line after the first indented two spaces: a reason or a stack under the line that names it. */
const indent = (text: string): string => text.split('\n').join('\n  ');

export const messages = {
  datagramSendTwice: (owner: string, client: string) =>
    `${owner || 'the handler'}: a datagram handler in a thread or child pool answers ${client} with one datagram, and this is a second send(): ` +
    `it would have been merged into the first. Fix: send the reply once (collect it in wfile), or serve without ThreadingMixIn/ForkingMixIn.`,
  badPollInterval: (owner: string, value: unknown) =>
    `${owner}.serveForever(${String(value)}): pollInterval is seconds between the loop's turns, a number from 0 up, or null ` +
    `(Python's None: wake for requests only). Fix: pass such a number, or leave it out for 0.5.`,
  badTimeout: (owner: string, value: unknown) =>
    `${owner}.handleRequest(): timeout ${typeof value === 'string' ? JSON.stringify(value) : String(value)} is not seconds to wait for a request; ` +
    `Python's select() refuses it too. Fix: set timeout to a number of seconds, or null (Python's None) to wait as long as it takes.`,
  /** handleSignals: the same signal again within `ms` of the last, taken for its copy to the process group. */
  signalCopyIgnored: (owner: string, signal: string, ms: number) =>
    `${owner}: ${signal} again within ${ms} ms: taken for the copy sent to the process group (GNU timeout, systemd) and ignored; ` +
    `send it again after that to skip drainDelay or close now.`,
  drainDelaySkipped: (owner: string, signal: string, first?: string) =>
    `${owner}: ${signal} ${first === undefined || first === signal ? 'again' : `after ${first}`}: the rest of drainDelay is skipped, the listening socket closes now and the connections drain.`,
  maxConnectionsTwice: (owner: string, concurrent: number, limits: number) =>
    `${owner}: @Concurrent({ maxConnections: ${concurrent} }) and limits.maxConnections ${limits} disagree. ` +
    `Fix: give the bound once: @Concurrent's is a shorthand for the transport's limits.maxConnections.`,
  alreadyBound: (owner: string, address: string) =>
    `${owner}: serverBind() on a server already bound to ${address} (Python's second bind() fails with EINVAL). ` +
    `Fix: bind once: the constructor binds unless given { bindAndActivate: false } (or Python's positional false), then call serverBind() and serverActivate() yourself.`,
  datagramSendElsewhere: (owner: string, to: string, client: string) =>
    `${owner || 'the handler'}: a datagram handler in a thread or child pool can only answer its own sender (${client}), not ${to}: ` +
    `the reply goes back with the datagram's end. Fix: serve it without ThreadingMixIn/ForkingMixIn (the UDP server itself sends to any address), or reply to the sender.`,
  modeOnAbstract: (owner: string, path: string) =>
    `${owner}: mode is set, but ${JSON.stringify(path)} is a name in Linux's abstract namespace: no file is made, so ` +
    `there are no permission bits, and any process of the network namespace may connect. Fix: use a file path ` +
    `(its directory's and file's permissions apply), or leave mode out and check clients in @Verify.`,
  bindFailed: (owner: string, address: string, code: string, fix: string) =>
    `${owner}: cannot bind ${address} (${code}). Fix: ${fix}.`,
  addressInUse: (owner: string, address: string) =>
    `${owner}: address ${address} is already in use. Fix: stop the server that holds it (in this process or ` +
    `another), or pick another address (port 0 lets the OS choose).`,
  lineTooLong: (limit: number) =>
    `rfile.readline(): the line is longer than ${limit} bytes, the server's line limit. Fix: raise the limit ` +
    `(limits.maxLineLength; the classic servers' lineLimit), or read long lines in parts with readline(limit), read() or read1().`,
  /**
   * `setting`: the timeout that bounded the write (the server's requestTimeout, or a classic handler's own `timeout`);
   * `unsent`: the bytes that never left, as unsentText() words them.
   */
  writeTimeout: (seconds: number, unsent: string, setting = 'requestTimeout') =>
    `wfile: the client took no byte of the reply for ${seconds} s (${setting}; ${unsent}): it is not ` +
    `reading, and the connection was closed. Fix: raise ${setting}, or make the client read its replies.`,
  /** `setting`: the timeout that bounded the read (the server's requestTimeout, or a classic handler's own `timeout`). */
  requestTimeout: (seconds: number, setting = 'requestTimeout', replied = false) =>
    `rfile: no data arrived for ${seconds} s (${setting}). Fix: raise ${setting}, ` +
    `or make the client send sooner` +
    (replied ? `; a client that does not read the replies sent to it can stall its own sends too (its TCP stack stops), so make it read them.` : '.'),
  abandoned: (seconds: number, datagram = false) =>
    datagram
      ? `the datagram's handler was still running ${seconds} s after shutdown began (shutdownTimeout), so it was ` +
        `abandoned and its reply is not sent. Fix: make the handler return (bound what it awaits with a timeout), ` +
        `or raise shutdownTimeout.`
      : `the request was still running ${seconds} s after shutdown began (shutdownTimeout), so its connection was ` +
        `closed and the handler abandoned. Fix: make the handler return when its reads end (they see EOF at ` +
        `shutdown), or raise shutdownTimeout.`,
  /** shutdownTimeout ended a request whose client was part-way through a message (reader-registry's partialHeldOn). */
  abandonedMidMessage: (seconds: number, bytes: number, mode?: string) =>
    `the client was still sending a message ${seconds} s after shutdown began (shutdownTimeout): ${bytes} byte${bytes === 1 ? '' : 's'} of it ` +
    `had come, not its end (a line's newline, the rest of a frame), so ${mode ? `the ${mode} worker was ended and ` : ''}its connection was closed. ` +
    `A message begun before shutdown is read whole, within limits.lineTimeout. Fix: lower limits.lineTimeout (a client that trickles), or raise shutdownTimeout.`,
  /**
   * close() (or another signal during handleSignals' drain: `signal`) closed a connection whose client was part-way
   * through a message (reader-registry's partialHeldOn): its bytes, not the handler, were what ran (new-user run: the
   * cut message was parsed and blamed on the client, or dropped unreported). `owner`: the server's name, as in abandonedBySignal/abandonedByClose.
   */
  closedMidMessage: (owner: string, signal: string | undefined, bytes: number) =>
    (signal !== undefined
      ? `${owner}: another signal (${signal}) came during the drain, so the server closed at once while `
      : `${owner}.close() was called while `) +
    `the client was still sending a message: ${bytes} byte${bytes === 1 ? '' : 's'} of it had come, not its end (a line's newline, ` +
    `the rest of a frame), and its connection was closed. ` +
    (signal !== undefined
      ? `Fix: ${SECOND_SIGNAL_FIX}: a message begun before shutdown is read whole, within limits.lineTimeout.`
      : 'Fix: await shutdown() before close(): a message begun before shutdown is read whole, within limits.lineTimeout.'),
  unserved: (seconds: number, datagram = false) =>
    datagram
      ? `the datagram was received before shutdown began but still waited to be served ${seconds} s later ` +
        `(shutdownTimeout), behind requests that had not finished, so it was dropped unanswered. Fix: make handlers ` +
        `return (bound what they await with a timeout), serve datagrams side by side (@Concurrent, @Threading, ` +
        `@Forking), or raise shutdownTimeout.`
      : `the connection was accepted before shutdown began but still waited to be served ${seconds} s later ` +
        `(shutdownTimeout), behind requests that had not finished, so it was closed unserved. Fix: make handlers ` +
        `return when their reads end (they see EOF at shutdown), serve connections at once (@Concurrent, ` +
        `@Threading, @Forking), or raise shutdownTimeout.`,
  /** `after`: givenUpWhen's. */
  verifyAbandoned: (after: number | string, datagram = false) =>
    `@Verify had not settled ${givenUpWhen(after)}, ` +
    `so ${datagram ? 'the datagram was dropped unanswered' : 'the connection was closed'} and no other hook ran. ` +
    `Fix: make @Verify settle (bound what it awaits with a timeout)` +
    (typeof after === 'number' || after === 'shutdownTimeout' ? ', or raise shutdownTimeout.' : after === 'closed' ? '.' : isSignalName(after) ? `; for the signal, ${SECOND_SIGNAL_FIX}.` : ', and await shutdown() before close().'),
  requestKept: (owner: string) =>
    `${owner}.processRequest() returned without shutdownRequest(request) and without super.processRequest(): the ` +
    `connection was never ended (its client waited for EOF, its descriptor held until close()), so sockserve ended it, ` +
    `as Python's garbage collector closes such a socket. Fix: return a promise that settles when the request is done, ` +
    `after \`await this.finishRequest(request, clientAddress); await this.shutdownRequest(request);\`, or call ` +
    `super.processRequest(request, clientAddress). (Logged once per server.)`,
  hookUnsettled: (owner: string, hook: string, seconds: number, original: string) =>
    `${owner}: ${hook} did not settle within ${seconds} s (shutdownTimeout), so the server goes on without waiting ` +
    `for it (it keeps running). The error it was given: ${original}\nFix: make ${hook} return or reject (bound any call it awaits with a timeout).`,
  handleErrorUnsettled: (owner: string, seconds: number, original: string) =>
    `${owner}: @HandleError did not settle within ${seconds} s (shutdownTimeout), so the request goes on closing ` +
    `without waiting for it. The error it was given:\n${original}\nFix: make @HandleError return or reject ` +
    `(bound any call it awaits with a timeout).`,
  abandonedInDispose: (when: number | string) =>
    `the request's handler had returned, but a request-scoped provider's dispose() was still running ` +
    `${givenUpWhen(when)}, so it ` +
    `was abandoned. Fix: make dispose() return (bound what it awaits with a timeout), or raise shutdownTimeout.`,
  abandonedBySignal: (owner: string, signal: string, datagram = false) =>
    `${owner}: another signal (${signal}) came during the drain, so the server closed at once while ${datagram ? "a datagram's handler" : 'the request'} ` +
    `was running: ${datagram ? 'it was abandoned and its reply is not sent' : 'its connection was closed and the handler abandoned'} ` +
    `(handleSignals). Fix: ${SECOND_SIGNAL_FIX} and let requests finish within shutdownTimeout.`,
  /** `signal`: another signal during handleSignals' drain closed the server (`owner` its log name), else `owner`.close(). */
  unservedAtClose: (owner: string, signal: string | undefined, datagram = false) =>
    (signal !== undefined
      ? `${owner}: another signal (${signal}) came during the drain, so the server closed at once while `
      : `${owner}.close() was called while `) +
    (datagram
      ? 'the datagram, received before, still waited to be served behind a request that had not finished: it was dropped unanswered. '
      : 'the connection, accepted before, still waited to be served behind a request that had not finished: it was closed unserved. ') +
    (signal !== undefined
      ? `Fix: ${SECOND_SIGNAL_FIX} and let requests finish within shutdownTimeout.`
      : 'Fix: await shutdown() before close(): it serves what was accepted before it (bounded by shutdownTimeout).'),
  abandonedByClose: (owner: string, datagram = false) =>
    datagram
      ? `${owner}.close() was called while a datagram's handler was running, so it was abandoned and its reply is ` +
        `not sent. Fix: await shutdown() before close() to let handlers finish (bounded by shutdownTimeout).`
      : `${owner}.close() was called while the request was running, so its connection was closed and the handler ` +
        `abandoned. Fix: await shutdown() before close() to let requests finish (bounded by shutdownTimeout), and make ` +
        `the handler return when its reads end.`,
  classicSendAfterReply: (handler: string) =>
    `${handler}: socket.send() after the datagram's handler returned: in a pool's worker a handler's reply goes back ` +
    `with the datagram's end (one datagram), which had gone, so these bytes would never be sent. Fix: send before ` +
    `the handler returns, or serve with the serial UDPServer, whose socket sends at any time.`,
  datagramWriteAfterReply:
    "wfile.write() after the datagram's handler returned: its reply had been taken then (one datagram, sent " +
    'once the handler finishes), so these bytes would never be sent. Fix: await every write (and whatever ' +
    'produces it) before the handler returns.',
  testAbandoned: (owner: string, seconds: number) =>
    `the request was still running ${seconds} s after TestServer.close() reset its connection (${owner}), so it was ` +
    `abandoned. Fix: make the handler return when its reads end (close() resets every connection: reads fail ` +
    `with ECONNRESET), or raise the TestServer's shutdownTimeout.`,
  bindFailedUnobserved: (owner: string, error: string) =>
    `${owner}: binding failed and nothing awaited its ready (nor called serveForever() or handleRequest()): ${error}. ` +
    `Fix: await server.ready after new ${owner}(…) (Python raises this in the constructor).`,
  serverInWorker: (owner: string) =>
    `${owner}: a server was started by the handler's module while a sockserve worker loaded it (workers load ` +
    `that module again, so its start-up code runs in every worker too). Fix: start servers only in the main ` +
    `program, inside \`if (!isWorker()) { ... }\` (isWorker from 'sockserve'), or declare handlers in a module of their own.`,
  notBound: (owner: string, member: string) =>
    `${owner}.${member}(): the server is not bound: it was built with { bindAndActivate: false } and serverBind() ` +
    `has not run, so no request could ever come. Fix: await server.serverBind() and server.serverActivate() first ` +
    `(Python's server_bind() and server_activate()), or leave bindAndActivate out.`,
  socketReleased: (owner: string, member: string) =>
    `${owner}.${member}(): serverClose() has released the server's socket, so no request can come (Python raises ValueError here). ` +
    `Fix: build a new server; serverClose() and close() are final.`,
  serverClosed: (owner: string, member: string) =>
    `${owner}.${member}(): the server is closed. Fix: build a new server; close() is final.`,
  serviceActionsAbandoned: (owner: string, seconds: number) =>
    `${owner}: serviceActions (@ServiceActions) had not settled when the loop gave up waiting (shutdownTimeout ` +
    `${seconds} s after shutdown(), or close()); the loop ended without it, and it runs on unawaited. Fix: make ` +
    `the hook settle, or bound its own waits.`,
  alreadyServing: (owner: string) =>
    `${owner}.serveForever(): the loop is already running. Fix: call shutdown() and await it before serving again.`,
  /** handleRequest() or serveForever() while the other, or a second handleRequest(), waits for the same requests. */
  alreadyWaiting: (owner: string, member: 'serveForever' | 'handleRequest', waiting: 'serveForever' | 'handleRequest') =>
    `${owner}.${member}(): ${waiting}() is already waiting for requests, and one server takes them in one loop at a time. ` +
    (waiting === 'serveForever'
      ? 'Fix: let serveForever() serve them, or call shutdown() and await it first.'
      : 'Fix: await the handleRequest() in progress first.'),
  /** Python's handle_error block, without its last newline (a logger adds one). */
  errorBlock: (client: ClientAddress | undefined, trace: string) =>
    `${'-'.repeat(40)}\nException occurred during processing of request from ${formatAddress(client)}\n${trace}\n${'-'.repeat(40)}`,
  /** handleError itself threw: the error it was given, then its own failure, so neither is lost. */
  handleErrorFailed: (owner: string, client: ClientAddress | undefined, original: string, failure: string) =>
    `${owner}.handleError() threw while reporting an error of the request from ${formatAddress(client)}; the request ` +
    `was still closed and the server goes on. Fix: make handleError (or @HandleError) catch its own errors.\n` +
    `The error it was given:\n${original}\nThe error it threw:\n${failure}`,
  /** Routine client behaviour (a reset, a timeout…): one line, no traceback. */
  clientError: (client: ClientAddress | undefined, error: unknown) => routineLine(client, error),
  /**
   * A connection closed at once, over `limits.maxConnections` or `maxConnectionsPerClient`. `limit`: the one it was over
   * (ConnectionLimiter.overWhich), when known; else every limit set is named.
   */
  refusedAtLimit: (owner: string, client: ClientAddress, limits: { maxConnections?: number; maxConnectionsPerClient?: number } | undefined, limit?: 'maxConnections' | 'maxConnectionsPerClient') => {
    const named = limit !== undefined && limits?.[limit] !== undefined ? [`limits.${limit} (${limits[limit]})`] : [
      limits?.maxConnections !== undefined ? `limits.maxConnections (${limits.maxConnections})` : undefined,
      limits?.maxConnectionsPerClient !== undefined ? `limits.maxConnectionsPerClient (${limits.maxConnectionsPerClient})` : undefined,
    ].filter((n): n is string => n !== undefined);
    return `${owner}: refused a connection from ${formatAddress(client)}: it was over ${named.length > 0 ? named.join(' or ') : 'a connection limit'}, so it was closed at once with nothing read. stats().rejected counts every one (at most one such line a second). Fix: raise the limit, or spread the clients (a load balancer's checks come from its own address).`;
  },
  refusedHeldBack: (owner: string, count: number) =>
    `${owner}: ${count} more connection${count === 1 ? ' was' : 's were'} refused at a limit in the last second (stats().rejected counts every one).`,
  /** Routine lines past ROUTINE_LINES_PER_SECOND, held back (LineBudget). */
  clientErrorsHeldBack: (owner: string, count: number, perSecond: number, countedIn: string | undefined) =>
    `${owner}: ${count} more routine client error${count === 1 ? ' in the last second was' : 's in the last second were'} not logged (at most ` +
    `${perSecond} lines a second)${countedIn ? `; ${countedIn} count every one` : ''}.`,
  datagramDropped: (owner: string, held: number, serial: boolean) =>
    `${owner}: a datagram was dropped unanswered: ${held} datagrams were already waiting or being served (maxQueuedDatagrams), ` +
    `so the handler is slower than its clients; stats().dropped counts every one. Fix: ` +
    (serial
      ? `serve datagrams concurrently (@Concurrent, @Threading, @Forking) or faster.`
      : `serve each datagram faster (more threads or children for CPU-bound work), or raise maxQueuedDatagrams if the memory allows.`),
  datagramsDroppedHeldBack: (owner: string, count: number) =>
    `${owner}: ${count} more datagram${count === 1 ? ' was' : 's were'} dropped in the last second (at most one line a second); stats().dropped counts every one.`,
  acceptFailing: (owner: string, address: string, code: string | undefined) =>
    `${owner}: accepting on ${address} fails (${code ?? 'EMFILE'}: out of file descriptors); new connections are dropped ` +
    `until descriptors are free. Fix: raise the limit (ulimit -n, LimitNOFILE=), or lower limits.maxConnections.`,
  acceptRecovered: (owner: string, address: string, failures: number, ms: number) =>
    `${owner}: accepting on ${address} again after ${(ms / 1000).toFixed(1)} s out of file descriptors (${failures} accept failures counted).`,
  listening: (owner: string, address: string, mode: string) => `${owner}: listening on ${address} (${mode})`,
  secondsLikeMilliseconds: (owner: string, option: string, value: number) =>
    `${owner}: ${option} is ${value} seconds (${value >= 7200 ? `${+(value / 3600).toFixed(1)} hours` : `${+(value / 60).toFixed(1)} minutes`}): sockserve's timeouts are in seconds, as Python's socketserver's, not milliseconds as Node's. If you meant ${value} ms, write ${value / 1000}.`,
  signalCloseFailed: (owner: string, signal: string, error: unknown) =>
    `${owner}: ${signal}: closing failed (the process exits with code 1):\n  ` +
    `${indent(describeThrown(error))}\n` +
    `Fix: make each singleton's dispose() settle without throwing; every one was still disposed.`,
  signalled: (owner: string, signal: string, drainDelay: number) =>
    drainDelay > 0
      ? `${owner}: ${signal}: accepting for ${drainDelay} s more (drainDelay), then refusing new clients and draining`
      : `${owner}: ${signal}: refusing new clients and draining`,
  signalledDuringDrain: (owner: string, signal: string, first: string | undefined, active: number) =>
    `${owner}: ${signal} ${first === undefined || first === signal ? 'again' : `after ${first}`} during the drain: closing now; ${active} request${active === 1 ? '' : 's'} still in flight ` +
    `${active === 1 ? 'is' : 'are'} ended and reported, then the process exits (${exitCodeOf(signal)}).`,
  draining: (owner: string, active: number, waiting = 0) =>
    `${owner}: shutting down; draining ${active} request${active === 1 ? '' : 's'} in flight` + (waiting > 0 ? ` and ${waiting} accepted, waiting to be served` : ''),
  /**
   * After `draining`, for a signal's drain with requests in flight: how long the server may wait, and how to end it
   * sooner. The server, not the process: a handler given up at shutdownTimeout in the server's own process may keep it
   * alive with its timers (hostile re-check); another signal exits.
   */
  drainingUntil: (signal: string, shutdownTimeout: number | null | undefined) =>
    `; the server closes when they end${shutdownTimeout == null ? '' : `, ${shutdownTimeout} s at most (shutdownTimeout)`}, or at once on another ${signal}.`,
  closed: (owner: string) => `${owner}: closed`,
  badServerClass: (handler: string, given: string, expected: string) =>
    `${handler}: serverClass ${given} does not extend ${expected}, the classic server of its transport decorator. ` +
    `Fix: declare it as \`class ${given} extends ${expected}\`.`,
  handlerNotExported: (name: string, file: string) =>
    `${name} is not exported from ${file}, so a worker cannot load it. Fix: declare the class at the module's ` +
    `top level with \`export class ${name}\` (in a CommonJS .js file: \`exports.${name} = ${name}\`; a class ` +
    `defined inside a function cannot be loaded by path); ` +
    `if it is declared in another module, re-export it from this one (\`export { ${name} } from './its-module'\`) ` +
    `or name that module (the mixins' \`handlerModule\` option).`,
  handlerSourceUnknown: (name: string) =>
    `${name}: sockserve could not tell which file declares the class, so a worker cannot load it. ` +
    `Fix: declare it at the top level of a module of its own and export it.`,
  workerStartHung: (seconds: number) =>
    `it did not finish loading the handler's module within ${seconds} s (its start-up code blocked, or never settled). ` +
    `Fix: keep slow or blocking work (connecting to a database, reading large files) out of the module's top level, ` +
    `or do it lazily on the first request; the bound is heartbeatTimeout, at least 30 s.`,
  workerLoadFailed: (name: string, mode: string, reason: string) =>
    `${name}: the ${mode} worker could not load the handler${/\bprovider\b/.test(reason) ? ' and its providers' : ''}. Reason:\n  ${indent(reason)}` +
    workerLoadFix(reason),
  providerCannotCross: (handler: string, token: string, why: string) =>
    `${handler}: the provider for ${token} cannot be used in worker threads or child processes: ${why}. ` +
    `Fix: give workers plain data with { provide: 'name', useValue: ... } (a string or Symbol.for() token, a ` +
    `structured-cloneable value), or classes with { provide, useClass } where the class (and a class token) is ` +
    `exported from the module that declares it with @Injectable(); workers build them there.`,
  workerStartFailed: (name: string, mode: string, reason: string) =>
    `${name}: no ${mode} worker could be started for this request. Reason:\n  ${indent(reason)}`,
  /** Logged once per run of failed starts (warn). */
  workersCannotStart: (name: string, mode: string, attempts: number, reason: string, retrySeconds: number, accepting: boolean) =>
    `${name}: ${attempts} ${mode} workers in a row could not start; ` +
    (accepting
      ? `new clients wait in the listen queue, and a worker starts again in ${retrySeconds} s (then later and later, up to 30 s). `
      : `requests with no worker to go to fail with this reason, and a request ${retrySeconds} s or more later tries again. `) +
    `Reason:\n  ${indent(reason)}`,
  workerDisposeFailed: (handler: string, mode: string, id: number, error: unknown) =>
    `${handler}: the ${mode} worker ${id} was ending, and disposing its singletons failed (each was still disposed):\n  ` +
    `${indent(describeThrown(error))}\nFix: make each dispose() settle without throwing (it runs once per worker).`,
  workerListenFailed: (mode: string, id: number, reason: string) =>
    `sockserve: the ${mode} worker ${id} could not accept connections itself (${reason}); the other workers accept, and it still serves connections handed to it.`,
  /** `datagram` 'replied': its reply had gone, and its request-scoped providers were being disposed. */
  workerCrashed: (mode: string, detail: string, datagram: boolean | 'replied' = false) =>
    datagram === 'replied'
      ? `the ${mode} worker handling this datagram died while its request-scoped providers were being disposed ` +
        `(its reply had gone): ${detail}. The other workers' requests go on, and a new worker takes its place.`
      : datagram
      ? `the ${mode} worker handling this datagram died: ${detail}, so its reply is not sent. The other workers' ` +
        `requests go on, and a new worker takes its place.`
      : `the ${mode} worker serving this connection died: ${detail}. ${messages.workerReplaced()}`,
  datagramLost: () => `The datagram's reply is not sent; the other workers' requests go on, and a new worker takes its place.`,
  workerReplaced: () => `Its connections were closed; the other workers' were not, and a new worker takes its place.`,
  /** `datagram` 'replied': its reply had gone, and its request-scoped providers were being disposed. */
  workerEnded: (mode: string, why: 'shutdownTimeout' | 'close' | 'recycled', datagram: boolean | 'replied' = false): string =>
    datagram === 'replied'
      ? `the datagram's reply had gone, but a request-scoped provider's dispose() was still running in its ${mode} worker ` +
        (why === 'shutdownTimeout'
          ? `when shutdownTimeout passed after shutdown began, so the worker was ended. Fix: make dispose() return (bound what it awaits with a timeout), or raise shutdownTimeout.`
          : why === 'close'
            ? `when the server was closed, so the worker was ended.`
            : `shutdownTimeout after it had served its maxConnectionsPer${mode === 'threading' ? 'Thread' : 'Child'} requests, so it was ended; a fresh worker takes new datagrams.`)
      : datagram
      ? why === 'shutdownTimeout'
        ? `the datagram's handler was still running in its ${mode} worker when shutdownTimeout passed after shutdown ` +
          `began, so the worker was ended and the reply is not sent. Fix: make the handler return (bound what it ` +
          `awaits with a timeout), or raise shutdownTimeout.`
        : why === 'close'
          ? `the server was closed while this datagram's handler was running in its ${mode} worker, so the worker was ended and the reply is not sent.`
          : `this ${mode} worker had served its maxConnectionsPer${mode === 'threading' ? 'Thread' : 'Child'} requests and ` +
            `its last datagram's handler was still running shutdownTimeout after that, so it was ended and the reply is not sent; a fresh worker takes new datagrams.`
      : why === 'shutdownTimeout'
      ? `the request was still running in its ${mode} worker when shutdownTimeout passed after shutdown began, so ` +
        `the worker was ended and its connections closed. Fix: make the handler return when its reads end (they see ` +
        `EOF at shutdown), or raise shutdownTimeout.`
      : why === 'close'
        ? `the server was closed while this request was running in its ${mode} worker, so the worker was ended and its connections closed.`
        : `this ${mode} worker had served maxConnectionsPer${mode === 'threading' ? 'Thread' : 'Child'} connections and ` +
          `its last ones were still open shutdownTimeout after that, so it was ended and they were closed; a fresh worker serves new connections.`,
  /** A request still waiting for a worker (every worker busy or starting) when close() or shutdownTimeout came. */
  waitingEnded: (mode: string, why: 'shutdownTimeout' | 'close') =>
    `the request was still waiting for a ${mode} worker (every worker was busy or starting) when ` +
    (why === 'close' ? 'the server was closed' : 'shutdownTimeout passed after shutdown began') + `, so it was dropped ` +
    `unserved. Fix: raise maxThreads/maxChildren or connectionsPerThread/connectionsPerChild, or shutdownTimeout.`,
  workerUnresponsive: (mode: string, seconds: number) =>
    `the ${mode} worker's event loop did not answer a heartbeat for ${seconds} s (heartbeatTimeout), so the worker was ended; ` +
    `a handler blocked it (a busy loop or a synchronous call). Fix: keep handlers from blocking for that long, or raise bootstrap()'s heartbeatTimeout.`,
  reusePortUnsupported: (owner: string, version: string) =>
    `${owner}: allowReusePort (SO_REUSEPORT) cannot be set on Node ${version}: Node sets it from 22.12 on (listen's and ` +
    `dgram's reusePort), and a second server on this address would fail with EADDRINUSE. Fix: run Node 22.12 or later, ` +
    `or leave allowReusePort false.`,
  reusePortIgnored: (handler: string, version: string) =>
    `${handler}: SOCKSERVE_THREADS_REUSEPORT=1 is ignored on Node ${version}: threads listen with reusePort (SO_REUSEPORT) ` +
    `from Node 22.12 on; here the main thread accepts each connection and hands it to a thread (docs/concurrency.md).`,
  /** `unresponsive`: the heartbeatTimeout (seconds) the worker did not answer within, when that is why the pool ended it. */
  workerRestarted: (handler: string, mode: string, id: number, detail: string, unresponsive?: number) =>
    `${handler}: the ${mode} worker ${id} ${detail}` +
    (unresponsive === undefined ? '' : ` by the pool: its event loop answered no heartbeat for ${unresponsive} s (heartbeatTimeout)`) +
    `; a new worker takes its place.`,
  connectionsWaitingFull: (handler: string, mode: string, waiting: number) =>
    `${handler}: no ${mode} worker is alive (they keep dying; see the backoff line) and ${waiting} connections already wait for ` +
    `the next one, so new connections are refused (closed at once, counted in stats().rejected) until a worker starts. ` +
    `Fix: see the @HandleError reports of WorkerCrashedError for why the workers die.`,
  workerBackoff: (handler: string, mode: string, deaths: number, windowSeconds: number, waitSeconds: number, last: string) =>
    `${handler}: ${deaths} ${mode} workers died within ${windowSeconds} s; the next one starts in ${waitSeconds} s (backoff doubles to 30 s while they keep dying). ` +
    `The last one: ${last}. Fix: see that, and the @HandleError reports of WorkerCrashedError, for why they die.`,
  /** `killed`: a signal from outside ended it (no error of its own), whose Fix is not the code's. */
  workerDiedIdle: (handler: string, mode: string, id: number, cause: string, killed = false) =>
    `${handler}: the ${mode} worker ${id} died serving no connection: ${cause}; a new worker takes its place. ` +
    (killed
      ? `Nothing of its own ended it: a signal from outside did (a kill, or the kernel's out-of-memory killer: see its log, dmesg).`
      : `Fix: an error thrown or a promise rejected outside a request (in a timer, an event listener, the module's own code) ends ` +
        `its worker, as it ends a Node process: catch it there.`),
  badHandlerClass: (owner: string, given: unknown) =>
    `new ${owner}(): the handler class (second argument) is ${typeof given === 'object' && given !== null ? 'an object' : JSON.stringify(given) ?? String(given)}, ` +
    `not a class. Fix: pass a class that extends StreamRequestHandler, DatagramRequestHandler or BaseRequestHandler, ` +
    `built for every request with (request, clientAddress, server).`,
  unknownServerOption: (owner: string, handler: string, option: string, known: readonly string[], where: 'attribute' | 'pool' | 'concurrent' | undefined) =>
    `new ${owner}() on ${handler}: unknown option ${JSON.stringify(option)}. Fix: use only ${known.join(', ')}` +
    (where === 'attribute'
      ? `; ${option} is an attribute of the server, as in Python: set it on the server right after new (it binds on a microtask) or as a field of a subclass.`
      : where === 'pool'
        ? `; ${option} is an option of the pool: ThreadingMixIn(TCPServer, { ${option}: … }) or ForkingMixIn(…), then new on the class it returns.`
        : where === 'concurrent'
          ? `; ${option} bounds the requests served at once as an option of ConcurrentMixIn(TCPServer, { ${option}: … })` +
            (known.includes('limits') ? `, or every connection the server holds as a limit: { limits: { ${option}: … } }.` : '.')
          : '.'),
  badAddress: (owner: string, address: unknown) =>
    `${owner}: ${JSON.stringify(address)} is not an address. Fix: pass [host, port] or { host, port }` +
    ` (port 0 lets the OS choose); Unix servers take a path or { path }.`,
};

/**
 * The fix line for a worker that could not load the handler's module: none when the reason is one of
 * sockserve's own and carries its fix (a class not exported, a server started while a worker loaded it).
 */
function workerLoadFix(reason: string): string {
  if (/\bFix: /.test(reason)) return '';
  if (/Cannot find module|MODULE_NOT_FOUND|ERR_MODULE_NOT_FOUND/.test(reason)) {
    return (
      `\nFix: a worker loads the handler's module again from its file, and that file (or one it imports) is not ` +
      `there: was it moved or deleted after the server started, or is the program run from a build that lacks it?`
    );
  }
  // Its heap ran out while it loaded (resourceLimits too small): a thread says so; a child aborts (SIGTRAP, SIGABRT).
  if (/heap out of memory|ERR_WORKER_OUT_OF_MEMORY|killed by SIG(TRAP|ABRT)\b/.test(reason)) {
    return (
      `\nFix: the worker ran out of memory loading the handler's module (a child that V8 aborts is killed by SIGTRAP or ` +
      `SIGABRT): raise resourceLimits (maxOldGenerationSizeMb, maxYoungGenerationSizeMb) or load less at the module's top level.`
    );
  }
  if (/\buv_cwd\b/.test(reason)) {
    return (
      `\nFix: this process's working directory no longer exists (it was removed after the process started in it), ` +
      `and Node cannot start a worker thread without one. Start the server from a directory that stays, or ` +
      `process.chdir() to one before bootstrap(); @Forking's child processes are not affected.`
    );
  }
  return (
    `\nFix: a worker loads the handler's module again by path, on its own: declare the handler in a module that ` +
    `loads without its importer (not in a test file, whose test() and expect() do not exist there), and keep ` +
    `start-up code under if (!isWorker()).`
  );
}
