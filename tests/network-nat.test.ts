import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Subscriber, type ServiceProcess } from '@fitstream/devstack'
import { WITHOUT_SERVER, deliveries, keysOf, records } from '../services/publisher/test/harness.js'
import { usePublisherHarness } from './system.js'
import { processSockets } from './network-sockets.js'

/**
 * A seller behind NAT and a buyer behind another: neither can open a port, so neither runs a
 * WebSocket server and neither advertises one. FitStream's publisher, started with
 * STREAMR_WEBSOCKET_SERVER=false, must still reach the buyer (WebRTC, signalled through the entry
 * point), and the buyer must get the stream's key from it over that connection and decrypt.
 */
let publisher: ServiceProcess
let buyer: Subscriber
const system = usePublisherHarness('network-nat', {
  provision: (harness) => ['--types', 'steps', '--grant-subscribe', harness.buyer.address],
  failureLog: () => `publisher log:\n${publisher?.tail(30)}\nbuyer errors:\n${buyer?.errors.slice(-20).join('\n')}\n`,
})
const { queues } = system

/** A buyer's node as it is behind NAT: no server, nothing to dial in its descriptor. */
async function buyerWithoutServer(): Promise<Subscriber> {
  const config = await system.harness.network.clientConfig({ privateKey: system.harness.buyer.privateKey })
  const { controlLayer } = config.network
  const natConfig = {
    ...config,
    network: { controlLayer: { ...controlLayer, websocketPortRange: null, peerDescriptor: { nodeId: controlLayer.peerDescriptor.nodeId } } },
  }
  return Subscriber.start(natConfig, [system.harness.streamId('steps')], { XDG_DATA_HOME: system.harness.dataDir() })
}

beforeAll(async () => {
  publisher = await system.harness.startPublisher(system.publisherEnv({ ...WITHOUT_SERVER, STREAMR_JOIN_TIMEOUT_MS: '30000' }))
  buyer = await buyerWithoutServer()
})

afterAll(async () => {
  // Started here, not through the harness: stopped here too.
  await buyer?.stop()
})

describe('a publisher behind NAT and a buyer with no server', () => {
  it('listen on no Streamr port: the publisher only on its HTTP port, the buyer on none', () => {
    expect(processSockets(publisher.pid!).listeningTcpPorts).toEqual([publisher.options.port])
    expect(processSockets(buyer.pid!).listeningTcpPorts).toEqual([])
  })

  it('meet over WebRTC, and the buyer decrypts every record after key exchange with the publisher', async () => {
    const job = { syncId: 'nat', records: records('steps', 12), cohorts: [] }
    await queues.add('publish', job, { jobId: `nat-${randomBytes(4).toString('hex')}` })
    await buyer.waitFor(() => keysOf(job).every((key) => deliveries(buyer).has(key)), 90_000)

    const first = buyer.messages.find((m) => (m.content as { records: { id: string }[] }).records.some((r) => r.id === job.records[0]!.id))
    expect(first?.content).toMatchObject({ schema: 'fitstream.records/1', type: 'steps', pseudonym: job.records[0]!.pseudonym })
    expect(first?.publisherId.toLowerCase()).toBe(system.harness.seller.address.toLowerCase())
    // Neither side had a server to dial: the data came over node-datachannel's ICE (UDP) sockets,
    // which both processes hold while connected.
    expect(processSockets(buyer.pid!).udpSockets).toBeGreaterThan(0)
    expect(processSockets(publisher.pid!).udpSockets).toBeGreaterThan(0)
    expect(buyer.errors.filter((line) => /subscription .*:/.test(line))).toEqual([])
  }, 120_000)
})
