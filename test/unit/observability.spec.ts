import 'reflect-metadata';
import * as dc from 'node:diagnostics_channel';
import { errorKind } from '../../src/observability/error-kind';
import { levelled } from '../../src/observability/logger';
import { ServerMetrics } from '../../src/observability/server-metrics';
import { onWorkerInterest, republishWorkerEvents, wantsWorkerEvents, WorkerEventBuffer, WorkerReport, workerReport, WorkerStatsBook } from '../../src/observability/worker-report';
import { WorkerReporter } from '../../src/observability/worker-reporter';
import { until } from '../fakes/fake-server';
import { forwardEventsTo, traceRequest, connectionOpened, connectionClosed } from '../../src/observability/events';
import { BaseServer } from '../../src/classic';
import { poolStatsOf } from '../../src/observability/pool-stats';
import { LineTooLongError, RequestTimeoutError, WorkerCrashedError } from '../../src';
import { recordEvents } from '../helpers/events';

const named = (name: string, props: object = {}) => Object.assign(new Error('x'), { name }, props);

describe('error kinds', () => {
  test.each([
    ['a reset', 'client', Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' })],
    ['a broken pipe', 'client', Object.assign(new Error('write EPIPE'), { code: 'EPIPE' })],
    ['a TCP timeout', 'client', Object.assign(new Error('read ETIMEDOUT'), { code: 'ETIMEDOUT' })],
    ['a requestTimeout', 'client', new RequestTimeoutError('slow')],
    ['a line too long', 'client', new LineTooLongError('long')],
    ['a frame too long (by name, from another module or a worker)', 'client', named('FrameTooLongError')],
    ['a failed TLS handshake', 'tls', named('TlsHandshakeError')],
    ['a bad PROXY header', 'proxy', named('ProxyProtocolError')],
    ['an error caused by a reset', 'client', new Error('wrapped', { cause: Object.assign(new Error('r'), { code: 'ECONNRESET' }) })],
    ['a reset, then a @Finish farewell on the closed connection (an AggregateError of the two)', 'client',
      new AggregateError([Object.assign(new Error('write ECONNRESET'), { code: 'ECONNRESET' }), Object.assign(new Error('closed'), { code: 'EPIPE' })], 'both')],
    ['a reset, then a @Finish that threw of its own', 'handler',
      new AggregateError([Object.assign(new Error('write ECONNRESET'), { code: 'ECONNRESET' }), new TypeError('finish bug')], 'both')],
    ['an empty AggregateError', 'handler', new AggregateError([], 'none')],
    ['a handler\'s own error', 'handler', new TypeError('boom')],
    ['a worker death', 'handler', new WorkerCrashedError('died')],
    ['a thrown string', 'handler', 'oops'],
  ])('%s is a %s error', (_what, kind, error) => {
    expect(errorKind(error)).toBe(kind);
  });

  test('ServerMetrics counts each kind in its own field only', () => {
    const m = new ServerMetrics();
    m.countError(new Error('a'));
    m.countError(Object.assign(new Error('b'), { code: 'EPIPE' }));
    m.countError(named('TlsHandshakeError'));
    m.countError(named('ProxyProtocolError'));
    m.countError(named('ProxyProtocolError'));
    expect(m.totals()).toMatchObject({ errors: 1, clientErrors: 1, tlsErrors: 1, proxyErrors: 2 });
  });
});

describe('loggers', () => {
  test('a partial logger gets every level: warn falls back to error, info and debug are dropped', () => {
    const lines: string[] = [];
    const log = levelled({ error: (m) => lines.push(`E ${m}`) });
    log.warn('w');
    log.info('i');
    log.debug('d');
    log.error('e');
    expect(lines).toEqual(['E w', 'E e']);
  });

  test('methods are called on the logger itself, as pino needs', () => {
    const pinoLike = {
      seen: [] as string[],
      error(m: string) { this.seen.push(`error ${m}`); },
      warn(m: string) { this.seen.push(`warn ${m}`); },
      info(m: string) { this.seen.push(`info ${m}`); },
      debug(m: string) { this.seen.push(`debug ${m}`); },
    };
    const log = levelled(pinoLike);
    log.error('1'); log.warn('2'); log.info('3'); log.debug('4');
    expect(pinoLike.seen).toEqual(['error 1', 'warn 2', 'info 3', 'debug 4']);
  });

  test('the classic layer prints a routine client error as one stderr line and a handler error as Python\'s block', async () => {
    class Plain extends BaseServer<object, string> {
      getRequest(): never { throw new Error('unused'); }
      protected waitForRequest(): Promise<boolean> { return Promise.resolve(false); }
      protected wakeLoop(): void {}
    }
    const server = new Plain('x', class { run() { return Promise.resolve(); } }, { bindAndActivate: false });
    const written: string[] = [];
    const spy = jest.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => { written.push(String(chunk)); return true; });
    try {
      await server.handleError({}, { host: '127.0.0.1', port: 5, family: 'IPv4' }, Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }));
      await server.handleError({}, { host: '127.0.0.1', port: 5, family: 'IPv4' }, new Error('handler broke'));
    } finally {
      spy.mockRestore();
    }
    expect(written[0]).toBe('Error from 127.0.0.1:5: read ECONNRESET\n');
    expect(written[1]).toMatch(/^-{40}\nException occurred during processing of request from 127\.0\.0\.1:5\nError: handler broke\n[\s\S]*\n-{40}\n$/);
    expect(written).toHaveLength(2);
  });
});

