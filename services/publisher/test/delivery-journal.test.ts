import { afterAll, describe, expect, it } from 'vitest'
import { DeliveryJournal, LeaseLostError } from '../src/delivery-journal.js'
import { testRedis, uniquePrefix } from '../../../tests/helpers.js'

const prefix = uniquePrefix('delivery-journal')
const { redis, cleanup } = testRedis(prefix)
const journal = new DeliveryJournal(redis, prefix)

afterAll(cleanup)

describe('DeliveryJournal', () => {
  it('gives a retried job the chain, base timestamp and packing of its first attempt', async () => {
    const first = await journal.open('job-a', 1024, 1_000)
    await journal.notePublished(first, ['r1:0', 'r2:0'])
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
    await journal.notePublished(a, ['x:0'])
    await journal.complete(a, 1)
    // Closing it again is refused: the lease is over.
    await expect(journal.complete(a, 1)).rejects.toThrow(LeaseLostError)
    expect((await journal.open('job-e', 1024)).state).toBe('done')
    expect(await journal.isDone('job-e')).toBe(true)
    expect(await journal.isDone('job-never-run')).toBe(false)
    // Only the day's bucket is left, packed as integers, and it expires 7 to 8 days after the job.
    expect(await redis.exists(`${prefix}:publisher:job:job-e`, `${prefix}:publisher:job:job-e:published`)).toBe(0)
    const [bucket] = await redis.keys(`${prefix}:publisher:done:*`)
    expect(await redis.object('ENCODING', bucket!)).toBe('intset')
    expect(await redis.ttl(bucket!)).toBeGreaterThan(7 * 86_400)
    expect(await redis.ttl(bucket!)).toBeLessThanOrEqual(8 * 86_400)
  })

  it('remembers a completed job for 7 days, whichever day it is read on, and then forgets it', async () => {
    const day = 86_400_000
    // The last minute of today (UTC): a bucket's expiry is real time in Redis.
    const completedAt = Math.floor(Date.now() / day) * day + day - 60_000
    let now = completedAt
    const dated = new DeliveryJournal(redis, prefix, { clock: () => now })
    await dated.complete(await dated.open('job-dated', 1024), 1)
    for (const later of [1, 3 * day, 7 * day]) {
      now = completedAt + later
      expect((await dated.open('job-dated', 1024)).state, `read ${later} ms later`).toBe('done')
    }
    now = completedAt + 8 * day
    expect(await dated.isDone('job-dated')).toBe(false)
  })

  it('keeps many completed jobs in few keys', async () => {
    const many = uniquePrefix('delivery-journal-many')
    const { redis: own, cleanup: clean } = testRedis(many)
    try {
      const packed = new DeliveryJournal(own, many)
      for (let i = 0; i < 2_000; i++) await packed.complete(await packed.open(`many-${i}`, 1024), 1)
      expect((await Promise.all(Array.from({ length: 2_000 }, (_, i) => packed.isDone(`many-${i}`)))).every(Boolean)).toBe(true)
      expect(await packed.isDone('many-2000')).toBe(false)
      const keys = await own.keys(`${many}:publisher:done:*`)
      // 2,000 jobs hash into at most 4,096 shards of today: fewer keys than jobs, and all of them packed.
      expect(keys.length).toBeLessThan(2_000)
      expect(new Set(await Promise.all(keys.map((k) => own.object('ENCODING', k))))).toEqual(new Set(['intset']))
    } finally {
      await clean()
    }
  })

  it('still reads completions recorded by earlier versions: the job hash, and a key per job', async () => {
    await redis.hset(`${prefix}:publisher:job:job-old`, { state: 'done', chain: 'c0', base: '1', maxBytes: '1024' })
    expect((await journal.open('job-old', 1024)).state).toBe('done')
    await redis.set(`${prefix}:publisher:done:job-older`, '1', 'EX', 60)
    expect((await journal.open('job-older', 1024)).state).toBe('done')
    expect(await journal.isDone('job-older')).toBe(true)
  })

  it('keeps what a dead-lettered job published, for its replay, but frees its chain', async () => {
    const a = await journal.open('job-f', 1024)
    await journal.notePublished(a, ['y:0'])
    await journal.abandon(a, 3)
    const replay = await journal.open('job-f', 1024)
    expect(replay).toMatchObject({ state: 'open', resumed: false })
    // Published under the earlier lease: skipped by the replay, never sent again on its chain.
    expect([...replay.earlier]).toEqual(['y:0'])
    expect([...replay.published]).toEqual([])
    await journal.notePublished(replay, ['z:0'])
    await journal.abandon(replay, 3)
    const again = await journal.open('job-f', 1024)
    expect([...again.earlier].sort()).toEqual(['y:0', 'z:0'])
    expect([...again.published]).toEqual([])
    await journal.complete(again, 3)
    expect(await redis.keys(`${prefix}:publisher:job:job-f*`)).toEqual([])
  })

  it('tells a lease that was already open from a new one', async () => {
    expect(await journal.open('job-g', 1024)).toMatchObject({ resumed: false, takenOver: false })
    expect(await journal.open('job-g', 1024)).toMatchObject({ resumed: true, takenOver: false })
  })

  it("never leases one process's chains to another", async () => {
    const other = new DeliveryJournal(redis, prefix)
    const mine = await journal.open('job-h', 1024, 3_000)
    await journal.complete(mine, 5)
    // The chain is free again, but only for the process that used it.
    const theirs = await other.open('job-i', 1024, 3_000)
    expect(theirs.chain).not.toBe(mine.chain)
    expect(theirs.baseTimestamp).toBe(3_000)
    // Each pool is one key that goes a week after its process last gave a chain back.
    expect(await redis.ttl(`${prefix}:publisher:chains:${journal.instance}`)).toBeGreaterThan(6 * 86_400)
    const again = await journal.open('job-j', 1024, 3_000)
    expect(again).toMatchObject({ chain: mine.chain, baseTimestamp: 3_005 })
  })

  it('hands a lease over to the process that takes the job over, and refuses the one it was taken from', async () => {
    const stalled = new DeliveryJournal(redis, prefix)
    const successor = new DeliveryJournal(redis, prefix)
    const lease = await stalled.open('job-k', 1024)
    await stalled.notePublished(lease, ['k1:0'])
    const takeover = await successor.open('job-k', 1024)
    expect(takeover).toMatchObject({ chain: lease.chain, baseTimestamp: lease.baseTimestamp, resumed: true, takenOver: true })
    expect([...takeover.published]).toEqual(['k1:0'])
    // The stalled process wakes up: neither its notes nor its close are taken.
    await expect(stalled.notePublished(lease, ['k2:0'])).rejects.toThrow(LeaseLostError)
    await expect(stalled.complete(lease, 2)).rejects.toThrow(/another publisher process/)
    expect(await redis.smembers(`${prefix}:publisher:job:job-k:published`)).toEqual(['k1:0'])
    await successor.notePublished(takeover, ['k2:0'])
    await successor.complete(takeover, 2)
    expect(await successor.isDone('job-k')).toBe(true)
    // The chain went back to the successor's pool, not to the stalled process's.
    expect((await successor.open('job-l', 1024)).chain).toBe(lease.chain)
    expect((await stalled.open('job-m', 1024)).chain).not.toBe(lease.chain)
    // A lease opened by an earlier version, with no owner, counts as taken over.
    await redis.hset(`${prefix}:publisher:job:job-n`, { state: 'open', chain: 'c1', base: '5', maxBytes: '1024' })
    expect(await journal.open('job-n', 1024)).toMatchObject({ chain: 'c1', baseTimestamp: 5, takenOver: true })
  })
})
