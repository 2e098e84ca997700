import 'reflect-metadata';
import { bootstrap, Server } from '../../src';
import {
  ByeConcurrent, ByeForking, ByeProxyForking, ByeThreading, ByeTlsThreading, GraceConcurrent, GraceForking, GraceProxySerial, GraceProxyThreading, GraceSerial,
  GraceThreading, GraceTlsForking,
} from '../fixtures/grace-handlers';
import { connect, readToEnd, streamExchange, within } from '../helpers/clients';
import { endpoint } from '../helpers/edge-clients';
import { until } from '../fakes/fake-server';
import { servingInTests } from '../helpers/serving';

/**
 * API.md §6 and production.md's drain, step 3: a connection that has sent nothing yet when shutdown begins
 * has until a second after its accept to send its first request (a load balancer connects, then forwards the
 * request). @Handle servers gave that second (the rfile's grace); @OnMessage servers closed such a connection
 * as shutdown began, and the balancer's request got a closed socket and no reply (new user, every mode).
 */
describe.each([
  { mode: 'serial', handler: GraceSerial },
  { mode: '@Concurrent', handler: GraceConcurrent },
  { mode: '@Threading', handler: GraceThreading },
  { mode: '@Forking', handler: GraceForking },
])('@OnMessage at shutdown in $mode', ({ handler }) => {
  const serve = servingInTests<Server>();

  test('a connection accepted just before shutdown() and silent until after it is served: its first request has a second from the accept', async () => {
    const server = serve(await bootstrap(handler));
    const client = await within(5000, 'connect', connect(endpoint(server)));
    try {
      const reply = readToEnd(client);
      await until(() => server.stats().accepted === 1, 5000);
      const stopped = server.shutdown();
      await new Promise((resolve) => setTimeout(resolve, 100));
      client.write('request\n');
      expect((await within(5000, 'the reply and the close', reply)).toString()).toBe('echo request\n');
      await within(5000, 'shutdown()', stopped);
      expect(server.stats()).toMatchObject({ errors: 0, messages: 1 });
    } finally {
      client.destroy();
    }
  });

  test('one that stays silent still ends: shutdown() resolves once its grace is over', async () => {
    const server = serve(await bootstrap(handler, { shutdownTimeout: 20 }));
    const client = await within(5000, 'connect', connect(endpoint(server)));
    try {
      const reply = readToEnd(client);
      await until(() => server.stats().accepted === 1, 5000);
      // Well within shutdownTimeout (20 s): the grace (1 s), not the timeout, ends it.
      await within(5000, 'shutdown()', server.shutdown());
      expect((await within(5000, 'the close', reply)).toString()).toBe('');
      expect(server.stats()).toMatchObject({ errors: 0, messages: 0 });
    } finally {
      client.destroy();
    }
  });
});

/**
 * production.md, the drain's step 3: a handler waiting for the next line when shutdown begins reads end of
 * input, as if the client had closed. `rfile.shuttingDown` tells the two apart, wherever the handler runs (with
 * handleSignals, no code of the user's runs at shutdown to set a flag of its own: operator run).
 */
describe.each([
  { mode: '@Concurrent', handler: ByeConcurrent },
  { mode: '@Threading', handler: ByeThreading },
  { mode: '@Forking', handler: ByeForking },
])('rfile.shuttingDown in $mode', ({ handler }) => {
  const serve = servingInTests<Server>();

  test('is true after the end of input shutdown gave, false after the client\'s own close', async () => {
    const server = serve(await bootstrap(handler));
    expect((await streamExchange(endpoint(server), 'closed by the client\n', { halfClose: true })).toString()).toBe('closed by the client\n');
    const client = await within(5000, 'connect', connect(endpoint(server)));
    try {
      const all = readToEnd(client);
      const answered = new Promise((resolve) => client.once('data', resolve));
      client.write('a\n');
      await within(5000, 'the echo', answered); // the handler now waits for the next line
      await within(10000, 'shutdown()', server.shutdown());
      expect((await within(5000, 'the end', all)).toString()).toBe('a\nbye\n');
    } finally {
      client.destroy();
    }
  });
});