describe('worker reports', () => {
  let recorder: ReturnType<typeof recordEvents> | undefined;
  afterEach(() => {
    recorder?.stop();
    recorder = undefined;
    forwardEventsTo(undefined);
  });

  test('the book merges reports into workers[] and totals, and keeps the counts of workers that exited', () => {
    const book = new WorkerStatsBook();
    book.started(1, { threadId: 7 });
    book.started(2, { threadId: 8 });
    expect(book.snapshot().workers).toEqual([
      { id: 1, threadId: 7, connections: 0, requests: 0, heapUsedBytes: 0 },
      { id: 2, threadId: 8, connections: 0, requests: 0, heapUsedBytes: 0 },
    ]);
    book.update({ id: 1, threadId: 7, connections: 3, requests: 10, heapUsedBytes: 1000, totals: { accepted: 10, errors: 1, bytesIn: 100 } });
    book.update({ id: 2, threadId: 8, connections: 1, requests: 4, heapUsedBytes: 2000, totals: { accepted: 4, clientErrors: 2, bytesIn: 40 } });
    book.update({ id: 1, threadId: 7, connections: 2, requests: 12, heapUsedBytes: 1100, totals: { accepted: 12, errors: 1, bytesIn: 120 } });
    book.restarts++;
    let snap = book.snapshot();
    expect(snap.workers).toEqual([
      { id: 1, threadId: 7, connections: 2, requests: 12, heapUsedBytes: 1100 },
      { id: 2, threadId: 8, connections: 1, requests: 4, heapUsedBytes: 2000 },
    ]);
    expect(snap.totals).toMatchObject({ accepted: 16, errors: 1, clientErrors: 2, bytesIn: 160 });
    expect(snap.restarts).toBe(1);
    book.retire(2);
    snap = book.snapshot();
    expect(snap.workers.map((w) => w.id)).toEqual([1]);
    expect(snap.totals).toMatchObject({ accepted: 16, clientErrors: 2, bytesIn: 160 });
  });

  test('a server\'s stats() adds its pool\'s figures to its own counters', () => {
    const m = new ServerMetrics();
    m.accepted = 5;
    m.bytesOut = 50;
    const stats = m.snapshot(2, { restarts: 1, oversubscribed: 3, workers: [{ id: 1, pid: 99, connections: 2, requests: 9, heapUsedBytes: 10, rssBytes: 20 }], totals: { bytesOut: 7, messages: 4 } });
    expect(stats).toEqual({
      accepted: 5, active: 2, rejected: 0, oversubscribed: 3, errors: 0, clientErrors: 0, tlsErrors: 0, proxyErrors: 0,
      healthChecks: 0, restarts: 1, messages: 4, bytesIn: 0, bytesOut: 57, acceptErrors: 0, dropped: 0,
      workers: [{ id: 1, pid: 99, connections: 2, requests: 9, heapUsedBytes: 10, rssBytes: 20 }],
    });
  });

  test('a batch of worker events is republished in the server\'s process with workerId in place of server', () => {
    expect(wantsWorkerEvents()).toBe(false);
    recorder = recordEvents();
    expect(wantsWorkerEvents()).toBe(true);
    const book = new WorkerStatsBook();
    const client = { host: '10.0.0.1', port: 4000, family: 'IPv4' };
    book.update({
      id: 3, pid: 1234, connections: 0, requests: 1, heapUsedBytes: 1, totals: {},
      events: [
        { channel: 'connectionOpen', data: { clientAddress: client } },
        { channel: 'requestEnd', data: { clientAddress: client, durationMs: 5, bytesIn: 6, bytesOut: 7, error: { name: 'Error', message: 'no' } } },
        { channel: 'connectionClose', data: { clientAddress: client, durationMs: 6, bytesIn: 6, bytesOut: 7 } },
      ],
    });
    expect(recorder.events.map((e) => [e.name, e.payload])).toEqual([
      ['sockserve:connection.open', { workerId: 3, clientAddress: client }],
      ['sockserve:request.end', { workerId: 3, clientAddress: client, durationMs: 5, bytesIn: 6, bytesOut: 7, error: { name: 'Error', message: 'no' } }],
      ['sockserve:connection.close', { workerId: 3, clientAddress: client, durationMs: 6, bytesIn: 6, bytesOut: 7 }],
    ]);
    // a batch that names a channel that is not republished is skipped
    republishWorkerEvents(3, [{ channel: 'message' as 'connectionOpen', data: {} }]);
    expect(recorder.events).toHaveLength(3);
  });

  test('in a worker, events are recorded for the server\'s process only while it wants them, and reports carry them', async () => {
    const buffer = new WorkerEventBuffer(2);
    forwardEventsTo(buffer);
    const client = { host: '127.0.0.1', port: 1, family: 'IPv4' as const };
    const conn = {};
    connectionOpened('local', conn, client);
    expect(buffer.take().events).toEqual([]);
    buffer.wanted = true;
    connectionOpened('local', conn, client);
    await traceRequest('local', client, () => Promise.reject(Object.assign(new Error('gone'), { code: 'EPIPE' })), () => [3, 4]).catch(() => undefined);
    connectionClosed('local', conn, 3, 4); // third event: over capacity, counted
    const report = workerReport(9, { accepted: 1 }, { connections: 0, requests: 1, pid: process.pid, child: true }, buffer.take());
    expect(report.events!.map((e) => e.channel)).toEqual(['connectionOpen', 'requestEnd']);
    expect(report.events![1].data).toMatchObject({ bytesIn: 3, bytesOut: 4, error: { name: 'Error', message: 'gone', code: 'EPIPE' } });
    expect(report.droppedEvents).toBe(1);
    expect(report.heapUsedBytes).toBeGreaterThan(0);
    expect(report.rssBytes).toBeGreaterThan(0);
    expect(JSON.parse(JSON.stringify(report))).toEqual(report); // plain data: it crosses postMessage and IPC
  });

  test('nothing is published or built when nobody subscribes', async () => {
    let built = false;
    const client = { host: '127.0.0.1', port: 1, family: 'IPv4' as const };
    await traceRequest('s', client, () => Promise.resolve(), () => { built = true; return [0, 0]; });
    expect(built).toBe(false);
    expect(dc.channel('sockserve:request.end').hasSubscribers).toBe(false);
  });
});

