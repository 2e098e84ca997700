'use strict';
// Anchor: a UDP echo on Node's dgram, as tight as it goes.
const dgram = require('node:dgram');

const s = dgram.createSocket('udp4');
s.on('message', (msg, rinfo) => s.send(msg, rinfo.port, rinfo.address));
s.bind(0, '127.0.0.1', () => console.log(JSON.stringify({ host: '127.0.0.1', port: s.address().port })));
process.on('SIGTERM', () => process.exit(0));
