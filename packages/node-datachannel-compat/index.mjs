// @streamr/dht 103 was built against node-datachannel 0.27, whose install step downloads its binary
// (impossible offline). 0.33 ships the binary as npm packages but requires initLogger's callback, which
// dht leaves out (`initLogger('Fatal')` at import), so every process would crash at start. This
// package is 0.33.4 with that one call made total; everything else is node-datachannel's own.
// Without a callback nothing is initialised: libdatachannel then logs nothing, which is what dht asks
// for, and no native log thread holds the event loop open (a callback logger keeps a process alive).
import { initLogger as nativeInitLogger } from 'node-datachannel-native'

export * from 'node-datachannel-native'

/** 0.27's signature: the callback is optional; without one, libdatachannel stays silent. */
export function initLogger(level, callback) {
  if (callback !== undefined) nativeInitLogger(level, callback)
}
