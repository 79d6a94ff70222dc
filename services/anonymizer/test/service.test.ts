import { Queue } from 'bullmq'
import { afterAll, describe, expect, it } from 'vitest'
import { deleteKeysWithPrefix } from '@fitstream/shared'
import { COHORT_QUEUE } from '../src/cohort-closer.js'
import { loadConfig } from '../src/config.js'
import { createAnonymizer } from '../src/service.js'
import { redisUrl, silentLogger, testRedis, uniquePrefix } from '../../../tests/helpers.js'

describe('the anonymizer service', () => {
  const prefix = uniquePrefix('anon-service')
  const { redis, cleanup } = testRedis(prefix)
  afterAll(async () => {
    await deleteKeysWithPrefix(redis, prefix)
    await cleanup()
  })

  it('starts with the default policy, schedules the closing of cohort windows, and shuts down cleanly', async () => {
    const config = loadConfig({ PSEUDONYM_KEY: Buffer.alloc(32, 5).toString('base64'), REDIS_URL: redisUrl(), QUEUE_PREFIX: prefix, LOG_LEVEL: 'silent' })
    const anonymizer = await createAnonymizer(config, silentLogger())
    anonymizer.start()
    const queue = new Queue(COHORT_QUEUE, { connection: redis, prefix })
    queue.on('error', () => undefined)
    try {
      const schedulers = await queue.getJobSchedulers()
      expect(schedulers.map((s) => [s.key, s.every])).toEqual([['close-cohort-windows', 300_000]])
      const metrics = await anonymizer.server.inject({ method: 'GET', url: '/metrics' })
      expect(metrics.body).toContain('fitstream_privacy_withheld_total')
      expect(metrics.body).toContain('fitstream_cohort_cells_total')
    } finally {
      await queue.close()
      await anonymizer.close()
    }
  })
})
