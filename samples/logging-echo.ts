/**
 * The first program of Python's socketserver page (PyMOTW "Echo example"), in sockserve's classic layer:
 * a server subclass and a handler that log every hook they override, and a client in the same program.
 * Run it with `npm start`. The log shows the order in which the server calls its hooks for one request.
 */
import * as net from 'node:net';
import { ClientAddress, StreamRequestHandler, TCPServer } from 'sockserve/classic';

const log = (name: string) => (message: string) => console.log(`${name}: ${message}`);
const fmt = (a: ClientAddress) => ('path' in a ? `'${a.path}'` : `('${a.host}', ${a.port})`);
const sock = (s: net.Socket) => `<socket fd=${(s as unknown as { _handle?: { fd?: number } })._handle?.fd ?? '?'}>`;

class EchoRequestHandler extends StreamRequestHandler<EchoServer> {
  private readonly log = log('EchoRequestHandler');

  constructor(request: net.Socket, clientAddress: ClientAddress, server: EchoServer) {
    super(request, clientAddress, server);
    this.log('__init__');
  }

  override setup() {
    this.log('setup');
    return super.setup();
  }

  override async handle() {
    this.log('handle');
    const data = await this.rfile.read1(1024); // Python's request.recv(1024)
    this.log(`recv()->"${data.toString()}"`);
    await this.wfile.write(data);
  }

  override finish() {
    this.log('finish');
    return super.finish();
  }
}

class EchoServer extends TCPServer {
  private readonly log = log('EchoServer');
  private closed = false;

  constructor(address: [string, number]) {
    super(address, EchoRequestHandler);
    this.log('__init__');
  }

  override serverActivate() {
    this.log('server_activate');
    return super.serverActivate();
  }

  /** PyMOTW's serve_forever: announce, then one handle_request() after another until the server closes. */
  override async serveForever() {
    this.log('waiting for request');
    this.log('Handling requests, press <Ctrl-C> to quit');
    while (!this.closed) await this.handleRequest();
  }

  override async close() {
    this.closed = true;
    await super.close(); // a handle_request() still waiting returns
  }

  override handleRequest() {
    this.log('handle_request');
    return super.handleRequest();
  }

  override verifyRequest(request: net.Socket, clientAddress: ClientAddress) {
    this.log(`verify_request(${sock(request)}, ${fmt(clientAddress)})`);
    return super.verifyRequest(request, clientAddress);
  }

  override processRequest(request: net.Socket, clientAddress: ClientAddress) {
    this.log(`process_request(${sock(request)}, ${fmt(clientAddress)})`);
    return super.processRequest(request, clientAddress);
  }

  override finishRequest(request: net.Socket, clientAddress: ClientAddress) {
    this.log(`finish_request(${sock(request)}, ${fmt(clientAddress)})`);
    return super.finishRequest(request, clientAddress);
  }

  override closeRequest(request: net.Socket) {
    this.log(`close_request(${sock(request)})`);
    return super.closeRequest(request);
  }
}

async function client(host: string, port: number): Promise<void> {
  const say = log('client');
  say(`Server on ${host}:${port}`);
  say('creating socket');
  say('connecting to server');
  const socket = net.connect({ host, port });
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  const message = 'Hello, world';
  say(`sending data: "${message}"`);
  socket.write(message);
  say('waiting for response');
  const response = await new Promise<Buffer>((resolve, reject) => socket.once('data', resolve).once('error', reject));
  say(`response from server: "${response.toString()}"`);
  say('closing socket');
  socket.end();
  await new Promise((resolve) => socket.once('close', resolve));
  say('done');
}

async function main(): Promise<void> {
  const server = new EchoServer(['127.0.0.1', 0]); // let the OS pick a port
  await server.ready;
  const [host, port] = server.serverAddress;
  const serving = server.serveForever(); // Python runs it in a daemon thread; here it shares the event loop
  await client(host, port);
  await server.close();
  await serving;
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
