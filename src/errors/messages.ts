/** Message builders for the transport and classic-server errors. Each names the class, the member and one fix. */
import { ClientAddress, formatAddress } from '../transports/address';

export const messages = {
  addressInUse: (owner: string, address: string) =>
    `${owner}: address ${address} is already in use. Fix: stop the other server, pick another port ` +
    `(0 lets the OS choose), or wait for the old socket to leave TIME_WAIT.`,
  lineTooLong: (limit: number) =>
    `rfile.readline(): the line is longer than ${limit} bytes. Fix: pass a larger limit, ` +
    `readline(limit), or read with read()/read1() when lines may be long.`,
  requestTimeout: (seconds: number) =>
    `rfile: no data arrived for ${seconds} s (requestTimeout). Fix: raise requestTimeout, ` +
    `or make the client send sooner.`,
  serverClosed: (owner: string, member: string) =>
    `${owner}.${member}(): the server is closed. Fix: build a new server; close() is final.`,
  alreadyServing: (owner: string) =>
    `${owner}.serveForever(): the loop is already running. Fix: call shutdown() and await it before serving again.`,
  errorBlock: (client: ClientAddress | undefined, trace: string) =>
    `${'-'.repeat(40)}\nException occurred during processing of request from ${formatAddress(client)}\n${trace}\n${'-'.repeat(40)}\n`,
  modeNotAvailable: (handler: string, mode: string) =>
    `${handler}: @${mode === 'threading' ? 'Threading' : 'Forking'} is declared, but this version of sockserve does not ` +
    `run the ${mode} strategy yet. Fix: remove the decorator (serial) or use @Concurrent until it lands.`,
  badServerClass: (handler: string, given: string, expected: string) =>
    `${handler}: serverClass ${given} does not extend ${expected}, the classic server of its transport decorator. ` +
    `Fix: declare it as \`class ${given} extends ${expected}\`.`,
  badAddress: (owner: string, address: unknown) =>
    `${owner}: ${JSON.stringify(address)} is not an address. Fix: pass [host, port] or { host, port }` +
    ` (port 0 lets the OS choose); Unix servers take a path or { path }.`,
};
