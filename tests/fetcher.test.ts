import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { QueueEvents, type Job } from 'bullmq'
import {
  ALL_HEALTH_READ_SCOPES,
  FakeGoogle,
  healthExerciseSessions,
  healthSleepSessions,
  syntheticBucket,
  syntheticRollup,
  type ActiveMinutesRollupValue,
  userProfile,
  type AggregatePoint,
} from '@fitstream/fake-google'
import {
  ACTIVITY_GROUP_FIELDS,
  DATA_TYPE_KEYS,
  USER_FIELDS,
  SLEEP_STAGE_FIELDS,
  civilTime,
  dataType,
  generateKeyringEntry,
  instantOf,
  readableIn,
  type DataTypeKey,
  type DeadLetter,
  type FitnessSample,
  type ServiceRuntime,
  type StageData,
  type StageInput,
  userKey,
} from '@fitstream/shared'
import { loadConfig as loadFetcherConfig } from '../services/fetcher/src/config.js'
import { createFetcher } from '../services/fetcher/src/service.js'
import { loadConfig as loadTokenConfig } from '../services/token-service/src/config.js'
import { createTokenService } from '../services/token-service/src/service.js'
import { registerUser, testEnv } from '../services/token-service/test/support.js'
import { fetcherTestEnv, redisUrl, silentLogger, testRedis, uniquePrefix } from './helpers.js'

/**
 * The fetcher through the real googleapis client against the fake Google, with the real token
 * service beside it (for token refreshes) and real Redis. What the fetcher passes on is read from
 * the anonymize queue, where the anonymiser would pick it up.
 */
const HOUR = 3_600_000
const prefix = uniquePrefix('fetcher')
const { redis, cleanup } = testRedis(prefix)
const ADMIN = 'admin-token-for-fetcher-tests-0123456789'
const INTERNAL = 'internal-token-for-fetcher-tests-01234567'
const accessKeys = generateKeyringEntry('a1')
let google: FakeGoogle
let tokenService: ServiceRuntime
let fetcher: ServiceRuntime
let events: QueueEvents
let jobCounter = 0
const finished = new Map<string, { attemptsMade: number; stacktrace: string[]; name: string; data: unknown }>()

/** A fetch job as it was when it completed. */
async function finishedJob(id: string) {
  await expect.poll(() => finished.has(id), { timeout: 10_000 }).toBe(true)
  return finished.get(id)!
}
const lastHour = Math.floor(Date.now() / HOUR) * HOUR

beforeAll(async () => {
  google = await FakeGoogle.start()
  tokenService = await createTokenService(
    loadTokenConfig(
      testEnv(google, prefix, { ADMIN_TOKEN: ADMIN, INTERNAL_API_TOKEN: INTERNAL, ACCESS_TOKEN_KEYS: accessKeys, BACKFILL_DAYS: '3', FETCH_CHUNK_HOURS: '24' }),
    ),
    silentLogger(),
  )
  await tokenService.server.listen({ host: '127.0.0.1', port: 0 })
  fetcher = createFetcher(
    loadFetcherConfig(
      fetcherTestEnv(google, tokenService, prefix, {
        ACCESS_TOKEN_KEYS: accessKeys,
        INTERNAL_API_TOKEN: INTERNAL,
        FETCH_ATTEMPTS: '3',
        RETRY_BACKOFF_MS: '100',
        GOOGLE_TIMEOUT_MS: '1500',
      }),
    ),
    silentLogger(),
  )
  // Finished fetch jobs name a person, so BullMQ removes them at once: what they were is kept here.
  for (const worker of fetcher.stageWorkers) {
    worker.on('completed', (job) => finished.set(job.id!, { attemptsMade: job.attemptsMade, stacktrace: job.stacktrace ?? [], name: job.name, data: job.data }))
  }
  fetcher.start()
  events = new QueueEvents('fetch', { connection: { url: redisUrl() }, prefix })
  await events.waitUntilReady()
})

afterAll(async () => {
  await events?.close()
  await fetcher?.close()
  await tokenService?.close()
  await google?.close()
  await cleanup()
})

async function register(dataTypes: DataTypeKey[], scopes?: string[], seed?: string, service: ServiceRuntime = tokenService) {
  const user = await registerUser(service, google, ADMIN, dataTypes, scopes, seed)
  // This file drives the fetcher directly: the onboarding sync is not wanted here.
  await tokenService.queues.queue('sync').drain(true)
  return user
}

async function fetchWindow(userId: string, dataTypes: DataTypeKey[], hours: number, extra: Partial<StageInput<'fetch'>> = {}) {
  const job = await fetcher.queues.add(
    'fetch',
    {
      syncId: `test-${++jobCounter}`,
      userId,
      dataTypes,
      window: { startMs: lastHour - hours * HOUR, endMs: lastHour },
      bucketMs: HOUR,
      lookbackMs: 48 * HOUR,
      ...extra,
    },
    { jobId: `test-fetch-${jobCounter}` },
  )
  return { job, result: (await job.waitUntilFinished(events, 30_000)) as Record<string, unknown> }
}

/** Queues a fetch of the last full hour without waiting for it (for jobs that fail or take long). */
function queueLastHour(userId: string, dataTypes: DataTypeKey[], syncId: string, jobId: string) {
  return fetcher.queues.add('fetch', { syncId, userId, dataTypes, window: { startMs: lastHour - HOUR, endMs: lastHour }, bucketMs: HOUR }, { jobId })
}

/** Samples the fetcher handed to the anonymiser for this user, in order. */
async function passedOn(userId: string): Promise<FitnessSample[][]> {
  const jobs = (await fetcher.queues.queue('anonymize').getJobs(['waiting'], 0, -1, true)) as Job<StageData<'anonymize'>>[]
  return jobs.filter((j) => j.data.userId === userId).map((j) => j.data.samples)
}

async function deadLetterFor(jobId: string): Promise<DeadLetter> {
  let found: DeadLetter | undefined
  await expect
    .poll(
      async () => {
        const jobs = (await fetcher.queues.deadLetterQueue('fetch').getJobs(['waiting'])) as Job<DeadLetter>[]
        found = jobs.map((j) => j.data).find((d) => d.jobId === jobId)
        return found !== undefined
      },
      { timeout: 20_000 },
    )
    .toBe(true)
  return found!
}

