import 'reflect-metadata';
import * as dgram from 'node:dgram';
import { bootstrap, Concurrent, DatagramRequest, Handle, Server, UdpServer } from '../../src';
import { within } from '../helpers/clients';
import { until } from '../fakes/fake-server';
import { servingInTests } from '../helpers/serving';
import { memoryLogger } from '../helpers/memory-logger';
import { ChildRepliesLate, ChildSpinsThenReplies, ThreadRepliesLate } from '../fixtures/late-datagram-pool-handlers';

const modes = [
  { mode: 'serial', decorate: (): ClassDecorator => () => undefined },
  { mode: '@Concurrent', decorate: (): ClassDecorator => Concurrent() },
];
const pools = [
  { mode: '@Threading', Handler: ThreadRepliesLate },
  { mode: '@Forking', Handler: ChildRepliesLate },
];

describe.each(modes)('a datagram abandoned at shutdownTimeout in $mode mode', (m) => {
  const serve = servingInTests<Server>();

  test.each(['returns', 'throws'])('whose handler %s later sends no reply: it was reported and counted (bytesOut 0) then, as the pools end theirs', async (how) => {
    @UdpServer(0) @m.decorate()
    class Late {
      @Handle() async h(req: DatagramRequest) {
        await req.wfile.write('early;');
        await new Promise((r) => setTimeout(r, 600));
        await req.wfile.write('late');
        if (how === 'throws') throw new Error('late');
      }
    }
    const s = serve(await bootstrap(Late, { logger: memoryLogger(), shutdownTimeout: 0.3 }));
    const client = dgram.createSocket('udp4');
    const got: string[] = [];
    client.on('message', (d) => got.push(String(d)));
    try {
      const { host, port } = s.serverAddress as { host: string; port: number };
      client.send('hello', port, host);
      await until(() => s.stats().active === 1, 5000);
      await within(5000, 'shutdown', s.shutdown());
      expect(s.stats()).toMatchObject({ active: 0, bytesIn: 5, bytesOut: 0, clientErrors: 1 });
      await new Promise((r) => setTimeout(r, 900)); // the handler comes back
      // it sent 'early;late' to the client, uncounted (bytesOut stayed 0), after its RequestTimeoutError
      expect(got).toEqual([]);
      expect(s.stats()).toMatchObject({ active: 0, bytesIn: 5, bytesOut: 0, clientErrors: 1, errors: 0 });
    } finally {
      client.close();
    }
  }, 15000);
});

// The worker left a datagram out of the pool's abandoning: the pool waited half a second (ABANDON_MS) for an answer
// that never came, so a handler back within that time was served late (shutdown() took 0.6 s with shutdownTimeout 0.3,
// its reply sent and counted), and one still running ended with the worker, its bytes in uncounted with @Forking.
describe.each(pools)('a datagram abandoned at shutdownTimeout in $mode mode', (m) => {
  const serve = servingInTests<Server>();

  test.each(['returns', 'throws'])('whose handler %s later is given up at shutdownTimeout, as in the server\'s own process: reported, counted (bytesOut 0), no reply', async (how) => {
    const s = serve(await bootstrap(m.Handler, { logger: memoryLogger(), shutdownTimeout: 0.3 }));
    const client = dgram.createSocket('udp4');
    const got: string[] = [];
    client.on('message', (d) => got.push(String(d)));
    try {
      const { host, port } = s.serverAddress as { host: string; port: number };
      client.send(how === 'throws' ? 'throw' : 'hello', port, host);
      await until(() => s.stats().active === 1, 5000);
      await within(5000, 'shutdown', s.shutdown());
      expect(s.stats()).toMatchObject({ active: 0, bytesIn: 5, bytesOut: 0, clientErrors: 1, errors: 0 });
      await new Promise((r) => setTimeout(r, 900)); // the handler would come back
      expect(got).toEqual([]);
      expect(s.stats()).toMatchObject({ active: 0, bytesIn: 5, bytesOut: 0, clientErrors: 1, errors: 0 });
    } finally {
      client.close();
    }
  }, 15000);
});

// close() ends a datagram whose handler is still running: serial, @Concurrent and @Threading servers send no reply
// for it (their socket is closed: "the reply was not sent", a client error). A @Forking child replies from its own
// copy of the socket, which stays open for the datagrams in hand: a handler back within close()'s grace had its
// reply sent after close() and counted as served (bytesOut 10, no error).
describe.each(pools)('a datagram whose handler returns just after close() in $mode mode', (m) => {
  const serve = servingInTests<Server>();

  test('sends no reply, and is reported as one whose reply was not sent (the socket is closed), as in the server\'s own process', async () => {
    const logger = memoryLogger();
    const s = serve(await bootstrap(m.Handler, { logger, shutdownTimeout: 5 }));
    const client = dgram.createSocket('udp4');
    const got: string[] = [];
    client.on('message', (d) => got.push(String(d)));
    try {
      const { host, port } = s.serverAddress as { host: string; port: number };
      client.send('hello', port, host);
      await until(() => s.stats().active === 1, 5000);
      // Dispatched to the worker now, give or take the poll's step: its handler returns 600 ms after it began.
      // close() comes 50 ms before that, the middle of the worker's 100 ms grace (CLOSE_GRACE_MS), so that the
      // handler returns within it. Timed from the client's send, the UDP delivery and the dispatch came on top:
      // under load the handler came back past the grace (the worker was ended: another report).
      const started = performance.now();
      await new Promise((r) => setTimeout(r, Math.max(0, started + 550 - performance.now())));
      await within(5000, 'close', s.close());
      await new Promise((r) => setTimeout(r, 300)); // a late reply would have come by now
      expect(got).toEqual([]);
      expect(s.stats()).toMatchObject({ active: 0, bytesIn: 5, bytesOut: 0, clientErrors: 1, errors: 0 });
      expect(logger.lines.warn).toEqual([expect.stringContaining('the socket is closed (close() was called while the request ran), so the reply was not sent')]);
    } finally {
      client.close();
    }
  }, 15000);
});

// A child whose event loop was blocked when close() came, so it answered nothing, got SIGTERM and 2 s to exit by
// itself: it came back within them, sent the reply close() had reported as not sent, and went on reading the shared
// socket, serving datagrams no count or event told of (hostile run: 5 replies, 2 requests counted, both "not sent").
describe('@Forking, a child blocked when close() comes', () => {
  const serve = servingInTests<Server>();

  test('is ended at once: the reply close() reported as not sent is not sent, and the datagrams behind it are not served', async () => {
    const s = serve(await bootstrap(ChildSpinsThenReplies, { logger: memoryLogger(), shutdownTimeout: 5 }));
    const client = dgram.createSocket('udp4');
    const got: string[] = [];
    client.on('message', (d) => got.push(String(d)));
    try {
      const { host, port } = s.serverAddress as { host: string; port: number };
      client.send('spin', port, host);
      await until(() => s.stats().active === 1, 5000);
      client.send('behind', port, host); // in the socket's queue: the child is blocked
      const spinning = performance.now();
      await within(10000, 'close', s.close());
      await new Promise((r) => setTimeout(r, Math.max(0, spinning + 3500 - performance.now()))); // the spin is over by now
      expect(got).toEqual([]);
      expect(s.stats()).toMatchObject({ active: 0, accepted: 1, bytesIn: 4, bytesOut: 0, clientErrors: 1, errors: 0 });
    } finally {
      client.close();
    }
  }, 20000);
});
