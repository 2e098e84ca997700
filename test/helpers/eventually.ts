/**
 * Polls `cond` every `stepMs` milliseconds until it holds; rejects after `ms` milliseconds with a message naming
 * `what`. The polling stops either way: a wait that failed leaves no timer behind to keep jest from exiting or to
 * read a server that afterEach has closed.
 */
export function eventually(what: string, cond: () => boolean, ms = 5000, stepMs = 10): Promise<void> {
  const deadline = Date.now() + ms;
  return new Promise((resolve, reject) => {
    const poll = (): void => {
      let met: boolean;
      try {
        met = cond();
      } catch (err) {
        reject(err);
        return;
      }
      if (met) resolve();
      else if (Date.now() >= deadline) reject(new Error(`${what}: not within ${ms} ms`));
      else setTimeout(poll, stepMs);
    };
    poll();
  });
}