/** What one bucket of the fake's data must become, by the catalogue's extraction rules. */
function expectedValues(type: DataTypeKey, points: AggregatePoint[]): Record<string, number> | undefined {
  if (points.length === 0) return undefined
  const spec = dataType(type)
  const num = (v: AggregatePoint['value'][number] | undefined): number => (v === undefined ? NaN : 'intVal' in v ? v.intVal : v.fpVal)
  if (spec.fit!.extraction === 'point') return Object.fromEntries(spec.fields.map((f, i) => [f.name, num(points[0]!.value[i])]))
  const values: Record<string, number> = Object.fromEntries(spec.fields.map((f) => [f.name, 0]))
  for (const p of points) {
    const category = num(p.value[0])
    if (spec.fit!.extraction === 'stage-minutes')
      values[SLEEP_STAGE_FIELDS[category]!]! += Number((BigInt(p.endTimeNanos) - BigInt(p.startTimeNanos)) / 1_000_000n) / 60_000
    else values[ACTIVITY_GROUP_FIELDS[category] ?? 'other_min']! += num(p.value[1]) / 60_000
  }
  return values
}

describe('fetcher', () => {
  it('fetches every data type in one request and passes on exactly what Google has, bucket by bucket', async () => {
    const types = DATA_TYPE_KEYS.filter((t) => t !== 'location' && readableIn(t, 'fit'))
    const user = await register(types)
    const before = google.stats.aggregateRequests
    // What Google has at the time of the fetch: a sleep segment still under way is not in it yet.
    const fetchedAt = Date.now()
    const { result } = await fetchWindow(user.id, types, 48)
    expect(google.stats.aggregateRequests - before).toBe(1)
    const [samples] = await passedOn(user.id)
    const got = new Map(samples!.map((s) => [`${s.type}|${s.startMs}`, s]))
    let expectedCount = 0
    const typesWithData = new Set<DataTypeKey>()
    for (const type of types) {
      for (let h = lastHour - 48 * HOUR; h < lastHour; h += HOUR) {
        const expected = expectedValues(type, syntheticBucket(user.google.seed, dataType(type).fit!.dataType, h, h + HOUR, fetchedAt))
        const sample = got.get(`${type}|${h}`)
        if (expected === undefined) {
          expect(sample, `${type} ${new Date(h).toISOString()}`).toBeUndefined()
          continue
        }
        expectedCount++
        typesWithData.add(type)
        expect(sample, `${type} ${new Date(h).toISOString()}`).toMatchObject({
          startMs: h,
          endMs: h + HOUR,
          values: expected,
          unit: dataType(type).unit,
          revision: 0,
        })
      }
    }
    expect(samples).toHaveLength(expectedCount)
    expect(new Set(samples!.map((s) => s.type))).toEqual(typesWithData)
    // Two days always hold the kinds of data the fake makes every day, sleep and blood oxygen included;
    // weigh-ins, body fat, blood pressure and height come on some days only.
    const someDays: DataTypeKey[] = ['weight', 'body_fat', 'blood_pressure', 'height']
    expect([...typesWithData]).toEqual(expect.arrayContaining(types.filter((t) => !someDays.includes(t))))
    expect(result).toMatchObject({ samples: expectedCount, unchanged: 0, revised: 0, rejectedPoints: 0 })
  })

  it('never fetches location unless enabled, even with consent', async () => {
    const user = await register(['steps', 'location'])
    await fetchWindow(user.id, ['steps', 'location'], 24)
    const [samples] = await passedOn(user.id)
    expect(samples!.length).toBeGreaterThan(0)
    expect(samples!.some((s) => s.type === 'location')).toBe(false)
  })

  it('re-reads late data: a changed bucket goes on as a revision, unchanged ones are not repeated', async () => {
    const user = await register(['steps', 'calories'])
    const first = await fetchWindow(user.id, ['steps', 'calories'], 48)
    const initial = (await passedOn(user.id))[0]!
    // An hour that had steps already: the late readings change it.
    const { startMs: hour, values } = initial.find((s) => s.type === 'steps' && s.startMs < lastHour - 6 * HOUR)!
    const before = values.count!
    google.addLateSamples(user.google.googleId, 'com.google.step_count.delta', [{ startMs: hour + 600_000, endMs: hour + 660_000, values: [777] }])

    const second = await fetchWindow(user.id, ['steps', 'calories'], 48)
    const batches = await passedOn(user.id)
    expect(batches).toHaveLength(2)
    expect(batches[1]).toEqual([expect.objectContaining({ type: 'steps', startMs: hour, revision: 1, values: { count: before + 777 } })])
    expect(second.result).toMatchObject({ samples: 1, revised: 1, unchanged: (first.result.samples as number) - 1 })

    const third = await fetchWindow(user.id, ['steps', 'calories'], 48)
    expect(await passedOn(user.id)).toHaveLength(2)
    expect(third.result).toMatchObject({ samples: 0 })
  })

  it('picks up readings a phone uploaded late as new buckets', async () => {
    const user = await register(['heart_rate'])
    google.setUploadDelay(5 * HOUR, user.google.googleId)
    await fetchWindow(user.id, ['heart_rate'], 24)
    const early = (await passedOn(user.id))[0]!
    expect(Math.max(...early.map((s) => s.startMs))).toBeLessThan(lastHour - 4 * HOUR)
    google.setUploadDelay(0, user.google.googleId)
    await fetchWindow(user.id, ['heart_rate'], 24)
    const late = (await passedOn(user.id))[1]!
    const seen = new Set(early.map((s) => s.startMs))
    // Hours that were missing arrive as new buckets; the hour that was partly uploaded is revised.
    const fresh = late.filter((s) => !seen.has(s.startMs))
    expect(fresh.length).toBeGreaterThanOrEqual(3)
    expect(fresh.every((s) => s.revision === 0 && s.startMs > lastHour - 6 * HOUR)).toBe(true)
    expect(late.filter((s) => seen.has(s.startMs)).every((s) => s.revision === 1)).toBe(true)
  })

  it('uses the consent as it is when the fetch runs', async () => {
    const user = await register(['steps', 'calories'])
    await redis.hset(`${prefix}:user:${user.id}`, 'dataTypes', 'calories')
    await fetchWindow(user.id, ['steps', 'calories'], 24)
    const [samples] = await passedOn(user.id)
    expect(new Set(samples!.map((s) => s.type))).toEqual(new Set(['calories']))
  })
})

