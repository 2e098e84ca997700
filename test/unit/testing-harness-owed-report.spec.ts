import 'reflect-metadata';
import { Concurrent, Handle, HandleError, StreamRequest, TcpServer } from '../../src';
import { TestServer } from '../../src/testing';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const quiet = { error: () => undefined, warn: () => undefined };

// The handler fails at 0.2 s, its @HandleError runs until 0.45 s, close() gives up on the request at 0.3 s
// (shutdownTimeout): a real server leaves the report to that hook (once, the request's error counted); the harness
// ran the hook again with a RequestTimeoutError and counted both (errors 1 and clientErrors 1).
describe.each(['serial', '@Concurrent'])('sockserve/testing, %s: close() giving up on a request whose own @HandleError runs', (mode) => {
  test('leaves the report to that hook, as bootstrap()\'s servers do: one hook call, the request\'s error counted once', async () => {
    const hooks: string[] = [];
    abstract class FailsThenReportsSlowly {
      @Handle() async h(req: StreamRequest) {
        await req.rfile.readline();
        await sleep(200);
        throw new Error('boom');
      }
      @HandleError() async report(e: Error) {
        hooks.push(`${e.name}: ${e.message}`);
        await sleep(250);
      }
    }
    @TcpServer(0) class Serial extends FailsThenReportsSlowly {}
    @TcpServer(0) @Concurrent() class Interleaved extends FailsThenReportsSlowly {}
    const t = await TestServer.create(mode === 'serial' ? Serial : Interleaved, { shutdownTimeout: 0.3, logger: quiet });
    t.connect().write('go\n');
    await sleep(20);
    await t.close();
    expect(hooks).toEqual(['Error: boom']);
    expect(t.errors).toEqual([expect.objectContaining({ message: 'boom' })]);
    expect(t.server.stats()).toMatchObject({ active: 0, accepted: 1, errors: 1, clientErrors: 0 });
  });
});
