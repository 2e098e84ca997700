/** Message builders for the production edge: PROXY protocol, TLS, limits. Each names the option and one fix. */
import { ClientAddress, formatAddress } from '../transports/address';
import { givenUpWhen, isSignalName, SECOND_SIGNAL_FIX } from './messages';

export const edgeMessages = {
  proxyUntrusted: (peer: ClientAddress) =>
    `PROXY protocol: ${formatAddress(peer)} is not a trusted proxy, so nothing it sends is taken for a header: ` +
    `clients must connect through the load balancer. Fix: connect through it, or add the proxy's address or CIDR ` +
    `to proxyProtocol.trusted (default loopback).`,
  proxyMissing: (peer: ClientAddress) =>
    `PROXY protocol: ${formatAddress(peer)} sent no PROXY header (proxyProtocol.required is true). ` +
    `Fix: connect through the load balancer with send-proxy / proxy_protocol on, or set proxyProtocol: { required: false }.`,
  proxyMalformed: (peer: ClientAddress, reason: string) =>
    `PROXY protocol: the header from ${formatAddress(peer)} is malformed: ${reason}. Fix: check the proxy's ` +
    `send-proxy / send-proxy-v2 setting (v1 text or v2 binary, HAProxy's spec).`,
  proxyIncomplete: (peer: ClientAddress) =>
    `PROXY protocol: ${formatAddress(peer)} closed the connection in the middle of its header.`,
  proxyCutAtShutdown: (peer: ClientAddress, seconds: number) =>
    `PROXY protocol: no complete header from ${formatAddress(peer)} within ${seconds} s of shutdown, which waits no longer for a header under way.`,
  /** A connection given up part-way through its `step` ('PROXY header', 'TLS handshake'), before any hook ran; `when`: givenUpWhen's. */
  preambleAbandoned: (step: string, when: number | string) =>
    `the connection was still in its ${step} ${givenUpWhen(when)}, so it was closed: no request had begun (neither @Verify nor the handler ran).` +
    (typeof when === 'number' || when === 'shutdownTimeout'
      ? ` Fix: give shutdownTimeout 1 s or more: shutdown lets a ${step} under way finish within 1 s.`
      : when === 'closed'
        ? ''
        : isSignalName(when)
          ? ` Fix: ${SECOND_SIGNAL_FIX} (shutdown lets a ${step} under way finish within 1 s).`
          : ` Fix: await shutdown() before ${when === 'serverClose()' ? when : 'close()'} (it lets a ${step} under way finish within 1 s).`),
  proxyTimeout: (peer: ClientAddress, seconds: number) =>
    `PROXY protocol: no complete header from ${formatAddress(peer)} within ${seconds} s (limits.lineTimeout). ` +
    `Fix: raise limits.lineTimeout, or check that the proxy sends a header.`,
  tlsFailed: (peer: ClientAddress, reason: string) =>
    `TLS handshake with ${formatAddress(peer)} failed: ${reason}.`,
  tlsCutAtShutdown: (peer: ClientAddress, seconds: number) =>
    `TLS handshake with ${formatAddress(peer)} did not complete within ${seconds} s of shutdown, which waits no longer for a handshake under way.`,
  tlsTimeout: (peer: ClientAddress, seconds: number) =>
    `TLS handshake with ${formatAddress(peer)} did not complete within ${seconds} s (limits.lineTimeout).`,
  lineTimeout: (seconds: number, what: string) =>
    `rfile: ${what} took more than ${seconds} s from its first byte (limits.lineTimeout). Fix: raise ` +
    `limits.lineTimeout, or make the client send the whole of it sooner.`,
  sniWithWorkers: (handler: string, mode: string) =>
    `${handler}: tls.SNICallback is a function, and functions cannot reach the ${mode} workers that terminate TLS. ` +
    `Fix: give the certificates as data (key/cert, or several with setSecureContext), or use @Concurrent.`,
  tlsNotCloneable: (handler: string, mode: string, reason: string) =>
    `${handler}: the tls options cannot be copied to the ${mode} workers that terminate TLS (${reason}). ` +
    `Fix: give keys, certificates and CAs as Buffers or strings and the other options as plain data, or use @Concurrent.`,
  secureContextNotCloneable: (owner: string, reason: string) =>
    `${owner}.setSecureContext(): the options cannot be copied to the workers that terminate TLS (${reason}), so ` +
    `nothing was changed. Fix: give keys, certificates and CAs as Buffers or strings and the other options as plain data.`,
  secureContextWithout: (owner: string, missing: string) =>
    `${owner}.setSecureContext(): ${missing}, so nothing was changed (the new context replaces the whole old one). ` +
    `Fix: give the key and the certificate that belongs to it (key, cert; or pfx), with ca and the other options you want kept.`,
  secureContextRefused: (owner: string, reason: string) =>
    `${owner}.setSecureContext(): Node's TLS refused the new options (${reason}), so nothing was changed: new connections ` +
    `keep the old certificate. Fix: give what Node's tls.createSecureContext() takes: a PEM private key and the certificate that ` +
    `belongs to it (key, cert; or pfx with its passphrase), and ciphers, minVersion and the other options as Node spells them.`,
  notTls: (owner: string) =>
    `${owner}.setSecureContext(): this server does not speak TLS. Fix: give it tls options (a key and a certificate) first.`,
  badTls: (owner: string, reason: string) =>
    `${owner}: tls: ${reason}. Fix: give a PEM private key and the certificate that belongs to it (key, cert; or pfx), ` +
    `and only options Node's tls.createSecureContext() accepts.`,
  badTrusted: (owner: string, reason: string) =>
    `${owner}: proxyProtocol.trusted: ${reason}. Fix: list addresses or CIDR blocks, e.g. ['127.0.0.1', '10.0.0.0/8'].`,
  routine: (error: unknown, client: ClientAddress | undefined) =>
    `${(error as Error)?.name ?? 'Error'} from ${formatAddress(client)}: ${(error as Error)?.message ?? String(error)}`,
};

