import { beforeAll, describe, expect, it } from 'vitest'
import type { ServiceProcess, Subscriber } from '@fitstream/devstack'
import { freePort } from '@fitstream/streamr-local'
import { deliveries, keysOf, records, waitUntilPublished } from '../services/publisher/test/harness.js'
import { usePublisherHarness } from './system.js'

/**
 * An entry point that no longer answers, listed first in STREAMR_ENTRY_POINTS (a stale address in a
 * seller's configuration): the publisher joins through the one that does, and the buyer receives
 * every record; nothing is dead-lettered. (The network out of reach altogether is
 * tests/streamr-outage.test.ts.)
 */
let publisher: ServiceProcess
let buyer: Subscriber
const system = usePublisherHarness('network-entry-point', {
  provision: (harness) => ['--types', 'steps', '--no-cohorts', '--grant-subscribe', harness.buyer.address],
  failureLog: () => `publisher log:\n${publisher?.tail(30)}\n`,
})
const { prefix, redis, queues } = system

beforeAll(async () => {
  const ep = system.harness.network.entryPoint
  // Nothing listens on a port just found free.
  const gone = `${'dead'.repeat(10)}@ws://127.0.0.1:${await freePort()}`
  publisher = await system.harness.startPublisher(
    system.publisherEnv({
      STREAMR_ENTRY_POINTS: `${gone},${ep.nodeId}@ws://${ep.websocket.host}:${ep.websocket.port}`,
      STREAMR_JOIN_TIMEOUT_MS: '30000',
    }),
  )
  buyer = await system.harness.startSubscriber(system.harness.buyer.privateKey, [system.harness.streamId('steps')])
})

describe('an entry point that does not answer', () => {
  it('is passed over: the publisher joins through the other and the buyer gets every record', async () => {
    const job = { syncId: 'entry-point', records: records('steps', 10), cohorts: [] }
    await queues.add('publish', job, { jobId: 'entry-point' })
    await waitUntilPublished(redis, prefix, 'entry-point', 90_000)
    await buyer.waitFor(() => keysOf(job).every((key) => deliveries(buyer).has(key)), 60_000)
    expect(await queues.deadLetterQueue('publish').getJobCountByTypes('waiting', 'completed', 'active', 'delayed')).toBe(0)
  }, 150_000)
})
