import type * as tls from 'node:tls';

/**
 * The production-edge options of the stream transports (`@TcpServer`, `@UnixStreamServer`, and the classic
 * TCPServer/UnixStreamServer through their constructor options): TLS, the PROXY protocol, and limits.
 * API.md §11.
 */

/** Node's `tls.createServer()` options (`key`, `cert`, `ca`, `requestCert`, `ALPNProtocols`, `SNICallback`…). */
export type TlsServerOptions = tls.TlsOptions;

/**
 * `true` is `{ trusted: loopback, required: true }`.
 * - `trusted`: addresses or CIDRs (`'10.0.0.0/8'`, `'::1'`) allowed to send a header; default loopback
 *   (127.0.0.0/8 and ::1). Peers of a Unix stream socket are always trusted (the socket file's mode is the
 *   access control).
 * - `required` (default true): a connection without a header is a ProxyProtocolError; with false, a connection
 *   whose first bytes do not match a header's signature is plain data, none of its bytes lost.
 */
export type ProxyProtocolOption = true | { trusted?: string[]; required?: boolean };

export interface StreamLimits {
  /** Open connections per server, all workers together; past it a new connection is accepted and closed at once. Default none. */
  maxConnections?: number;
  /** Open connections per client host (the original client behind a PROXY header). Default none. */
  maxConnectionsPerClient?: number;
  /** Longest line `rfile.readline()` accepts, in bytes. Default 65536 (64 KiB). */
  maxLineLength?: number;
  /**
   * Seconds a line or a `read(n)` body may take from its first byte (slowloris), and a PROXY header or a TLS
   * handshake from the connection's start. Default 30 (HAProxy's `timeout http-request`, nginx's
   * `client_header_timeout` are the models).
   */
  lineTimeout?: number;
}

/** The edge options as a stream server holds them. */
export interface EdgeOptions {
  tls?: TlsServerOptions;
  proxyProtocol?: ProxyProtocolOption;
  limits?: StreamLimits;
}

export const DEFAULT_LINE_TIMEOUT = 30;

/** What `req.tls` holds for a TLS connection. */
export interface TlsInfo {
  /** `'TLSv1.3'`, `'TLSv1.2'`… */
  protocol: string | null;
  /** The cipher suite's name, e.g. `'TLS_AES_256_GCM_SHA384'`. */
  cipher: string | null;
  /** The protocol both sides agreed on through ALPN, or null. */
  alpnProtocol: string | null;
  /** The name the client asked for through SNI, or null. */
  servername: string | null;
  /** The client's certificate was verified against `ca` (only meaningful with `requestCert`). */
  authorized: boolean;
  /** Why it was not (`'UNABLE_TO_VERIFY_LEAF_SIGNATURE'`…), when it was asked for and failed. */
  authorizationError?: string;
  /** The client's certificate (Node's non-detailed `getPeerCertificate()`), when it sent one. */
  peerCertificate?: tls.PeerCertificate;
}

/** What `req.proxy` holds for a connection that came with a PROXY protocol header. */
export interface ProxyInfo {
  version: 1 | 2;
  command: 'PROXY' | 'LOCAL';
  protocol: 'TCP4' | 'TCP6' | 'UNIX' | 'UNKNOWN';
  /** The original client (for UNIX, `host` is the path and `port` 0; empty for LOCAL and UNKNOWN). */
  source: { host: string; port: number };
  /** The address the client connected to, on the proxy. */
  destination: { host: string; port: number };
  /** v2's type-length-value extensions (ALPN 0x01, authority 0x02, unique id 0x05, SSL 0x20…), in order. */
  tlvs: { type: number; value: Buffer }[];
}