describe('after Google closes the Fitness API', () => {
  it('reads nobody from Fit: a fetch of a person still on it is set aside without asking Google, nothing dead-lettered, the cursor left where it was; Health API users are read as before', async () => {
    // A second deployment past Fit's closing, holding copies of a Fit and a Health API user of this one.
    const closedPrefix = uniquePrefix('fetcher-closed')
    const closedRedis = testRedis(closedPrefix)
    const env = { ACCESS_TOKEN_KEYS: accessKeys, INTERNAL_API_TOKEN: INTERNAL, GOOGLE_FIT_CLOSES_AT: '2026-01-01T00:00:00Z' }
    const closed = createFetcher(loadFetcherConfig(fetcherTestEnv(google, tokenService, closedPrefix, env)), silentLogger())
    const closedEvents = new QueueEvents('fetch', { connection: { url: redisUrl() }, prefix: closedPrefix })
    try {
      closed.start()
      await closedEvents.waitUntilReady()
      const onFit = await register(['steps'])
      const onHealth = await register(['steps'], [...ALL_HEALTH_READ_SCOPES])
      // As bytes: the token service keeps ciphertexts binary.
      for (const { id } of [onFit, onHealth]) await redis.hset(userKey(closedPrefix, id), await redis.hgetallBuffer(userKey(prefix, id)))
      const fetchIn = async (userId: string) => {
        const job = await closed.queues.add('fetch', {
          syncId: `closed-${++jobCounter}`,
          userId,
          dataTypes: ['steps'],
          window: { startMs: lastHour - HOUR, endMs: lastHour },
          bucketMs: HOUR,
        })
        return (await job.waitUntilFinished(closedEvents, 30_000)) as Record<string, unknown>
      }
      const before = google.stats
      expect(await fetchIn(onFit.id)).toEqual({ discarded: 'user <user> is read from Google Fitness API, which has closed' })
      expect(google.stats.aggregateRequests).toBe(before.aggregateRequests)
      expect(await closedRedis.redis.hget(userKey(closedPrefix, onFit.id), USER_FIELDS.fetchedUntil)).toBeNull()
      expect(await closed.queues.deadLetterQueue('fetch').getJobCounts('waiting')).toEqual({ waiting: 0 })
      expect(await fetchIn(onHealth.id)).toMatchObject({ api: 'health', dataTypes: ['steps'] })
      expect(google.stats.rollUpRequests).toBeGreaterThan(before.rollUpRequests)
    } finally {
      await closedEvents.close()
      await closed.close()
      await closedRedis.cleanup()
    }
  })
})

describe('Google errors', () => {
  it('backs off on 429 with Retry-After without using up attempts', async () => {
    const user = await register(['steps'])
    google.injectFault({ route: 'aggregate', status: 429, times: 2, retryAfterSeconds: 1, reason: 'rateLimitExceeded' })
    const { job } = await fetchWindow(user.id, ['steps'], 24)
    const done = await finishedJob(job.id!)
    // BullMQ counts the attempt that succeeded; the rate-limited ones were not counted.
    expect(done.attemptsMade).toBe(1)
    expect(done.stacktrace).toEqual([])
    const metrics = await fetcher.metrics.registry.getSingleMetricAsString('fitstream_jobs_deferred_total')
    expect(metrics).toMatch(/scope="queue"[^}]*} [2-9]/)
  })

  it('treats 403 rateLimitExceeded like a 429', async () => {
    const user = await register(['steps'])
    google.injectFault({ route: 'aggregate', status: 403, times: 1, retryAfterSeconds: 1, reason: 'rateLimitExceeded' })
    const { job } = await fetchWindow(user.id, ['steps'], 24)
    expect((await finishedJob(job.id!)).attemptsMade).toBe(1)
  })

  it('on 401 refreshes the token once through the token service, then succeeds', async () => {
    const user = await register(['steps'])
    google.expireAccessTokens(user.google.googleId)
    const tokensBefore = google.stats.tokenRequests
    const { job } = await fetchWindow(user.id, ['steps'], 24)
    expect(google.stats.tokenRequests - tokensBefore).toBe(1)
    expect((await finishedJob(job.id!)).attemptsMade).toBe(1)
  })

  it('retries a 503 and succeeds', async () => {
    const user = await register(['steps'])
    google.injectFault({ route: 'aggregate', status: 503, times: 1, reason: 'backendError' })
    const { job } = await fetchWindow(user.id, ['steps'], 24)
    // One failed attempt, then the one that succeeded.
    expect((await finishedJob(job.id!)).attemptsMade).toBe(2)
    expect((await passedOn(user.id)).length).toBe(1)
  })

  it('retries when Google does not answer in time, then succeeds', async () => {
    const user = await register(['steps'])
    google.setLatency(3_000)
    const job = await queueLastHour(user.id, ['steps'], 's-timeout', 'test-fetch-timeout')
    try {
      await expect.poll(async () => (await fetcher.queues.queue('fetch').getJob(job.id!))?.attemptsMade ?? 0, { timeout: 10_000 }).toBeGreaterThanOrEqual(1)
    } finally {
      google.setLatency(0)
    }
    await job.waitUntilFinished(events, 20_000)
    expect((await finishedJob(job.id!)).stacktrace.join('\n')).toMatch(/Google Fitness API unreachable/)
  })

  it('dead-letters a 400 at once with Google’s message', async () => {
    const user = await register(['steps'])
    google.injectFault({
      route: 'aggregate',
      status: 400,
      times: 1,
      reason: 'invalidArgument',
      body: {
        error: {
          code: 400,
          message: 'Request contains an invalid argument.',
          errors: [{ domain: 'global', reason: 'invalidArgument', message: 'Request contains an invalid argument.' }],
          status: 'INVALID_ARGUMENT',
        },
      },
    })
    const job = await queueLastHour(user.id, ['steps'], 's-400', 'test-fetch-400')
    const dead = await deadLetterFor(job.id!)
    expect(dead).toMatchObject({ permanent: true, attemptsMade: 1, error: { code: 'FST_ERR_GOOGLE_REJECTED' } })
    expect(dead.error.message).toContain('Request contains an invalid argument.')
  })

  it('dead-letters a type the user did not grant the scope for, with Google’s reason', async () => {
    const user = await register(['heart_rate'], ['https://www.googleapis.com/auth/fitness.activity.read'])
    const job = await queueLastHour(user.id, ['heart_rate'], 's-403', 'test-fetch-403')
    const dead = await deadLetterFor(job.id!)
    expect(dead).toMatchObject({ permanent: true, error: { code: 'FST_ERR_GOOGLE_REJECTED' } })
    expect(dead.error.message).toMatch(/403 forbidden.*heart_rate/)
  })

  it('uses what it can of a partly corrupted response and counts the rest', async () => {
    const user = await register(['steps'])
    const ns = (ms: number) => `${ms}000000`
    const h = lastHour - 2 * HOUR
    const point = (start: number, value: unknown) => ({
      startTimeNanos: ns(start),
      endTimeNanos: ns(start + 60_000),
      dataTypeName: 'com.google.step_count.delta',
      value: [{ intVal: value }],
    })
    const body = {
      bucket: [
        { startTimeMillis: String(h), endTimeMillis: String(h + HOUR), dataset: [{ point: [point(h, 'NaN')] }] },
        { startTimeMillis: String(h + HOUR), endTimeMillis: String(h + 2 * HOUR), dataset: [{ point: [point(h + HOUR, 42)] }] },
        { startTimeMillis: 'yesterday', dataset: {} },
      ],
    }
    google.injectFault({ route: 'aggregate', status: 200, times: 1, body })
    const { result } = await fetchWindow(user.id, ['steps'], 2)
    expect(result).toMatchObject({ samples: 1, rejectedPoints: 2 })
    expect((await passedOn(user.id))[0]).toEqual([expect.objectContaining({ startMs: h + HOUR, values: { count: 42 } })])
  })

  it('dead-letters a wholly unusable response', async () => {
    const user = await register(['steps'])
    google.injectFault({ route: 'aggregate', status: 200, times: 1, body: { kind: 'not what you asked for' } })
    const job = await queueLastHour(user.id, ['steps'], 's-bad', 'test-fetch-bad')
    const dead = await deadLetterFor(job.id!)
    expect(dead).toMatchObject({ permanent: true, error: { code: 'FST_ERR_GOOGLE_MALFORMED', message: 'Google aggregate response has no bucket list' } })
  })
})

