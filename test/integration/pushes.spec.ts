import 'reflect-metadata';
import { bootstrap, Concurrent, Framing, HandleError, MessageRequest, OnMessage, Server, TcpServer } from '../../src';
import { GREETING, greeters, PushMode, pushers, tlsPushers } from '../fixtures/pushers';
import * as tls from 'node:tls';
import { connect, within } from '../helpers/clients';
import { memoryLogger } from '../helpers/memory-logger';
import { servingInTests } from '../helpers/serving';
import { eventually } from '../helpers/eventually';

const serve = servingInTests<Server>((s) => expect(s.stats().workers).toEqual([]));

function tcp(s: Server): { host: string; port: number } {
  return s.serverAddress as { host: string; port: number };
}

/** Polls every 20 ms, 10 s at most unless told (test/helpers/eventually.ts). */
const until = (what: string, cond: () => boolean, ms = 10000): Promise<void> => eventually(what, cond, ms, 20);

const modes: PushMode[] = ['serial', 'concurrent', 'threading', 'forking'];

describe.each(modes)('req.send() to a client that does not read, %s', (mode) => {
  test('pushing on past maxOutputBuffer ends that connection with an OutputBufferFullError (a client error), and the server goes on', async () => {
    const logger = memoryLogger();
    const server = serve(await bootstrap(pushers[mode] as never, { logger }));
    const reader = await connect(tcp(server));
    try {
      reader.on('error', () => undefined);
      reader.pause(); // reads nothing: 1,000 pushes of 64 KiB (64 MiB) cannot all wait in the server
      reader.write('flood 1000\n');
      await until('the server to end the flooded connection', () => server.stats().clientErrors === 1 && server.stats().active === 0, 20000);
      expect(server.stats().errors).toBe(0);
      expect(logger.lines.warn.join('\n')).toMatch(/OutputBufferFullError from 127\.0\.0\.1:\d+: @Framing\('lines'\): the client does not read: \d+ bytes of messages wait unsent, more than maxOutputBuffer 1048576/);
    } finally {
      reader.destroy();
    }
    // the server goes on: a client that reads gets every push, then the reply
    const next = await connect(tcp(server));
    try {
      let got = '';
      next.on('data', (d: Buffer) => (got += d.toString('latin1')));
      next.write('polite 300\n');
      await within(15000, 'the pushes and the reply', until('done', () => got.endsWith('done 300\n'), 15000));
      const lines = got.split('\n').slice(0, -2);
      expect(lines.map((l) => Number(l.split(' ')[0]))).toEqual(Array.from({ length: 300 }, (_, i) => i));
    } finally {
      next.destroy();
    }
  });

  test('a pusher that waits for drained() is held to the high-water mark by a slow reader, and loses nothing', async () => {
    const server = serve(await bootstrap(pushers[mode] as never));
    const reader = await connect(tcp(server));
    try {
      reader.pause();
      reader.write('polite 20000\n'); // 20,000 pushes of ~1 KB: 20 MB, far past maxOutputBuffer (1 MiB)
      await new Promise((r) => setTimeout(r, 500)); // the pusher meets the full kernel buffers and waits
      expect(server.stats().clientErrors).toBe(0);
      let got = '';
      let count = 0;
      reader.on('data', (d: Buffer) => {
        got += d.toString('latin1');
        // slowly: a pause every 256 KiB
        if ((count += d.length) > 256 * 1024) {
          count = 0;
          reader.pause();
          setTimeout(() => reader.resume(), 5);
        }
        if (got.length > 4 * 1024 * 1024) got = got.slice(got.lastIndexOf('\n', got.length - 2) + 1);
      });
      let seen = -1;
      let inOrder = true;
      let tail = '';
      reader.on('data', (d: Buffer) => {
        const text = tail + d.toString('latin1');
        const parts = text.split('\n');
        tail = parts.pop()!;
        for (const p of parts) {
          if (p.startsWith('done')) continue;
          const n = Number(p.slice(0, p.indexOf(' ')));
          if (n !== seen + 1) inOrder = false;
          seen = n;
        }
      });
      reader.resume();
      await within(30000, 'every push and the reply', until('done', () => got.endsWith('done 20000\n'), 30000));
      expect([seen, inOrder]).toEqual([19999, true]);
      expect(server.stats().clientErrors).toBe(0);
    } finally {
      reader.destroy();
    }
  });
});

