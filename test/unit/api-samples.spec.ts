import 'reflect-metadata';
import { bootstrap, ClientAddress, Finish, Handle, Injectable, Setup, StreamRequest, TcpServer, Threading, Verify } from '../../src';
import { streamExchange } from '../helpers/clients';

// API.md §1, as a user would type it (only the port is 0 here, and threading is left out: workers load
// handlers from fixture modules). It must compile under strict TypeScript and behave as documented.
@Injectable()
class Greeter { greet(s: string) { return `hello ${s}`; } }

@TcpServer({ port: 0, host: '127.0.0.1' })
export class EchoHandler {
  constructor(private readonly greeter: Greeter) {}
  @Verify() allow(client: ClientAddress) { return client.host === '127.0.0.1'; }
  @Setup() open(_req: StreamRequest) { /* per-request resources */ }
  @Handle() async handle(req: StreamRequest) {
    const line = await req.rfile.readline();
    await req.wfile.write(this.greeter.greet(line.toString()));
  }
  @Finish() close(_req: StreamRequest) { /* always runs */ }
}

describe('the API.md first server', () => {
  test('compiles as written, binds, prints { host, port } and answers', async () => {
    void Threading; // the sample's import list includes it
    const server = await bootstrap(EchoHandler);
    try {
      expect(Object.keys(server.serverAddress)).toEqual(['host', 'port']);
      expect(server.serverAddress).toMatchObject({ host: '127.0.0.1' });
      const serving = server.serveForever();
      const { host, port } = server.serverAddress as { host: string; port: number };
      expect((await streamExchange({ host, port }, 'world', { halfClose: true })).toString()).toBe('hello world');
      await server.shutdown();
      await serving;
    } finally {
      await server.close();
    }
  });
});
