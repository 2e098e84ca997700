/**
 * The second program of Python's socketserver page, in decorator style: an echo handler on an
 * OS-chosen port, and a client that sends one message and prints the reply.
 * Run it with `npm run sample:echo-simple`.
 */
import 'reflect-metadata';
import * as net from 'node:net';
import { bootstrap, Handle, StreamRequest, TcpServer } from 'sockserve';

@TcpServer(0) // port 0: the OS picks a free port
export class EchoHandler {
  @Handle()
  async handle(req: StreamRequest) {
    await req.wfile.write(await req.rfile.read1(1024));
  }
}

async function main(): Promise<void> {
  const server = await bootstrap(EchoHandler);
  const serving = server.serveForever();
  const { host, port } = server.serverAddress as { host: string; port: number };

  const socket = net.connect({ host, port });
  await new Promise((resolve) => socket.once('connect', resolve));
  const message = 'Hello, world';
  console.log(`Sending : "${message}"`);
  socket.write(message);
  const reply = await new Promise<Buffer>((resolve) => socket.once('data', resolve));
  console.log(`Received: "${reply.toString()}"`);
  socket.destroy();

  await server.shutdown();
  await serving;
  await server.close();
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
