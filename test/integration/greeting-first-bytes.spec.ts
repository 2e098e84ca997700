/**
 * A greeting sent from `@Setup` (`req.send()`, as docs/messages-and-framing.md shows) before the message loop
 * runs, on a connection whose first bytes were already read when the handler got it: after a PROXY header or a
 * TLS handshake in the server's process, relayed to a worker or served there. The client's lines must all be
 * answered, in order, after the greeting (new-user run: send() started the connection reading before the loop
 * listened for data, and the bytes already buffered went to no one: the client got `HELLO` and EOF, or `HELLO`
 * and `echo b` without `echo a`, with nothing logged or counted).
 */
import 'reflect-metadata';
import * as net from 'node:net';
import { bootstrap, Server } from '../../src';
import { TLS } from '../fixtures/edge-handlers';
import * as greeters from '../fixtures/greeting-handlers';
import { rawConnect, replyOf, tlsConnect, v1Header } from '../helpers/edge-clients';
import { servingInTests } from '../helpers/serving';

const classes = [
  ['serial', greeters.SerialGreeter],
  ['@Concurrent', greeters.ConcurrentGreeter],
  ['@Threading connectionsPerThread: 1', greeters.ThreadPerConnectionGreeter],
  ['@Threading perRequest', greeters.ThreadPerRequestGreeter],
  ['@Forking connectionsPerChild: 1', greeters.ChildPerConnectionGreeter],
] as const;
const edges = [
  ['a PROXY header', { proxyProtocol: true }],
  ['TLS', { tls: TLS }],
  ['a PROXY header and TLS', { proxyProtocol: true, tls: TLS }],
] as const;

describe.each(classes)('a @Setup greeting in %s', (_mode, Handler) => {
  const serve = servingInTests<Server>();

  test.each(edges)('after %s: every line the client sent at once is answered after the greeting, in order', async (_edge, transport) => {
    const server = serve(await bootstrap(Handler as never, { transport }));
    const target = server.serverAddress as { host: string; port: number };
    for (let round = 0; round < 6; round++) {
      const raw = await rawConnect(target, 'proxyProtocol' in transport ? v1Header('203.0.113.7', 40000 + round) : undefined);
      const socket: net.Socket = 'tls' in transport ? await tlsConnect(target, { raw }) : raw;
      const reply = replyOf(socket);
      // Two writes at once, then the end: the lines are in the server's buffers before the handler runs.
      socket.write('a\n');
      socket.write('b\n');
      socket.end();
      expect(await reply).toBe('HELLO\necho a\necho b\n');
      raw.destroy();
    }
  });
});
