import * as fs from 'node:fs';

/**
 * Watches a listening socket for accept failures for lack of file descriptors (EMFILE, ENFILE).
 *
 * libuv hides them: when accept() fails with EMFILE it closes a descriptor it keeps in reserve, accepts
 * the waiting connections and closes them at once, and reports nothing to Node (the "EMFILE trick"), so
 * clients are dropped without a trace. Node emits 'error' on the server only when that reserve is gone.
 * So besides that 'error', this watch probes once a second (a timer that does not keep the process
 * alive) whether the process can open one more descriptor; a probe that cannot means connections
 * arriving now are being dropped. Each failure is reported to `onFailure`, with `first` true for the
 * first of a burst (log once per burst); `onRecovered` runs when a probe succeeds again, with the burst's
 * failures and its length in milliseconds.
 */
export class AcceptWatch {
  private timer: NodeJS.Timeout | undefined;
  private burst: { since: number; failures: number } | undefined;

  constructor(
    private readonly onFailure: (error: NodeJS.ErrnoException, first: boolean) => void,
    private readonly onRecovered: (failures: number, ms: number) => void,
    private readonly intervalMs = 1000,
  ) {}

  /** Starts probing (idempotent). */
  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.probe(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** An 'error' from the listening socket: accept failures are counted; others are not this watch's. */
  onError(error: NodeJS.ErrnoException): boolean {
    if (!isDescriptorShortage(error)) return false;
    this.fail(error);
    return true;
  }

  /** One probe: can the process open one more descriptor? */
  probe(): void {
    let fd: number;
    try {
      fd = fs.openSync('/dev/null', 'r');
    } catch (err) {
      if (isDescriptorShortage(err as NodeJS.ErrnoException)) this.fail(acceptError(err as NodeJS.ErrnoException));
      return;
    }
    fs.closeSync(fd);
    const burst = this.burst;
    if (burst) {
      this.burst = undefined;
      this.onRecovered(burst.failures, Date.now() - burst.since);
    }
  }

  private fail(error: NodeJS.ErrnoException): void {
    const first = this.burst === undefined;
    this.burst ??= { since: Date.now(), failures: 0 };
    this.burst.failures++;
    this.onFailure(error, first);
  }
}

function isDescriptorShortage(error: NodeJS.ErrnoException | undefined): boolean {
  return error?.code === 'EMFILE' || error?.code === 'ENFILE';
}

/** The probe's error, told as the accept failure it stands for. */
function acceptError(cause: NodeJS.ErrnoException): NodeJS.ErrnoException {
  return Object.assign(new Error(`accept ${cause.code}`, { cause }), { code: cause.code, errno: cause.errno, syscall: 'accept' });
}