/** What each edge option must be, and how to fix a bad one (the decorators' option texts). */
export const edgeOptionTexts = {
  tls: {
    requirement: "an object of Node's tls.createServer() options",
    fix: 'pass { key, cert } (and ca, requestCert, ALPNProtocols… as Node documents them), or leave tls out for plain TCP.',
  },
  proxyProtocol: {
    requirement: 'a boolean or an object { trusted?, required? }',
    fix: "pass true (headers from loopback, required), { trusted: ['10.0.0.0/8'], required: false }, or false for none.",
  },
  trusted: { requirement: 'an array of IP addresses or CIDR blocks', fix: "pass e.g. ['127.0.0.1', '10.0.0.0/8', '::1']." },
  required: { requirement: 'a boolean', fix: 'pass true (a header is required, the default) or false (plain connections allowed).' },
  limits: {
    requirement: 'an object { maxConnections?, maxConnectionsPerClient?, maxLineLength?, lineTimeout? }',
    fix: 'pass e.g. { maxConnections: 1000, lineTimeout: 30 }, or leave limits out for the defaults.',
  },
  maxConnections: { requirement: 'a positive integer', fix: 'pass the most connections to hold open at once, or leave it out for no limit.' },
  maxConnectionsPerClient: { requirement: 'a positive integer', fix: 'pass the most connections one client host may hold open, or leave it out.' },
  unixPerClient: {
    requirement: 'allowed on a Unix stream socket without proxyProtocol (every peer of a Unix socket is the same client, so it would cap the whole server)',
    fix: 'use limits.maxConnections for the whole server, or leave maxConnectionsPerClient out.',
  },
  maxLineLength: { requirement: 'a positive integer (bytes)', fix: 'pass the longest line to accept in bytes, or leave it out for 65536.' },
  lineTimeout: { requirement: 'a positive number (seconds)', fix: 'pass the seconds a line may take from its first byte, or leave it out for 30.' },
} as const;
