import { afterAll, describe, expect, it } from 'vitest'
import { DeliveryJournal } from '../src/delivery-journal.js'
import { testRedis, uniquePrefix } from '../../../tests/helpers.js'

const prefix = uniquePrefix('delivery-journal')
const { redis, cleanup } = testRedis(prefix)
const journal = new DeliveryJournal(redis, prefix)

afterAll(cleanup)

describe('DeliveryJournal', () => {
  it('gives a retried job the chain, base timestamp and packing of its first attempt', async () => {
    const first = await journal.open('job-a', 1024, 1_000)
    await journal.notePublished('job-a', ['r1:0', 'r2:0'])
    const retry = await journal.open('job-a', 4096, 9_000)
    expect(retry).toMatchObject({ state: 'open', chain: first.chain, baseTimestamp: 1_000, maxMessageBytes: 1024 })
    expect([...retry.published].sort()).toEqual(['r1:0', 'r2:0'])
  })

  it('leases a chain to one job at a time, and hands it on with a later base timestamp', async () => {
    const a = await journal.open('job-b', 1024, 2_000)
    const b = await journal.open('job-c', 1024, 2_000)
    expect(b.chain).not.toBe(a.chain)
    await journal.complete(a, 10)
    const c = await journal.open('job-d', 1024, 2_000)
    expect(c.chain).toBe(a.chain)
    // Message timestamps on one chain only ever grow: job-b used 2000..2009.
    expect(c.baseTimestamp).toBe(2_010)
  })

  it('remembers a completed job, so the same job id is not published again', async () => {
    const a = await journal.open('job-e', 1024)
    await journal.notePublished('job-e', ['x:0'])
    await journal.complete(a, 1)
    await journal.complete(a, 1)
    expect((await journal.open('job-e', 1024)).state).toBe('done')
    // Only the small marker is left, and it expires like the journal did.
    expect(await redis.exists(`${prefix}:publisher:job:job-e`, `${prefix}:publisher:job:job-e:published`)).toBe(0)
    expect(await redis.ttl(`${prefix}:publisher:done:job-e`)).toBeGreaterThan(6 * 86_400)
  })

  it('still reads a completion recorded by an earlier version as the job hash', async () => {
    await redis.hset(`${prefix}:publisher:job:job-old`, { state: 'done', chain: 'c0', base: '1', maxBytes: '1024' })
    expect((await journal.open('job-old', 1024)).state).toBe('done')
  })

  it('keeps what a dead-lettered job published, for its replay, but frees its chain', async () => {
    const a = await journal.open('job-f', 1024)
    await journal.notePublished('job-f', ['y:0'])
    await journal.abandon(a, 3)
    const replay = await journal.open('job-f', 1024)
    expect(replay.state).toBe('open')
    expect([...replay.published]).toEqual(['y:0'])
  })
})
