import { LineBudget } from '../../src/observability/line-budget';

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
});
