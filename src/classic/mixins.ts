import { ConcurrentStrategy } from '../concurrency/concurrent.strategy';
import type { BaseServer } from './base-server';

type ServerClass = abstract new (...args: any[]) => BaseServer<any, any>;

/**
 * A thin compatibility face over the strategies, for Python's shape: `class S extends ConcurrentMixIn(TCPServer) {}`.
 * ConcurrentMixIn interleaves requests on the event loop. (ThreadingMixIn and ForkingMixIn, over the
 * threading and forking strategies, arrive with those strategies.)
 */
export function ConcurrentMixIn<B extends ServerClass>(Base: B, maxConnections = Infinity): B {
  abstract class Concurrent extends Base {
    constructor(...args: any[]) {
      super(...args);
      this.strategy = new ConcurrentStrategy(maxConnections);
    }
  }
  return Concurrent as unknown as B;
}
