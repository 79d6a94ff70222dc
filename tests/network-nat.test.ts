import { randomBytes } from 'node:crypto'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { Subscriber, type ServiceProcess } from '@fitstream/devstack'
import { StageQueues, commonEnv, createLogger, parseEnv, retryPolicies } from '@fitstream/shared'
import { PublisherHarness, WITHOUT_SERVER, deliveries, keysOf, records } from '../services/publisher/test/harness.js'
import { redisUrl, testRedis, uniquePrefix } from './helpers.js'
import { processSockets } from './network-sockets.js'

/**
 * A seller behind NAT and a buyer behind another: neither can open a port, so neither runs a
 * WebSocket server and neither advertises one. FitStream's publisher, started with
 * STREAMR_WEBSOCKET_SERVER=false, must still reach the buyer (WebRTC, signalled through the entry
 * point), and the buyer must get the stream's key from it over that connection and decrypt.
 */
const prefix = uniquePrefix('network-nat')
const { redis, cleanup } = testRedis(prefix)
const queues = new StageQueues({ connection: redis, prefix, retry: retryPolicies(parseEnv(commonEnv, {})), logger: createLogger('test', 'silent') })
let harness: PublisherHarness
let publisher: ServiceProcess
let buyer: Subscriber

/** A buyer's node as it is behind NAT: no server, nothing to dial in its descriptor. */
async function buyerWithoutServer(): Promise<Subscriber> {
  const config = await harness.network.clientConfig({ privateKey: harness.buyer.privateKey })
  const { controlLayer } = config.network
  const natConfig = {
    ...config,
    network: { controlLayer: { ...controlLayer, websocketPortRange: null, peerDescriptor: { nodeId: controlLayer.peerDescriptor.nodeId } } },
  }
  return Subscriber.start(natConfig, [harness.streamId('steps')], { XDG_DATA_HOME: harness.dataDir() })
}

beforeAll(async () => {
  harness = await PublisherHarness.start()
  await harness.cli(['streams', 'provision', '--types', 'steps', '--grant-subscribe', harness.buyer.address])
  publisher = await harness.startPublisher({
    REDIS_URL: redisUrl(),
    QUEUE_PREFIX: prefix,
    ...WITHOUT_SERVER,
    STREAMR_JOIN_TIMEOUT_MS: '30000',
  })
  buyer = await buyerWithoutServer()
})

afterEach((context) => {
  if (context.task.result?.state !== 'fail') return
  process.stderr.write(`publisher log:\n${publisher?.tail(30)}\nbuyer errors:\n${buyer?.errors.slice(-20).join('\n')}\n`)
})

afterAll(async () => {
  // Started here, not through the harness: stopped here too.
  await buyer?.stop()
  await harness?.stop()
  await queues.close()
  await cleanup()
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
    expect(first?.publisherId.toLowerCase()).toBe(harness.seller.address.toLowerCase())
    // Neither side had a server to dial: the data came over node-datachannel's ICE (UDP) sockets,
    // which both processes hold while connected.
    expect(processSockets(buyer.pid!).udpSockets).toBeGreaterThan(0)
    expect(processSockets(publisher.pid!).udpSockets).toBeGreaterThan(0)
    expect(buyer.errors.filter((line) => /subscription .*:/.test(line))).toEqual([])
  }, 120_000)
})
