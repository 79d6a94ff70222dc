import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import type { ServiceProcess, Subscriber } from '@fitstream/devstack'
import { StageQueues, commonEnv, createLogger, parseEnv, retryPolicies } from '@fitstream/shared'
import { freePort } from '@fitstream/streamr-local'
import { PublisherHarness, deliveries, keysOf, records, waitUntilPublished } from '../services/publisher/test/harness.js'
import { redisUrl, testRedis, uniquePrefix } from './helpers.js'

/**
 * An entry point that no longer answers, listed first in STREAMR_ENTRY_POINTS (a stale address in a
 * seller's configuration): the publisher joins through the one that does, and the buyer receives
 * every record; nothing is dead-lettered. (The network out of reach altogether is
 * tests/streamr-outage.test.ts.)
 */
const prefix = uniquePrefix('network-entry-point')
const { redis, cleanup } = testRedis(prefix)
const queues = new StageQueues({ connection: redis, prefix, retry: retryPolicies(parseEnv(commonEnv, {})), logger: createLogger('test', 'silent') })
let harness: PublisherHarness
let publisher: ServiceProcess
let buyer: Subscriber

beforeAll(async () => {
  harness = await PublisherHarness.start()
  await harness.cli(['streams', 'provision', '--types', 'steps', '--no-cohorts', '--grant-subscribe', harness.buyer.address])
  const ep = harness.network.entryPoint
  // Nothing listens on a port just found free.
  const gone = `${'dead'.repeat(10)}@ws://127.0.0.1:${await freePort()}`
  publisher = await harness.startPublisher({
    REDIS_URL: redisUrl(),
    QUEUE_PREFIX: prefix,
    STREAMR_ENTRY_POINTS: `${gone},${ep.nodeId}@ws://${ep.websocket.host}:${ep.websocket.port}`,
    STREAMR_JOIN_TIMEOUT_MS: '30000',
  })
  buyer = await harness.startSubscriber(harness.buyer.privateKey, [harness.streamId('steps')])
})

afterEach((context) => {
  if (context.task.result?.state !== 'fail') return
  process.stderr.write(`publisher log:\n${publisher?.tail(30)}\n`)
})

afterAll(async () => {
  await harness?.stop()
  await queues.close()
  await cleanup()
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
