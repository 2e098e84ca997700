/**
 * A datagram whose @Setup throws gets no reply: Python's DatagramRequestHandler sends its reply from finish(),
 * which does not run when setup() raised (python-socketserver.md §1.7, §2.4), and sockserve's classic layer
 * does the same. The decorators sent whatever @Setup had written (and sockserve/testing said the same), so a
 * client got a half-made reply from a request that failed. A @Handle that throws still sends its reply (finish
 * runs after handle, as in Python).
 */
import 'reflect-metadata';
import { bootstrap, Concurrent, DatagramRequest, Framing, Handle, HandleError, MessageRequest, OnMessage, Server, Setup, UdpServer } from '../../src';
import { TestServer } from '../../src/testing';
import { datagramExchange, datagramSilence } from '../helpers/clients';
import { until } from '../fakes/fake-server';
import { servingInTests } from '../helpers/serving';

const serve = servingInTests<Server>();
const reported: string[] = [];
beforeEach(() => void reported.splice(0));

abstract class WritesInSetup {
  @Setup() async setup(req: DatagramRequest) {
    await req.wfile.write('from-setup;');
    if (req.data.toString() === 'setup-fails') throw new Error('setup failed');
  }
  @Handle() async handle(req: DatagramRequest) {
    await req.wfile.write('from-handle');
    if (req.data.toString() === 'handle-fails') throw new Error('handle failed');
  }
  @HandleError() failed(error: Error) { reported.push(error.message); }
}
@UdpServer(0) class SerialSetup extends WritesInSetup {}
@UdpServer(0) @Concurrent() class ConcurrentSetup extends WritesInSetup {}

@UdpServer(0) @Framing('lines')
class MessageSetup {
  @Setup() setup(req: MessageRequest) {
    req.send('greeting');
    throw new Error('setup failed');
  }
  @OnMessage() on(line: string) { return line.toUpperCase(); }
  @HandleError() failed(error: Error) { reported.push(error.message); }
}

function target(s: Server): { host: string; port: number } {
  return s.serverAddress as { host: string; port: number };
}

describe('a datagram whose @Setup throws', () => {
  test.each([['serial', SerialSetup], ['@Concurrent', ConcurrentSetup]] as const)('%s: gets no reply, reaches @HandleError; one whose @Handle throws still gets its reply', async (_mode, Handler) => {
    const s = serve(await bootstrap(Handler));
    expect(await datagramSilence(target(s), 'setup-fails')).toBe(true);
    await until(() => reported.length === 1);
    expect(reported).toEqual(['setup failed']);
    expect((await datagramExchange(target(s), 'handle-fails')).data.toString()).toBe('from-setup;from-handle');
    expect((await datagramExchange(target(s), 'ok')).data.toString()).toBe('from-setup;from-handle');
    await until(() => reported.length === 2);
    expect(reported).toEqual(['setup failed', 'handle failed']);
  });

  test('@OnMessage: what @Setup sent is not sent', async () => {
    const s = serve(await bootstrap(MessageSetup));
    expect(await datagramSilence(target(s), 'hi\n')).toBe(true);
    await until(() => reported.length === 1);
    expect(reported).toEqual(['setup failed']);
  });

  test('sockserve/testing says the same', async () => {
    const t = await TestServer.create(SerialSetup, { logger: { error() {}, warn() {} } });
    try {
      expect(await t.datagram('setup-fails')).toBeUndefined();
      expect((await t.datagram('handle-fails'))?.toString()).toBe('from-setup;from-handle');
    } finally {
      await t.close();
    }
    const m = await TestServer.create(MessageSetup, { logger: { error() {}, warn() {} } });
    try {
      expect(await m.datagram('hi\n')).toBeUndefined();
    } finally {
      await m.close();
    }
  });
});
