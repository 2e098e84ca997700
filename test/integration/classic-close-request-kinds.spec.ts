/**
 * A stream server's shutdownRequest when the half-close is asked for at once (a plain socket, nothing
 * queued: the usual end of a connection): closeRequest runs in the same turn and shutdownRequest returns the
 * shared RESOLVED promise, so that the loop chains nothing and arms no shutdownTimeout timer per connection.
 * A closeRequest override that returns a promise is still waited for, and one that throws is still logged
 * with its connection closed all the same.
 */
import * as net from 'node:net';
import { StreamRequestHandler, TCPServer } from '../../src/classic';
import { askUntilEof } from '../helpers/clients';
import { servingInTests } from '../helpers/serving';
import { RESOLVED } from '../../src/lifecycle/resolved';

class Echo extends StreamRequestHandler {
  override async handle(): Promise<void> {
    await this.wfile.write(await this.rfile.readline());
  }
}

describe('a TCPServer ending a plain connection with nothing queued', () => {
  const serve = servingInTests<TCPServer>();

  async function start(s: TCPServer, logged: string[] = []): Promise<number> {
    s.logger = { error: (m: string) => logged.push(m), warn: (m: string) => logged.push(m), info() {}, debug() {} };
    await s.ready;
    serve(s);
    return s.serverAddress[1] as number;
  }

  test('closes it in the same turn: shutdownRequest returns RESOLVED with the socket already closed by closeRequest', async () => {
    const seen: Array<{ resolved: boolean; closedAlready: boolean }> = [];
    const closed = new Set<net.Socket>();
    class Watched extends TCPServer {
      override shutdownRequest(request: net.Socket): Promise<void> {
        const ended = super.shutdownRequest(request);
        seen.push({ resolved: ended === RESOLVED, closedAlready: closed.has(request) });
        return ended;
      }
      override closeRequest(request: net.Socket): void {
        closed.add(request);
        super.closeRequest(request);
      }
    }
    const port = await start(new Watched(['127.0.0.1', 0], Echo));
    for (let i = 0; i < 3; i++) expect(await askUntilEof(port, `line ${i}\n`)).toEqual({ reply: `line ${i}\n`, eof: true });
    expect(seen).toEqual([0, 1, 2].map(() => ({ resolved: true, closedAlready: true })));
  });

  test('a closeRequest override that returns a promise is waited for before the next request is taken', async () => {
    const order: string[] = [];
    class Slow extends TCPServer {
      override closeRequest(request: net.Socket): Promise<void> {
        order.push('close start');
        super.closeRequest(request);
        return new Promise((r) => setTimeout(() => {
          order.push('close end');
          r();
        }, 50));
      }
      override processRequest(request: net.Socket, client: Parameters<TCPServer['processRequest']>[1]): Promise<void> {
        order.push('process');
        return super.processRequest(request, client);
      }
    }
    const port = await start(new Slow(['127.0.0.1', 0], Echo));
    expect(await askUntilEof(port, 'a\n')).toEqual({ reply: 'a\n', eof: true });
    expect(await askUntilEof(port, 'b\n')).toEqual({ reply: 'b\n', eof: true });
    await new Promise((r) => setTimeout(r, 100));
    expect(order).toEqual(['process', 'close start', 'close end', 'process', 'close start', 'close end']);
  });

  test('a closeRequest override that throws is logged, the connection is closed all the same, and the server serves on', async () => {
    const logged: string[] = [];
    class Throwing extends TCPServer {
      override closeRequest(): void {
        throw new Error('closeRequest failed');
      }
    }
    const port = await start(new Throwing(['127.0.0.1', 0], Echo), logged);
    for (let i = 0; i < 2; i++) expect(await askUntilEof(port, `line ${i}\n`)).toEqual({ reply: `line ${i}\n`, eof: true });
    expect(logged).toHaveLength(2);
    for (const l of logged) expect(l).toMatch(/error while ending a request: Error: closeRequest failed/);
  });

  test('a processRequest override that never ends the connection (Python\'s `return self.finish_request(...)`) has it ended for it, with one warning', async () => {
    const logged: string[] = [];
    class Kept extends TCPServer {
      override processRequest(request: net.Socket, client: Parameters<TCPServer['processRequest']>[1]): Promise<void> {
        return this.finishRequest(request, client);
      }
    }
    const port = await start(new Kept(['127.0.0.1', 0], Echo), logged);
    // Each client gets its reply and then EOF (it waited for it until close()), and the server forgets the connection.
    for (let i = 0; i < 3; i++) expect(await askUntilEof(port, `line ${i}\n`)).toEqual({ reply: `line ${i}\n`, eof: true });
    expect(logged).toHaveLength(1);
    expect(logged[0]).toMatch(/^Kept\.processRequest\(\) returned without shutdownRequest\(request\).*Fix: /);
  });

  test('an override that hands the request over late (super.processRequest() after an await) or ends it itself is left alone', async () => {
    const logged: string[] = [];
    class Late extends TCPServer {
      override async processRequest(request: net.Socket, client: Parameters<TCPServer['processRequest']>[1]): Promise<void> {
        await new Promise((r) => setTimeout(r, 5));
        return super.processRequest(request, client);
      }
    }
    class Itself extends TCPServer {
      override async processRequest(request: net.Socket, client: Parameters<TCPServer['processRequest']>[1]): Promise<void> {
        await this.finishRequest(request, client);
        await this.shutdownRequest(request);
      }
    }
    for (const S of [Late, Itself]) {
      const port = await start(new S(['127.0.0.1', 0], Echo), logged);
      for (let i = 0; i < 2; i++) expect(await askUntilEof(port, `line ${i}\n`)).toEqual({ reply: `line ${i}\n`, eof: true });
    }
    expect(logged).toEqual([]);
  });
});
