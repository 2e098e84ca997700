import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { constants as osConstants } from 'node:os';
import type * as net from 'node:net';
import * as tls from 'node:tls';
import type { TlsInfo, TlsServerOptions } from './edge-options';

type ConnectionListener = (this: tls.Server, raw: net.Socket) => void;

const ticketKeysOf = new WeakMap<object, Buffer>();

/**
 * `options` with session-ticket keys (48 random bytes, Node's `ticketKeys`) that every TLS server built from
 * this same options object shares: the server's process and each of its workers, so a client resumes its
 * session whichever worker it reaches. Each `tls.createServer()` draws keys of its own otherwise, and with
 * @Threading/@Forking a resumption succeeded only on the worker that issued the ticket (1 to 10 in 20; hostile
 * run). Keys the user gives are kept.
 */
export function withSharedTicketKeys<T extends object | undefined>(options: T): T {
  if (options === undefined || (options as { ticketKeys?: unknown }).ticketKeys !== undefined) return options;
  let keys = ticketKeysOf.get(options);
  if (keys === undefined) {
    keys = randomBytes(48);
    ticketKeysOf.set(options, keys);
  }
  return { ...options, ticketKeys: keys };
}

const given = (value: unknown): boolean => (Array.isArray(value) ? value.length > 0 : Boolean(value));

/**
 * What a TLS server without credentials lacks, or undefined when it has some: a key and its certificate,
 * a `pfx`, or what supplies them per connection (`SNICallback`, `secureContext`, `pskCallback`). Node accepts
 * `tls: {}`, a key alone or a certificate alone, and then fails every handshake ("no shared cipher"), one
 * client error per connection and the server looking healthy; this says so once, at bootstrap.
 */
export function missingCredentials(o: TlsServerOptions): string | undefined {
  if (given(o.pfx) || given(o.SNICallback) || given(o.secureContext) || given(o.pskCallback)) return undefined;
  if (given(o.key) && given(o.cert)) return undefined;
  if (given(o.key)) return 'a key without its certificate (cert)';
  if (given(o.cert)) return 'a certificate without its private key (key)';
  return 'no certificate and key';
}

/**
 * Terminates TLS on sockets a plain `net.Server` (or a worker) accepted: Node's own `tls.Server` does the
 * work, fed one connection at a time (its documented `'connection'` injection), never listening itself. So
 * every `tls.createServer()` option behaves as Node documents it (SNI, ALPN, client certificates and their
 * authorization, session tickets), and `setSecureContext()` swaps the certificate for new connections.
 *
 * Each connection is given to the TLS server through a view of it (an object whose prototype is the server,
 * with events of its own), so that the `'secureConnection'` or `'tlsClientError'` that the handshake ends
 * with is the one of this connection, whatever else is in flight.
 */
export class TlsTerminator {
  private readonly server: tls.Server;
  private readonly wrap: ConnectionListener;

  /** Throws an Error naming what is missing when `options` give the server nothing to authenticate with. */
  constructor(options: TlsServerOptions) {
    const missing = missingCredentials(options);
    if (missing) throw new Error(`${missing}: every handshake would fail`);
    this.server = tls.createServer(withSharedTicketKeys(options));
    this.wrap = this.server.listeners('connection')[0] as ConnectionListener;
  }

  /** New connections get the new certificate, key or CA; open ones keep theirs (Node's `server.setSecureContext`). */
  setSecureContext(options: tls.SecureContextOptions): void {
    this.server.setSecureContext(options);
  }

  /**
   * Runs the server side of the handshake over `raw` (bytes it already holds unread, such as those after a
   * PROXY header, are fed to TLS first). Resolves with the TLS socket, paused; rejects with Node's error
   * (`ERR_SSL_HTTP_REQUEST`, `ECONNRESET`…) when the handshake fails or the client leaves.
   */
  handshake(raw: net.Socket): Promise<tls.TLSSocket> {
    return new Promise((resolve, reject) => {
      const view = Object.create(this.server) as tls.Server;
      EventEmitter.call(view); // events of its own, not the server's
      // The TLS socket takes `allowHalfOpen` from `raw`. Half-open during the handshake, a client that ended
      // its side before finishing it (a check that hangs up on `secureConnect`, before its Finished is out)
      // left a socket that never closed, so Node never said ECONNRESET: the connection waited out lineTimeout
      // (30 s) in CLOSE-WAIT. As Node's own listening tls.Server, the handshake is not half-open; the
      // connection is again once it is made (its end is read only when the handler reads: it is paused).
      const halfOpen = raw.allowHalfOpen;
      raw.allowHalfOpen = false;
      view.once('secureConnection', (socket: tls.TLSSocket) => {
        endStuckWritesAfterEnd(socket, raw);
        socket.pause();
        socket.allowHalfOpen = halfOpen;
        raw.allowHalfOpen = halfOpen;
        resolve(socket);
      });
      view.once('tlsClientError', (err: Error, socket: tls.TLSSocket) => {
        socket.destroy();
        reject(refusedCertificate(socket) ?? err);
      });
      this.wrap.call(view, raw);
    });
  }
}