/**
 * A shutdownTimeout under a second passes while a connection accepted just before shutdown waits out its
 * first-request grace: that connection is an idle one, closed quietly as after the grace, not a request still
 * running (it was reported as a RequestTimeoutError whose Fix told to make the handler return when its reads
 * end, which it was doing), in the server's process and in workers, relayed or not.
 */
describe.each([
  { mode: 'serial @OnMessage', handler: GraceSerial, said: '' },
  { mode: '@Concurrent @OnMessage', handler: GraceConcurrent, said: '' },
  { mode: '@Concurrent @Handle', handler: ByeConcurrent, said: 'bye\n' },
  { mode: '@Threading @OnMessage', handler: GraceThreading, said: '' },
  { mode: '@Threading @Handle', handler: ByeThreading, said: 'bye\n' },
  { mode: '@Forking @OnMessage', handler: GraceForking, said: '' },
  { mode: '@Forking @Handle', handler: ByeForking, said: 'bye\n' },
])('shutdownTimeout within the first-request grace, $mode', ({ handler, said }) => {
  const serve = servingInTests<Server>();

  test('a silent connection accepted just before shutdown is closed as idle: no error reported', async () => {
    const server = serve(await bootstrap(handler, { shutdownTimeout: 0.3 }));
    const client = await within(5000, 'connect', connect(endpoint(server)));
    try {
      const reply = readToEnd(client);
      await until(() => server.stats().accepted === 1, 5000);
      await within(5000, 'shutdown()', server.shutdown());
      expect((await within(5000, 'the close', reply)).toString()).toBe(said);
      expect(server.stats()).toMatchObject({ errors: 0, clientErrors: 0 });
    } finally {
      client.destroy();
    }
  });
});

/**
 * The same behind the production edge (hostile re-check): a silent connection is still in its PROXY header's or TLS
 * handshake's wait for a first byte when a shutdownTimeout under a second passes. In workers it was reported as a
 * request still running, with the handler's Fix; it is a quiet close (a health check), as in the server's process.
 * One part-way through its header stays the server's timeout (edge-shutdown.spec.ts), in every mode.
 */
describe.each([
  { mode: 'serial, PROXY', handler: GraceProxySerial, proxy: true },
  { mode: '@Threading, PROXY', handler: GraceProxyThreading, proxy: true },
  { mode: '@Forking, PROXY', handler: ByeProxyForking, proxy: true },
  { mode: '@Threading, TLS', handler: ByeTlsThreading, proxy: false },
  { mode: '@Forking, TLS', handler: GraceTlsForking, proxy: false },
])('shutdownTimeout within the first-request grace, $mode', ({ handler, proxy }) => {
  const serve = servingInTests<Server>();

  test('a silent connection is closed as a health check (one half-way through its PROXY header: the server\'s timeout, as before)', async () => {
    const server = serve(await bootstrap(handler, { shutdownTimeout: 0.3, logger: { error: () => undefined, warn: () => undefined } }));
    const silent = await within(5000, 'connect', connect(endpoint(server)));
    const half = proxy ? await within(5000, 'connect', connect(endpoint(server))) : undefined;
    try {
      const ends = [readToEnd(silent), ...(half ? [readToEnd(half)] : [])];
      half?.write('PROXY TCP4 203.0.113.9');
      await until(() => server.stats().accepted === (half ? 2 : 1), 5000);
      await within(5000, 'shutdown()', server.shutdown());
      await within(5000, 'the closes', Promise.all(ends.map((end) => end.catch(() => undefined))));
      await until(() => server.stats().active === 0, 5000);
      expect(server.stats()).toMatchObject({ errors: 0, clientErrors: half ? 1 : 0, tlsErrors: 0, proxyErrors: 0, healthChecks: 1 });
    } finally {
      silent.destroy();
      half?.destroy();
    }
  });
});
