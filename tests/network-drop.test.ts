import { beforeAll, describe, expect, it } from 'vitest'
import type { ServiceProcess, Subscriber } from '@fitstream/devstack'
import { deliveries, keysOf, records, waitUntilPublished } from '../services/publisher/test/harness.js'
import { reportFigures } from './helpers.js'
import { usePublisherHarness } from './system.js'

/**
 * A buyer whose node drops mid-transfer (SIGKILL: no goodbye to its neighbours, as a crash or a
 * lost network looks to the publisher): the publisher goes on publishing to the other buyer, who
 * receives every record, nothing is dead-lettered, and the publisher's metrics show it: one stream
 * neighbour less, messages still published, no job failed. Then a node that joins the stream but may
 * not read it (its key requests are refused): the same.
 */
let publisher: ServiceProcess
let dropping: Subscriber
let staying: Subscriber
const system = usePublisherHarness('network-drop', {
  failureLog: () => `publisher log:\n${publisher?.tail(30)}\nstaying buyer errors:\n${staying?.errors.slice(-20).join('\n')}\n`,
})
const { prefix, redis, queues } = system

/** A metric of the publisher's /metrics, summed over the series that have `label` (e.g. `queue="publish"`). */
async function metric(name: string, label = ''): Promise<number> {
  const text = await (await fetch(`${publisher.url}/metrics`)).text()
  return text
    .split('\n')
    .filter((line) => (line.startsWith(`${name}{`) || line.startsWith(`${name} `)) && line.includes(label))
    .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(' ') + 1)), 0)
}

async function eventually(read: () => Promise<number>, wanted: number, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await read()
    if (value === wanted || Date.now() > deadline) return value
    await new Promise((resolve) => setTimeout(resolve, 250))
  }
}

beforeAll(async () => {
  const second = system.harness.network.accounts[3]!
  await system.harness.cli([
    'streams',
    'provision',
    '--types',
    'steps',
    '--no-cohorts',
    '--grant-subscribe',
    system.harness.buyer.address,
    '--grant-subscribe',
    second.address,
  ])
  publisher = await system.harness.startPublisher(
    system.publisherEnv({
      // Many small messages, so that a job is a transfer long enough to drop out of.
      MAX_MESSAGE_BYTES: '600',
      STREAMR_JOIN_TIMEOUT_MS: '30000',
    }),
  )
  dropping = await system.harness.startSubscriber(system.harness.buyer.privateKey, [system.harness.streamId('steps')])
  staying = await system.harness.startSubscriber(second.privateKey, [system.harness.streamId('steps')])
})

describe('a buyer that drops mid-transfer', () => {
  it('does not stop the publisher: the other buyer gets every record, nothing is dead-lettered, and the metrics show a neighbour less', async () => {
    const first = { syncId: 'before', records: records('steps', 6), cohorts: [] }
    await queues.add('publish', first, { jobId: 'before' })
    for (const buyer of [dropping, staying]) await buyer.waitFor(() => keysOf(first).every((key) => deliveries(buyer).has(key)), 60_000)
    const streamPart = `${system.harness.streamId('steps')}#0`
    const neighbors = () => metric('fitstream_streamr_stream_neighbors', `stream_part="${streamPart}"`)
    const withBoth = await eventually(neighbors, 2, 30_000)
    expect(withBoth).toBe(2)

    // A long job; the first buyer's node is killed once some of it has arrived.
    const long = { syncId: 'during', records: records('steps', 200), cohorts: [] }
    const before = dropping.messages.length
    await queues.add('publish', long, { jobId: 'during' })
    await dropping.waitFor((messages) => messages.length > before, 60_000)
    await dropping.kill()
    await waitUntilPublished(redis, prefix, 'during', 120_000)
    const gotBeforeDrop = keysOf(long).filter((key) => deliveries(dropping).has(key)).length
    expect(gotBeforeDrop).toBeLessThan(long.records.length)

    const after = { syncId: 'after', records: records('steps', 6), cohorts: [] }
    await queues.add('publish', after, { jobId: 'after' })
    await staying.waitFor(() => [...keysOf(long), ...keysOf(after)].every((key) => deliveries(staying).has(key)), 90_000)

    expect(await queues.deadLetterQueue('publish').getJobCountByTypes('waiting', 'completed', 'active', 'delayed')).toBe(0)
    expect(await metric('fitstream_jobs_failed_total')).toBe(0)
    expect(await metric('fitstream_jobs_dead_lettered_total')).toBe(0)
    expect(await metric('fitstream_jobs_completed_total', 'queue="publish"')).toBe(3)
    // The dead node stops counting once the publisher's node notices it is gone.
    expect(await eventually(neighbors, 1, 60_000)).toBe(1)
    reportFigures('buyer dropped mid-transfer', {
      records: long.records.length,
      receivedByDroppedBuyer: gotBeforeDrop,
      receivedByOtherBuyer: keysOf(long).filter((key) => deliveries(staying).has(key)).length,
      messagesPublished: await metric('fitstream_streamr_messages_published_total'),
    })
  }, 300_000)

  it('nor does a node that never completes key exchange (it holds no SUBSCRIBE): it reads nothing, the buyer everything', async () => {
    const unpaid = await system.harness.startSubscriber(system.harness.network.accounts[4]!.privateKey, [system.harness.streamId('steps')])
    const neighbors = () => metric('fitstream_streamr_stream_neighbors', `stream_part="${system.harness.streamId('steps')}#0"`)
    // It is a neighbour like any other: the network does not check who may read, key exchange does.
    expect(await eventually(neighbors, 2, 60_000)).toBe(2)
    const job = { syncId: 'unpaid', records: records('steps', 20), cohorts: [] }
    await queues.add('publish', job, { jobId: 'unpaid' })
    await staying.waitFor(() => keysOf(job).every((key) => deliveries(staying).has(key)), 60_000)
    await new Promise((resolve) => setTimeout(resolve, 3_000))
    expect(unpaid.messages).toEqual([])
    expect(await queues.deadLetterQueue('publish').getJobCountByTypes('waiting', 'completed', 'active', 'delayed')).toBe(0)
    expect(await metric('fitstream_jobs_failed_total')).toBe(0)
    expect(await metric('fitstream_jobs_completed_total', 'queue="publish"')).toBe(4)
  }, 120_000)
})