/**
 * The error for a client whose certificate did not verify against `tls.ca`, or Node's root certificates without it (`requestCert` with `rejectUnauthorized`):
 * Node's TLS server destroys such a socket once the handshake is done and tells only `ECONNRESET` "socket hang up"
 * (_tls_wrap's onServerSocketSecure), which read as the client's doing (hostile run). Undefined for any other failure.
 */
function refusedCertificate(socket: tls.TLSSocket): Error | undefined {
  const code = socket.authorizationError as unknown as string | undefined; // a code string (Node's verifyError().code), typed Error
  if (!code) return undefined;
  return Object.assign(new Error(`the client's certificate did not verify against tls.ca (Node's root certificates where ca is not given), so it was refused (requestCert with rejectUnauthorized)`), { code });
}

/**
 * Milliseconds a write to a TLS connection may stay queued with not a byte leaving through its TCP socket, once the
 * client's end has come (a FIN, its close_notify, or a reset read as an end), before the connection is destroyed as
 * reset.
 */
const STUCK_AFTER_END_MS = 5000;

/**
 * A TLS socket is half-open here (TlsTerminator.handshake): after the client's end it may still be written. When
 * the client had reset the connection instead, a write begun then never called back and the socket never closed
 * (Node's TLS layer; hostile run under load: 1 connection in 160, its request held for good, with its descriptor,
 * a maxConnections slot and close() until shutdownTimeout), where a plain socket's write fails with EPIPE. Once the
 * end has come, a write queued while the TCP socket beneath (`raw`'s handle) gives the kernel nothing for STUCK_AFTER_END_MS
 * (two checks in a row) ends the connection with ECONNRESET, as the reset it was: its write rejects and the request
 * ends, a client error. A client that half-closes and reads a long reply slowly keeps the kernel taking bytes: not
 * cut (the queued length alone said nothing: one large write keeps it whole until its callback; re-check). Over
 * relayed bytes (no TCP handle here) nothing is checked.
 */
function endStuckWritesAfterEnd(socket: tls.TLSSocket, raw: net.Socket): void {
  // Bytes the kernel took: those of the writes done, and of the one under way (libuv's queue shrinks as it takes them).
  const written = (): number | undefined => {
    const handle = (raw as unknown as { _handle?: { bytesWritten?: unknown; writeQueueSize?: unknown } | null })._handle;
    if (typeof handle?.bytesWritten !== 'number') return undefined;
    return handle.bytesWritten - (typeof handle.writeQueueSize === 'number' ? handle.writeQueueSize : 0);
  };
  if (written() === undefined) return;
  socket.once('end', () => {
    let seen: number | undefined;
    let still = 0;
    const check = setInterval(() => {
      const now = written();
      if (socket.destroyed || now === undefined) return clearInterval(check);
      if (socket.writableLength === 0 || now !== seen) {
        seen = now;
        still = 0;
        return;
      }
      if (++still < 2) return;
      clearInterval(check);
      socket.destroy(Object.assign(new Error('write ECONNRESET'), { code: 'ECONNRESET', errno: -osConstants.errno.ECONNRESET, syscall: 'write' }));
    }, STUCK_AFTER_END_MS / 2);
    check.unref();
    socket.once('close', () => clearInterval(check));
  });
}

/** What `req.tls` shows of an established TLS connection. */
export function tlsInfo(socket: tls.TLSSocket): TlsInfo {
  const peer = socket.getPeerCertificate();
  const info: TlsInfo = {
    protocol: socket.getProtocol(),
    cipher: socket.getCipher()?.name ?? null,
    alpnProtocol: typeof socket.alpnProtocol === 'string' ? socket.alpnProtocol : null,
    servername: typeof (socket as { servername?: unknown }).servername === 'string' ? (socket as unknown as { servername: string }).servername : null,
    authorized: socket.authorized,
  };
  if (socket.authorizationError) info.authorizationError = String(socket.authorizationError);
  if (peer && Object.keys(peer).length > 0) info.peerCertificate = peer;
  return info;
}
