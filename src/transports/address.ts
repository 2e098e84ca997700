/** Where a request came from: `{ host, port, family }` for IP, `{ path }` for Unix (empty for an unbound client). */
export type ClientAddress = IpAddress | UnixAddress;
export interface IpAddress { host: string; port: number; family: 'IPv4' | 'IPv6' }
export interface UnixAddress { path: string }

export function isUnixAddress(a: ClientAddress): a is UnixAddress {
  return typeof (a as UnixAddress).path === 'string';
}

/** 'host:port' (IPv6 hosts bracketed) or the path, for messages. */
export function formatAddress(a: ClientAddress | undefined): string {
  if (!a) return '<unknown>';
  if (isUnixAddress(a)) return a.path || '<unbound>';
  return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}
