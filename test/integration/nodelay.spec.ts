/**
 * TCP_NODELAY: the decorators' stream connections run without Nagle's algorithm (a reply's tail must not
 * wait for the client's delayed ACK), in every mode, as @OnMessage's loop always did; the classic layer
 * keeps Python's default (Nagle on) unless the handler sets `disableNagleAlgorithm`. Where a worker
 * thread's connection is relayed, its setNoDelay() reaches the main thread's socket. Node cannot read the
 * option back, so the tests watch `net.Socket.prototype.setNoDelay` in this process (the main thread):
 * relayed connections are forced with SOCKSERVE_SOCKET_TRANSFER=0, so every Node line relays here.
 */
import 'reflect-metadata';
import * as net from 'node:net';
import { bootstrap, Server } from '../../src';
import type { BaseServer } from '../../src/classic';
import * as fixtures from '../fixtures/nodelay-handlers';
import { streamExchange } from '../helpers/clients';
import { servingInTests } from '../helpers/serving';

/** setNoDelay's calls on this process's sockets: the socket's local port at the call (the server's port on its side), and the value. */
let calls: Array<{ port: number | undefined; on: boolean }>;
let spy: jest.SpiedFunction<typeof net.Socket.prototype.setNoDelay>;

/** The values setNoDelay was called with on the server's side of connections to `port`. */
function serverSideCalls(port: number): boolean[] {
  return calls.filter((c) => c.port === port).map((c) => c.on);
}

const transfer = process.env.SOCKSERVE_SOCKET_TRANSFER;
beforeEach(() => {
  process.env.SOCKSERVE_SOCKET_TRANSFER = '0';
  calls = [];
  const original = net.Socket.prototype.setNoDelay;
  spy = jest.spyOn(net.Socket.prototype, 'setNoDelay').mockImplementation(function (this: net.Socket, on?: boolean) {
    calls.push({ port: this.localPort, on: on ?? true });
    return original.call(this, on);
  });
});
afterEach(() => {
  spy.mockRestore();
  if (transfer === undefined) delete process.env.SOCKSERVE_SOCKET_TRANSFER;
  else process.env.SOCKSERVE_SOCKET_TRANSFER = transfer;
});

describe.each([
  { mode: 'serial', Handler: fixtures.Serial },
  { mode: '@Concurrent', Handler: fixtures.Concurrently },
  { mode: '@Threading (relayed)', Handler: fixtures.Threaded },
  { mode: '@Threading (relayed) with @OnMessage', Handler: fixtures.ThreadedMessages },
])('TCP_NODELAY in $mode', ({ Handler }) => {
  const serve = servingInTests<Server>();

  test('each connection is set to TCP_NODELAY before its reply', async () => {
    const server = serve(await bootstrap(Handler));
    const { port } = server.serverAddress as { port: number };
    const reply = await streamExchange({ host: '127.0.0.1', port }, 'one\ntwo\n', { halfClose: true });
    expect(reply.toString()).toBe('one\ntwo\n');
    expect(serverSideCalls(port)).toEqual([true]);
  });
});

describe('TCP_NODELAY in the classic layer (Python: disable_nagle_algorithm, default False)', () => {
  const serve = servingInTests<BaseServer<any, any>>();

  test.each([
    ['a StreamRequestHandler leaves Nagle on', fixtures.classic.plain, []],
    ['disableNagleAlgorithm in a relayed worker thread sets TCP_NODELAY on the main thread\'s socket', fixtures.classic.threadedNoNagle, [true]],
  ])('%s', async (_what, make, expected) => {
    const server = make();
    await server.ready;
    serve(server);
    const port = (server.serverAddress as [string, number])[1];
    expect((await streamExchange({ host: '127.0.0.1', port }, 'one\n', { halfClose: true })).toString()).toBe('one\n');
    expect(serverSideCalls(port)).toEqual(expected);
  });
});
