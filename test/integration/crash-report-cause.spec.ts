/**
 * The default report of a worker's death shows where the handler's code threw: the WorkerCrashedError's own stack is
 * sockserve's, the throw's is its `cause`, which the report left out (new-user run: "a stack made only of sockserve
 * internals"). The same for a handler error with a cause of its own, in the server's process.
 */
import 'reflect-metadata';
import { bootstrap, Concurrent, Handle, Server, StreamRequest, TcpServer } from '../../src';
import { ThrowsInTimerChild, ThrowsInTimerThread } from '../fixtures/dying-handlers';
import { streamExchange } from '../helpers/clients';
import { eventually } from '../helpers/eventually';
import { memoryLogger } from '../helpers/memory-logger';
import { servingInTests } from '../helpers/serving';

const serve = servingInTests<Server>();
const target = (s: Server) => s.serverAddress as { host: string; port: number };
const ask = (s: Server, line: string) => streamExchange(target(s), line, { halfClose: true, ms: 10000 }).then(String);

test.each([
  ['a thread', ThrowsInTimerThread],
  ['a child process', ThrowsInTimerChild],
])('a worker that dies of a throw in a timer of the handler (%s): the report shows the throw and its line in the fixture', async (_where, Handler) => {
  const logger = memoryLogger();
  const s = serve(await bootstrap(Handler, { logger }));
  expect(await ask(s, 'boom\n')).toBe('');
  await eventually('the report', () => logger.lines.error.length > 0, 10000);
  const report = logger.lines.error[0];
  expect(report).toMatch(/WorkerCrashedError: .*died: RangeError: thrown in a timer of the handler/);
  expect(report).toMatch(/\n\[cause\]: RangeError: thrown in a timer of the handler\n {6}at (Timeout\.)?throwingTimer .*dying-handlers\.ts:\d+/);
  expect(await ask(s, 'next\n')).toBe('next\n');
});

class Unreachable extends Error {}

@TcpServer(0) @Concurrent()
class CausedFailure {
  @Handle() async handle(req: StreamRequest) {
    await req.rfile.readline();
    try {
      JSON.parse('{');
    } catch (err) {
      throw new Unreachable('the store could not be read', { cause: err });
    }
  }
}

test("a handler error with a cause: the default report shows the cause's stack under the error's", async () => {
  const logger = memoryLogger();
  const s = serve(await bootstrap(CausedFailure, { logger }));
  await ask(s, 'x\n');
  await eventually('the report', () => logger.lines.error.length > 0, 10000);
  expect(logger.lines.error[0]).toMatch(/Error: the store could not be read\n {4}at [^]*\n\[cause\]: SyntaxError: [^\n]*JSON[^]*\n {6}at JSON\.parse/);
});
