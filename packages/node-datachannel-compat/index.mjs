// @streamr/dht 103 was built against node-datachannel 0.27, whose install step downloads its binary
// (impossible offline). 0.33 ships the binary as npm packages but requires initLogger's callback, which
// dht leaves out (`initLogger('Fatal')` at import), so every process would crash at start. This
// package is 0.33.4 with that one call made total; everything else is node-datachannel's own.
// Without a callback nothing is initialised: libdatachannel then logs nothing, which is what dht asks
// for, and no native log thread holds the event loop open (a callback logger keeps a process alive).
import { initLogger as nativeInitLogger, PeerConnection as NativePeerConnection } from 'node-datachannel-native'

export * from 'node-datachannel-native'

/** 0.27's signature: the callback is optional; without one, libdatachannel stays silent. */
export function initLogger(level, callback) {
  if (callback !== undefined) nativeInitLogger(level, callback)
}

/**
 * node-datachannel's PeerConnection, with ICE multiplexing turned on when the port range is a single
 * port: @streamr/dht gives every connection the node's `webrtcPortRange`, and without multiplexing a
 * one-port range holds one connection (the next fails with "Failed to gather local ICE candidates").
 * One port is what a firewall rule or a published container port can carry.
 */
export class PeerConnection extends NativePeerConnection {
  constructor(peerName, config) {
    super(peerName, withUdpMux(config))
  }
}

function withUdpMux(config) {
  const onePort = config?.portRangeBegin !== undefined && config.portRangeBegin === config.portRangeEnd
  return onePort && config.enableIceUdpMux === undefined ? { ...config, enableIceUdpMux: true } : config
}