describe('the pool seam of stats()', () => {
  const base = { dispatch: () => Promise.resolve(), drain: () => Promise.resolve(), close: () => Promise.resolve(), active: 0 };

  test('a strategy without workers has no pool figures', () => {
    expect(poolStatsOf(base)).toBeUndefined();
  });

  test('a pool that reports gives its own stats()', () => {
    const book = new WorkerStatsBook();
    book.started(4, { pid: 42 });
    book.oversubscribed = 2;
    expect(poolStatsOf({ ...base, workers: 1, stats: () => book.snapshot() })).toMatchObject({
      oversubscribed: 2, workers: [{ id: 4, pid: 42, connections: 0 }],
    });
  });

  test('a pool that does not report yet is listed by its live workers', () => {
    expect(poolStatsOf({ ...base, workers: 2 })!.workers.map((w) => w.id)).toEqual([1, 2]);
  });
});

describe('a worker\'s reporter and the server\'s interest in its events', () => {
  afterEach(() => forwardEventsTo(undefined));

  test('reports go out periodically and once more at stop, cumulative, with the events the server wants', async () => {
    const posted: WorkerReport[] = [];
    const reporter = new WorkerReporter(5, (r) => posted.push(r), { threadId: 3, child: false }, 10);
    reporter.start();
    reporter.metrics.accepted += 2;
    reporter.requests = 2;
    reporter.connections = 1;
    await until(() => posted.length >= 1);
    reporter.setWanted(true);
    connectionOpened('worker server', {}, { host: '127.0.0.1', port: 2, family: 'IPv4' });
    reporter.metrics.countError(Object.assign(new Error('r'), { code: 'ECONNRESET' }));
    reporter.stop();
    const last = posted[posted.length - 1];
    expect(last).toMatchObject({ id: 5, threadId: 3, connections: 1, requests: 2, totals: { accepted: 2, clientErrors: 1 } });
    expect(last.rssBytes).toBeUndefined(); // a thread shares the server's resident set
    expect(posted.flatMap((r) => r.events ?? []).map((e) => e.channel)).toEqual(['connectionOpen']);
    const count = posted.length;
    await new Promise((r) => setTimeout(r, 40));
    expect(posted).toHaveLength(count); // stopped
  });

  test('the book says when the server\'s process starts and stops wanting workers\' events', () => {
    const book = new WorkerStatsBook();
    expect(book.interestChange()).toBeUndefined();
    const recorder = recordEvents();
    try {
      expect(book.interestChange()).toBe(true);
      expect(book.interestChange()).toBeUndefined();
    } finally {
      recorder.stop();
    }
    expect(book.interestChange()).toBe(false);
  });
});

