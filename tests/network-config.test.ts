import { describe, expect, it } from 'vitest'
import { loadConfig } from '../services/publisher/src/config.js'
import { streamrClientConfig } from '../services/publisher/src/streamr-client.js'

const KEY = `0x${'11'.repeat(32)}`
const controlLayer = (env: Record<string, string>) => streamrClientConfig(loadConfig({ STREAMR_PRIVATE_KEY: KEY, ...env })).network?.controlLayer

describe('a publisher that can open no port (behind NAT)', () => {
  it('runs no WebSocket server and advertises none, so buyers reach it over WebRTC', () => {
    const local = controlLayer({ STREAMR_ENVIRONMENT: 'dev2', STREAMR_WEBSOCKET_SERVER: 'false' })
    expect(local?.websocketPortRange).toBeNull()
    expect(local?.peerDescriptor).toEqual({ nodeId: expect.stringMatching(/^[0-9a-f]{40}$/) })
    // On the real network the node learns its address and region from the network itself.
    const real = controlLayer({ STREAMR_WEBSOCKET_SERVER: 'false' })
    expect(real?.websocketPortRange).toBeNull()
    expect(real?.peerDescriptor).toBeUndefined()
  })

  it('runs a server by default', () => {
    expect(controlLayer({ STREAMR_WEBSOCKET_PORT: '32200' })?.websocketPortRange).toEqual({ min: 32200, max: 32200 })
  })

  it('refuses a port, host or certificate for the server it does not run, naming the variables', () => {
    expect(() => loadConfig({ STREAMR_PRIVATE_KEY: KEY, STREAMR_WEBSOCKET_SERVER: 'false', STREAMR_WEBSOCKET_PORT: '32200' })).toThrow(
      /STREAMR_WEBSOCKET_SERVER=false runs no WebSocket server, so STREAMR_WEBSOCKET_PORT, STREAMR_WEBSOCKET_HOST and STREAMR_TLS_CERT_FILE must be left unset/,
    )
    expect(() => loadConfig({ STREAMR_PRIVATE_KEY: KEY, STREAMR_WEBSOCKET_SERVER: 'no', STREAMR_WEBSOCKET_HOST: 'seller.example.org' })).toThrow(
      /STREAMR_WEBSOCKET_SERVER=false/,
    )
  })
})
