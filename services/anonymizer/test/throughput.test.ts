import { describe, expect, it } from 'vitest'
import { createMetrics, type FitnessSample } from '@fitstream/shared'
import { planRelease } from '../src/anonymize.js'
import { createAnonymizeProcessor } from '../src/anonymize-processor.js'
import { createAnonymizerMetrics } from '../src/metrics.js'
import { PrivacyStore } from '../src/privacy-store.js'
import { silentLogger } from '../../../tests/helpers.js'
import { HOUR, defaultPolicy, jobContext, redisWithQueues, t0, testKeys } from './support.js'

/**
 * The anonymizer's throughput in one process, on jobs shaped like real ones: a day of hourly buckets
 * of steps, calories, heart rate and weight for one person (96 samples). Prints samples/s for the
 * pure policy engine and for the whole processor (ledger, cohort cells and publish hand-off in Redis).
 */
const policy = defaultPolicy()
const keys = testKeys()
const logger = silentLogger()

function day(userIndex: number, dayIndex: number): FitnessSample[] {
  const samples: FitnessSample[] = []
  for (let h = 0; h < 24; h++) {
    const startMs = t0 + dayIndex * 24 * HOUR + h * HOUR
    const base = { startMs, endMs: startMs + HOUR, revision: 0, origin: `raw:device-${userIndex}` }
    samples.push({ ...base, type: 'steps', values: { count: 300 + ((userIndex * 37 + h * 11) % 900) }, unit: 'steps' })
    samples.push({ ...base, type: 'calories', values: { kcal: 60 + ((userIndex + h) % 40) + 0.37 }, unit: 'kcal' })
    samples.push({ ...base, type: 'heart_rate', values: { avg: 62 + (h % 20) + 0.4, max: 90 + (h % 30), min: 50 + (h % 10) }, unit: 'bpm' })
    samples.push({ ...base, type: 'weight', values: { avg: 70 + (userIndex % 30) + 0.2, max: 71, min: 69 }, unit: 'kg' })
  }
  return samples
}

const report = (label: string, samples: number, ms: number): number => {
  const perSecond = Math.round(samples / (ms / 1000))
  process.stdout.write(`anonymizer throughput, ${label}: ${samples} samples in ${ms.toFixed(0)} ms = ${perSecond} samples/s\n`)
  return perSecond
}

describe('anonymizer throughput (one process)', () => {
  const { prefix, redis, queues } = redisWithQueues('anon-throughput', logger)

  it('plans releases under the default policy (pure)', () => {
    const jobs = Array.from({ length: 1_000 }, (_, i) => ({ userId: `user-bench-${i}`, samples: day(i, 0) }))
    const started = performance.now()
    let samples = 0
    for (const job of jobs) {
      planRelease(job.userId, job.samples, policy, keys)
      samples += job.samples.length
    }
    expect(report('policy engine (planRelease)', samples, performance.now() - started)).toBeGreaterThan(1_000)
  })

  it('processes anonymize jobs end to end against Redis', async () => {
    const store = new PrivacyStore(redis, prefix, policy)
    const process = createAnonymizeProcessor({ policy, keys, queues, store, metrics: createAnonymizerMetrics(createMetrics('bench')), now: () => t0 })
    const jobs = Array.from({ length: 200 }, (_, i) => ({
      syncId: `bench-${i}`,
      userId: `user-bench-${i}`,
      window: { startMs: 0, endMs: 1 },
      samples: day(i, 1),
    }))
    const started = performance.now()
    let samples = 0
    // Four at once, as ANONYMIZE_CONCURRENCY=4 runs them.
    for (let i = 0; i < jobs.length; i += 4) {
      await Promise.all(jobs.slice(i, i + 4).map((job) => process(job, jobContext(logger))))
      samples += jobs.slice(i, i + 4).reduce((n, job) => n + job.samples.length, 0)
    }
    expect(report('anonymize processor with Redis', samples, performance.now() - started)).toBeGreaterThan(500)
  })
})
