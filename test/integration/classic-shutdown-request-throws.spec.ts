/**
 * A classic server whose `shutdownRequest` override fails (throws, or returns a promise that rejects) before
 * it closes the request: the failure is logged, the server serves on, and the connection is closed all the
 * same (hostile run: the client got its reply but never EOF, and the server kept one descriptor per such
 * request until close(); Python's garbage collector closes such a socket).
 */
import { StreamRequestHandler, TCPServer } from '../../src/classic';
import { askUntilEof } from '../helpers/clients';

class Echo extends StreamRequestHandler {
  override async handle(): Promise<void> {
    await this.wfile.write(await this.rfile.readline());
  }
}

class ThrowingShutdown extends TCPServer {
  override shutdownRequest(): Promise<void> {
    throw new Error('shutdownRequest failed'); // at once, not a rejection
  }
}

class RejectingShutdown extends TCPServer {
  override async shutdownRequest(): Promise<void> {
    await new Promise((r) => setTimeout(r, 5));
    throw new Error('shutdownRequest failed later');
  }
}


describe.each([
  { name: 'throws', Server: ThrowingShutdown },
  { name: 'rejects', Server: RejectingShutdown },
])('a TCPServer whose shutdownRequest $name', ({ Server }) => {
  let server: TCPServer | undefined;
  let loop: Promise<void> | undefined;
  afterEach(async () => {
    await server?.shutdown();
    await loop;
    await server?.close();
  });

  test('logs it, closes the connection all the same (the client reads EOF), and serves on', async () => {
    const logged: string[] = [];
    server = new Server(['127.0.0.1', 0], Echo);
    server.logger = { error: (m: string) => logged.push(m), warn: (m: string) => logged.push(m), info() {}, debug() {} };
    await server.ready;
    loop = server.serveForever(0.05);
    const port = server.serverAddress[1] as number;
    for (let i = 0; i < 3; i++) expect(await askUntilEof(port, `line ${i}\n`)).toEqual({ reply: `line ${i}\n`, eof: true });
    expect(logged).toHaveLength(3);
    for (const l of logged) expect(l).toMatch(/error while ending a request: Error: shutdownRequest failed/);
  });
});