describe.each(modes)('maxOutputBuffer bounds pushes, not replies, %s', (mode) => {
  test('a push that honours backpressure behind a large reply the client reads late ends nothing, and both arrive whole', async () => {
    const logger = memoryLogger();
    const server = serve(await bootstrap(pushers[mode] as never, { logger }));
    const reader = await connect(tcp(server));
    try {
      reader.pause();
      // 8 MB of reply (eight times maxOutputBuffer) waits for a client that reads a second late; meanwhile
      // the subscription's first push comes (300 ms on), and it honours send()'s answer and drained()
      reader.write(`later 3\nbig ${8_000_000}\n`);
      await new Promise((r) => setTimeout(r, 1000));
      let got = '';
      reader.on('data', (d: Buffer) => (got += d.toString('latin1')));
      reader.resume();
      await within(15000, 'the reply and the pushes', until('the last push', () => got.includes('later 2\n'), 15000));
      const lines = got.split('\n');
      expect(lines.filter((l) => l.startsWith('later'))).toEqual(['later', 'later 0', 'later 1', 'later 2']);
      expect(lines.some((l) => l.length === 8_000_000 && /^b+$/.test(l))).toBe(true);
      expect([server.stats().clientErrors, logger.lines.warn]).toEqual([0, []]);
    } finally {
      reader.destroy();
    }
  });
});

describe.each(modes)('pushes from a timer when the server closes, %s', (mode) => {
  test('close() ends the subscribed connections without a handler error or traceback', async () => {
    const logger = memoryLogger();
    const server = await bootstrap(pushers[mode] as never, { logger });
    const loop = server.serveForever(0.05);
    const clients = await Promise.all(Array.from({ length: mode === 'serial' ? 1 : 20 }, () => connect(tcp(server))));
    try {
      const ticking = clients.map((c) => {
        c.on('error', () => undefined);
        let got = '';
        c.on('data', (d: Buffer) => (got += d.toString()));
        c.write('tick\n');
        return until('ticks', () => (got.match(/tick/g) ?? []).length > 20, 10000);
      });
      await Promise.all(ticking);
      await new Promise((r) => setTimeout(r, 300));
      await within(10000, 'close', server.close());
      await within(10000, 'the serve loop', loop);
      expect(logger.lines.error).toEqual([]);
      expect(server.stats().errors).toBe(0);
    } finally {
      for (const c of clients) c.destroy();
      await server.close();
    }
  });
});

describe.each(modes)('a send from @Finish, %s', (mode) => {
  test('goes out after the replies and before the close, when the client half-closed', async () => {
    const server = serve(await bootstrap(pushers[mode] as never));
    const socket = await connect(tcp(server));
    try {
      let got = '';
      socket.on('data', (d: Buffer) => (got += d.toString()));
      const ended = new Promise((r) => socket.once('end', r));
      socket.end('polite 2\n');
      await within(10000, 'the close', ended);
      expect(got.replace(/x+/g, 'x')).toBe('0 x\n1 x\ndone 2\nbye\n');
    } finally {
      socket.destroy();
    }
  });
});

describe.each(modes)('a client that resets while @Setup waits in drained(), %s', (mode) => {
  test('ends that connection only: no worker dies, no server error, and the next client is greeted and served', async () => {
    const logger = memoryLogger();
    const server = serve(await bootstrap(greeters[mode] as never, { logger }));
    const quitter = await connect(tcp(server));
    quitter.on('error', () => undefined);
    quitter.pause(); // takes none of the 32 MiB greeting: @Setup waits in drained()
    await new Promise((r) => setTimeout(r, 500));
    quitter.resetAndDestroy();
    await until('the reset connection to end', () => server.stats().active === 0);
    const next = await connect(tcp(server));
    try {
      let bytes = 0;
      let tail = '';
      next.on('data', (d: Buffer) => {
        bytes += d.length;
        tail = (tail + d.toString('latin1')).slice(-20);
      });
      next.write('hi\n');
      await within(20000, 'the greeting and the echo', until('echo', () => tail.endsWith('echo hi\n'), 20000));
      expect(bytes).toBe(GREETING + 'echo hi\n'.length);
      expect(server.stats()).toMatchObject({ restarts: 0, errors: 0 });
      expect(logger.lines.error).toEqual([]);
    } finally {
      next.destroy();
    }
  });
});

