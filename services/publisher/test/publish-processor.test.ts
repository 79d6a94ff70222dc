import { randomBytes } from 'node:crypto'
import { afterAll, describe, expect, it } from 'vitest'
import { createLogger, type PublishJobData } from '@fitstream/shared'
import { DeliveryJournal, type LeaseLostError } from '../src/delivery-journal.js'
import { deliveryKeys, outgoingMessages } from '../src/messages.js'
import { createPublishProcessor, type PublishProcessorDeps, type PublishResult } from '../src/publish-processor.js'
import { jobContext, testRedis, uniquePrefix } from '../../../tests/helpers.js'
import { records } from './harness.js'

/**
 * The publish processor against a real Redis journal and a recording stand-in for the Streamr
 * client: which messages go out, under which identity (chain, timestamp), when a job is retried
 * in the same process, taken over from a crashed one, or replayed from the dead-letter queue.
 */
const prefix = uniquePrefix('publish-processor')
const { redis, cleanup } = testRedis(prefix)
const MAX_BYTES = 1024
const logger = createLogger('test', 'silent')

afterAll(cleanup)

interface Sent {
  readonly streamId: string
  readonly recordIds: string[]
  readonly msgChainId: string
  readonly timestamp: number
}

/** One publisher process: its processor, and every message its "client" sent. */
function publisherProcess(options: { failAfter?: number; stallAfter?: { count: number; until: Promise<void> } } = {}) {
  const sent: Sent[] = []
  const leasesLost: LeaseLostError[] = []
  let failAfter = options.failAfter
  const client = {
    publish: async (streamId: string, content: { records: { id: string }[] }, metadata: { msgChainId: string; timestamp: number }) => {
      if (failAfter !== undefined && failAfter-- <= 0) throw new Error('the network node refused to send')
      if (options.stallAfter !== undefined && sent.length === options.stallAfter.count) await options.stallAfter.until
      sent.push({ streamId, recordIds: content.records.map((r) => r.id), msgChainId: metadata.msgChainId, timestamp: metadata.timestamp })
      return undefined
    },
  }
  const process = createPublishProcessor({
    client: client as unknown as PublishProcessorDeps['client'],
    naming: { owner: `0x${'5'.repeat(40)}`, pathPrefix: 'fitstream' },
    journal: new DeliveryJournal(redis, prefix),
    maxMessageBytes: MAX_BYTES,
    onLeaseLost: (error) => void leasesLost.push(error),
  })
  return {
    sent,
    leasesLost,
    failAfter: (n: number | undefined) => void (failAfter = n),
    run: (jobId: string, job: PublishJobData, attempt = 1): Promise<PublishResult> => process(job, jobContext(logger, { jobId, attempt, maxAttempts: 5 })),
  }
}

/** A job of `count` step records of one person (one stream partition), packed into many messages. */
function job(count: number): PublishJobData {
  return { syncId: `sync-${randomBytes(4).toString('hex')}`, records: records('steps', count), cohorts: [] }
}

const identity = (s: Sent): string => `${s.msgChainId}@${s.timestamp}:${s.recordIds.join(',')}`

