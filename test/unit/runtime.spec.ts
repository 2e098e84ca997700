import { workerAcceptMechanism } from '../../src';

describe('workerAcceptMechanism() (exported: the docs send users to it to see what their Node picks)', () => {
  const kinds = ['worker-accepts', 'handed-over', 'relayed'];

  test('names the mechanism of each pooled mode and stream transport', () => {
    const picked = workerAcceptMechanism();
    expect(Object.keys(picked).sort()).toEqual(['forkingTcp', 'forkingUnix', 'threadingTcp', 'threadingUnix']);
    for (const value of Object.values(picked)) expect(kinds).toContain(value);
    expect(picked.threadingUnix).toBe('relayed'); // no Node line moves a Unix socket into a thread
  });

  test('follows SOCKSERVE_WORKER_ACCEPT=0 and SOCKSERVE_SOCKET_TRANSFER=0, read at each call', () => {
    const saved = { accept: process.env.SOCKSERVE_WORKER_ACCEPT, transfer: process.env.SOCKSERVE_SOCKET_TRANSFER };
    try {
      process.env.SOCKSERVE_WORKER_ACCEPT = '0';
      process.env.SOCKSERVE_SOCKET_TRANSFER = '0';
      expect(workerAcceptMechanism()).toEqual({ forkingTcp: 'handed-over', forkingUnix: 'handed-over', threadingTcp: 'relayed', threadingUnix: 'relayed' });
    } finally {
      for (const [name, value] of [['SOCKSERVE_WORKER_ACCEPT', saved.accept], ['SOCKSERVE_SOCKET_TRANSFER', saved.transfer]] as const) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
    }
  });
});
