'use strict'
// The CommonJS twin of index.mjs: node-datachannel 0.33.4 with initLogger's callback optional again,
// as @streamr/dht 103 (built against 0.27) calls it.
const native = require('node-datachannel-native')

/** As in index.mjs: ICE multiplexing on when the port range is a single port. */
class PeerConnection extends native.PeerConnection {
  constructor(peerName, config) {
    const onePort = config?.portRangeBegin !== undefined && config.portRangeBegin === config.portRangeEnd
    super(peerName, onePort && config.enableIceUdpMux === undefined ? { ...config, enableIceUdpMux: true } : config)
  }
}

module.exports = {
  ...native,
  PeerConnection,
  initLogger(level, callback) {
    if (callback !== undefined) native.initLogger(level, callback)
  },
}
