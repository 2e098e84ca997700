'use strict';
// The file a sockserve child process starts from; see thread-entry.js for why it is plain JavaScript.
require('./child-main');
