'use strict';
// A sockserve server for the bench: node sockserve.js <body> <transport> <mode>
require('reflect-metadata');
const { bootstrap } = require('sockserve');
const handlers = require('./handlers');

const [body, transport, mode] = process.argv.slice(2);
bootstrap(handlers[`${body}_${transport}_${mode}`], { handleSignals: true }).then((server) => {
  console.log(JSON.stringify(server.serverAddress));
  return server.serveForever();
}).catch((err) => {
  console.error(err);
  process.exit(1);
});
