import { BaseServer, BaseRequestHandler } from '../../src/classic';
import type { ClientAddress } from '../../src/classic';
import { RequestQueue } from '../../src/transports/request-queue';
import { eventually } from '../helpers/eventually';

/** An in-memory request: a name the test chooses and what the handler should do with it. */
export interface FakeRequest {
  name: string;
  act?: (h: FakeHandler) => unknown;
  /** setup() throws this error's message. */
  failSetup?: string;
}

/** A server over an in-memory queue that records every hook it runs, in order. */
export class FakeServer extends BaseServer<FakeRequest, string> {
  readonly calls: string[] = [];
  readonly errors: unknown[] = [];
  private readonly queue = new RequestQueue<FakeRequest>();
  verdict: (r: FakeRequest) => boolean | Promise<boolean> = () => true;

  constructor() {
    super('fake', FakeHandler);
  }

  /** Queues a request, as a connection arriving. */
  push(name: string, act?: FakeRequest['act'], failSetup?: string): void {
    this.queue.push({ name, act, failSetup });
  }

  override getRequest(): [FakeRequest, ClientAddress] {
    const r = this.queue.shift();
    if (!r) throw Object.assign(new Error('empty'), { code: 'EAGAIN' });
    this.calls.push(`getRequest ${r.name}`);
    return [r, { path: r.name }];
  }
  protected waitForRequest(ms: number) {
    return this.queue.wait(ms);
  }
  protected wakeLoop() {
    this.queue.wake();
  }
  /** Asynchronous, as an override may be (a throwing verdict rejects); SyncFake in base-server.spec.ts answers at once. */
  override verifyRequest(r: FakeRequest): boolean | Promise<boolean> {
    this.calls.push(`verifyRequest ${r.name}`);
    try {
      return Promise.resolve(this.verdict(r));
    } catch (err) {
      return Promise.reject(err);
    }
  }
  override processRequest(r: FakeRequest, a: ClientAddress) {
    this.calls.push(`processRequest ${r.name}`);
    return super.processRequest(r, a);
  }
  override finishRequest(r: FakeRequest, a: ClientAddress) {
    this.calls.push(`finishRequest ${r.name}`);
    return super.finishRequest(r, a);
  }
  override shutdownRequest(r: FakeRequest) {
    this.calls.push(`shutdownRequest ${r.name}`);
    return super.shutdownRequest(r);
  }
  override closeRequest(r: FakeRequest) {
    this.calls.push(`closeRequest ${r.name}`);
  }
  override handleError(r: FakeRequest | undefined, _a: ClientAddress | undefined, e: unknown) {
    this.calls.push(`handleError ${r?.name} ${(e as Error).message}`);
    this.errors.push(e);
  }
  override handleTimeout() {
    this.calls.push('handleTimeout');
    return 'timed out';
  }
  override serviceActions() {
    this.calls.push('serviceActions');
  }
}

export class FakeHandler extends BaseRequestHandler<FakeRequest, FakeServer> {
  override setup() {
    if (this.request.failSetup) throw new Error(this.request.failSetup);
    this.server.calls.push(`setup ${this.request.name}`);
  }
  override async handle() {
    this.server.calls.push(`handle ${this.request.name}`);
    await this.request.act?.(this);
  }
  override finish() {
    this.server.calls.push(`finish ${this.request.name}`);
  }
}

/** Resolves after `ms`. */
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `cond` every 5 ms until true; rejects after `ms` (test/helpers/eventually.ts, unnamed). */
export function until(cond: () => boolean, ms = 5000): Promise<void> {
  return eventually('condition', cond, ms, 5);
}