describe('telling pools at once when a subscriber to workers\' events comes or goes', () => {
  const stops: Array<() => void> = [];
  afterEach(() => stops.splice(0).forEach((stop) => stop()));

  test('a pool whose telling throws breaks neither the subscriber\'s subscribe() nor the other pools\' notice', () => {
    const warnings: string[] = [];
    const warn = jest.spyOn(process, 'emitWarning').mockImplementation((w: string | Error) => void warnings.push(String(w)));
    stops.push(() => warn.mockRestore());
    const told: string[] = [];
    stops.push(onWorkerInterest(() => { throw new TypeError('slot.wantEvents is not a function'); }));
    stops.push(onWorkerInterest(() => told.push(wantsWorkerEvents() ? 'wanted' : 'not wanted')));
    const recorder = recordEvents();
    recorder.stop();
    expect(told[0]).toBe('wanted');
    expect(told[told.length - 1]).toBe('not wanted');
    expect(wantsWorkerEvents()).toBe(false); // the subscription was made and undone: nothing thrown half-way
    expect(warnings[0]).toMatch(/could not tell its workers.*slot\.wantEvents is not a function/);
  });

  test('two copies of sockserve in one process (two versions installed, or jest\'s per-file modules) both hear', () => {
    const told: string[] = [];
    stops.push(onWorkerInterest(() => told.push('first copy')));
    jest.isolateModules(() => {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const second = require('../../src/observability/worker-report') as typeof import('../../src/observability/worker-report');
      stops.push(second.onWorkerInterest(() => told.push('second copy')));
    });
    const fn = () => undefined;
    dc.subscribe('sockserve:connection.open', fn);
    dc.unsubscribe('sockserve:connection.open', fn);
    expect(told.filter((who) => who === 'first copy')).toHaveLength(2);
    expect(told.filter((who) => who === 'second copy')).toHaveLength(2);
    expect(dc.channel('sockserve:connection.open').hasSubscribers).toBe(false);
  });
});
