/**
 * Messages name the server's class, or the nearest named class it extends: an anonymous subclass named nothing,
 * and its errors began with ": " (hostile run on the classic layer).
 */
import { StreamRequestHandler, TCPServer } from '../../src/classic';
import { classNameOf } from '../../src/classic/class-name';

class Echo extends StreamRequestHandler {
  override async handle(): Promise<void> {}
}

describe('classNameOf', () => {
  test('is the class name, else the nearest named base class', () => {
    class Named {}
    const Anonymous = (() => class extends Named {})();
    expect(Anonymous.name).toBe('');
    expect(classNameOf(new Named())).toBe('Named');
    expect(classNameOf(new Anonymous())).toBe('Named');
    expect(classNameOf(Object.create(null) as object)).toBe('an anonymous class');
  });

  test("an anonymous TCPServer subclass's errors name TCPServer", async () => {
    const Anonymous = (() => class extends TCPServer {})();
    const server = new Anonymous(['127.0.0.1', 0], Echo);
    try {
      await server.ready;
      await expect(server.serverBind()).rejects.toThrow(/^TCPServer: serverBind\(\) on a server already bound/);
    } finally {
      await server.close();
    }
  });
});
