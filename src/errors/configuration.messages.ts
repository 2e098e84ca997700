/**
 * Message builders for ConfigurationError: bad decorators, bad decorator options, bad combinations.
 * Each message names the class (and the member, where one is involved) and gives one fix.
 */
import type { HookName } from '../metadata/definition';

/** The decorator users write for each lifecycle hook, as it appears in messages. */
export const hookDecoratorNames: Readonly<Record<HookName, string>> = {
  verify: '@Verify()',
  setup: '@Setup()',
  handle: '@Handle()',
  message: '@OnMessage()',
  finish: '@Finish()',
  handleError: '@HandleError()',
  handleTimeout: '@HandleTimeout()',
  serviceActions: '@ServiceActions()',
};

/** A class's name as users wrote it. */
export function className(target: unknown): string {
  if (typeof target === 'function') return target.name || '<anonymous class>';
  if (typeof target === 'object' && target !== null) return className(target.constructor);
  return String(target);
}

/** `EchoHandler.handle`, or `EchoHandler[Symbol(handle)]` for a symbol-keyed member. */
export function memberName(cls: string, key: string | symbol): string {
  return typeof key === 'symbol' ? `${cls}[${String(key)}]` : `${cls}.${key}`;
}

/** For a number given as a string where a number is required (`port: '9000'`, from process.env): says so. */
function numberInString(value: unknown, text: OptionText): string {
  if (typeof value !== 'string' || value.trim() === '' || !Number.isFinite(Number(value))) return '';
  if (!/integer|number|seconds|milliseconds|bytes/i.test(text.requirement)) return '';
  return ` (a string: pass the number, Number(${show(value)}), as values read from process.env must be)`;
}

/** A value as it would appear in source: strings quoted, objects as JSON. */
export function show(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'function') return `function ${value.name || '<anonymous>'}`;
  if (typeof value === 'object' && value !== null) {
    try {
      return JSON.stringify(value);
    } catch {
      return Object.prototype.toString.call(value);
    }
  }
  return String(value);
}

/** `a`, `a and b`, `a, b and c`. */
function list(items: readonly string[]): string {
  return items.length < 2 ? items.join('') : `${items.slice(0, -1).join(', ')} and ${items[items.length - 1]}`;
}

function count(n: number): string {
  return ['no', 'one', 'two', 'three', 'four', 'five'][n] ?? String(n);
}

