/** Where a request came from: `{ host, port, family }` for IP, `{ path }` for Unix (empty for an unbound client). */
export type ClientAddress = IpAddress | UnixAddress;
/** The other shape's fields are declared absent, so `client.host === '127.0.0.1'` compiles on either. */
export interface IpAddress {
  /** The peer's IP address, e.g. `'127.0.0.1'` or `'::1'`. */
  host: string;
  /** The peer's port. */
  port: number;
  /** Which IP family `host` is. */
  family: 'IPv4' | 'IPv6';
  /** Absent on IP addresses. */
  path?: undefined;
}
/** A Unix socket peer: `{ path }`, empty for a client that did not bind its socket. */
export interface UnixAddress {
  /** The peer's socket path; `''` for an unbound client. */
  path: string;
  /** Absent on Unix addresses. */
  host?: undefined;
  /** Absent on Unix addresses. */
  port?: undefined;
  /** Absent on Unix addresses. */
  family?: undefined;
}
/** Where a server listens: `{ host, port }` (the real port after port 0) or `{ path }`. */
export type ServerAddress =
  | {
      /** The address listened on. */
      host: string;
      /** The port listened on: the OS's pick when 0 was asked for. */
      port: number;
    }
  | {
      /** The Unix socket file's path. */
      path: string;
    };

/** The decorated server's address from the classic one (`[host, port]` or a Unix path). */
export function toServerAddress(classic: unknown): ServerAddress {
  if (typeof classic === 'string') return { path: classic };
  const [host, port] = classic as [string, number];
  return { host, port };
}

/** A server's address as log lines give it: `host:port` (an IPv6 host in brackets, `[::1]:9000`) or the Unix path. */
export function describeServerAddress(a: ServerAddress): string {
  return 'path' in a ? a.path : formatAddress({ host: a.host, port: a.port, family: a.host.includes(':') ? 'IPv6' : 'IPv4' });
}

export function isUnixAddress(a: ClientAddress): a is UnixAddress {
  return typeof (a as UnixAddress).path === 'string';
}

/** 'host:port' (IPv6 hosts bracketed) or the path, for messages. */
export function formatAddress(a: ClientAddress | undefined): string {
  if (!a) return '<unknown>';
  if (isUnixAddress(a)) return a.path || '<unbound>';
  if (a.host === '') return '<reset before accept>'; // its address went with its reset (stream-listener.ts)
  return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}

/** The client a PROXY header named, kept on the error its connection failed with (in its preamble, or in a worker). */
const NAMED_CLIENT = Symbol('sockserve.namedClient');

/**
 * Marks `err` (a failed TLS handshake, a request's error that came back from a worker) with the client its
 * PROXY header named: the server's process knows the connection by the proxy's address, and would report it under that.
 */
export function nameClient(err: unknown, client: ClientAddress): void {
  try {
    if (typeof err === 'object' && err !== null) Object.defineProperty(err, NAMED_CLIENT, { value: client, configurable: true });
  } catch {
    // a frozen error or a Proxy: reported under the address the server's process knows
  }
}

/** The client nameClient() put on `err`, if any. Never throws, whatever was thrown (a Proxy whose traps throw). */
export function clientNamedBy(err: unknown): ClientAddress | undefined {
  try {
    return typeof err === 'object' && err !== null ? (err as { [NAMED_CLIENT]?: ClientAddress })[NAMED_CLIENT] : undefined;
  } catch {
    return undefined;
  }
}
