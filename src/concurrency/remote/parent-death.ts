import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';

/** Where util-linux installs `setpriv` (Debian, Ubuntu, Fedora, Arch…). */
const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'];

let found: readonly string[] | undefined | null = null;

/**
 * The command to put before `node …` so that the kernel sends a child SIGKILL when the server's process dies:
 * `setpriv --pdeathsig KILL --` (util-linux 2.33+), which sets Linux's PR_SET_PDEATHSIG and execs the rest, so
 * the child keeps its pid. A child exits by itself when its IPC channel closes, but only while its event loop
 * runs: one blocked by a handler (a loop that never returns) would outlive a server killed by SIGKILL.
 *
 * Undefined where no working setpriv is found (macOS, Windows, busybox images, util-linux before 2.33): there a
 * child exits when its channel closes, as Node's own forked processes do. Probed once per process by running
 * the command itself (`setpriv --pdeathsig KILL -- setpriv --version`, a few milliseconds), so an old setpriv
 * or a sandbox that forbids the prctl is detected, never met at a child's start.
 */
export function parentDeathCommand(): readonly string[] | undefined {
  if (found !== null) return found;
  found = undefined;
  if (process.platform !== 'linux') return found;
  for (const file of SETPRIV) {
    try {
      fs.accessSync(file, fs.constants.X_OK);
    } catch {
      continue;
    }
    const probe = spawnSync(file, ['--pdeathsig', 'KILL', '--', file, '--version'], { stdio: 'ignore', timeout: 5000 });
    if (probe.status === 0) {
      found = [file, '--pdeathsig', 'KILL', '--'];
      break;
    }
  }
  return found;
}