describe('the Google Health API', () => {
  // The types both APIs have, and workouts; the daily summaries and floors, which Fit never had, are
  // read against the fake in services/fetcher/test/health-daily.test.ts.
  const HEALTH_TYPES = DATA_TYPE_KEYS.filter((t) => dataType(t).health !== undefined && (dataType(t).fit !== undefined || t === 'workouts'))
  /** A second token service replica, of a deployment on the Health API: it registers what only that API has (workouts). */
  let healthTokenService: ServiceRuntime
  beforeAll(async () => {
    const env = {
      ADMIN_TOKEN: ADMIN,
      INTERNAL_API_TOKEN: INTERNAL,
      ACCESS_TOKEN_KEYS: accessKeys,
      BACKFILL_DAYS: '3',
      FETCH_CHUNK_HOURS: '24',
      GOOGLE_DATA_API: 'health',
    }
    healthTokenService = await createTokenService(loadTokenConfig(testEnv(google, prefix, env)), silentLogger())
  })
  afterAll(async () => {
    await healthTokenService?.close()
  })
  let runners = 0
  /** A person on the Health API who runs (so has workouts), registered through the Health deployment. */
  const registerHealth = async (dataTypes: DataTypeKey[]) => {
    // One who ran in the two days the tests read, so that their workouts are there to check.
    let seed: string
    do seed = `fetcher-runner-${runners++}`
    while (!userProfile(seed).runner || healthExerciseSessions(seed, lastHour - 48 * HOUR, lastHour - HOUR).length === 0)
    return register(dataTypes, [...ALL_HEALTH_READ_SCOPES], seed, healthTokenService)
  }

  /** What Fit says of a bucket, as the Health API reports it: distance to the millimetre, active minutes without light ones. */
  function expectedFromHealth(type: DataTypeKey, seed: string, h: number): Record<string, number> | undefined {
    const fit = expectedValues(type, syntheticBucket(seed, dataType(type).fit!.dataType, h, h + HOUR))
    if (fit === undefined) return undefined
    if (type === 'active_minutes') {
      // Active minutes are Fit's move minutes less the light ones (strolls below 100 steps a minute).
      const levels = (syntheticRollup(seed, 'active-minutes', h, h + HOUR) as ActiveMinutesRollupValue).activeMinutesRollupByActivityLevel ?? []
      return { minutes: levels.reduce((n, l) => n + (l.activityLevel === 'LIGHT' ? 0 : Number(l.activeMinutesSum)), 0) }
    }
    if (type === 'distance') return { metres: Math.round(fit.metres! * 1000) / 1000 }
    // Height is listed in whole millimetres (one reading a month, so its average is that reading).
    if (type === 'height') return Object.fromEntries(Object.entries(fit).map(([k, v]) => [k, Math.round(v * 1000) / 1000]))
    return Object.fromEntries(Object.entries(fit).map(([k, v]) => [k, expect.closeTo(v, 9) as number]))
  }

  /**
   * Sleep as the Health API gives it: minutes per stage of the sessions that have ended, each stage
   * in the hour it starts in. Google lists a night only once it is over.
   */
  function expectedSleep(
    seed: string,
    start: number,
    end: number,
    fetchedAt: number,
    sleepType: 'STAGES' | 'CLASSIC' = 'STAGES',
  ): Map<number, Record<string, number>> {
    const byHour = new Map<number, Record<string, number>>()
    // Classic sleep's restless minutes count as awake, as Fit counts them.
    const field = { AWAKE: 'awake_min', LIGHT: 'light_min', DEEP: 'deep_min', REM: 'rem_min', ASLEEP: 'sleep_min', RESTLESS: 'awake_min' } as const
    for (const session of healthSleepSessions(seed, start, end + 24 * HOUR, fetchedAt, sleepType)) {
      for (const stage of session.stages.filter((s) => s.startMs >= start && s.startMs < end)) {
        const h = Math.floor(stage.startMs / HOUR) * HOUR
        const values = byHour.get(h) ?? { awake_min: 0, sleep_min: 0, out_of_bed_min: 0, light_min: 0, deep_min: 0, rem_min: 0 }
        values[field[stage.type]] += (stage.endMs - stage.startMs) / 60_000
        byHour.set(h, values)
      }
    }
    return byHour
  }

  /**
   * Workouts as the Health API gives them: the active minutes of each run that has ended, shared
   * among the hours it overlaps in proportion to the overlap.
   */
  function expectedWorkouts(seed: string, start: number, end: number, fetchedAt: number): Map<number, Record<string, number>> {
    const byHour = new Map<number, Record<string, number>>()
    for (const run of healthExerciseSessions(seed, start - 24 * HOUR, end, fetchedAt)) {
      for (let h = Math.floor(run.startMs / HOUR) * HOUR; h < run.endMs; h += HOUR) {
        if (h < start || h >= end) continue
        const overlapMs = Math.min(h + HOUR, run.endMs) - Math.max(h, run.startMs)
        const values = byHour.get(h) ?? { walking_min: 0, running_min: 0, cycling_min: 0, swimming_min: 0, strength_min: 0, other_min: 0 }
        values.running_min! += (overlapMs * run.activeMs) / (run.endMs - run.startMs) / 60_000
        byHour.set(h, values)
      }
    }
    return byHour
  }

  it('reads a person who granted Health API scopes through one roll-up per type, or a list of sleep sessions or readings, and passes on what Fit would have for the same data', async () => {
    const user = await registerHealth(HEALTH_TYPES)
    const [aggregates, rollUps, reconciles] = [google.stats.aggregateRequests, google.stats.rollUpRequests, google.stats.reconcileRequests]
    // What Google has at the time of the fetch: a night or a run that ends later is not in it.
    const fetchedAt = Date.now()
    const { result } = await fetchWindow(user.id, HEALTH_TYPES, 48)
    expect(google.stats.aggregateRequests - aggregates).toBe(0)
    const listed = HEALTH_TYPES.filter((t) => dataType(t).health!.read !== undefined && dataType(t).health!.read !== 'rollUp')
    expect(listed.sort()).toEqual(['body_fat', 'height', 'oxygen_saturation', 'sleep', 'weight', 'workouts'])
    expect(google.stats.rollUpRequests - rollUps).toBe(HEALTH_TYPES.length - listed.length)
    // Read as one stream across the person's sources, as roll-ups and Fit's merged data are.
    expect(google.stats.reconcileRequests - reconciles).toBe(listed.length)
    const [samples] = await passedOn(user.id)
    const got = new Map(samples!.map((s) => [`${s.type}|${s.startMs}`, s]))
    const sleep = expectedSleep(user.google.seed, lastHour - 48 * HOUR, lastHour, fetchedAt)
    expect(sleep.size).toBeGreaterThan(4)
    const workouts = expectedWorkouts(user.google.seed, lastHour - 48 * HOUR, lastHour, fetchedAt)
    let expectedCount = 0
    for (const type of HEALTH_TYPES) {
      for (let h = lastHour - 48 * HOUR; h < lastHour; h += HOUR) {
        const fit = type === 'workouts' ? undefined : expectedFromHealth(type, user.google.seed, h)
        // A night's hours are what Fit has for them, once the night is over.
        if (type === 'sleep' && sleep.has(h)) expect(sleep.get(h)).toEqual(fit)
        const expected = type === 'sleep' ? sleep.get(h) : type === 'workouts' ? workouts.get(h) : fit
        const sample = got.get(`${type}|${h}`)
        if (expected === undefined) {
          expect(sample, `${type} ${new Date(h).toISOString()}`).toBeUndefined()
          continue
        }
        expectedCount++
        expect(sample, `${type} ${new Date(h).toISOString()}`).toMatchObject({ startMs: h, endMs: h + HOUR, values: expected, unit: dataType(type).unit })
      }
    }
    expect(samples).toHaveLength(expectedCount)
    // Roll-ups, sessions and readings all came through (height is measured once a month, body fat not every day).
    expect([...new Set(samples!.map((s) => s.type))]).toEqual(expect.arrayContaining(['steps', 'heart_minutes', 'sleep', 'oxygen_saturation', 'workouts']))
    // A runner runs most days: two days hold some of their workouts.
    expect(workouts.size).toBeGreaterThan(0)
    expect(result).toMatchObject({ api: 'health', samples: expectedCount, rejectedPoints: 0 })
    // A person on Fit, read by the same fetcher at the same time, stays on Fit.
    const fitUser = await register(['steps'])
    expect((await fetchWindow(fitUser.id, ['steps'], 24)).result).toMatchObject({ api: 'fit' })
  })

  it('counts a workout of an exercise type it does not know as other, and among rejected points by reason, without failing the fetch', async () => {
    const user = await registerHealth(['workouts'])
    // Every run of this person's comes as a type Google might add later.
    const types = ['UNDERWATER_HOCKEY']
    google.setExerciseTypes(user.google.googleId, types)
    const rejectedUnknown = async () =>
      Number(/fitstream_google_points_rejected_total\{reason="unknown exercise type"[^}]*\} (\d+)/.exec(await fetcher.metrics.registry.metrics())?.[1] ?? 0)
    const before = await rejectedUnknown()
    const fetchedAt = Date.now()
    const { result } = await fetchWindow(user.id, ['workouts'], 48)
    const [samples] = await passedOn(user.id)
    const runs = healthExerciseSessions(user.google.seed, lastHour - 48 * HOUR - 24 * HOUR, lastHour, fetchedAt, types).filter(
      (run) => run.endMs > lastHour - 48 * HOUR,
    )
    const unknown = runs.filter((run) => run.exerciseType === 'UNDERWATER_HOCKEY').length
    const minutes = (field: string) => samples!.reduce((n, s) => n + (s.values[field] ?? 0), 0)
    const activeIn = (type: string) =>
      runs
        .filter((run) => run.exerciseType === type)
        .reduce(
          (n, run) => n + (run.activeMs * (Math.min(run.endMs, lastHour) - Math.max(run.startMs, lastHour - 48 * HOUR))) / (run.endMs - run.startMs) / 60_000,
          0,
        )
    expect(unknown).toBeGreaterThan(0)
    expect(minutes('other_min')).toBeCloseTo(activeIn('UNDERWATER_HOCKEY'), 9)
    expect(minutes('running_min')).toBe(0)
    // Still a usable fetch: the unknown type is counted, not fatal.
    expect(result).toMatchObject({ api: 'health', rejectedPoints: unknown })
    expect((await rejectedUnknown()) - before).toBe(unknown)
  })

  it('sets aside a roll-up’s wrong-typed values, unknown activity levels and missing fields by reason, and passes on the rest with the other types', async () => {
    const user = await registerHealth(['active_minutes', 'sleep'])
    const h = lastHour - 3 * HOUR
    const window = (start: number, value: unknown) => ({
      startTime: new Date(start).toISOString(),
      endTime: new Date(start + HOUR).toISOString(),
      activeMinutes: value,
    })
    const levels = (...list: unknown[]) => ({ activeMinutesRollupByActivityLevel: list })
    const body = {
      rollupDataPoints: [
        window(h + 2 * HOUR, levels({ activityLevel: 'VERY_ACTIVE', activeMinutesSum: '3' })),
        window(h + HOUR, levels({ activityLevel: 'MODERATE', activeMinutesSum: 'twelve' })),
        { endTime: new Date(h + HOUR).toISOString(), activeMinutes: levels({ activityLevel: 'MODERATE', activeMinutesSum: '4' }) },
        window(h, levels({ activityLevel: 'VIGOROUS', activeMinutesSum: '9' }, { activityLevel: 'LIGHT', activeMinutesSum: '20' })),
      ],
    }
    const rejectedBy = async (reason: string) =>
      Number(new RegExp(`fitstream_google_points_rejected_total\\{reason="${reason}"[^}]*\\} (\\d+)`).exec(await fetcher.metrics.registry.metrics())?.[1] ?? 0)
    const reasons = ['unknown activity level', 'non-integer value', 'malformed window']
    const before = await Promise.all(reasons.map(rejectedBy))
    google.injectFault({ route: 'rollUp', status: 200, times: 1, body })
    const fetchedAt = Date.now()
    const { result } = await fetchWindow(user.id, ['active_minutes', 'sleep'], 3)
    expect(result).toMatchObject({ api: 'health', rejectedPoints: 3 })
    expect((await Promise.all(reasons.map(rejectedBy))).map((n, i) => n - before[i]!)).toEqual([1, 1, 1])
    const [samples] = await passedOn(user.id)
    expect(samples!.filter((s) => s.type === 'active_minutes').map((s) => [s.startMs, s.values])).toEqual([[h, { minutes: 9 }]])
    // Sleep, read in the same fetch, is all there.
    const sleep = expectedSleep(user.google.seed, h, lastHour, fetchedAt)
    expect(samples!.filter((s) => s.type === 'sleep').map((s) => [s.startMs, s.values])).toEqual([...sleep].sort(([a], [b]) => a - b))
  })

  it('leaves out a night Google is still staging, which comes without `processed` (proto3 JSON leaves false out), and reads it once staged', async () => {
    const user = await registerHealth(['sleep'])
    const hours = 72
    let fetchedAt = Date.now()
    // The latest night to have ended is still being staged and the one before it is done, whatever
    // the time of day the test runs at (nights are about a day apart; a fixed staging time would
    // leave nothing staged in part of the day).
    const latestEnd = Math.max(...healthSleepSessions(user.google.seed, lastHour - hours * HOUR, lastHour + 24 * HOUR, fetchedAt).map((night) => night.endMs))
    const stagingMs = fetchedAt - latestEnd + HOUR
    google.setSleepStaging(stagingMs)
    try {
      await fetchWindow(user.id, ['sleep'], hours)
    } finally {
      google.setSleepStaging(0)
    }
    const staged = expectedSleep(user.google.seed, lastHour - hours * HOUR, lastHour, fetchedAt - stagingMs)
    const all = expectedSleep(user.google.seed, lastHour - hours * HOUR, lastHour, fetchedAt)
    // At least one night in the window was still being staged, and one was not.
    expect(all.size).toBeGreaterThan(staged.size)
    expect(staged.size).toBeGreaterThan(0)
    const [first] = await passedOn(user.id)
    expect(new Map(first!.map((s) => [s.startMs, s.values]))).toEqual(staged)
    // A later sync, once Google has staged it, reads the night.
    fetchedAt = Date.now()
    await fetchWindow(user.id, ['sleep'], hours)
    const [, second] = await passedOn(user.id)
    const read = new Map([...first!, ...second!].map((s) => [s.startMs, s.values]))
    expect(read).toEqual(expectedSleep(user.google.seed, lastHour - hours * HOUR, lastHour, fetchedAt))
  })

  it('reads classic sleep (asleep, restless, awake) into asleep and awake minutes', async () => {
    const user = await registerHealth(['sleep'])
    google.setSleepType(user.google.googleId, 'CLASSIC')
    const fetchedAt = Date.now()
    await fetchWindow(user.id, ['sleep'], 48)
    const [samples] = await passedOn(user.id)
    const expected = expectedSleep(user.google.seed, lastHour - 48 * HOUR, lastHour, fetchedAt, 'CLASSIC')
    expect(expected.size).toBeGreaterThan(0)
    expect(new Map(samples!.map((s) => [s.startMs, s.values]))).toEqual(expected)
    const total = (field: string) => samples!.reduce((n, s) => n + s.values[field]!, 0)
    expect(total('sleep_min')).toBeGreaterThan(0)
    expect(total('light_min') + total('deep_min') + total('rem_min')).toBe(0)
  })

  it('reads a height measured once a month from a month of readings, as Fit has it', async () => {
    const user = await registerHealth(['height'])
    // 30 days of hours hold exactly one of the monthly measurements.
    await fetchWindow(user.id, ['height'], 30 * 24)
    const [samples] = await passedOn(user.id)
    expect(samples).toHaveLength(1)
    const [sample] = samples!
    expect(sample!.values).toEqual(expectedFromHealth('height', user.google.seed, sample!.startMs))
  })

  it('counts each Health API request, not each fetch, against the project’s rate limit and in its metrics', async () => {
    const requestsMade = async () =>
      Number(/fitstream_google_requests_total\{status="200"[^}]*\} (\d+)/.exec(await fetcher.metrics.registry.metrics())?.[1] ?? 0)
    const user = await registerHealth(['steps', 'heart_rate', 'sleep'])
    const [before, counted] = [google.stats, await requestsMade()]
    await fetchWindow(user.id, ['steps', 'heart_rate', 'sleep'], 24)
    const after = google.stats
    const atGoogle = after.rollUpRequests + after.reconcileRequests - before.rollUpRequests - before.reconcileRequests
    expect(atGoogle).toBe(3)
    expect((await requestsMade()) - counted).toBe(atGoogle)
  })

  it('leaves out consented types the Health API does not have, and fetches the rest', async () => {
    // Registration refuses such a consent; one from before that rule, or set by hand, is still read as far as it can be.
    const user = await registerHealth(['steps'])
    await redis.hset(userKey(prefix, user.id), USER_FIELDS.dataTypes, 'steps,blood_pressure')
    const { result } = await fetchWindow(user.id, ['steps', 'blood_pressure'], 24)
    expect(result).toMatchObject({ api: 'health', dataTypes: ['steps'] })
    const [samples] = await passedOn(user.id)
    expect(new Set(samples!.map((s) => s.type))).toEqual(new Set(['steps']))
  })

  it('splits a night that runs across two fetch windows by where its stages start, counting every stage once', async () => {
    const user = await registerHealth(['sleep'])
    const sleep = expectedSleep(user.google.seed, lastHour - 48 * HOUR, lastHour, Date.now())
    const night = healthSleepSessions(user.google.seed, lastHour - 40 * HOUR, lastHour - 8 * HOUR)[0]!
    const split = Math.floor((night.startMs + night.endMs) / 2 / HOUR) * HOUR
    await fetchWindow(user.id, ['sleep'], 0, { window: { startMs: lastHour - 48 * HOUR, endMs: split } })
    await fetchWindow(user.id, ['sleep'], 0, { window: { startMs: split, endMs: lastHour } })
    const passed = (await passedOn(user.id)).flat()
    expect(new Map(passed.map((s) => [s.startMs, s.values]))).toEqual(sleep)
    expect(passed).toHaveLength(sleep.size)
  })

  it('waits out a failing sleep list like any other request, and dead-letters a missing sleep scope with Google’s reason', async () => {
    const user = await registerHealth(['sleep'])
    google.injectFault({ route: 'list', status: 429, times: 2, retryAfterSeconds: 1 })
    const { job } = await fetchWindow(user.id, ['sleep'], 24)
    expect((await finishedJob(job.id!)).attemptsMade).toBe(1)

    const narrow = await register(['steps', 'sleep'], ['https://www.googleapis.com/auth/googlehealth.activity_and_fitness.readonly'])
    const denied = await queueLastHour(narrow.id, ['steps', 'sleep'], 's-health-sleep-403', 'test-fetch-health-sleep-403')
    const dead = await deadLetterFor(denied.id!)
    expect(dead).toMatchObject({ permanent: true, error: { code: 'FST_ERR_GOOGLE_REJECTED' } })
    expect(dead.error.message).toMatch(/^Google Health API answered 403 ACCESS_TOKEN_SCOPE_INSUFFICIENT: /)
  })

  it('reads whole local days with dailyRollUp when buckets are days in the person’s time zone', async () => {
    const zone = 'America/New_York'
    const user = await registerHealth(['steps'])
    google.setUserTimeZone(user.google.googleId, zone)
    const today = alignToLocalMidnight(Date.now(), zone)
    const start = alignToLocalMidnight(today - 3 * 24 * HOUR + 12 * HOUR, zone)
    const { result } = await fetchWindow(user.id, ['steps'], 0, { window: { startMs: start, endMs: today }, bucketMs: 24 * HOUR, timeZone: zone })
    expect(result).toMatchObject({ api: 'health', samples: 3 })
    const [samples] = await passedOn(user.id)
    for (const sample of samples!) {
      // Each day's total is the sum of its local hours, as Fit's hourly buckets have them.
      let steps = 0
      for (let h = sample.startMs; h < sample.endMs; h += HOUR)
        steps += expectedValues('steps', syntheticBucket(user.google.seed, 'com.google.step_count.delta', h, h + HOUR))?.count ?? 0
      expect(sample.values).toEqual({ count: steps })
      expect(alignToLocalMidnight(sample.startMs, zone)).toBe(sample.startMs)
    }
  })

  describe('a person who travels', () => {
    // Two syncs of daily buckets planned on Berlin's midnights (UTC+1 in November); between them the
    // person flies to New York (UTC-5), and Google's settings say so. Pinned dates, long past.
    const [berlin, newYork] = ['Europe/Berlin', 'America/New_York']
    const berlinMidnight = (day: number) => Date.UTC(2026, 10, day) - HOUR
    const zoneOf = async (id: string) =>
      ((await tokenService.server.inject({ method: 'GET', url: `/users/${id}`, headers: { authorization: `Bearer ${ADMIN}` } })).json() as { timeZone: string })
        .timeZone
    /** A person on the Health API, with the settings scope, in Berlin at Google and in the token service's record. */
    const berliner = async () => {
      const user = await registerHealth(['steps'])
      google.setUserTimeZone(user.google.googleId, berlin)
      const put = await tokenService.server.inject({
        method: 'PUT',
        url: `/internal/users/${user.id}/time-zone`,
        headers: { authorization: `Bearer ${INTERNAL}` },
        payload: { timeZone: berlin },
      })
      expect(put.statusCode).toBe(204)
      return user
    }
    /** What Google's daily roll-up of steps holds for a day: the sum of its hours. */
    const stepsBetween = (seed: string, startMs: number, endMs: number) => {
      let steps = 0
      for (let h = startMs; h < endMs; h += HOUR)
        steps += expectedValues('steps', syntheticBucket(seed, 'com.google.step_count.delta', h, h + HOUR))?.count ?? 0
      return steps
    }
    const syncOf = (user: { id: string }, startDay: number, days: number) =>
      fetchWindow(user.id, ['steps'], 0, {
        window: { startMs: berlinMidnight(startDay), endMs: berlinMidnight(startDay + days) },
        bucketMs: 24 * HOUR,
        // The zone the token service had when it planned the sync.
        timeZone: berlin,
      })

    it('gets daily records on the new zone’s civil days once Google’s settings name it, and the token service keeps it', async () => {
      const user = await berliner()
      const first = await syncOf(user, 10, 2)
      expect(first.result).toMatchObject({ api: 'health', samples: 2, timeZone: berlin })
      expect(await zoneOf(user.id)).toBe(berlin)

      google.setUserTimeZone(user.google.googleId, newYork)
      const second = await syncOf(user, 12, 2)
      expect(second.result).toMatchObject({ api: 'health', samples: 2, rejectedPoints: 0, timeZone: newYork })
      const [before, after] = await passedOn(user.id)
      expect(before!.map((s) => [new Date(s.startMs).toISOString(), s.endMs - s.startMs])).toEqual([
        ['2026-11-09T23:00:00.000Z', 24 * HOUR],
        ['2026-11-10T23:00:00.000Z', 24 * HOUR],
      ])
      // New York's 12 and 13 November: its days that begin in the two Berlin days planned, whole.
      expect(after!.map((s) => [new Date(s.startMs).toISOString(), s.endMs - s.startMs])).toEqual([
        ['2026-11-12T05:00:00.000Z', 24 * HOUR],
        ['2026-11-13T05:00:00.000Z', 24 * HOUR],
      ])
      for (const sample of [...before!, ...after!]) expect(sample.values).toEqual({ count: stepsBetween(user.google.seed, sample.startMs, sample.endMs) })
      // The token service owns the zone: the fetcher told it, and its next sync plans on New York's midnights.
      expect(await zoneOf(user.id)).toBe(newYork)
    })

    it('keeps the zone the sync gave when the settings name an invalid zone or none, or cannot be read, counting the invalid one, and never fails the fetch', async () => {
      const user = await berliner()
      google.setUserTimeZone(user.google.googleId, newYork)
      const rejectedBy = async (reason: string) =>
        Number(
          new RegExp(`fitstream_google_points_rejected_total\\{reason="${reason}"[^}]*\\} (\\d+)`).exec(await fetcher.metrics.registry.metrics())?.[1] ?? 0,
        )
      const invalidBefore = await rejectedBy('invalid time zone')
      google.injectFault({ route: 'settings', status: 200, times: 1, body: { timeZone: 'Mars/Olympus_Mons', utcOffset: '3600s' } })
      expect((await syncOf(user, 20, 1)).result).toMatchObject({ samples: 1, rejectedPoints: 0, timeZone: berlin })
      expect((await rejectedBy('invalid time zone')) - invalidBefore).toBe(1)
      google.injectFault({ route: 'settings', status: 200, times: 1, body: { utcOffset: '-18000s' } })
      expect((await syncOf(user, 21, 1)).result).toMatchObject({ samples: 1, timeZone: berlin })
      google.injectFault({ route: 'settings', status: 503, times: 1 })
      expect((await syncOf(user, 22, 1)).result).toMatchObject({ samples: 1, timeZone: berlin })
      const days = (await passedOn(user.id)).flat()
      expect(days.map((s) => new Date(s.startMs).toISOString())).toEqual(['2026-11-19T23:00:00.000Z', '2026-11-20T23:00:00.000Z', '2026-11-21T23:00:00.000Z'])
      expect((await rejectedBy('invalid time zone')) - invalidBefore).toBe(1)
      expect(await zoneOf(user.id)).toBe(berlin)
    })

    it('reads a person without the settings scope in the zone the sync gave, without asking for their settings', async () => {
      const scopes = ALL_HEALTH_READ_SCOPES.filter((scope) => !scope.endsWith('.settings.readonly'))
      const user = await register(['steps'], scopes, undefined, healthTokenService)
      google.setUserTimeZone(user.google.googleId, newYork)
      const asked = google.stats.settingsRequests
      expect((await syncOf(user, 24, 1)).result).toMatchObject({ samples: 1, timeZone: berlin })
      expect(google.stats.settingsRequests).toBe(asked)
    })
  })

  it('waits out a 429 without using attempts, and dead-letters a missing scope with Google’s reason', async () => {
    const user = await registerHealth(['steps'])
    google.injectFault({ route: 'rollUp', status: 429, times: 2, retryAfterSeconds: 1 })
    const { job } = await fetchWindow(user.id, ['steps'], 24)
    expect((await finishedJob(job.id!)).attemptsMade).toBe(1)

    const narrow = await register(['heart_rate'], ['https://www.googleapis.com/auth/googlehealth.activity_and_fitness.readonly'])
    const denied = await queueLastHour(narrow.id, ['heart_rate'], 's-health-403', 'test-fetch-health-403')
    const dead = await deadLetterFor(denied.id!)
    expect(dead).toMatchObject({ permanent: true, attemptsMade: 1, error: { code: 'FST_ERR_GOOGLE_REJECTED' } })
    expect(dead.error.message).toMatch(/^Google Health API answered 403 ACCESS_TOKEN_SCOPE_INSUFFICIENT: /)
  })

  it('uses what it can of a partly corrupted roll-up and dead-letters one that is not an answer at all', async () => {
    const user = await registerHealth(['steps'])
    const h = lastHour - 2 * HOUR
    const iso = (ms: number) => new Date(ms).toISOString()
    const body = {
      rollupDataPoints: [
        { startTime: iso(h + HOUR), endTime: iso(lastHour), steps: { countSum: '42' } },
        { startTime: iso(h), endTime: iso(h + HOUR), steps: { countSum: 'NaN' } },
        { startTime: 'yesterday', steps: {} },
      ],
    }
    google.injectFault({ route: 'rollUp', status: 200, times: 1, body })
    const { result } = await fetchWindow(user.id, ['steps'], 2)
    expect(result).toMatchObject({ samples: 1, rejectedPoints: 2 })
    expect((await passedOn(user.id))[0]).toEqual([expect.objectContaining({ startMs: h + HOUR, values: { count: 42 } })])

    google.injectFault({ route: 'rollUp', status: 200, times: 1, rawBody: '<html>502 Bad Gateway</html>' })
    const job = await queueLastHour(user.id, ['steps'], 's-health-bad', 'test-fetch-health-bad')
    const dead = await deadLetterFor(job.id!)
    expect(dead).toMatchObject({ permanent: true, error: { code: 'FST_ERR_GOOGLE_MALFORMED' } })
    expect(dead.error.message).toMatch(/Google Health API roll-up response is not a JSON object/)
  })
})

