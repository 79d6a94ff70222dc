import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { QueueEvents, Worker, type Job } from 'bullmq'
import { ServiceRuntime, UpstreamError, UserGoneError, commonEnv, parseEnv, type DeadLetter } from '../src/index.js'
import { redisUrl, silentLogger, testRedis, uniquePrefix } from '../../../tests/helpers.js'
import { fetchInput } from './support.js'

const prefix = uniquePrefix('stage-worker')
const { redis, cleanup } = testRedis(prefix)
let runtime: ServiceRuntime
let events: QueueEvents
const behaviour = new Map<string, (attempt: number) => Promise<unknown>>()

beforeAll(async () => {
  const config = parseEnv(commonEnv, { REDIS_URL: redisUrl(), QUEUE_PREFIX: prefix, FETCH_ATTEMPTS: '3', RETRY_BACKOFF_MS: '50' })
  runtime = new ServiceRuntime('test', config, silentLogger())
  runtime.addWorker({
    stage: 'fetch',
    concurrency: 4,
    process: async (data, context) => behaviour.get(data.userId)!(context.attempt),
  })
  runtime.start()
  events = new QueueEvents('fetch', { connection: { url: redisUrl() }, prefix })
  await events.waitUntilReady()
})

afterAll(async () => {
  await events.close()
  await runtime.close()
  await cleanup()
})

async function deadLetters(): Promise<DeadLetter[]> {
  const jobs = (await runtime.queues.deadLetterQueue('fetch').getJobs(['waiting'])) as Job<DeadLetter>[]
  return jobs.map((job) => job.data)
}

async function settle(job: Job): Promise<'completed' | 'failed'> {
  return job.waitUntilFinished(events, 10_000).then(
    () => 'completed' as const,
    () => 'failed' as const,
  )
}

