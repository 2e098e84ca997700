/**
 * Watching a server from outside its handler: subscribe to sockserve's diagnostics channels and print
 * a summary every second (connections open, requests per second, p50/p99 request duration, errors by
 * kind from stats()). The server is a line echo, @Concurrent or, with a second argument `threading` or
 * `forking`, on worker threads or child processes: the subscriber stays in this process all the same,
 * which receives each worker's request.end with the end of its request. The sample drives it with a
 * few clients, some of which misbehave (a reset, a request that makes the handler throw, an idle one past
 * requestTimeout), for `seconds` seconds (argument, default 3), then exits.
 * Run it with `npm run sample:observe` (or `npx ts-node --transpile-only samples/observe.ts [seconds] [threading|forking]`).
 */
import 'reflect-metadata';
import * as dc from 'node:diagnostics_channel';
import * as net from 'node:net';
import { bootstrap, Concurrent, Forking, Handle, isWorker, Server, StreamRequest, TcpServer, Threading } from 'sockserve';

abstract class Echo {
  @Handle()
  async handle(req: StreamRequest) {
    for await (const line of req.rfile) {
      if (line.toString() === 'boom\n') throw new Error('the handler failed on purpose');
      await req.wfile.write(line);
    }
  }
}

@TcpServer(0) @Concurrent()
export class EchoHandler extends Echo {}

@TcpServer(0) @Threading({ threads: 2 })
export class ThreadedEchoHandler extends Echo {}

@TcpServer(0) @Forking({ children: 2 })
export class ForkedEchoHandler extends Echo {}

const handlers = { concurrent: EchoHandler, threading: ThreadedEchoHandler, forking: ForkedEchoHandler };

/** Per-second figures from the channels: one subscriber, a few numbers, no payload kept. */
class Summary {
  open = 0;
  private durations: number[] = [];
  private readonly onOpen = () => void this.open++;
  private readonly onClose = () => void this.open--;
  private readonly onEnd = (m: unknown) => void this.durations.push((m as { durationMs: number }).durationMs);

  subscribe(): void {
    dc.subscribe('sockserve:connection.open', this.onOpen);
    dc.subscribe('sockserve:connection.close', this.onClose);
    dc.subscribe('sockserve:request.end', this.onEnd);
  }

  unsubscribe(): void {
    dc.unsubscribe('sockserve:connection.open', this.onOpen);
    dc.unsubscribe('sockserve:connection.close', this.onClose);
    dc.unsubscribe('sockserve:request.end', this.onEnd);
  }

  /** The last second's requests and their p50/p99 in milliseconds; starts a new second. */
  take(): { requests: number; p50: number; p99: number } {
    const d = this.durations.sort((a, b) => a - b);
    this.durations = [];
    const at = (q: number) => (d.length === 0 ? 0 : d[Math.min(d.length - 1, Math.floor(q * d.length))]);
    return { requests: d.length, p50: at(0.5), p99: at(0.99) };
  }
}

function line(server: Server, summary: Summary): string {
  const { requests, p50, p99 } = summary.take();
  const s = server.stats();
  return (
    `connections ${summary.open} | requests/s ${requests} | p50 ${p50.toFixed(2)} ms p99 ${p99.toFixed(2)} ms | ` +
    `errors: handler ${s.errors}, client ${s.clientErrors}, tls ${s.tlsErrors}, proxy ${s.proxyErrors} | ` +
    `in ${s.bytesIn} B out ${s.bytesOut} B`
  );
}

/** Clients for the demonstration: short echo exchanges, and now and then one that misbehaves. */
function drive(port: number, stop: { done: boolean }): void {
  let n = 0;
  const once = () => {
    if (stop.done) return;
    const i = n++;
    const socket = net.connect(port, '127.0.0.1');
    socket.on('error', () => undefined);
    socket.on('close', () => setTimeout(once, 5));
    if (i % 50 === 7) socket.end('boom\n'); // a handler error
    else if (i % 50 === 23) socket.once('connect', () => socket.write('half', () => socket.resetAndDestroy())); // a reset
    else if (i % 50 === 41) socket.setTimeout(1000, () => socket.destroy()); // idle: requestTimeout ends it
    else socket.end('hello\n');
    socket.resume();
  };
  for (let c = 0; c < 4; c++) once();
}

async function main(): Promise<void> {
  const seconds = Number(process.argv[2] ?? 3);
  const summary = new Summary();
  summary.subscribe();
  const Handler = handlers[(process.argv[3] ?? 'concurrent') as keyof typeof handlers] ?? EchoHandler;
  const server = await bootstrap(Handler, { requestTimeout: 0.5, logger: { error: () => undefined } }); // the summary says it all
  const serving = server.serveForever();
  const stop = { done: false };
  drive((server.serverAddress as { port: number }).port, stop);
  for (let i = 0; i < seconds; i++) {
    await new Promise((r) => setTimeout(r, 1000));
    console.log(line(server, summary));
  }
  stop.done = true;
  await server.shutdown();
  await serving;
  await server.close();
  summary.unsubscribe();
}

if (!isWorker()) {
  main().catch((err) => {
    console.error(err);
    process.exitCode = 1;
  });
}
