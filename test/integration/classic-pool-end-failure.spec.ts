import { streamExchange, within } from '../helpers/clients';
import { until } from '../fakes/fake-server';
import { memoryLogger } from '../helpers/memory-logger';
import { servingInTests } from '../helpers/serving';
import { threadedCloseThrows } from '../fixtures/classic-end-failure-handlers';

const serve = servingInTests();

test('ThreadingMixIn: a closeRequest that throws is logged through the server\'s logger, not straight to stderr (the pool\'s processor has no logger of its own)', async () => {
  const stderr = jest.spyOn(console, 'error').mockImplementation(() => undefined);
  const write = jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
  try {
    const server = threadedCloseThrows();
    const logger = memoryLogger();
    server.logger = logger as never;
    await server.ready;
    serve(server);
    const [host, port] = server.serverAddress as [string, number];
    expect(String(await within(10000, 'the reply', streamExchange({ host, port }, 'hi\n', { halfClose: true })))).toBe('hi\n');
    await until(() => logger.lines.error.length > 0, 5000); // its bound was 10 ms: a flake on a loaded machine
    expect(logger.lines.error).toEqual([expect.stringMatching(/error while ending a request: Error: closeRequest failed/)]);
    expect([...stderr.mock.calls, ...write.mock.calls].map(String).filter((l) => l.includes('closeRequest failed'))).toEqual([]);
  } finally {
    stderr.mockRestore();
    write.mockRestore();
  }
}, 20000);
