'use strict'
// The CommonJS twin of index.mjs: node-datachannel 0.33.4 with initLogger's callback optional again,
// as @streamr/dht 103 (built against 0.27) calls it.
const native = require('node-datachannel-native')

module.exports = {
  ...native,
  initLogger(level, callback) {
    if (callback !== undefined) native.initLogger(level, callback)
  },
}
