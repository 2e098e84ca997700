import 'reflect-metadata';
import * as net from 'node:net';
import { bootstrap, Concurrent, Handle, HandleError, StreamRequest, TcpServer } from '../src';
@TcpServer({ port: 0, limits: { lineTimeout: 1 } }) @Concurrent()
class Lines {
  @Handle() async handle(req: StreamRequest) { await req.wfile.write(await req.rfile.readline()); }
  @HandleError() error(err: Error) { console.log('error', Date.now()%100000, err.message.slice(0,60)); }
}
(async () => {
  const server = await bootstrap(Lines, { requestTimeout: 5 });
  void server.serveForever(0.05);
  const port = (server.serverAddress as any).port;
  let open = 50;
  const all: net.Socket[] = [];
  for (let i = 0; i < 50; i++) {
  const s = net.connect(port, '127.0.0.1', () => s.write('a'));
  all.push(s);
  s.on('close', () => { open--; console.log('client closed', Date.now()%100000, open, server.stats()); if (open === 0) process.exit(0); });
  s.on('error', (e) => console.log('cerr', e.message));
  s.resume();
  }
  setInterval(() => all.forEach((s) => !s.destroyed && s.write('a')), 300);
  setTimeout(() => { console.log('timeout'); process.exit(1); }, 8000);
})();