describe('stage worker', () => {
  it('completes a valid job with the processor result', async () => {
    behaviour.set('ok-user-0001', async () => ({ fine: true }))
    const job = await runtime.queues.add('fetch', fetchInput('ok-user-0001'))
    expect(await job.waitUntilFinished(events, 10_000)).toEqual({ fine: true })
  })

  it('refuses to add a job whose payload does not match the schema', async () => {
    await expect(runtime.queues.add('fetch', { ...fetchInput('ok-user-0001'), bucketMs: 5 })).rejects.toThrow(/invalid fetch job payload.*bucketMs/s)
  })

  it('dead-letters a malformed job at once with the validation message, without retrying', async () => {
    // Added around the schema, as a buggy or hostile producer could.
    const job = await runtime.queues.queue('fetch').add('fetch', { userId: 'bad-user-0001', window: 'yesterday' } as never, { attempts: 3 })
    expect(await settle(job)).toBe('failed')
    const entry = (await deadLetters()).find((d) => d.jobId === job.id)
    expect(entry).toMatchObject({ stage: 'fetch', permanent: true, attemptsMade: 1, maxAttempts: 3, error: { code: 'FST_ERR_INVALID_PAYLOAD' } })
    expect(entry?.error.message).toMatch(/syncId/)
    expect(entry?.error.message).toMatch(/window/)
    expect(entry?.payload).toEqual({ userId: 'bad-user-0001', window: 'yesterday' })
  })

  it('retries a transient failure with backoff and succeeds', async () => {
    const attempts: number[] = []
    behaviour.set('flaky-user-01', async (attempt) => {
      attempts.push(attempt)
      if (attempt < 3) throw new UpstreamError('FST_ERR_GOOGLE_UNAVAILABLE', 'Google answered 503')
      return 'done'
    })
    const job = await runtime.queues.add('fetch', fetchInput('flaky-user-01'))
    expect(await job.waitUntilFinished(events, 10_000)).toBe('done')
    expect(attempts).toEqual([1, 2, 3])
    expect((await deadLetters()).some((d) => d.jobId === job.id)).toBe(false)
  })

  it('dead-letters a job that keeps failing after its last attempt, with error, attempts and timestamps', async () => {
    behaviour.set('down-user-001', async () => {
      throw new UpstreamError('FST_ERR_GOOGLE_UNAVAILABLE', 'Google answered 503: backend error')
    })
    const job = await runtime.queues.add('fetch', fetchInput('down-user-001'))
    expect(await settle(job)).toBe('failed')
    const entry = (await deadLetters()).find((d) => d.jobId === job.id)
    expect(entry).toMatchObject({
      stage: 'fetch',
      permanent: false,
      attemptsMade: 3,
      maxAttempts: 3,
      error: { code: 'FST_ERR_GOOGLE_UNAVAILABLE', message: 'Google answered 503: backend error' },
      payload: fetchInput('down-user-001'),
    })
    expect(Date.parse(entry!.failedAt)).toBeGreaterThanOrEqual(Date.parse(entry!.createdAt))
  })

  it('dead-letters a permanent error on the first attempt', async () => {
    let calls = 0
    behaviour.set('perm-user-001', async () => {
      calls++
      throw new UpstreamError('FST_ERR_GOOGLE_REJECTED', 'Google answered 400 invalidArgument: bad window', { permanent: true })
    })
    const job = await runtime.queues.add('fetch', fetchInput('perm-user-001'))
    expect(await settle(job)).toBe('failed')
    expect(calls).toBe(1)
    expect((await deadLetters()).find((d) => d.jobId === job.id)?.error.message).toContain('bad window')
  })

  it('discards work for an erased user on purpose: completed, not dead-lettered, its result naming nobody', async () => {
    behaviour.set('gone-user-001', async () => {
      throw new UserGoneError('user gone-user-001 no longer exists')
    })
    const job = await runtime.queues.add('fetch', fetchInput('gone-user-001'))
    expect(await job.waitUntilFinished(events, 10_000)).toEqual({ discarded: 'user <user> no longer exists' })
    expect((await deadLetters()).some((d) => d.jobId === job.id)).toBe(false)
  })

  it('dead-letters a job whose worker keeps dying mid-job', async () => {
    // A worker that takes the job and then "dies": it never finishes and never renews its lock.
    const crashing = new Worker('publish', () => new Promise(() => undefined), {
      connection: { url: redisUrl() },
      prefix,
      lockDuration: 300,
      skipLockRenewal: true,
      skipStalledCheck: true,
    })
    crashing.on('error', () => undefined)
    const job = await runtime.queues.queue('publish').add('publish', { syncId: 'stalled-1', records: [], cohorts: [] } as never, { attempts: 3 })
    await expect.poll(async () => (await runtime.queues.queue('publish').getJob(job.id!))?.processedOn !== undefined, { timeout: 5_000 }).toBe(true)
    await crashing.close(true)
    // The stage's own worker finds the abandoned job; with no stall allowed it fails, and must not vanish.
    const watcher = runtime.addWorker({ stage: 'publish', process: async () => 'unused', stalledIntervalMs: 200, maxStalledCount: 0 })
    void watcher.run()
    let letter: DeadLetter | undefined
    await expect
      .poll(
        async () => {
          const letters = (await runtime.queues.deadLetterQueue('publish').getJobs(['waiting'])) as Job<DeadLetter>[]
          letter = letters.map((l) => l.data).find((d) => d.jobId === job.id)
          return letter !== undefined
        },
        { timeout: 10_000 },
      )
      .toBe(true)
    expect(letter).toMatchObject({ stage: 'publish', error: { code: 'FST_ERR_STALLED' }, payload: { syncId: 'stalled-1' } })
    expect(letter!.error.message).toMatch(/stalled/)
  })

  it('keeps its queues under the test prefix only', async () => {
    const keys = await redis.keys(`${prefix}:fetch:*`)
    expect(keys.length).toBeGreaterThan(0)
  })
})
