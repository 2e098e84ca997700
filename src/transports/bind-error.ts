import { AddressInUseError } from '../errors/errors';
import { messages } from '../errors/messages';

/** Where a bind failed: an IP address (TCP or UDP) or a Unix socket path. */
export type BindTarget = { host: string; port: number } | { path: string };

/**
 * A failed bind or listen as sockserve reports it (API.md §9): EADDRINUSE is an AddressInUseError; any other
 * failure keeps Node's `code`, `errno` and `syscall` (and the original error as `cause`) with a message that
 * names the server, the address and one way to fix it (Python raises OSError there, with the errno's text only).
 */
export function bindError(owner: string, address: string, target: BindTarget, err: NodeJS.ErrnoException): Error {
  if (err.code === 'EADDRINUSE') return new AddressInUseError(messages.addressInUse(owner, address), { cause: err });
  const failed = new Error(messages.bindFailed(owner, address, err.code ?? err.message, fixFor(target, err.code)), { cause: err });
  return Object.assign(failed, { code: err.code, errno: err.errno, syscall: err.syscall });
}

function fixFor(target: BindTarget, code: string | undefined): string {
  if ('path' in target) {
    if (code === 'EACCES' || code === 'EPERM') return 'this process may not create a file in that directory: choose a directory it may write to (os.tmpdir(), $XDG_RUNTIME_DIR)';
    return 'check that the directory exists and is writable, and that the path is shorter than 108 bytes';
  }
  switch (code) {
    case 'EADDRNOTAVAIL':
      return `${target.host} is not an address of this machine: use one of its addresses, 127.0.0.1 or ::1 for loopback only, or 0.0.0.0 or :: for every interface`;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EAI_FAIL':
    case 'EAI_NONAME':
      return `the host name ${target.host} did not resolve: use an IP address, or a name this machine resolves (/etc/hosts)`;
    case 'EACCES':
    case 'EPERM':
      return target.port > 0 && target.port < 1024
        ? `port ${target.port} is privileged on Linux: use a port of 1024 or more, or give the process CAP_NET_BIND_SERVICE`
        : 'the system refused this process the address: check firewall rules (SELinux, seccomp) or use another port';
    case 'EAFNOSUPPORT':
      return `this machine has no ${target.host.includes(':') ? 'IPv6' : 'IPv4'} support for that address: use an address of the other family`;
    default:
      return 'check the address and port';
  }
}
