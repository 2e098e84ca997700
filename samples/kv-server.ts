/**
 * A small Redis-like key-value server on `@Framing('lines')`: one command per line, one reply per
 * command, the store injected. Its test (test/samples/kv-server.spec.ts) runs it through
 * `sockserve/testing`, without a socket. `npm run sample:kv` runs a short session against it; the
 * commands, one per line (try them with `nc 127.0.0.1 6380` while it runs):
 *
 *   SET greeting hello     → OK
 *   GET greeting           → hello
 *   DEL greeting           → 1
 *   GET greeting           → (nil)
 *   QUIT                   → BYE, and the server closes the connection
 */
import 'reflect-metadata';
import * as net from 'node:net';
import { bootstrap, Concurrent, Framing, Injectable, isWorker, MessageRequest, OnMessage, TcpServer } from 'sockserve';

/** The keys, injected: a singleton, so every connection of the server sees the same ones. */
@Injectable()
export class Store {
  private readonly data = new Map<string, string>();

  get(key: string): string | undefined {
    return this.data.get(key);
  }

  set(key: string, value: string): void {
    this.data.set(key, value);
  }

  /** Removes `key`; true when it was there. */
  delete(key: string): boolean {
    return this.data.delete(key);
  }
}

@TcpServer({ port: Number(process.env.KV_PORT ?? 6380) }) // KV_PORT=0: the OS picks
@Concurrent()
@Framing('lines', { maxLength: 64 * 1024 })
export class KvHandler {
  constructor(private readonly store: Store) {}

  /** The reply is what this returns; a line ends it (the framer adds '\n'). */
  @OnMessage()
  command(line: string, req: MessageRequest): string | undefined {
    const [op = '', key, ...rest] = line.trim().split(/\s+/);
    switch (op.toUpperCase()) {
      case 'GET':
        return key === undefined ? '-ERR GET needs a key' : (this.store.get(key) ?? '(nil)');
      case 'SET':
        if (key === undefined || rest.length === 0) return '-ERR SET needs a key and a value';
        this.store.set(key, rest.join(' '));
        return 'OK';
      case 'DEL':
        return key === undefined ? '-ERR DEL needs a key' : this.store.delete(key) ? '1' : '0';
      case 'QUIT':
        req.close(); // ends the connection once BYE has been written
        return 'BYE';
      case '':
        return undefined; // an empty line: no reply
      default:
        return `-ERR unknown command '${op}'`;
    }
  }
}

/** Starts the server, runs a short session against it, and stops. */
async function main(): Promise<void> {
  const server = await bootstrap(KvHandler);
  const serving = server.serveForever();
  const { host, port } = server.serverAddress as { host: string; port: number };
  const socket = net.connect({ host, port });
  let replies = '';
  socket.on('data', (d) => (replies += d));
  const closed = new Promise((resolve) => socket.on('close', resolve));
  const commands = ['SET greeting hello world', 'GET greeting', 'DEL greeting', 'GET greeting', 'QUIT'];
  socket.write(commands.map((c) => c + '\n').join(''));
  await closed;
  replies.trim().split('\n').forEach((reply, i) => console.log(`${commands[i]} → ${reply}`));
  await server.shutdown();
  await serving;
  await server.close();
}

if (require.main === module && !isWorker()) {
  main().catch((err) => {
    console.error(err);
    process.exitCode = 1;
  });
}