/** What each option must be, and how to fix a bad one. Shared by the decorators that take it. */
export const optionTexts = {
  port: { requirement: 'an integer from 0 to 65535', fix: 'pass a port in that range, or 0 to let the OS pick.' },
  host: {
    requirement: 'a non-empty string',
    fix: "pass a host name or address such as '127.0.0.1' or '::1', or leave host out for the default '127.0.0.1'.",
  },
  mode: {
    requirement: 'file permission bits, an integer from 0 to 0o777',
    fix: 'pass the socket file\'s mode such as 0o660 (owner and group may connect), or leave mode out to let the umask decide.',
  },
  backlog: {
    requirement: 'a positive integer',
    fix: 'pass how many pending connections the kernel may queue, such as 128, or leave backlog out for the default 511.',
  },
  reuseAddress: { requirement: 'a boolean', fix: 'pass true or false, or leave reuseAddress out for the default true.' },
  ipv6Only: { requirement: 'a boolean', fix: 'pass true or false, or leave ipv6Only out.' },
  udpMaxPacketSize: {
    requirement: 'an integer from 1 to 65507 over IPv4, or to 65527 over IPv6 (the largest UDP payloads)',
    fix: 'pass a size in that range, or leave maxPacketSize out for the default 8192.',
  },
  unixMaxPacketSize: {
    requirement: 'an integer from 1 to 65534',
    fix: 'pass a size in bytes in that range (node-unix-socket reads at most 65535 bytes of a datagram, so a longer one could not be told truncated), or leave maxPacketSize out for the default 8192.',
  },
  path: { requirement: 'a non-empty string', fix: "pass a filesystem path for the socket, such as '/tmp/echo.sock'." },
  threads: {
    requirement: 'a positive integer',
    fix: 'pass how many threads to keep warm, or leave threads out for one per core.',
  },
  maxThreads: { requirement: 'a positive integer', fix: 'pass the most threads to run at once, or leave maxThreads out for 64.' },
  connectionsPerThread: {
    requirement: 'a positive integer',
    fix: 'pass how many connections a thread serves before the pool grows (1 is Python\'s one connection per thread), or leave connectionsPerThread out for no limit.',
  },
  connectionsPerChild: {
    requirement: 'a positive integer',
    fix: 'pass how many connections a child serves before the pool grows (1 is Python\'s one connection per child), or leave connectionsPerChild out for no limit.',
  },
  heartbeatTimeout: {
    requirement: 'a positive number (seconds)',
    fix: 'pass how many seconds a worker\'s event loop may stay blocked before the worker is ended, or leave heartbeatTimeout out for 30.',
  },
  handlerModule: {
    requirement: 'a non-empty string (a module path)',
    fix: 'pass the path of the module that exports the handler class, or leave handlerModule out for the module that constructs the server.',
  },
  workerIdleTimeout: {
    requirement: 'a positive number (seconds)',
    fix: 'pass how many seconds a worker above the kept pool may stay without a connection, or leave workerIdleTimeout out for 30.',
  },
  maxConnectionsPerThread: {
    requirement: 'a positive integer',
    fix: 'pass after how many connections a thread is replaced by a fresh one, or leave maxConnectionsPerThread out for never.',
  },
  maxConnectionsPerChild: {
    requirement: 'a positive integer',
    fix: 'pass after how many connections a child is replaced by a fresh one, or leave maxConnectionsPerChild out for never.',
  },
  resourceLimits: {
    requirement: 'an object of positive numbers (maxOldGenerationSizeMb, maxYoungGenerationSizeMb, codeRangeSizeMb, stackSizeMb), maxOldGenerationSizeMb at least 4 (below that Node 22+ aborts the whole process as a thread starts)',
    fix: 'pass Node\'s Worker resource limits in megabytes, such as { maxOldGenerationSizeMb: 256 }, or leave resourceLimits out.',
  },
  children: {
    requirement: 'a positive integer',
    fix: 'pass how many child processes to keep warm, or leave children out.',
  },
  maxChildren: {
    requirement: 'a positive integer',
    fix: 'pass the most child processes to run at once, or leave maxChildren out for 40.',
  },
  perRequest: {
    requirement: 'a boolean',
    fix: 'pass true for a fresh worker per request, false to reuse a pool, or leave perRequest out.',
  },
  maxConnections: {
    requirement: 'a positive integer',
    fix: 'pass the most requests to serve at once, or leave maxConnections out for no limit.',
  },
  maxLength: {
    requirement: 'a positive integer (bytes)',
    fix: 'pass the most bytes one message may have, or leave maxLength out for the framer\'s default.',
  },
  concurrency: {
    requirement: 'a positive integer',
    fix: 'pass how many @OnMessage calls of one connection may overlap, or leave concurrency out for 1 (one at a time).',
  },
  maxOutputBuffer: {
    requirement: 'a positive integer (bytes)',
    fix: 'pass the most bytes of pushed messages a connection may hold unsent, or leave maxOutputBuffer out for 16 MiB.',
  },
  lengthBytes: { requirement: '1, 2 or 4', fix: 'pass the size of the length prefix in bytes, or leave lengthBytes out for 4.' },
  byteOrder: { requirement: "'big' or 'little'", fix: "pass the prefix's byte order, or leave byteOrder out for 'big' (network order)." },
} as const;

export type OptionText = { readonly requirement: string; readonly fix: string };