/** Local midnight in `zone` at or before `ms`. */
function alignToLocalMidnight(ms: number, zone: string): number {
  const c = civilTime(ms, zone)
  return instantOf({ ...c, hours: 0, minutes: 0, seconds: 0 }, zone)
}

describe('backfill', () => {
  it('fetches a new user’s history in chunks that show as "backfill i/n", and reports progress', async () => {
    const user = google.addUser()
    tokenService.start()
    const response = await tokenService.server.inject({
      method: 'POST',
      url: '/users',
      headers: { authorization: `Bearer ${ADMIN}` },
      payload: { refreshToken: user.refreshToken, dataTypes: ['steps'] },
    })
    const id = (response.json() as { id: string }).id
    const names = new Set<string>()
    const collectNames = async (): Promise<string[]> => {
      for (const job of [...(await fetcher.queues.queue('fetch').getJobs(['waiting', 'prioritized', 'active'])), ...finished.values()]) {
        if ((job.data as StageData<'fetch'>).userId === id) names.add(job.name)
      }
      return [...names].filter((n) => n.startsWith('backfill')).sort()
    }
    await expect
      .poll(
        async () => {
          await collectNames()
          return (
            (await tokenService.server.inject({ method: 'GET', url: `/users/${id}`, headers: { authorization: `Bearer ${ADMIN}` } })).json() as {
              backfill: unknown
            }
          ).backfill
        },
        { timeout: 30_000 },
      )
      .toMatchObject({ chunks: 3, done: 3 })
    // The last chunk to finish may report progress before the worker has announced it completed.
    await expect.poll(collectNames, { timeout: 5_000 }).toEqual(['backfill 1/3', 'backfill 2/3', 'backfill 3/3'])
  })
})
