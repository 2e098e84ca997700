import type * as net from 'node:net';
import type { SecureContextOptions } from 'node:tls';
import { edgeMessages } from '../../errors/edge.messages';
import { ConfigurationError } from '../../errors/errors';
import type { ClientAddress } from '../../transports/address';
import { Preamble, PreambleResult } from '../../transports/connection-preamble';
import { DEFAULT_LINE_TIMEOUT, EdgeOptions } from '../../transports/edge-options';
import { TlsTerminator, withSharedTicketKeys } from '../../transports/tls-terminate';
import type { UnreadConnection } from './protocol';

/**
 * The production edge of a worker (API.md §3, §11): for connections the server handed over unread, this
 * worker reads the PROXY header and terminates TLS itself, with the same `Preamble` as the main thread
 * (same limits: `limits.lineTimeout` for header and handshake together, the first-byte wait, the trusted
 * peers), so handshakes use the workers' cores and no byte crosses threads. Built once per worker from
 * `WorkerSpec.edge`; `setSecureContext` follows `server.setSecureContext()`.
 */
export class WorkerEdge {
  private readonly preamble: Preamble | undefined;

  constructor(options: EdgeOptions | undefined) {
    this.preamble = options ? Preamble.from(options) : undefined;
  }

  /** Whether connections start with a PROXY header or a TLS handshake here (open() then reads them). */
  get runsPreamble(): boolean {
    return this.preamble !== undefined;
  }

  /** Whether connections handed over unread start with a TLS handshake here. */
  get terminatesTls(): boolean {
    return this.preamble?.tls !== undefined;
  }

  /** New connections get the new certificate; open ones keep theirs (Node's `tls.Server.setSecureContext`). */
  setSecureContext(options: SecureContextOptions): void {
    this.preamble?.tls?.setSecureContext(options);
  }

  /**
   * Runs the preamble on a socket this worker owns. Resolves with the connection to serve (the TLS socket
   * over `raw`, the client named by the PROXY header), or undefined for a health check (closed before its
   * first byte, or a PROXY LOCAL check while the server drains), `raw` then destroyed. Rejects with
   * ProxyProtocolError or TlsHandshakeError, `raw` destroyed: the server reports it (API.md §3).
   */
  async open(raw: net.Socket, peer: ClientAddress, unread: UnreadConnection): Promise<PreambleResult | undefined> {
    if (!this.preamble) return { socket: raw, clientAddress: peer };
    this.preamble.draining = unread.draining;
    let result: PreambleResult | undefined;
    try {
      result = await this.preamble.run(raw, peer);
    } catch (err) {
      raw.destroy();
      throw err;
    }
    if (!result) raw.destroy();
    else if (result.socket !== raw) result.socket.on('error', () => undefined); // a reset surfaces through rfile/wfile
    return result;
  }
}

/**
 * The edge options a pool's workers need (`WorkerSpec.edge`), checked to cross by structured clone: tls,
 * proxyProtocol and the preamble's bound (`lineTimeout` seconds; null: none). Undefined without tls and
 * proxyProtocol. Throws ConfigurationError naming the handler for an `SNICallback` or any other option
 * that cannot be copied (API.md §3).
 */
export function portableEdge(handler: string, mode: 'threading' | 'forking', edge: EdgeOptions, lineTimeout: number | null = edge.limits?.lineTimeout ?? DEFAULT_LINE_TIMEOUT): EdgeOptions | undefined {
  const { tls, proxyProtocol } = edge;
  if (!tls && !proxyProtocol) return undefined;
  if (typeof tls?.SNICallback === 'function') throw new ConfigurationError(edgeMessages.sniWithWorkers(handler, mode));
  try {
    structuredClone(tls);
  } catch (err) {
    throw new ConfigurationError(edgeMessages.tlsNotCloneable(handler, mode, (err as Error).message));
  }
  // A key, certificate or option Node refuses is said here, naming tls: in a worker it surfaced as a worker that
  // could not load the handler, with advice about module layout (hostile re-check).
  if (tls) {
    try {
      new TlsTerminator(tls);
    } catch (err) {
      throw new ConfigurationError(edgeMessages.badTls(handler, (err as Error)?.message ?? String(err)));
    }
  }
  // The session-ticket keys the server's process uses too (withSharedTicketKeys): a session resumes on any worker.
  return { tls: withSharedTicketKeys(tls), proxyProtocol, limits: { lineTimeout: lineTimeout ?? Infinity } };
}
