import { Queue } from 'bullmq'
import { afterAll, describe, expect, it } from 'vitest'
import { COHORT_ERASURE_QUEUE, StageQueues, UserGoneError, createMetrics, createRedis, privacyKey } from '@fitstream/shared'
import { createAnonymizeProcessor } from '../src/anonymize-processor.js'
import { createAnonymizerMetrics } from '../src/metrics.js'
import { aggregateCell } from '../src/cohort-aggregate.js'
import { memberToken, planRelease } from '../src/anonymize.js'
import { startCohortErasure } from '../src/cohort-erasure.js'
import { PrivacyStore } from '../src/privacy-store.js'
import { redisUrl, silentLogger, testRedis, uniquePrefix } from '../../../tests/helpers.js'
import { DAY, HOUR, jobContext, policyOf, retry, sample, testKeys } from './support.js'

const prefix = uniquePrefix('anon-erasure')
const { redis, cleanup } = testRedis(prefix)
const workerRedis = createRedis(redisUrl(), 'worker', 'test-anon-erasure-worker')
const queue = new Queue(COHORT_ERASURE_QUEUE, { connection: redis, prefix })
const keys = testKeys()
const policy = policyOf({
  budget: { epsilon: 5 },
  cohorts: { k: 2, graceHours: 2 },
  types: { steps: { release: 'cohort', cohort: { window: 'day', fields: { count: { clamp: [0, 20_000], round: 1 } } } } },
})
const store = new PrivacyStore(redis, prefix, policy)
const stop = startCohortErasure({ store, keys, logger: silentLogger(), workerConnection: workerRedis, prefix })

afterAll(async () => {
  await stop()
  await queue.close()
  workerRedis.disconnect()
  await cleanup()
})

/** Two days ahead of the real clock: cells expire by it, a week after they should have closed. */
const day = Math.floor(Date.now() / DAY) * DAY + 2 * DAY

describe('the erasure queue', () => {
  it('takes a person out of every open cohort cell when the token service asks, so the cell closes without them', async () => {
    const people = ['erase-me-0001', 'stays-0001', 'stays-0002']
    for (const [i, userId] of people.entries()) {
      for (const contribution of planRelease(userId, [sample('steps', day + HOUR, { count: 1000 * (i + 1) })], policy, keys).contributions) {
        expect(await store.contribute(userId, contribution, day + 2 * HOUR)).toBe('joined')
      }
    }
    const job = await queue.add('erase', { userId: 'erase-me-0001' }, { jobId: 'erasure-test-1', removeOnComplete: false })
    for (let i = 0; i < 100 && !(await job.isCompleted()); i++) await new Promise((resolve) => setTimeout(resolve, 100))
    expect((await queue.getJob('erasure-test-1'))?.returnvalue).toMatchObject({ cells: 1 })
    // Their budget ledger went with them; everyone else's stayed.
    expect(await redis.keys(`${privacyKey(prefix, 'erase-me-0001')}*`)).toEqual([])
    expect(await redis.keys(`${privacyKey(prefix, 'stays-0001')}*`)).not.toEqual([])

    await store.closeDue(day + DAY + 3 * HOUR)
    const [cell] = await store.closingCells()
    expect(aggregateCell(cell!, policy, keys).released).toEqual([expect.objectContaining({ contributors: 2, values: { count: 2500 } })])
    await store.finishCells([cell!])
  })

  it('discards an anonymize job of an erased person that comes after the erasure, and deletes the privacy state one wrote during it', async () => {
    const userId = 'erased-late-0001'
    const queues = new StageQueues({ connection: redis, prefix, retry, logger: silentLogger() })
    // A day whose cell is still open.
    const later = day + 3 * DAY
    const metrics = createAnonymizerMetrics(createMetrics('anonymizer-erasure-test'))
    const processor = createAnonymizeProcessor({ policy, keys, queues, store, metrics, now: () => later + 2 * HOUR })
    const job = { syncId: 'sync-late', userId, window: { startMs: later, endMs: later + DAY }, samples: [sample('steps', later + HOUR, { count: 1000 })] }
    try {
      // A job of theirs that ran while they were being erased left privacy state behind.
      expect(await processor(job, jobContext(silentLogger()))).toMatchObject({ cohortContributions: 1 })
      expect(await redis.keys(`${privacyKey(prefix, userId)}*`)).not.toEqual([])
      const erasure = await queue.add('erase', { userId }, { jobId: 'erasure-test-3', removeOnComplete: false })
      for (let i = 0; i < 100 && !(await erasure.isCompleted()); i++) await new Promise((resolve) => setTimeout(resolve, 100))
      expect((await queue.getJob('erasure-test-3'))?.returnvalue).toMatchObject({ cells: 1, privacyState: expect.any(Number) })

      // One that comes afterwards (fetched just before the erasure) changes nothing.
      await expect(processor({ ...job, syncId: 'sync-later' }, jobContext(silentLogger()))).rejects.toBeInstanceOf(UserGoneError)
      expect(await redis.keys(`${privacyKey(prefix, userId)}*`)).toEqual([])
      // No open cell holds a contribution of theirs.
      expect(await store.eraseContributions((cell) => memberToken(keys, cell, userId))).toBe(0)
    } finally {
      await queues.close()
    }
  })

  it('fails a job that names nobody without retrying it', async () => {
    const job = await queue.add('erase', { userId: 'x' }, { jobId: 'erasure-test-2', attempts: 3 })
    for (let i = 0; i < 100 && !(await job.isFailed()); i++) await new Promise((resolve) => setTimeout(resolve, 100))
    const failed = await queue.getJob('erasure-test-2')
    expect(failed?.failedReason).toMatch(/invalid erasure job/)
    expect(failed?.attemptsMade).toBe(1)
  })
})
