'use strict'
// node-datachannel's install step downloads a prebuilt WebRTC binary, which cannot be fetched on
// machines without internet access. @streamr/dht imports only these two symbols; with this stand-in
// WebRTC is off and every Streamr node connects over WebSocket instead (see README, "Streamr and WebRTC").

exports.initLogger = function initLogger() {}

exports.PeerConnection = class PeerConnection {
  constructor() {
    throw new Error('WebRTC is disabled in this FitStream build: node-datachannel is not installed')
  }
}
