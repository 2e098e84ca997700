/**
 * The fourth program of Python's socketserver page: a forking echo server. Each request runs in a child
 * process, and the reply names that process. Run it with `npm run sample:forking`.
 *
 * Children load this module again to find the handler class, so the program itself runs only in the
 * server's own process: `if (!isWorker())`.
 */
import 'reflect-metadata';
import * as net from 'node:net';
import { bootstrap, Forking, Handle, isWorker, StreamRequest, TcpServer } from 'sockserve';

@TcpServer(0)
@Forking
export class ForkingEchoHandler {
  @Handle()
  async handle(req: StreamRequest) {
    const data = await req.rfile.read1(1024);
    await req.wfile.write(`${process.pid}: ${data.toString()}`);
  }
}

async function client(host: string, port: number, message: string): Promise<void> {
  const socket = net.connect({ host, port });
  await new Promise((resolve) => socket.once('connect', resolve));
  socket.write(message);
  const reply = await new Promise<Buffer>((resolve) => socket.once('data', resolve));
  console.log(`Received: "${reply.toString()}"`);
  socket.destroy();
}

async function main(): Promise<void> {
  const server = await bootstrap(ForkingEchoHandler);
  const serving = server.serveForever();
  console.log(`Server loop running in process: ${process.pid}`);
  const { host, port } = server.serverAddress as { host: string; port: number };
  await client(host, port, 'Hello, world');
  await server.shutdown();
  await serving;
  await server.close();
}

if (!isWorker()) {
  main().catch((err) => {
    console.error(err);
    process.exitCode = 1;
  });
}
