/**
 * sockserve/testing runs a `@Threading`/`@Forking` handler in the test's thread, but as its worker would meet
 * its requests on this Node: @Verify on the request's own instance or apart, `req.socket` there or not
 * (relayed). Each case compares TestServer's answer with the real server's for the same handler, so the test
 * holds on every Node line: before, TestServer kept @Verify's instance everywhere (a handler passed its test
 * and failed in production), then split it everywhere (the reverse, for @Forking: hostile re-check).
 */
import 'reflect-metadata';
import { bootstrap, HandlerClass, Server } from '../../src';
import { TestServer } from '../../src/testing';
import {
  ChildPerConnectionSays, ChildrenSay, LimitedChildrenSay, ProxiedChildPerConnectionSays, ProxiedLimitedChildrenSay, ProxiedLimitedThreadsSay,
  ProxiedThreadsSay, ThreadPerConnectionSays, ThreadsSay,
} from '../fixtures/as-in-worker-handlers';
import { streamExchange } from '../helpers/clients';
import { servingInTests } from '../helpers/serving';

describe('TestServer gives a pooled handler what its worker gives it', () => {
  const serve = servingInTests<Server>((s) => expect(s.stats().workers.length).toBe(0));
  const tests: TestServer[] = [];
  afterEach(async () => {
    await Promise.all(tests.splice(0).map((t) => t.close()));
  });

  test.each([
    ['@Threading', ThreadsSay, ''],
    ['@Threading, connectionsPerThread: 1', ThreadPerConnectionSays, ''],
    ['@Forking', ChildrenSay, ''],
    ['@Forking, connectionsPerChild: 1', ChildPerConnectionSays, ''],
    ['@Forking with maxConnections', LimitedChildrenSay, ''],
    ['@Threading with the PROXY protocol', ProxiedThreadsSay, 'PROXY TCP4 198.51.100.7 192.0.2.1 4000 80\r\n'],
    ['@Forking, connectionsPerChild: 1, with the PROXY protocol', ProxiedChildPerConnectionSays, 'PROXY TCP4 198.51.100.7 192.0.2.1 4000 80\r\n'],
    ['@Threading with the PROXY protocol and maxConnectionsPerClient', ProxiedLimitedThreadsSay, 'PROXY TCP4 198.51.100.7 192.0.2.1 4000 80\r\n'],
    ['@Forking with the PROXY protocol and maxConnectionsPerClient', ProxiedLimitedChildrenSay, 'PROXY TCP4 198.51.100.7 192.0.2.1 4000 80\r\n'],
  ] as Array<[string, HandlerClass, string]>)('%s: the same @Verify instance and req.socket as the real server on this Node', async (_mode, Handler, header) => {
    const s = serve(await bootstrap(Handler));
    const { host, port } = s.serverAddress as { host: string; port: number };
    const real = String(await streamExchange({ host, port }, `${header}hi\n`, { halfClose: true, ms: 10000 }));
    const t = await TestServer.create(Handler);
    tests.push(t);
    const c = t.connect();
    c.write('hi\n');
    const inMemory = await c.readline();
    await c.end();
    expect(real).toMatch(/^(verify|none) (socket|no-socket)\n$/);
    expect(inMemory).toBe(real);
  });
});
