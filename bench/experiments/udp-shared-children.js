'use strict';
// Experiment (not part of npm run bench): child processes serving one UDP socket, as a @Forking datagram
// server could. Today every datagram crosses to a child over IPC and its reply comes back the same way
// (udp16 @Forking: 0.11x raw dgram). Here the parent binds a dgram socket, sends it to each child
// (child_process hands a dgram.Socket over as it does a net.Socket), and closes its own copy once every
// child has it (../shared/node-notes.md 3c: the parent's copy would go on reading); each child echoes, and the
// kernel gives each datagram to one of them. Prints its address. With the parent's copy closed, a child
// started later cannot get the socket from the parent, and the port is free once every child is gone: what a
// real design has to solve (a live child hands the socket back, or the parent keeps a copy it does not read).
//   node bench/experiments/udp-shared-children.js [children]
const dgram = require('node:dgram');
const { fork } = require('node:child_process');

if (process.argv[2] === 'child') {
  process.on('message', (msg, socket) => {
    if (msg !== 'udp' || !socket) return;
    socket.on('message', (data, from) => socket.send(data, from.port, from.address));
    process.send('ready');
  });
  process.on('disconnect', () => process.exit(0));
} else {
  const socket = dgram.createSocket('udp4');
  socket.bind(0, '127.0.0.1', () => {
    const { port } = socket.address();
    const count = Number(process.argv[2]) || 2;
    let sent = 0;
    let ready = 0;
    for (let i = 0; i < count; i++) {
      const child = fork(__filename, ['child']);
      child.on('message', (m) => m === 'ready' && ++ready === count && console.log(JSON.stringify({ host: '127.0.0.1', port })));
      child.send('udp', socket, () => ++sent === count && socket.close());
    }
  });
  process.on('SIGTERM', () => process.exit(0));
}
