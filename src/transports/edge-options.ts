import type * as tls from 'node:tls';

/**
 * The production-edge options of the stream transports (`@TcpServer`, `@UnixStreamServer`, and the classic
 * TCPServer/UnixStreamServer through their constructor options): TLS, the PROXY protocol, and limits.
 * [production](../../docs/production.md).
 */

/** Node's `tls.createServer()` options (`key`, `cert`, `ca`, `requestCert`, `ALPNProtocols`, `SNICallback`…). */
export type TlsServerOptions = tls.TlsOptions;

/**
 * `true` is `{ trusted: loopback, required: true }`; `false` (like leaving it out) reads no header, so
 * `proxyProtocol: process.env.BEHIND_PROXY === '1'` works.
 * - `trusted`: addresses or CIDRs (`'10.0.0.0/8'`, `'::1'`) allowed to send a header; default loopback
 *   (127.0.0.0/8 and ::1). Peers of a Unix stream socket are always trusted (the socket file's mode is the
 *   access control).
 * - `required` (default true): a connection without a header is a ProxyProtocolError; with false, a connection
 *   whose first bytes do not match a header's signature is plain data, none of its bytes lost.
 */
export type ProxyProtocolOption = boolean | {
  /**
   * Peers allowed to send a header: IPv4/IPv6 addresses or CIDRs (`'10.0.0.0/8'`, `'::1'`). Default
   * loopback (127.0.0.0/8 and ::1). A header from any other peer is a ProxyProtocolError. A bad entry
   * is a RangeError when the server is built.
   */
  trusted?: string[];
  /**
   * Default true: a connection without a header is a ProxyProtocolError. With false, a connection whose
   * first bytes do not match a header's signature (`PROXY ` for v1, the 12-byte v2 signature) is served
   * as plain data, none of its bytes lost.
   */
  required?: boolean };

/**
 * `limits` of a stream transport ([production](../../docs/production.md)): bounds on connections, lines and slow clients. A connection
 * refused by `maxConnections` or `maxConnectionsPerClient` is accepted and closed at once with nothing read
 * (as Node's `server.maxConnections`), reaches no hook and counts in `stats().rejected`.
 */
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

/**
 * The production-edge options every stream transport takes (`@TcpServer`, `@UnixStreamServer`, the classic
 * TCPServer and UnixStreamServer): TLS, the PROXY protocol and limits ([production](../../docs/production.md)). Per connection the
 * PROXY header is read first, then the TLS handshake runs, then `@Verify`.
 */
export interface EdgeOptions {
  /**
   * Terminate TLS: Node's `tls.createServer()` options (`key`, `cert`, `ca`, `requestCert`, `ALPNProtocols`…).
   * Default none (plain text). A failed handshake or a plain-text client ends that connection with a
   * TlsHandshakeError (one `warn` line by default, counted in `stats().tlsErrors`). With `@Threading` or
   * `@Forking` the options must be structured-cloneable: an `SNICallback` there is a ConfigurationError.
   */
  tls?: TlsServerOptions;
  /**
   * Expect a PROXY protocol header (v1 or v2, as HAProxy, nginx, Envoy send it) before any byte of data;
   * `clientAddress` is then the original client and `req.proxy` the header. Default none.
   */
  proxyProtocol?: ProxyProtocolOption;
  /** Connection, line and slowloris limits; each default is given on {@link StreamLimits}. */
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
  /** The header's version: 1 (the text form, `PROXY TCP4 …\r\n`) or 2 (the binary form). */
  version: 1 | 2;
  /** `'PROXY'`: the proxy relays a client; `'LOCAL'` (v2 only): the proxy's own connection, a health check. */
  command: 'PROXY' | 'LOCAL';
  /** The original connection's address family; `'UNKNOWN'` for v1 `PROXY UNKNOWN` and v2 LOCAL/unspecified. */
  protocol: 'TCP4' | 'TCP6' | 'UNIX' | 'UNKNOWN';
  /** The original client (for UNIX, `host` is the path and `port` 0; empty for LOCAL and UNKNOWN). */
  source: {
    /** An IPv4 or IPv6 address, or the Unix socket path; `''` when the header names none. */
    host: string;
    /** The TCP port; 0 for UNIX and when the header names none. */
    port: number };
  /** The address the client connected to, on the proxy. */
  destination: {
    /** An IPv4 or IPv6 address, or the Unix socket path; `''` when the header names none. */
    host: string;
    /** The TCP port; 0 for UNIX and when the header names none. */
    port: number };
  /** v2's type-length-value extensions (ALPN 0x01, authority 0x02, unique id 0x05, SSL 0x20…), in order; empty for v1. */
  tlvs: {
    /** The TLV's type byte (0x01 ALPN, 0x02 authority, 0x05 unique id, 0x20 SSL…). */
    type: number;
    /** The TLV's value bytes, as sent. */
    value: Buffer }[];
}
