import { LineBudget } from '../../src/observability/line-budget';

import { messages } from '../../src/errors/messages';

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
    expect(messages.clientErrorsHeldBack('Echo', 1, 10)).toMatch(/^Echo: 1 more routine client error in the last second was not logged \(at most 10 lines a second\)/);
    expect(messages.clientErrorsHeldBack('Echo', 2, 10)).toMatch(/^Echo: 2 more routine client errors in the last second were not logged /);
  });
});