export const configurationMessages = {
  reflectMetadataMissing: (where: string) =>
    `${where}: Reflect.defineMetadata is missing, so decorators cannot record anything. ` +
    `Fix: import 'reflect-metadata' once at the program's entry point, before any handler class is loaded.`,

  // bootstrap()'s own options
  bootstrapUnknownOption: (handlers: string, option: string, known: readonly string[]) =>
    `bootstrap(${handlers}): unknown option ${show(option)}. Fix: use only ${list(known)}.`,
  bootstrapBadOption: (handlers: string, option: string, value: unknown, text: OptionText) =>
    `bootstrap(${handlers}): ${option} ${show(value)} is not ${text.requirement}${numberInString(value, text)}. Fix: ${text.fix}`,
  bootstrapBadArgument: (handlers: string, value: unknown) =>
    `bootstrap(${handlers}): its options must be an object, got ${show(value)}. Fix: pass { … } or nothing.`,

  // Class decorators (transport, concurrency)
  notAClass: (decorator: string, where: string) =>
    `${decorator} on ${where}: not a class. Fix: put ${decorator} on the handler class.`,
  noAddress: (decorator: string, cls: string, example: string) =>
    `${decorator} on ${cls}: no address given. Fix: write ${example}.`,
  badArgument: (decorator: string, cls: string, value: unknown, expected: string, example: string) =>
    `${decorator} on ${cls}: expected ${expected}, got ${show(value)}. Fix: write ${example}.`,
  unknownOption: (decorator: string, cls: string, option: string, known: readonly string[]) =>
    `${decorator} on ${cls}: unknown option ${show(option)}. Fix: use only ${list(known)}.`,
  missingOption: (decorator: string, cls: string, option: string, text: OptionText) =>
    `${decorator} on ${cls}: the ${option} option is missing; it must be ${text.requirement}. Fix: ${text.fix}`,
  /** A concurrency mixin given a class another one has made (ConcurrentMixIn(ThreadingMixIn(TCPServer))). */
  mixinTwice: (mixin: string, cls: string, already: string) =>
    `${mixin} on ${cls}: ${cls} is ${already}(…) already, and a server has one concurrency mixin (the last one's ` +
    `strategy replaced the other's silently, whatever the class was called). Fix: mix ${mixin} into the plain ` +
    `server class (TCPServer, UDPServer, UnixStreamServer or UnixDatagramServer), or keep ${already}.`,
  badOption: (decorator: string, cls: string, option: string, value: unknown, text: OptionText) =>
    `${decorator} on ${cls}: ${option} ${show(value)} is not ${text.requirement}${numberInString(value, text)}. Fix: ${text.fix}`,
  pathTooLong: (decorator: string, cls: string, path: string, bytes: number, datagram = false) =>
    `${decorator} on ${cls}: path ${show(path)} is ${bytes} bytes long, and a Unix socket path must be shorter ` +
    `than 108 bytes${datagram ? '' : ", an abstract name ('\\0name') at most 108"} (sun_path). Fix: use a shorter path, for example in os.tmpdir() or relative to the working directory.`,
  optionOrder: (decorator: string, cls: string, small: string, smallValue: number, big: string, bigValue: number) =>
    `${decorator} on ${cls}: ${small} ${smallValue} is more than ${big} ${bigValue}. Fix: raise ${big} or lower ${small}.`,

  /** A decorator called as the TC39 standard says (value, context): TypeScript 5+ without experimentalDecorators. */
  standardDecorators: (decorator: string, context: { kind?: unknown; name?: unknown }) =>
    `${decorator} on ${String(context.name ?? 'a class')} (a ${String(context.kind)}) was applied as a standard (TC39) ` +
    `decorator: this file was compiled without experimentalDecorators, which sockserve's decorators need (as ` +
    `NestJS's do). Fix: set "experimentalDecorators": true and "emitDecoratorMetadata": true in tsconfig.json's ` +
    `compilerOptions (with esbuild, tsx or swc, their equivalent settings), and import 'reflect-metadata' first.`,

  // Method decorators (lifecycle hooks)
  hookTakesNoArguments: (decorator: string, value: unknown) =>
    `${decorator} takes no arguments, got ${show(value)}. Fix: write ${decorator.slice(0, -2)} or ${decorator}.`,
  notAMethod: (decorator: string, where: string, what: string) =>
    `${decorator} on ${where}: not a method (${what}). Fix: put ${decorator} on a method.`,
  staticMethod: (decorator: string, where: string) =>
    `${decorator} on ${where}: a static method, but hooks run on the handler instance built for each request. ` +
    `Fix: make it an instance method.`,

  // Explorer (combinations)
  notAHandlerClass: (value: unknown) =>
    typeof value === 'object' && value !== null && typeof value.constructor === 'function' && value.constructor !== Object
      ? `The handler given is an instance of ${className(value)}, not a class. Fix: pass the class itself: bootstrap(${className(value)}), TestServer.create(${className(value)}).`
      : `The handler given, ${show(value)}, is not a class. Fix: pass the decorated handler class itself, e.g. bootstrap(EchoHandler).`,
  noTransport: (cls: string) =>
    `${cls} has no transport decorator. Fix: add one of @TcpServer(port), @UdpServer(port), ` +
    `@UnixStreamServer(path) or @UnixDatagramServer(path).`,
  tooManyTransports: (cls: string, decorators: readonly string[]) =>
    `${cls} has ${count(decorators.length)} transport decorators (${list(decorators)}). Fix: keep exactly one.`,
  tooManyConcurrency: (cls: string, decorators: readonly string[]) =>
    `${cls} has ${count(decorators.length)} concurrency decorators (${list(decorators)}). ` +
    `Fix: keep at most one; with none, requests are served one at a time.`,
  classicHandler: (cls: string) =>
    `${cls} is a sockserve/classic request handler (it extends BaseRequestHandler): a classic server serves it ` +
    `(new ThreadingTCPServer(address, ${cls})), not bootstrap() or TestServer, which take decorated classes. Fix: ` +
    `test it against a classic server on port 0 (docs/classic.md), or port it to a decorated class with @Handle().`,
  noHandle: (cls: string) =>
    `${cls} has no @Handle() or @OnMessage() method. Fix: decorate the method that serves a request with @Handle(), ` +
    `or the one that answers each message with @OnMessage() (with @Framing).`,
  handleAndOnMessage: (cls: string, handle: string, message: string) =>
    `${cls} has both @Handle() (${handle}) and @OnMessage() (${message}). Fix: keep one: @Handle() reads and ` +
    `writes the connection's bytes itself, @OnMessage() is called once per message that @Framing cuts.`,
  framingWithoutOnMessage: (cls: string, framing: string) =>
    `${cls} has @Framing(${framing}) but no @OnMessage() method, and @Framing only cuts messages for @OnMessage(). ` +
    `Fix: put @OnMessage() on the method that answers one message (in place of @Handle()), or remove @Framing.`,
  onMessageWithoutFraming: (member: string, transport: string) =>
    `${member} has @OnMessage(), but the class has no @Framing, so its ${transport} byte stream has no message ` +
    `boundaries. Fix: add @Framing('lines') to the class (or 'length-prefixed', 'netstring', 'json-lines', or a Framer factory).`,
  tooManyFramings: (cls: string, n: number) =>
    `${cls} has ${count(n)} @Framing decorators. Fix: keep exactly one.`,
  badFramingKind: (cls: string, kind: unknown) =>
    typeof kind === 'object' && kind !== null && typeof (kind as { decode?: unknown }).decode === 'function'
      ? `@Framing on ${cls}: ${show(kind)} is a framer instance, but each connection needs a framer of its own. Fix: pass ` +
        `its class (@Framing(${kind.constructor?.name && kind.constructor !== Object ? kind.constructor.name : 'MyFramer'}, options)) or a function that builds one: @Framing((options) => new ...).`
      : `@Framing on ${cls}: ${show(kind)} is not a framer. Fix: pass 'lines', 'length-prefixed', 'netstring', ` +
        `'json-lines', or a factory (a class or a function taking the options) that builds a Framer for each connection.`,
  duplicateHook: (owner: string, handler: string, hook: HookName, keys: readonly (string | symbol)[]) => {
    const members = keys.map((key) => (typeof key === 'symbol' ? `[${String(key)}]` : key));
    const decorator = hookDecoratorNames[hook];
    const inherited = owner === handler ? '' : ` (inherited by ${handler})`;
    return (
      `${owner}${inherited} has ${count(members.length)} ${decorator} methods (${list(members)}). ` +
      `Fix: keep ${decorator} on exactly one method of ${owner}` +
      (inherited ? `, or put ${decorator} on one method of ${handler} to override it.` : '.')
    );
  },
};
