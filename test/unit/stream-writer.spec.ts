import * as net from 'node:net';
import { StreamWriter } from '../../src/transports/stream-writer';
import { within } from '../helpers/clients';

/** A connected pair on loopback: `server` is the side the writer writes to; `client` starts paused. */
async function pair(): Promise<{ server: net.Socket; client: net.Socket; close: () => void }> {
  const listener = net.createServer();
  await new Promise<void>((r) => listener.listen(0, '127.0.0.1', r));
  const accepted = new Promise<net.Socket>((r) => listener.once('connection', r));
  const client = net.connect((listener.address() as net.AddressInfo).port, '127.0.0.1');
  client.pause();
  const server = await accepted;
  return { server, client, close: () => { client.destroy(); server.destroy(); listener.close(); } };
}

describe('StreamWriter.flush()', () => {
  test('waits for a writelines() still writing its later items, not only the write on its way (hostile re-check)', async () => {
    const { server, client, close } = await pair();
    try {
      const writer = new StreamWriter(server);
      const order: string[] = [];
      const chunk = Buffer.alloc(4 * 1024 * 1024, 'x'); // more than the kernel takes from a client that does not read
      const lines = writer.writelines([chunk, chunk, chunk]).then(() => order.push('writelines'));
      const flushed = writer.flush().then(() => order.push('flush'));
      await new Promise((r) => setTimeout(r, 100));
      client.resume(); // now the client reads everything
      await within(20000, 'both', Promise.all([lines, flushed]));
      expect(order).toEqual(['writelines', 'flush']);
    } finally {
      close();
    }
  });

  test('rejects with the latest write\'s failure once it has failed (it resolved)', async () => {
    const { server, close } = await pair();
    try {
      const writer = new StreamWriter(server);
      await writer.end();
      await expect(writer.write('late')).rejects.toThrow(/after wfile\.end\(\)/);
      await expect(writer.flush()).rejects.toThrow(/after wfile\.end\(\)/);
    } finally {
      close();
    }
  });
});
