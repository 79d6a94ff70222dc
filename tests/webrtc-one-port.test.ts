import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'
import { freePort } from '@fitstream/streamr-local'

/**
 * The publisher gives WebRTC one UDP port (the number of its WebSocket port), which compose
 * publishes and an operator opens. @streamr/dht hands that one-port range to every connection, so
 * two buyers at once must share it. Runs in a child process: node-datachannel's threads keep a
 * process alive until its cleanup().
 */
const SCRIPT = `
const { PeerConnection, cleanup } = require('node-datachannel')
const port = Number(process.argv[1])
const onePort = (name) => new PeerConnection(name, { iceServers: [], portRangeBegin: port, portRangeEnd: port })
const anyPort = (name) => new PeerConnection(name, { iceServers: [] })
const received = []
const peers = []
function connect(label) {
  const publisher = onePort('publisher-' + label)
  const buyer = anyPort('buyer-' + label)
  peers.push(publisher, buyer)
  publisher.onLocalDescription((sdp, type) => buyer.setRemoteDescription(sdp, type))
  buyer.onLocalDescription((sdp, type) => publisher.setRemoteDescription(sdp, type))
  publisher.onLocalCandidate((candidate, mid) => buyer.addRemoteCandidate(candidate, mid))
  buyer.onLocalCandidate((candidate, mid) => publisher.addRemoteCandidate(candidate, mid))
  buyer.onDataChannel((channel) => channel.onMessage((message) => { received.push(message); if (received.length === 2) finish(0) }))
  const channel = publisher.createDataChannel('records')
  channel.onOpen(() => channel.sendMessage('records for ' + label))
}
function finish(code) {
  process.stdout.write(JSON.stringify(received.sort()))
  for (const peer of peers) peer.close()
  cleanup()
  process.exit(code)
}
try { connect('first'); connect('second') } catch (error) { process.stdout.write(JSON.stringify(String(error.message))); cleanup(); process.exit(1) }
setTimeout(() => finish(1), 10000)
`

describe('WebRTC on the publisher’s one UDP port', () => {
  it('carries two buyers’ connections at once', async () => {
    const port = await freePort()
    const { stdout } = await promisify(execFile)(process.execPath, ['-e', SCRIPT, String(port)], { timeout: 20_000 })
    expect(JSON.parse(stdout)).toEqual(['records for first', 'records for second'])
  })
})
