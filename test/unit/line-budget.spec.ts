import { LineBudget } from '../../src/observability/line-budget';

import { messages } from '../../src/errors/messages';
import { BaseRequestHandler, TCPServer } from '../../src/classic';
import { eventually } from '../helpers/eventually';

describe('LineBudget', () => {
  afterEach(() => jest.useRealTimers());

  test('lets perSecond lines through a second, counts the rest, and sums them up once when the second ends', () => {
    jest.useFakeTimers({ doNotFake: ['nextTick'] });
    const summaries: number[] = [];
    const budget = new LineBudget(3, (n) => summaries.push(n));
    const taken = Array.from({ length: 10 }, () => budget.take());
    expect(taken).toEqual([true, true, true, false, false, false, false, false, false, false]);
    expect(summaries).toEqual([]);
    jest.advanceTimersByTime(1000);
    expect(summaries).toEqual([7]);
    expect(budget.take()).toBe(true); // a new second: lines again
  });

  test('flush() writes what is held back at once, and nothing when nothing is', () => {
    const summaries: number[] = [];
    const budget = new LineBudget(1, (n) => summaries.push(n));
    budget.flush();
    expect(summaries).toEqual([]);
    budget.take();
    budget.take();
    budget.take();
    budget.flush();
    budget.flush();
    expect(summaries).toEqual([2]);
  });

  test("the held-back line's grammar follows its number", () => {
    expect(messages.clientErrorsHeldBack('Echo', 1, 10, undefined)).toMatch(/^Echo: 1 more routine client error in the last second was not logged \(at most 10 lines a second\)\.$/);
    expect(messages.clientErrorsHeldBack('Echo', 2, 10, 'stats().clientErrors')).toMatch(/^Echo: 2 more routine client errors in the last second were not logged .*; stats\(\)\.clientErrors count every one\.$/);
  });

  test("a classic server's held-back line names no stats(), which classic servers do not have (Python's have none)", async () => {
    class Quiet extends BaseRequestHandler {
      handle(): void {}
    }
    const server = new TCPServer(['127.0.0.1', 0], Quiet, false); // not bound: handleError() needs no socket
    const warned: string[] = [];
    server.logger = { ...server.logger, warn: (m: string) => warned.push(m) };
    const reset = () => Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });
    for (let i = 0; i < 12; i++) await server.handleError(undefined, { host: '127.0.0.1', port: 5000 + i, family: 'IPv4' }, reset());
    await eventually('the held-back line', () => warned.length === 11, 3000);
    expect(warned.slice(0, 10)).toEqual(Array.from({ length: 10 }, (_, i) => expect.stringContaining(`127.0.0.1:${5000 + i}`)));
    expect(warned[10]).toBe('TCPServer: 2 more routine client errors in the last second were not logged (at most 10 lines a second).');
  });
});
