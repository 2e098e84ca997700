import 'reflect-metadata';
import * as fs from 'node:fs';
import { bootstrap, Server } from '../../src';
import { FlakyChild, flakyMark, FlakyThread } from '../fixtures/flaky-handlers';
import { connect, streamExchange, Target } from '../helpers/clients';
import { until } from '../fakes/fake-server';
import { servingInTests } from '../helpers/serving';

function target(s: Server): Target {
  const a = s.serverAddress;
  return 'path' in a ? { path: a.path } : { host: a.host, port: a.port };
}
const ask = (s: Server, line: string) => streamExchange(target(s), line, { halfClose: true, ms: 10000 }).then(String);

describe.each([
  { mode: 'threads', Flaky: FlakyThread },
  { mode: 'children', Flaky: FlakyChild },
])('a pool of $mode whose workers stop loading', ({ Flaky }) => {
  const serve = servingInTests<Server>((s) => expect(s.stats().workers).toBe(0));
  afterEach(() => {
    fs.rmSync(flakyMark, { force: true });
    Flaky.errors.length = 0;
    Flaky.verified = 0;
  });

  test('a waiting request fails with the load error after a few tries, and a later request starts a worker again', async () => {
    const s = serve(await bootstrap(Flaky));
    const [holder, waiting] = await Promise.all([connect(target(s)), connect(target(s))]);
    try {
      await until(() => s.stats().active === 1); // holder has the only worker
      waiting.write('waits\n');
      await until(() => Flaky.verified === 2); // taken by the loop, now waiting for the worker
      fs.writeFileSync(flakyMark, ''); // from now on a worker cannot load the handler
      holder.write('exit\n'); // the worker dies; its replacements cannot load
      await until(() => Flaky.errors.some((e) => e.message.includes('cannot load its handler now')), 10000);
      expect(Flaky.errors.find((e) => e.message.includes('cannot load'))!.message).toMatch(/^Flaky\w+: no \w+ worker could be started for this request. Reason:\n  this worker cannot load/);
      expect(s.stats().workers).toBe(0); // none left over, none still being started
    } finally {
      holder.destroy();
      waiting.destroy();
    }
    fs.rmSync(flakyMark);
    expect(await ask(s, 'again\n')).toMatch(/: again$/);
    expect(s.stats().workers).toBe(1);
  });
});