describe('publish processor', () => {
  const data = job(60)
  const messageCount = outgoingMessages(data, MAX_BYTES).length

  it('packs the test job into enough messages to stop part way', () => {
    expect(messageCount).toBeGreaterThanOrEqual(8)
  })

  it('retried in the same process, sends only what the failed attempt did not', async () => {
    const publisher = publisherProcess({ failAfter: 3 })
    await expect(publisher.run('same-process', data, 1)).rejects.toThrow(/refused to send/)
    expect(publisher.sent).toHaveLength(3)
    publisher.failAfter(undefined)
    const result = await publisher.run('same-process', data, 2)
    expect(result).toMatchObject({ messages: messageCount, alreadyPublished: 3, republished: 0 })
    expect(publisher.sent).toHaveLength(messageCount)
    expect(new Set(publisher.sent.map(identity)).size).toBe(messageCount)
  })

  it('taken over from a crashed process, sends the noted messages again with their identities, then the rest', async () => {
    const crashed = publisherProcess({ failAfter: 4 })
    await expect(crashed.run('takeover', data, 1)).rejects.toThrow()
    const successor = publisherProcess()
    const result = await successor.run('takeover', data, 2)
    expect(result).toMatchObject({ messages: messageCount, alreadyPublished: 0, republished: 4 })
    // In order, and the first four exactly as the crashed process sent them.
    expect(successor.sent.slice(0, 4).map(identity)).toEqual(crashed.sent.map(identity))
    expect(successor.sent.map((s) => s.timestamp)).toEqual([...successor.sent.map((s) => s.timestamp)].sort((a, b) => a - b))
    expect(successor.sent.flatMap((s) => s.recordIds).sort()).toEqual(data.records.map((r) => r.id).sort())
    expect(new Set(successor.sent.map((s) => s.msgChainId))).toEqual(new Set([crashed.sent[0]!.msgChainId]))
  })

  it('finishes an interrupted takeover on a retry in the same process, without sending anything twice', async () => {
    const crashed = publisherProcess({ failAfter: 5 })
    await expect(crashed.run('takeover-retry', data, 1)).rejects.toThrow()
    const successor = publisherProcess({ failAfter: 2 })
    await expect(successor.run('takeover-retry', data, 2)).rejects.toThrow()
    successor.failAfter(undefined)
    const result = await successor.run('takeover-retry', data, 3)
    expect(result).toMatchObject({ alreadyPublished: 2, republished: 3 })
    expect(successor.sent.slice(0, 5).map(identity)).toEqual(crashed.sent.map(identity))
    expect(successor.sent).toHaveLength(messageCount)
  })

  it('replaying a dead-lettered job, skips what its earlier runs published, even after a takeover', async () => {
    const first = publisherProcess({ failAfter: 3 })
    // The last attempt fails: the job is dead-lettered and its chain handed back.
    await expect(first.run('replayed', data, 5)).rejects.toThrow()
    const replay = publisherProcess({ failAfter: 2 })
    await expect(replay.run('replayed', data, 1)).rejects.toThrow()
    const successor = publisherProcess()
    const result = await successor.run('replayed', data, 2)
    expect(result).toMatchObject({ alreadyPublished: 3, republished: 2 })
    // Every record went out once across the three processes, bar the two the successor re-sent.
    const all = [...first.sent, ...replay.sent, ...successor.sent].flatMap((s) => s.recordIds)
    expect(new Set(all).size).toBe(data.records.length)
    expect(successor.sent.slice(0, 2).map(identity)).toEqual(replay.sent.map(identity))
    expect(successor.sent.some((s) => first.sent.some((f) => f.recordIds[0] === s.recordIds[0]))).toBe(false)
  })

  it('stalled while another process took its job over, stops publishing and reports the lost lease', async () => {
    let wake = (): void => undefined
    const stalled = publisherProcess({ stallAfter: { count: 3, until: new Promise<void>((resolve) => (wake = resolve)) } })
    const running = stalled.run('stalled', data, 1)
    await expect.poll(() => stalled.sent.length).toBe(3)
    const successor = publisherProcess()
    expect(await successor.run('stalled', data, 2)).toMatchObject({ messages: messageCount, republished: 3 })
    wake()
    await expect(running).rejects.toMatchObject({ code: 'FST_ERR_PUBLISH_LEASE_LOST' })
    // The message it was sending when it stalled went out (with the identity the successor gave it
    // too, so subscribers' nodes drop one of them), and nothing after it.
    expect(stalled.sent).toHaveLength(4)
    expect(successor.sent.map(identity).slice(0, 4)).toEqual(stalled.sent.map(identity))
    expect(stalled.leasesLost.map((e) => [e.jobId, e.chain])).toEqual([['stalled', stalled.sent[0]!.msgChainId]])
    expect(successor.leasesLost).toEqual([])
  })

  it('notes what it sent, so that what a successor skips or re-sends is exact', async () => {
    const crashed = publisherProcess({ failAfter: 2 })
    await expect(crashed.run('noted', data, 1)).rejects.toThrow()
    const journal = await new DeliveryJournal(redis, prefix).open('noted', MAX_BYTES)
    const sentKeys = outgoingMessages(data, MAX_BYTES).slice(0, 2).flatMap(deliveryKeys)
    expect([...journal.published].sort()).toEqual(sentKeys.sort())
    expect(journal.resumed).toBe(true)
  })
})
