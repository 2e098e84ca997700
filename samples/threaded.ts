/**
 * The third program of Python's socketserver page: a threaded echo server. Each request runs in a real
 * worker thread, and the reply names that thread. Run it with `npm run sample:threaded`.
 *
 * Workers load this module again to find the handler class, so the program itself runs only in the
 * main thread: `if (!isWorker())`.
 */
import 'reflect-metadata';
import * as net from 'node:net';
import { threadId } from 'node:worker_threads';
import { bootstrap, Handle, isWorker, StreamRequest, TcpServer, Threading } from 'sockserve';

@TcpServer(0)
@Threading
export class ThreadedEchoHandler {
  @Handle()
  async handle(req: StreamRequest) {
    const data = await req.rfile.read1(1024);
    await req.wfile.write(`Thread-${threadId}: ${data.toString()}`);
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
  const server = await bootstrap(ThreadedEchoHandler);
  const serving = server.serveForever();
  console.log(`Server loop running in thread: ${threadId}`);
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
