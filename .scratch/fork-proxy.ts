import 'reflect-metadata';
import { bootstrap } from '../src';
import { ProxyForking } from '../test/fixtures/edge-handlers';
import { rawConnect, readLine, v2Header } from '../test/helpers/edge-clients';
(async () => {
  const server = await bootstrap(ProxyForking, { logger: { error: (m) => console.log('ERR', m), warn: (m) => console.log('WARN', m) } });
  void server.serveForever(0.05);
  const ep = server.serverAddress as any;
  const header = process.argv[3] ? v2Header({ ipv6: true, src: '2001:db8::9', srcPort: 7000, dst: '2001:db8::1', dstPort: 6380, tlvs: [{ type: 0x05, value: Buffer.from('id-42') }] }) : v2Header({ src: '10.0.0.1', srcPort: 5 });
  const c = await rawConnect(ep);
  const mode = process.argv[2];
  if (mode === 'bytes') { for (const b of header) { c.write(Buffer.from([b])); await new Promise((r) => setImmediate(r)); } }
  else c.write(header);
  if (!process.argv[4]) await new Promise((r) => setTimeout(r, 300));
  c.write('info\n');
  try { console.log(mode, await readLine(c, 5000)); } catch (e) { console.log(mode, 'FAIL', (e as Error).message, server.stats()); }
  c.destroy();
  await server.close();
  process.exit(0);
})();
