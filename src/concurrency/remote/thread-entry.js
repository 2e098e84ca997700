'use strict';
// The file a sockserve worker thread starts from. Plain JavaScript, so that Node starts it as CommonJS
// whatever runs the program (ts-node, jest, compiled JS); it loads thread-main (.ts or .js) through
// require, where the TypeScript loader, if one is needed, is already registered.
require('./thread-main');
