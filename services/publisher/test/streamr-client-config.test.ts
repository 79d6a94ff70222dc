import { describe, expect, it } from 'vitest'
import { loadConfig } from '../src/config.js'
import { hubProjectUrl } from '../src/hub.js'
import { streamrClientConfig } from '../src/streamr-client.js'

const KEY = `0x${'11'.repeat(32)}`

function controlLayer(env: Record<string, string>) {
  return streamrClientConfig(loadConfig({ STREAMR_PRIVATE_KEY: KEY, ...env })).network?.controlLayer
}

describe('the publisher node buyers dial', () => {
  it('serves TLS on the real network, from AutoCertifier unless the operator gives a certificate, on one port', () => {
    const layer = controlLayer({ STREAMR_WEBSOCKET_PORT: '32200' })
    expect(layer?.websocketServerEnableTls).toBe(true)
    expect(layer?.websocketPortRange).toEqual({ min: 32200, max: 32200 })
    // WebRTC on the same number over UDP, so one firewall rule and one published port carry both.
    expect(layer?.webrtcPortRange).toEqual({ min: 32200, max: 32200 })
    // The node learns its public address itself: AutoCertifier's certificate names the host it assigns.
    expect(layer?.peerDescriptor).toBeUndefined()
    expect(layer?.tlsCertificate).toBeUndefined()
  })

  it("advertises the operator's host with TLS when their certificate is given", () => {
    const layer = controlLayer({
      STREAMR_WEBSOCKET_PORT: '443',
      STREAMR_WEBSOCKET_HOST: 'streamr.example.org',
      STREAMR_TLS_CERT_FILE: '/certs/fullchain.pem',
      STREAMR_TLS_KEY_FILE: '/certs/privkey.pem',
    })
    expect(layer?.tlsCertificate).toEqual({ certFileName: '/certs/fullchain.pem', privateKeyFileName: '/certs/privkey.pem' })
    expect(layer?.peerDescriptor?.websocket).toEqual({ host: 'streamr.example.org', port: 443, tls: true })
  })

  it('is plain only on a local network, or when the operator says so', () => {
    const local = controlLayer({ STREAMR_ENVIRONMENT: 'dev2', STREAMR_WEBSOCKET_PORT: '32200', STREAMR_WEBSOCKET_HOST: '127.0.0.1' })
    expect(local?.websocketServerEnableTls).toBe(false)
    expect(local?.peerDescriptor?.websocket).toEqual({ host: '127.0.0.1', port: 32200, tls: false })
    expect(controlLayer({ STREAMR_WEBSOCKET_TLS: 'false' })?.websocketServerEnableTls).toBe(false)
  })

  it('refuses at start a TLS host without its certificate, and half a certificate, naming the variables', () => {
    expect(() => loadConfig({ STREAMR_PRIVATE_KEY: KEY, STREAMR_WEBSOCKET_PORT: '32200', STREAMR_WEBSOCKET_HOST: 'streamr.example.org' })).toThrow(
      /STREAMR_WEBSOCKET_HOST with TLS needs the certificate for that host \(STREAMR_TLS_CERT_FILE, STREAMR_TLS_KEY_FILE\)/,
    )
    expect(() => loadConfig({ STREAMR_PRIVATE_KEY: KEY, STREAMR_TLS_CERT_FILE: '/certs/fullchain.pem' })).toThrow(
      /STREAMR_TLS_CERT_FILE and STREAMR_TLS_KEY_FILE go together/,
    )
  })
})

describe("a project's address in the Hub", () => {
  it('is the direct project page on the live networks, which buyers are given since the app stopped listing projects', () => {
    const id = `0x${'ab'.repeat(32)}`
    expect(hubProjectUrl('polygon', id)).toBe(`https://streamr.network/hub/projects/${id}`)
    expect(hubProjectUrl('polygonAmoy', id)).toBe(`https://streamr.network/hub/projects/${id}`)
    expect(hubProjectUrl('dev2', id)).toBeUndefined()
  })
})
