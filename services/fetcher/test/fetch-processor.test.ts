import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ALL_READ_SCOPES, FakeGoogle } from '@fitstream/fake-google'
import {
  FetchHistoryStore,
  Keyring,
  StageQueues,
  USER_FIELDS,
  UserGoneError,
  UserRecordStore,
  accessTokenContext,
  createMetrics,
  encodeScopes,
  userKey,
  type JobContext,
  type StageData,
} from '@fitstream/shared'
import { createFetchProcessor, type FetchUserRecords } from '../src/fetch-processor.js'
import { GoogleFitClient } from '../src/google-fit.js'
import { GoogleHealthClient } from '../src/google-health.js'
import { createFetcherMetrics } from '../src/metrics.js'
import { TokenServiceClient } from '../src/token-service-client.js'
import { jobContext, silentLogger, testRedis, uniquePrefix } from '../../../tests/helpers.js'

/**
 * The fetch processor with its stores on real Redis and the real googleapis client against the
 * fake Google, for what only the stores can show: a person erased while Google answers, and two
 * fetches of one person at once.
 */
const HOUR = 3_600_000
const NOW = Date.UTC(2026, 10, 24, 12)
const WINDOW = { startMs: Date.UTC(2026, 10, 23, 8), endMs: Date.UTC(2026, 10, 23, 12) }
const prefix = uniquePrefix('fetch-processor')
const { redis, cleanup } = testRedis(prefix)
const logger = silentLogger()
const accessKeys = new Keyring([['a1', randomBytes(32)]])
const users = new UserRecordStore(redis, prefix, accessKeys)
const history = new FetchHistoryStore(redis, prefix, (userId) => users.existenceKey(userId))
const retry = { attempts: 1, backoffMs: 100 }
let google: FakeGoogle
let queues: StageQueues

beforeAll(async () => {
  google = await FakeGoogle.start()
  queues = new StageQueues({ connection: redis, prefix, retry: { sync: retry, fetch: retry, anonymize: retry, publish: retry }, logger })
})

afterAll(async () => {
  await queues.close()
  await google.close()
  await cleanup()
})

const processorWith = (records: FetchUserRecords) =>
  createFetchProcessor({
    users: records,
    history,
    google: new GoogleFitClient({ rootUrl: google.rootUrl, timeoutMs: 5_000 }),
    health: new GoogleHealthClient({ rootUrl: google.rootUrl, timeoutMs: 5_000 }),
    defaultApi: 'fit',
    fitClosesAt: Date.UTC(2100, 0, 1),
    // Never asked: each person's access token is fresh.
    tokenService: new TokenServiceClient('http://127.0.0.1:1', 'unused-internal-token'),
    queues,
    metrics: createFetcherMetrics(createMetrics('fetch-processor-test')),
    fetchSensitiveTypes: false,
    now: () => NOW,
  })

/** A person at Google and in the token service's record, consenting to steps, with a fresh access token. */
async function personAtGoogle(userId: string): Promise<void> {
  const user = google.addUser({ scopes: [...ALL_READ_SCOPES] })
  const token = await google.accessTokenFor(user)
  await redis.hset(userKey(prefix, userId), {
    [USER_FIELDS.state]: 'active',
    [USER_FIELDS.dataTypes]: 'steps',
    [USER_FIELDS.scopes]: encodeScopes(user.scopes),
    [USER_FIELDS.accessToken]: accessKeys.encrypt(token, accessTokenContext(userId)),
    [USER_FIELDS.accessTokenExpiresAt]: String(NOW + HOUR),
  })
}

const fetchJob = (userId: string): StageData<'fetch'> => ({
  syncId: 'sync-1',
  userId,
  dataTypes: ['steps'],
  window: WINDOW,
  bucketMs: HOUR,
  timeZone: 'UTC',
  lookbackMs: 2 * 86_400_000,
  kind: 'incremental',
})

const passedOn = async (userId: string) => (await queues.queue('anonymize').getJobs(['waiting', 'delayed'])).filter((job) => job.data.userId === userId)

describe('the fetch processor', () => {
  it('passes a window on and remembers it, so the same data read again is not passed on twice', async () => {
    await personAtGoogle('steady-0001')
    const fetchWindow = processorWith(users)
    const first = await fetchWindow(fetchJob('steady-0001'), jobContext(logger))
    expect(first.samples).toBeGreaterThan(0)
    expect(await history.read('steady-0001')).not.toBeNull()
    const again = await fetchWindow(fetchJob('steady-0001'), jobContext(logger))
    expect(again).toMatchObject({ samples: 0, unchanged: first.samples })
    expect(await passedOn('steady-0001')).toHaveLength(1)
    expect(await redis.hget(userKey(prefix, 'steady-0001'), USER_FIELDS.fetchedUntil)).toBe(String(WINDOW.endMs))
  })

  it('passes on nothing, keeps no history and brings no record back for a person erased while Google answered', async () => {
    await personAtGoogle('erased-0001')
    // The erasure lands between the read of the person's record and the end of the fetch.
    const erasedDuringTheRead: FetchUserRecords = {
      forFetch: async (userId) => {
        const record = await users.forFetch(userId)
        await redis.del(userKey(prefix, userId))
        return record
      },
      accessToken: (userId) => users.accessToken(userId),
      advanceFetchCursor: (userId, until) => users.advanceFetchCursor(userId, until),
      recordBackfillChunk: (userId) => users.recordBackfillChunk(userId),
    }
    await expect(processorWith(erasedDuringTheRead)(fetchJob('erased-0001'), jobContext(logger))).rejects.toBeInstanceOf(UserGoneError)
    expect(await passedOn('erased-0001')).toEqual([])
    expect(await history.read('erased-0001')).toBeNull()
    expect(await redis.exists(userKey(prefix, 'erased-0001'))).toBe(0)
  })

  it('waits for another fetch of the same person to finish with their history, and retries shortly when it does not, without using an attempt', async () => {
    await personAtGoogle('busy-0001')
    const held = await history.lock('busy-0001', 'another-fetch')
    const deferrals: string[] = []
    const context: JobContext = {
      ...jobContext(logger),
      deferWithoutAttempt: async (_delayMs, scope) => {
        deferrals.push(scope)
        throw new Error('deferred')
      },
    }
    await expect(processorWith(users)(fetchJob('busy-0001'), context)).rejects.toThrow('deferred')
    expect(deferrals).toEqual(['job'])
    expect(await passedOn('busy-0001')).toEqual([])
    expect(await redis.hget(userKey(prefix, 'busy-0001'), USER_FIELDS.fetchedUntil)).toBeNull()

    await held!.release()
    expect((await processorWith(users)(fetchJob('busy-0001'), jobContext(logger))).samples).toBeGreaterThan(0)
  })
})
