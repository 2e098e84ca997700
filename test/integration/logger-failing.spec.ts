/**
 * A logger is user code: one whose methods throw, or return promises that reject, must not take the server down
 * (hostile run: a logger whose error() threw killed a @Concurrent server at the first handler error, the failure
 * being reported through that same error(); one whose info() threw made bootstrap() reject).
 */
import 'reflect-metadata';
import { bootstrap, Concurrent, ConfigurationError, Handle, Server, StreamRequest, TcpServer } from '../../src';
import { StreamRequestHandler, TCPServer } from '../../src/classic';
import { streamExchange } from '../helpers/clients';
import { eventually } from '../helpers/eventually';
import { servingInTests } from '../helpers/serving';

const serve = servingInTests<Server>();
const serveClassic = servingInTests<TCPServer>();
const target = (s: Server) => s.serverAddress as { host: string; port: number };

@TcpServer(0) @Concurrent()
class ThrowsOnRequest {
  @Handle() async handle(req: StreamRequest) {
    const line = (await req.rfile.readline()).toString();
    if (line === 'throw\n') throw new RangeError('the handler failed');
    await req.wfile.write(line);
  }
}

let written: string[];
let restore: () => void;
beforeEach(() => {
  written = [];
  const spy = jest.spyOn(process.stderr, 'write').mockImplementation(((chunk: string | Uint8Array) => {
    written.push(String(chunk));
    return true;
  }) as never);
  restore = () => spy.mockRestore();
});
afterEach(() => restore());

const failing = {
  throwing: () => {
    throw new Error('the logger is broken');
  },
  rejecting: () => Promise.reject(new Error('the logger is broken')),
};

test.each(Object.keys(failing))('a logger whose every method fails (%s): bootstrap() works, a handler error is written to stderr, and the server keeps serving', async (how) => {
  const fail = failing[how as keyof typeof failing];
  const logger = { error: fail, warn: fail, info: fail, debug: fail };
  const s = serve(await bootstrap(ThrowsOnRequest, { logger: logger as never }));
  expect((await streamExchange(target(s), 'throw\n', { halfClose: true })).toString()).toBe('');
  await eventually('the report on stderr', () => written.some((w) => /RangeError: the handler failed/.test(w)), 5000);
  expect(written.filter((w) => /^sockserve: the logger's (error|info)\(\) failed \(Error: the logger is broken\); its messages go to stderr instead\.\n$/.test(w))).toHaveLength(1);
  expect((await streamExchange(target(s), 'next\n', { halfClose: true })).toString()).toBe('next\n');
  expect(s.stats().errors).toBe(1);
});

class ClassicThrows extends StreamRequestHandler {
  override async handle() {
    const line = (await this.rfile.readline()).toString();
    if (line === 'throw\n') throw new RangeError('the classic handler failed');
    await this.wfile.write(line);
  }
}

test("a classic server's logger attribute set to one that throws is guarded as bootstrap()'s: the server keeps serving", async () => {
  // Set as a Python port sets attributes: it was called bare, and the process died at the first handler error.
  const server = new TCPServer(['127.0.0.1', 0], ClassicThrows);
  await server.ready;
  serveClassic(server);
  server.logger = { error: failing.throwing, warn: failing.throwing, info: failing.throwing, debug: failing.throwing };
  const at = { host: '127.0.0.1', port: server.serverAddress[1] as number };
  expect((await streamExchange(at, 'throw\n', { halfClose: true })).toString()).toBe('');
  await eventually('the report on stderr', () => written.some((w) => /RangeError: the classic handler failed/.test(w)), 5000);
  expect((await streamExchange(at, 'next\n', { halfClose: true })).toString()).toBe('next\n');
});

test('a logger whose method getter throws is a ConfigurationError naming the option; one that calls itself through server.logger loses no message and crashes nothing', async () => {
  const getter = { get error(): () => void { throw new Error('the getter threw'); }, info: () => undefined };
  await expect(bootstrap(ThrowsOnRequest, { logger: getter as never })).rejects.toThrow(/logger/);
  await expect(bootstrap(ThrowsOnRequest, { logger: getter as never })).rejects.toBeInstanceOf(ConfigurationError);
  let calls = 0;
  const recursing = { error(m: string) { calls++; t.logger.error(`again: ${m}`); }, info: () => undefined };
  const t = serve(await bootstrap(ThrowsOnRequest, { logger: recursing }));
  expect((await streamExchange(target(t), 'throw\n', { halfClose: true })).toString()).toBe('');
  await eventually('the report on stderr', () => written.some((w) => /RangeError: the handler failed/.test(w)), 5000);
  expect(calls).toBeLessThanOrEqual(8);
  expect((await streamExchange(target(t), 'next\n', { halfClose: true })).toString()).toBe('next\n');
});