describe.each(modes.flatMap((mode) => [[mode, 'plain'], [mode, 'TLS']] as const))('graceful shutdown while reading is paused by backpressure, %s, %s', (mode, over) => {
  test('a request that waited in the kernel behind a reply the client had not read is still answered', async () => {
    const server = await bootstrap((over === 'TLS' ? tlsPushers : pushers)[mode] as never);
    const loop = server.serveForever(0.05);
    const client =
      over === 'TLS'
        ? await within(5000, 'the handshake', new Promise<tls.TLSSocket>((resolve, reject) => {
            const socket = tls.connect({ ...tcp(server), rejectUnauthorized: false }, () => resolve(socket));
            socket.once('error', reject);
          }))
        : await connect(tcp(server));
    try {
      client.pause();
      const size = 32 * 1024 * 1024; // far past the kernel's buffers: the server stops reading until the client reads
      client.write(`big ${size}\n`);
      await new Promise((r) => setTimeout(r, 500));
      client.write('big 10\n'); // arrives while the server does not read
      await new Promise((r) => setTimeout(r, 200));
      const stopped = server.shutdown();
      await new Promise((r) => setTimeout(r, 300));
      const chunks: Buffer[] = [];
      client.on('data', (d: Buffer) => chunks.push(d));
      const ended = new Promise((r) => client.once('end', r));
      client.resume();
      await within(20000, 'the replies and the end', ended);
      const got = Buffer.concat(chunks).toString('latin1');
      expect(got.length).toBe(size + 1 + 11 + 4);
      expect(got.slice(size - 2)).toBe('bb\nbbbbbbbbbb\nbye\n');
      await within(10000, 'shutdown', stopped);
    } finally {
      client.destroy();
      await server.close();
      await within(10000, 'the serve loop', loop);
    }
  });
});

describe.each(modes)('close() with idle message connections open, %s', (mode) => {
  test('ends them quietly, as every mode does: no warning, no error (the pools warned once per connection)', async () => {
    const logger = memoryLogger();
    const server = await bootstrap(pushers[mode] as never, { logger });
    const loop = server.serveForever(0.05);
    const clients = await Promise.all(Array.from({ length: mode === 'serial' ? 1 : 5 }, () => connect(tcp(server))));
    try {
      const ended = clients.map((c) => {
        c.on('error', () => undefined);
        let got = '';
        c.on('data', (d: Buffer) => (got += d.toString('latin1')));
        c.write('polite 1\n');
        return {
          replied: until('the reply', () => got.endsWith('done 1\n')),
          closed: new Promise((r) => c.once('close', r)),
        };
      });
      await within(10000, 'the replies', Promise.all(ended.map((e) => e.replied)));
      await until('every connection to be open in the server', () => server.stats().active === clients.length);
      await within(10000, 'close', server.close());
      await within(10000, 'the serve loop', loop);
      await within(10000, 'the clients to be closed', Promise.all(ended.map((e) => e.closed)));
      expect(logger.lines.warn).toEqual([]);
      expect(logger.lines.error).toEqual([]);
      expect(server.stats()).toMatchObject({ errors: 0, clientErrors: 0 });
    } finally {
      for (const c of clients) c.destroy();
      await server.close();
    }
  });
});

// maxOutputBuffer is bytes, but a string push counted its length (UTF-16 units): pushes of '€' (3 bytes a character)
// held up to three times maxOutputBuffer before OutputBufferFullError stopped them (hostile run: about twice as many
// 3,000-byte pushes of '€' as of 'x' went through before the error, and the server's RSS grew accordingly).
describe('req.send() counts a string push in bytes against maxOutputBuffer', () => {
  const pushedBeforeTheError = async (unit: string): Promise<number> => {
    let pushed = -1;
    @TcpServer(0) @Concurrent() @Framing('lines', { maxOutputBuffer: 8 * 1024 * 1024 })
    class Flood {
      @OnMessage() async on(_line: string, req: MessageRequest<string>) {
        const message = unit.repeat(3000 / Buffer.byteLength(unit)); // 3,000 bytes either way
        for (let i = 0; i < 20000; i++) {
          if (req.send(message)) continue;
          // drained() settles false once the connection has failed; else it waits for a 'drain' (true)
          const drained = await Promise.race([req.drained(), new Promise<'waiting'>((r) => setImmediate(() => r('waiting')))]);
          if (drained === false) return void (pushed = i);
        }
        pushed = 20000;
      }
      @HandleError() quiet() {}
    }
    const server = serve(await bootstrap(Flood, { logger: memoryLogger() }));
    const reader = await connect(tcp(server));
    try {
      reader.on('error', () => undefined);
      reader.pause(); // reads nothing
      reader.write('flood\n');
      await until('the flood to end', () => pushed >= 0, 20000);
      return pushed;
    } finally {
      reader.destroy();
    }
  };

  test("as many 3,000-byte pushes of '€' as of 'x' go out before the OutputBufferFullError", async () => {
    const ascii = await pushedBeforeTheError('x');
    const euro = await pushedBeforeTheError('€');
    expect(ascii).toBeLessThan(20000);
    expect(euro).toBeLessThan(ascii * 1.25);
  });
});
