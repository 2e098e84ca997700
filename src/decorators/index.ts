/** The decorators users write on a handler class: one transport, at most one concurrency, lifecycle hooks. */
export { TcpServer } from './tcp-server.decorator';
export { UdpServer } from './udp-server.decorator';
export { UnixStreamServer } from './unix-stream-server.decorator';
export { UnixDatagramServer } from './unix-datagram-server.decorator';
export { Threading } from './threading.decorator';
export { Forking } from './forking.decorator';
export { Concurrent } from './concurrent.decorator';
export { Framing } from './framing.decorator';
export {
  Verify,
  Setup,
  Handle,
  OnMessage,
  Finish,
  HandleError,
  HandleTimeout,
  ServiceActions,
  type HookDecorator,
} from './lifecycle.decorators';
