import { randomBytes } from 'node:crypto'
import { Queue, QueueEvents, type Job } from 'bullmq'
import fc from 'fast-check'
import { pino } from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { FakeGoogle } from '@fitstream/fake-google'
import {
  REDACTED_PATHS,
  STAGES,
  STAGE_NAMES,
  ServiceRuntime,
  dataType,
  generateKeyringEntry,
  readAccessToken,
  type DataTypeKey,
  type DeadLetter,
  type Logger,
  type Stage,
  type StageInput,
} from '@fitstream/shared'
import { loadConfig as loadAnonymizerConfig } from '../services/anonymizer/src/config.js'
import { createAnonymizer } from '../services/anonymizer/src/service.js'
import { loadConfig as loadFetcherConfig } from '../services/fetcher/src/config.js'
import { createFetcher } from '../services/fetcher/src/service.js'
import { loadConfig as loadPublisherConfig } from '../services/publisher/src/config.js'
import { DeliveryJournal } from '../services/publisher/src/delivery-journal.js'
import { createPublishProcessor, type PublishProcessorDeps } from '../services/publisher/src/publish-processor.js'
import { loadConfig as loadTokenConfig } from '../services/token-service/src/config.js'
import { createTokenService } from '../services/token-service/src/service.js'
import { registerUser, testEnv } from '../services/token-service/test/support.js'
import { fetcherTestEnv, redisUrl, reportFigures, testRedis, uniquePrefix } from './helpers.js'

/**
 * Every stage's worker fed what a buggy or hostile producer could put on its queue (straight onto
 * the BullMQ queue, past the validation of StageQueues), and the fetcher fed corrupted answers from
 * Google through the real googleapis client. Whatever arrives, a job ends either completed (the
 * mutation happened to leave a valid payload) or in its stage's dead-letter queue with a code and a
 * message that says what was wrong; the worker keeps going, and no secret reaches a dead letter or
 * a log line. The cases come from fast-check with fixed seeds, so every run tries the same ones.
 *
 * The services run in this process on real Redis. The publisher runs its real processor and
 * delivery journal; what it would hand to the Streamr network is recorded instead of sent (a
 * corrupted payload must be stopped before that point, so no network is needed to check it).
 */
const SEED = 20_261_124
const HOUR = 3_600_000
const lastHour = Math.floor(Date.now() / HOUR) * HOUR
const prefix = uniquePrefix('fuzz-jobs')
const { redis, cleanup } = testRedis(prefix)

const ADMIN = `admin-${randomBytes(16).toString('hex')}`
const INTERNAL = `internal-${randomBytes(16).toString('hex')}`
const SESSION_SECRET = `session-${randomBytes(16).toString('hex')}`
const accessKeys = generateKeyringEntry('a1')
const refreshKeys = generateKeyringEntry('r1')
const pseudonymKey = randomBytes(32).toString('base64')
const streamrKey = randomBytes(32).toString('hex')

const logLines: string[] = []
/** A service logger as createLogger makes it (same redaction), writing into `logLines`. */
function capturingLogger(service: string): Logger {
  return pino(
    { name: service, level: 'debug', base: { service }, redact: { paths: REDACTED_PATHS, censor: '[redacted]' } },
    { write: (line: string) => void logLines.push(line) },
  )
}

interface Outcome {
  readonly state: 'completed' | 'failed'
  readonly result?: unknown
}

let google: FakeGoogle
let tokenService: ServiceRuntime
let fetcher: ServiceRuntime
let anonymizer: ServiceRuntime
let publisher: ServiceRuntime
let fetcherConfig: ReturnType<typeof loadFetcherConfig>
const producers = new Map<Stage, Queue>()
const events: QueueEvents[] = []
const outcomes = new Map<string, Outcome>()
/** What the publisher would have sent to the network: stream id and message content. */
const published: { streamId: string; content: { records?: { id: string }[] } }[] = []
interface RegisteredUser {
  readonly id: string
  readonly refreshToken: string
}
/** Users known to the token service and the fake Google: one whose answers are corrupted, one for the stages. */
const users = {} as Record<'google' | 'pipeline', RegisteredUser>

beforeAll(async () => {
  google = await FakeGoogle.start()
  tokenService = await createTokenService(
    loadTokenConfig(
      testEnv(google, prefix, {
        ADMIN_TOKEN: ADMIN,
        INTERNAL_API_TOKEN: INTERNAL,
        SESSION_SECRET,
        REFRESH_TOKEN_KEYS: refreshKeys,
        ACCESS_TOKEN_KEYS: accessKeys,
        FETCH_CHUNK_HOURS: '24',
        SYNC_ATTEMPTS: '2',
        RETRY_BACKOFF_MS: '100',
      }),
    ),
    capturingLogger('token-service'),
  )
  await tokenService.server.listen({ host: '127.0.0.1', port: 0 })
  fetcherConfig = loadFetcherConfig(
    fetcherTestEnv(google, tokenService, prefix, {
      ACCESS_TOKEN_KEYS: accessKeys,
      INTERNAL_API_TOKEN: INTERNAL,
      FETCH_ATTEMPTS: '2',
      RETRY_BACKOFF_MS: '100',
      GOOGLE_TIMEOUT_MS: '5000',
    }),
  )
  fetcher = createFetcher(fetcherConfig, capturingLogger('fetcher'))
  anonymizer = await createAnonymizer(
    loadAnonymizerConfig({ REDIS_URL: redisUrl(), QUEUE_PREFIX: prefix, PSEUDONYM_KEY: pseudonymKey, ANONYMIZE_ATTEMPTS: '2', RETRY_BACKOFF_MS: '100' }),
    capturingLogger('anonymizer'),
  )
  const publisherConfig = loadPublisherConfig({
    REDIS_URL: redisUrl(),
    QUEUE_PREFIX: prefix,
    STREAMR_PRIVATE_KEY: streamrKey,
    PUBLISH_ATTEMPTS: '2',
    RETRY_BACKOFF_MS: '100',
  })
  publisher = new ServiceRuntime('publisher', publisherConfig, capturingLogger('publisher'))
  const network = {
    publish: async (streamId: string, content: (typeof published)[number]['content']) => {
      published.push({ streamId, content })
      return undefined
    },
  } as unknown as PublishProcessorDeps['client']
  publisher.addWorker({
    stage: 'publish',
    concurrency: publisherConfig.PUBLISH_CONCURRENCY,
    process: createPublishProcessor({
      client: network,
      naming: { owner: `0x${'5'.repeat(40)}`, pathPrefix: publisherConfig.STREAMR_STREAM_PATH_PREFIX },
      journal: new DeliveryJournal(publisher.redis, prefix),
      maxMessageBytes: publisherConfig.MAX_MESSAGE_BYTES,
    }),
  })

  users.google = await register(['steps'])
  users.pipeline = await register(['steps', 'heart_rate', 'calories'])
  // The onboarding syncs are not wanted: this file adds every job itself. The sync worker starts
  // with the sync stage's own cases.
  await tokenService.queues.queue('sync').drain(true)

  for (const stage of STAGE_NAMES) {
    const producer = new Queue(stage, { connection: redis, prefix })
    producer.on('error', () => undefined)
    producers.set(stage, producer)
    const queueEvents = new QueueEvents(stage, { connection: { url: redisUrl() }, prefix })
    queueEvents.on('completed', ({ jobId, returnvalue }) => void outcomes.set(jobId, { state: 'completed', result: returnvalue }))
    queueEvents.on('failed', ({ jobId }) => void outcomes.set(jobId, { state: 'failed' }))
    await queueEvents.waitUntilReady()
    events.push(queueEvents)
  }
  fetcher.start()
  anonymizer.start()
  publisher.start()
})

afterAll(async () => {
  await Promise.all(events.map((e) => e.close()))
  await Promise.all([...producers.values()].map((q) => q.close()))
  await tokenService?.close()
  await fetcher?.close()
  await anonymizer?.close()
  await publisher?.close()
  await google?.close()
  await cleanup()
})

async function register(dataTypes: DataTypeKey[]): Promise<RegisteredUser> {
  const { id, google: user } = await registerUser(tokenService, google, ADMIN, dataTypes)
  return { id, refreshToken: user.refreshToken }
}

async function deadLetterList(stage: Stage): Promise<DeadLetter[]> {
  const jobs = (await fetcher.queues.deadLetterQueue(stage).getJobs(['waiting'], 0, -1)) as Job<DeadLetter>[]
  return jobs.map((job) => job.data)
}

/** A stage's dead letters by the id of the job that failed. */
async function deadLetters(stage: Stage): Promise<Map<string, DeadLetter>> {
  return new Map((await deadLetterList(stage)).map((letter) => [letter.jobId, letter]))
}

async function settled(jobIds: readonly string[], timeout: number, interval = 100): Promise<void> {
  await expect.poll(() => jobIds.filter((id) => !outcomes.has(id)), { timeout, interval }).toEqual([])
}

// ------------------------------------------------------------------------------------------------
// Corrupted payloads

type Key = string | number
type Json = Record<string, unknown>
const isRecord = (value: unknown): value is Json => typeof value === 'object' && value !== null && !Array.isArray(value)

interface FuzzCase {
  readonly label: string
  readonly payload: unknown
}

/** Every place in a value: object keys and array indices, depth first. */
function pathsOf(value: unknown, at: Key[] = []): Key[][] {
  const paths: Key[][] = [at]
  if (Array.isArray(value)) value.forEach((item, i) => paths.push(...pathsOf(item, [...at, i])))
  else if (isRecord(value)) for (const [key, item] of Object.entries(value)) paths.push(...pathsOf(item, [...at, key]))
  return paths
}

function valueAt(value: unknown, path: readonly Key[]): unknown {
  return path.reduce<unknown>((node, key) => (node as Record<Key, unknown>)[key], value)
}

/** A copy of `base` with `change` applied at one of its places (`pick` chooses which). */
function mutateAt(
  base: Json,
  pick: number,
  kind: string,
  eligible: (node: unknown, path: readonly Key[]) => boolean,
  change: (parent: Record<Key, unknown>, key: Key, node: unknown) => void,
): FuzzCase {
  const copy = structuredClone(base)
  const paths = pathsOf(copy).filter((path) => path.length > 0 && eligible(valueAt(copy, path), path))
  if (paths.length === 0) return { label: `${kind} (nowhere to apply it)`, payload: copy }
  const path = paths[pick % paths.length]!
  const key = path.at(-1)!
  const parent = valueAt(copy, path.slice(0, -1)) as Record<Key, unknown>
  change(parent, key, parent[key])
  return { label: `${kind} at ${path.join('.')}`, payload: copy }
}

const NAN_LIKE: readonly unknown[] = [
  Number.NaN,
  Number.POSITIVE_INFINITY,
  Number.NEGATIVE_INFINITY,
  -0,
  -1,
  0.5,
  Number.MAX_SAFE_INTEGER,
  2 ** 53,
  1e308,
  8.64e15 + 1,
  '',
  ' ',
  'NaN',
  'Infinity',
  '1e3',
  '0x10',
  null,
  true,
]

const wrongType = fc.oneof(
  fc.string({ maxLength: 12 }),
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.integer(), { maxLength: 3 }),
  fc.dictionary(fc.string({ maxLength: 6 }), fc.integer(), { maxKeys: 3 }),
)

/** A JSON object whose own key is `key`, as JSON.parse makes it (an object literal would set the prototype). */
function ownKey(key: string, value: unknown): Json {
  return JSON.parse(`{${JSON.stringify(key)}: ${JSON.stringify(value)}}`) as Json
}

function nested(depth: number): unknown {
  let value: unknown = 'bottom'
  for (let i = 0; i < depth; i++) value = i % 2 === 0 ? [value] : { deeper: value }
  return value
}

/** Corrupted versions of valid payloads, plus arbitrary JSON in place of the payload. */
function corrupted(base: fc.Arbitrary<Json>): fc.Arbitrary<FuzzCase> {
  const anywhere = () => true
  return fc.oneof(
    { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 3 }).map((payload) => ({ label: 'arbitrary JSON', payload })) },
    {
      weight: 3,
      arbitrary: fc
        .tuple(base, fc.nat())
        .map(([b, pick]) =>
          mutateAt(b, pick, 'field removed', anywhere, (parent, key) => (Array.isArray(parent) ? parent.splice(Number(key), 1) : delete parent[key])),
        ),
    },
    {
      weight: 4,
      arbitrary: fc.tuple(base, fc.nat(), wrongType).map(([b, pick, value]) =>
        mutateAt(b, pick, 'wrong type', anywhere, (parent, key) => {
          parent[key] = value
        }),
      ),
    },
    {
      weight: 4,
      arbitrary: fc.tuple(base, fc.nat(), fc.constantFrom(...NAN_LIKE)).map(([b, pick, value]) =>
        mutateAt(b, pick, `NaN-like ${String(value)}`, anywhere, (parent, key) => {
          parent[key] = value
        }),
      ),
    },
    {
      weight: 1,
      arbitrary: fc.tuple(base, fc.nat(), fc.integer({ min: 10_000, max: 250_000 }), fc.constantFrom('x', 'é', '\u0000')).map(([b, pick, length, char]) =>
        mutateAt(b, pick, `huge string (${length})`, anywhere, (parent, key) => {
          parent[key] = char.repeat(length)
        }),
      ),
    },
    {
      weight: 3,
      arbitrary: fc
        .tuple(
          base,
          fc.nat(),
          fc.constantFrom('__proto__', 'constructor', 'prototype'),
          fc.constantFrom<unknown>({ polluted: 'yes' }, { prototype: { polluted: 'yes' } }, 1),
        )
        .map(([b, pick, key, value]) => {
          const target = (node: unknown) => isRecord(node)
          const label = `${key} key`
          // The top object too: it is not among mutateAt's places.
          const nestedObjects = pathsOf(b).filter((path) => path.length > 0 && target(valueAt(b, path))).length
          if (pick % 3 === 0 || nestedObjects === 0) return { label: `${label} at the top`, payload: { ...structuredClone(b), ...ownKey(key, value) } }
          return mutateAt(b, pick, label, target, (parent, at, node) => {
            parent[at] = { ...(node as Json), ...ownKey(key, value) }
          })
        }),
    },
    {
      weight: 1,
      arbitrary: fc.tuple(base, fc.nat(), fc.integer({ min: 1_000, max: 5_000 })).map(([b, pick, length]) => {
        const hasArrays = pathsOf(b).some((path) => path.length > 0 && Array.isArray(valueAt(b, path)))
        // An array grown from its first item; where the payload has no array, a field becomes one.
        return mutateAt(
          b,
          pick,
          `array of ${length}`,
          (node) => !hasArrays || (Array.isArray(node) && node.length > 0),
          (parent, key, node) => {
            parent[key] = Array.from({ length }, () => (Array.isArray(node) ? (node as unknown[])[0] : node))
          },
        )
      }),
    },
    {
      weight: 1,
      arbitrary: fc.tuple(base, fc.nat(), fc.integer({ min: 50, max: 1_500 })).map(([b, pick, depth]) =>
        mutateAt(b, pick, `nested ${depth} deep`, anywhere, (parent, key) => {
          parent[key] = nested(depth)
        }),
      ),
    },
  )
}

const syncId = fc.stringMatching(/^[A-Za-z0-9_.-]{1,24}$/)
const userId = fc.stringMatching(/^[A-Za-z0-9_-]{8,24}$/)
const hex32 = fc.stringMatching(/^[0-9a-f]{32}$/)
const T0 = Date.UTC(2026, 10, 1)
const iso = (ms: number) => new Date(ms).toISOString()

const valuesOf = (type: DataTypeKey) =>
  fc
    .tuple(...dataType(type).fields.map(() => fc.integer({ min: 0, max: 20_000 })))
    .map((numbers) => Object.fromEntries(dataType(type).fields.map((f, i) => [f.name, numbers[i]!])))

const SAMPLE_TYPES = ['steps', 'heart_rate', 'calories', 'weight'] as const satisfies readonly DataTypeKey[]

/** Valid payloads of each stage, the starting point of the corrupted ones. */
const validPayloads: Record<Stage, () => fc.Arbitrary<Json>> = {
  sync: () =>
    fc.record({
      userId: fc.oneof(fc.constant(users.pipeline.id), userId),
      reason: fc.constantFrom('schedule', 'manual', 'onboarding'),
    }),
  fetch: () =>
    fc.record(
      {
        syncId,
        userId: fc.oneof(fc.constant(users.pipeline.id), userId),
        dataTypes: fc.subarray(['steps', 'heart_rate', 'calories'] as DataTypeKey[], { minLength: 1 }),
        window: fc.integer({ min: 1, max: 12 }).map((hours) => ({ startMs: lastHour - hours * HOUR, endMs: lastHour })),
        bucketMs: fc.constant(HOUR),
        timeZone: fc.constantFrom('UTC', 'Europe/Helsinki'),
        lookbackMs: fc.constantFrom(0, 48 * HOUR),
        kind: fc.constantFrom('incremental', 'backfill'),
        chunk: fc.record({ index: fc.constant(1), of: fc.integer({ min: 1, max: 3 }) }),
      },
      { requiredKeys: ['syncId', 'userId', 'dataTypes', 'window', 'bucketMs'] },
    ),
  anonymize: () =>
    fc
      .record({
        syncId,
        userId,
        window: fc.constant({ startMs: T0, endMs: T0 + 48 * HOUR }),
        samples: fc.array(
          fc.constantFrom(...SAMPLE_TYPES).chain((type) =>
            fc.record({
              type: fc.constant(type),
              startMs: fc.integer({ min: 0, max: 47 }).map((h) => T0 + h * HOUR),
              values: valuesOf(type),
              unit: fc.constant(dataType(type).unit),
              revision: fc.integer({ min: 0, max: 2 }),
            }),
          ),
          { minLength: 1, maxLength: 6 },
        ),
      })
      .map((job) => ({ ...job, samples: job.samples.map((s) => ({ ...s, endMs: s.startMs + HOUR })) })),
  publish: () =>
    fc
      .record({
        syncId,
        records: fc.array(
          fc.record({
            id: hex32,
            type: fc.constantFrom(...SAMPLE_TYPES),
            pseudonym: hex32,
            epoch: fc.constant('2026-11'),
            start: fc.integer({ min: 0, max: 47 }).map((h) => iso(T0 + h * HOUR)),
            values: fc.record({ count: fc.nat(20_000) }),
            unit: fc.constant('steps'),
            revision: fc.integer({ min: 0, max: 2 }),
          }),
          { minLength: 1, maxLength: 4 },
        ),
        cohorts: fc.array(
          fc.record({
            id: hex32,
            type: fc.constantFrom(...SAMPLE_TYPES),
            start: fc.constant(iso(T0)),
            end: fc.constant(iso(T0 + 24 * HOUR)),
            contributors: fc.integer({ min: 10, max: 50 }),
            values: fc.record({ count: fc.nat(20_000) }),
            unit: fc.constant('steps'),
          }),
          { maxLength: 2 },
        ),
      })
      .map((job) => ({ ...job, records: job.records.map((r) => ({ ...r, end: iso(Date.parse(r.start) + HOUR) })) })),
}

/** Cases no generator run is likely to hit: arrays past the schema's limits, a payload of megabytes. */
function extremeCases(stage: Stage, valid: Json): FuzzCase[] {
  const cases: FuzzCase[] = [
    { label: 'empty object', payload: {} },
    { label: 'null', payload: null },
    { label: 'a string', payload: 'not a job' },
    { label: 'nested 2 000 deep', payload: nested(2_000) },
    { label: 'every field a huge string', payload: Object.fromEntries(Object.keys(valid).map((key) => [key, 'y'.repeat(100_000)])) },
    { label: '__proto__ at the top of a valid payload', payload: { ...valid, ...ownKey('__proto__', { polluted: 'yes' }) } },
  ]
  if (stage === 'anonymize') {
    const sample = (valid.samples as unknown[])[0]
    cases.push({ label: '100 001 samples', payload: { ...valid, samples: Array.from({ length: 100_001 }, () => sample) } })
    cases.push({ label: '2 000 malformed samples', payload: { ...valid, samples: Array.from({ length: 2_000 }, () => ({ type: 'steps' })) } })
    // Past the last instant a Date can hold.
    cases.push({ label: 'a sample ending after 275760', payload: { ...valid, samples: [{ ...(sample as Json), endMs: 8.64e15 + 1 }] } })
    cases.push({
      label: 'a sample at Number.MAX_SAFE_INTEGER',
      payload: { ...valid, samples: [{ ...(sample as Json), startMs: Number.MAX_SAFE_INTEGER, endMs: Number.MAX_SAFE_INTEGER }] },
    })
  }
  if (stage === 'publish') {
    const record = (valid.records as unknown[])[0]
    cases.push({ label: '100 001 records', payload: { ...valid, records: Array.from({ length: 100_001 }, () => record) } })
    cases.push({ label: 'no records and no cohorts', payload: { ...valid, records: [], cohorts: [] } })
  }
  if (stage === 'fetch') {
    const mine = { ...valid, userId: users.pipeline.id }
    cases.push({ label: '100 000 data types', payload: { ...mine, dataTypes: Array.from({ length: 100_000 }, () => 'steps') } })
    cases.push({
      label: 'the same data type twice',
      payload: { ...mine, dataTypes: ['heart_rate', 'heart_rate'], window: { startMs: lastHour - 30 * HOUR, endMs: lastHour - 27 * HOUR } },
    })
    cases.push({ label: 'window ends before it starts', payload: { ...valid, window: { startMs: lastHour, endMs: lastHour - HOUR } } })
    cases.push({ label: 'a window in the year 275760', payload: { ...valid, window: { startMs: 8.64e15 - HOUR, endMs: 8.64e15 } } })
    cases.push({ label: 'a window past the last Date', payload: { ...valid, window: { startMs: 8.64e15, endMs: 8.64e15 + HOUR } } })
    cases.push({ label: 'daily buckets in a made-up time zone', payload: { ...valid, bucketMs: 24 * HOUR, timeZone: 'Mars/Olympus_Mons' } })
  }
  return cases
}

interface Expectation {
  readonly valid: boolean
  /** The first problem the schema names, for an invalid payload. */
  readonly issue?: { message: string; path: readonly PropertyKey[] }
}

/** What the worker will see (BullMQ stores job data as JSON) and whether it is a valid payload. */
function expectationFor(stage: Stage, payload: unknown): { seen: unknown; expected: Expectation } {
  const seen: unknown = JSON.parse(JSON.stringify(payload) ?? 'null')
  const parsed = STAGES[stage].schema.safeParse(seen)
  if (parsed.success) return { seen, expected: { valid: true } }
  const [issue] = parsed.error.issues
  return { seen, expected: { valid: false, issue: { message: issue!.message, path: issue!.path } } }
}

/** Codes that say only "something threw": not a reason anyone can act on. */
const UNHELPFUL = new Set(['FST_ERR_UNEXPECTED', 'FST_ERR_UNRECOVERABLE'])

interface FuzzedJob extends FuzzCase {
  readonly jobId: string
  /** The payload as the worker saw it. */
  readonly seen: unknown
  readonly expected: Expectation
  readonly outcome: Outcome
}

async function fuzzStage(stage: Stage, count: number): Promise<FuzzedJob[]> {
  const seed = SEED + STAGE_NAMES.indexOf(stage)
  const [valid] = fc.sample(validPayloads[stage](), { seed, numRuns: 1 })
  const cases = [...fc.sample(corrupted(validPayloads[stage]()), { seed, numRuns: count }), ...extremeCases(stage, valid!)]
  const jobs = cases.map((c, i) => ({ ...c, jobId: `fuzz-${stage}-${i}`, ...expectationFor(stage, c.payload) }))
  const producer = producers.get(stage)!
  const options = fetcher.queues.jobOptions(stage)
  for (const job of jobs) await producer.add(`fuzz: ${job.label}`, job.payload as never, { ...options, jobId: job.jobId })

  await settled(
    jobs.map((j) => j.jobId),
    60_000,
  )
  const letterList = await deadLetterList(stage)
  const letters = new Map(letterList.map((letter) => [letter.jobId, letter]))
  const tally = new Map<string, number>()
  let completed = 0
  for (const job of jobs) {
    const outcome = outcomes.get(job.jobId)!
    const letter = letters.get(job.jobId)
    const where = `${stage} job ${job.jobId} (${job.label})`
    if (outcome.state === 'completed') {
      // Only a payload that is valid after all may be worked on.
      expect(job.expected.valid, `${where} completed`).toBe(true)
      expect(letter, where).toBeUndefined()
      completed++
      continue
    }
    // Failed: then it is in the dead-letter queue, with the payload as it was added and a reason.
    expect(letter, `${where} failed but was not dead-lettered`).toBeDefined()
    expect(letter!.payload, where).toEqual(job.seen)
    tally.set(letter!.error.code, (tally.get(letter!.error.code) ?? 0) + 1)
    if (job.expected.valid) {
      expect(UNHELPFUL.has(letter!.error.code), `${where}: ${letter!.error.code} ${letter!.error.message}`).toBe(false)
      expect(letter!.error.message.length, where).toBeGreaterThan(0)
      // A stage may know more than the schema (e.g. the dates it can compute with); then it says so about its own payload.
      if (letter!.error.code === 'FST_ERR_INVALID_PAYLOAD') expect(letter!.error.message, where).toMatch(new RegExp(`^invalid ${stage} job payload: `))
      continue
    }
    const { issue } = job.expected
    expect(letter, where).toMatchObject({ stage, permanent: true, attemptsMade: 1, error: { code: 'FST_ERR_INVALID_PAYLOAD' } })
    expect(letter!.error.message, where).toMatch(new RegExp(`^invalid ${stage} job payload: `))
    expect(letter!.error.message, where).toContain(issue!.message)
    for (const key of issue!.path) expect(letter!.error.message, where).toContain(String(key))
  }
  // Every job accounted for: completed, or dead-lettered exactly once.
  const deadLettered = jobs.length - completed
  expect(letterList.filter((letter) => letter.jobId.startsWith(`fuzz-${stage}-`))).toHaveLength(deadLettered)
  reportFigures(`fuzz-jobs: ${stage} ${jobs.length} payloads -> ${deadLettered} dead-lettered, ${completed} completed`, {
    deadLettered: Object.fromEntries(tally),
    longestReasonCharacters: Math.max(0, ...jobs.map((j) => letters.get(j.jobId)?.error.message.length ?? 0)),
  })
  // A payload that tried to reach Object.prototype did not.
  expect(({} as Record<string, unknown>).polluted).toBeUndefined()
  return jobs.map((job) => ({ ...job, outcome: outcomes.get(job.jobId)! }))
}

async function finished(stage: Stage, job: Job): Promise<unknown> {
  await settled([job.id!], 20_000)
  const outcome = outcomes.get(job.id!)!
  expect(outcome.state, `${stage} job ${job.id}`).toBe('completed')
  return outcome.result
}

// ------------------------------------------------------------------------------------------------
// Corrupted Google answers

const STEPS = dataType('steps')
const nanos = (ms: number): string => `${ms}000000`
const ORIGIN = 'derived:com.google.step_count.delta:com.google.android.gms:estimated_steps'

function without(value: Json, key: string): Json {
  return Object.fromEntries(Object.entries(value).filter(([k]) => k !== key))
}

/** A point the fetcher can use: in its bucket, of the right type, with an integer step count. */
const goodPoint = (bucketStart: number): fc.Arbitrary<Json> =>
  fc
    .record({
      offset: fc.integer({ min: 0, max: HOUR - 1 }),
      duration: fc.integer({ min: 0, max: 2 * HOUR }),
      // Negative and huge counts are numbers all the same: the privacy policy's clamp bounds them.
      count: fc.oneof({ weight: 4, arbitrary: fc.nat(40_000) }, fc.constantFrom<unknown>(-7, 2 ** 31, 1e308, '512', '-3')),
      origin: fc.boolean(),
    })
    .map(({ offset, duration, count, origin }) => ({
      startTimeNanos: nanos(bucketStart + offset),
      endTimeNanos: nanos(bucketStart + offset + duration),
      dataTypeName: STEPS.fit!.aggregateDataType,
      ...(origin ? { originDataSourceId: ORIGIN } : {}),
      value: [{ intVal: count }],
    }))

const BAD_VALUES: readonly unknown[] = [
  [],
  [{}],
  [null],
  [5],
  [{ fpVal: 3.5 }],
  [{ intVal: 'NaN' }],
  [{ intVal: null }],
  [{ intVal: 'Infinity' }],
  [{ intVal: '-Infinity' }],
  [{ intVal: '1e400' }],
  [{ intVal: 1.5 }],
  [{ intVal: '12abc' }],
  [{ intVal: '' }],
  [{ intVal: '  ' }],
  [{ intVal: '0x10' }],
  [{ intVal: true }],
  [{ intVal: {} }],
  [{ intVal: [1] }],
  'x',
  {},
  null,
]

const BAD_POINTS: readonly ((point: Json, bucketStart: number) => unknown)[] = [
  () => null,
  () => 42,
  () => 'point',
  () => [],
  (p) => ({ ...p, dataTypeName: 'com.google.heart_rate.summary' }),
  (p) => without(p, 'dataTypeName'),
  (p) => without(p, 'startTimeNanos'),
  (p) => ({ ...p, startTimeNanos: 'NaN' }),
  (p) => ({ ...p, startTimeNanos: '' }),
  (p) => ({ ...p, startTimeNanos: '1.5e15' }),
  (p) => ({ ...p, startTimeNanos: 1e300 }),
  (p) => ({ ...p, startTimeNanos: null }),
  (p) => ({ ...p, endTimeNanos: 'soon' }),
  (p) => ({ ...p, endTimeNanos: '99999999999999999999999999' }),
  (p, bs) => ({ ...p, startTimeNanos: nanos(bs - 60_000) }),
  (p, bs) => ({ ...p, startTimeNanos: nanos(bs + HOUR) }),
  (p, bs) => ({ ...p, startTimeNanos: nanos(bs + 120_000), endTimeNanos: nanos(bs + 60_000) }),
  (p) => without(p, 'value'),
  ...BAD_VALUES.map((value) => (p: Json) => ({ ...p, value })),
]

/** A point the fetcher must set aside and count. */
const badPoint = (bucketStart: number): fc.Arbitrary<unknown> =>
  fc.tuple(goodPoint(bucketStart), fc.constantFrom(...BAD_POINTS)).map(([point, corrupt]) => corrupt(point, bucketStart))

/** One bucket of a response and what the fetcher must make of it. */
interface BucketPlan {
  readonly bucket: unknown
  readonly samples: number
  readonly rejected: number
}

function bucketWithPoints(bucketStart: number): fc.Arbitrary<BucketPlan> {
  const tagged = fc.oneof(
    goodPoint(bucketStart).map((point) => ({ point, good: true })),
    badPoint(bucketStart).map((point) => ({ point, good: false })),
  )
  return fc
    .record({
      points: fc.array(tagged, { maxLength: 5 }),
      numericTimes: fc.boolean(),
      unrequested: fc.nat(2),
      malformedDataset: fc.nat(9).map((n) => n === 0),
    })
    .map(({ points, numericTimes, unrequested, malformedDataset }) => {
      const good = points.filter((p) => p.good).length
      const bad = points.length - good
      const dataset = malformedDataset
        ? { dataSourceId: ORIGIN, point: 'not a list' }
        : points.length === 0
          ? { dataSourceId: ORIGIN }
          : { dataSourceId: ORIGIN, point: points.map((p) => p.point) }
      const extra = Array.from({ length: unrequested }, () => ({ dataSourceId: 'derived:unrequested', point: [] }))
      const start = numericTimes ? bucketStart : String(bucketStart)
      const end = numericTimes ? bucketStart + HOUR : String(bucketStart + HOUR)
      return {
        bucket: { startTimeMillis: start, endTimeMillis: end, dataset: [dataset, ...extra] },
        samples: !malformedDataset && good > 0 ? 1 : 0,
        rejected: (malformedDataset ? 1 : bad + Math.max(0, good - 1)) + unrequested,
      }
    })
}

/** Buckets the fetcher must set aside whole, each counted once. */
const badBucket = (bucketStart: number, windowStart: number, windowEnd: number): fc.Arbitrary<BucketPlan> =>
  fc
    .constantFrom<unknown>(
      null,
      42,
      'bucket',
      [],
      { startTimeMillis: 'yesterday', endTimeMillis: String(bucketStart + HOUR), dataset: [] },
      { startTimeMillis: String(bucketStart) },
      { startTimeMillis: String(bucketStart + HOUR), endTimeMillis: String(bucketStart), dataset: [] },
      { startTimeMillis: String(bucketStart), endTimeMillis: String(bucketStart + HOUR), dataset: {} },
      { startTimeMillis: 1.5, endTimeMillis: String(bucketStart + HOUR), dataset: [] },
      { startTimeMillis: '1e12', endTimeMillis: String(bucketStart + HOUR), dataset: [] },
      { startTimeMillis: String(bucketStart), endTimeMillis: '99999999999999999999999', dataset: [] },
      // Outside the window asked for.
      { startTimeMillis: String(windowStart - HOUR), endTimeMillis: String(windowStart), dataset: [{ point: [] }] },
      { startTimeMillis: String(windowEnd - HOUR), endTimeMillis: String(windowEnd + HOUR), dataset: [{ point: [] }] },
    )
    .map((bucket) => ({ bucket, samples: 0, rejected: 1 }))

interface GoogleCase {
  readonly label: string
  readonly answer: { body: unknown } | { rawBody: string }
  /** Completed with these counts; or dead-lettered (no usable point, or no bucket list) with this message. */
  readonly expected: { samples: number; rejected: number } | { deadLetter: RegExp }
}

const WINDOW_HOURS = 3

/** A response in Google's shape, some of it corrupted, with the counts the fetcher must report. */
function shapedAnswer(windowStart: number): fc.Arbitrary<{ body: Json; samples: number; rejected: number }> {
  const windowEnd = windowStart + WINDOW_HOURS * HOUR
  const hours = Array.from({ length: WINDOW_HOURS }, (_, h) => fc.option(bucketWithPoints(windowStart + h * HOUR), { nil: undefined }))
  return fc
    .record({
      hours: fc.tuple(...hours),
      bad: fc.array(badBucket(windowStart, windowStart, windowEnd), { maxLength: 2 }),
      extra: fc.constantFrom<Json>({}, { kind: 'fitness#aggregateResponse' }, ownKey('__proto__', { polluted: 'yes' }), { bucket2: [1, 2] }),
    })
    .chain(({ hours, bad, extra }) => {
      const plans = [...hours.filter((p): p is BucketPlan => p !== undefined), ...bad]
      return fc.shuffledSubarray(plans, { minLength: plans.length }).map((ordered) => ({
        body: { ...extra, bucket: ordered.map((p) => p.bucket) },
        samples: ordered.reduce((n, p) => n + p.samples, 0),
        rejected: ordered.reduce((n, p) => n + p.rejected, 0),
      }))
    })
}

/** What the fetcher must do with an answer that has no Google shape at all. */
function junkExpectation(body: unknown): GoogleCase['expected'] {
  const buckets = isRecord(body) ? body.bucket : undefined
  if (typeof body === 'string') return { deadLetter: /^Google aggregate response is not a JSON object but \d+ characters of text$/ }
  if (!Array.isArray(buckets)) return { deadLetter: /^Google aggregate response has no bucket list$/ }
  // Nothing in a bucket list made of junk can be a bucket.
  if (buckets.length === 0) return { samples: 0, rejected: 0 }
  return { deadLetter: /^Google response unusable: / }
}

function rawExpectation(raw: string): GoogleCase['expected'] {
  try {
    // The client decodes the body as UTF-8 text, which drops a byte order mark.
    return junkExpectation(JSON.parse(raw.replace(/^\uFEFF/, '')))
  } catch {
    return junkExpectation(raw)
  }
}

const windowOfCase = (i: number): { startMs: number; endMs: number } => {
  const endMs = lastHour - 24 * HOUR - i * WINDOW_HOURS * HOUR
  return { startMs: endMs - WINDOW_HOURS * HOUR, endMs }
}

function googleCases(): GoogleCase[] {
  const cases: GoogleCase[] = []
  const shaped = (i: number) => fc.sample(shapedAnswer(windowOfCase(i).startMs), { seed: SEED + 1_000 + i, numRuns: 1 })[0]!
  for (let n = 0; n < 150; n++) {
    const { body, samples, rejected } = shaped(cases.length)
    const expected = samples === 0 && rejected > 0 ? { deadLetter: /^Google response unusable: / } : { samples, rejected }
    cases.push({ label: `Google-shaped, ${samples} usable buckets, ${rejected} unusable parts`, answer: { body }, expected })
  }
  for (const body of fc.sample(fc.jsonValue({ maxDepth: 4 }), { seed: SEED + 2, numRuns: 25 })) {
    cases.push({ label: 'arbitrary JSON', answer: { body }, expected: junkExpectation(body) })
  }
  for (const body of fc.sample(fc.record({ bucket: fc.array(fc.jsonValue({ maxDepth: 3 }), { maxLength: 6 }) }), { seed: SEED + 3, numRuns: 20 })) {
    cases.push({ label: 'a bucket list of junk', answer: { body }, expected: junkExpectation(body) })
  }
  const raw = [
    '',
    'not json',
    '<html><body><h1>502 Bad Gateway</h1></body></html>',
    'null',
    '[]',
    '"bucket"',
    'NaN',
    '{"bucket": NaN}',
    "{'bucket': []}",
    '\uFEFF{"bucket": []}',
    '{"bucket": []}',
    '{"bucket": [],}',
    '{"bucket": {"0": {}}}',
    `{"bucket": ${'['.repeat(10_000)}${']'.repeat(10_000)}}`,
    '['.repeat(100_000),
    `{"bucket": [{"dataset": ${'{"a": '.repeat(5_000)}1${'}'.repeat(5_000)}}]}`,
  ]
  for (const rawBody of raw) cases.push({ label: `not Google's JSON: ${rawBody.slice(0, 30)}`, answer: { rawBody }, expected: rawExpectation(rawBody) })
  for (const [k, cut] of fc.sample(fc.double({ min: 0.01, max: 0.99, noNaN: true }), { seed: SEED + 4, numRuns: 15 }).entries()) {
    const text = JSON.stringify(shaped(cases.length + k).body)
    const rawBody = text.slice(0, Math.max(1, Math.floor(text.length * cut)))
    cases.push({ label: `cut off after ${rawBody.length} of ${text.length} characters`, answer: { rawBody }, expected: rawExpectation(rawBody) })
  }
  return cases
}

describe('corrupted Google answers', () => {
  it('the fetcher uses the usable points of each, or dead-letters the job with the reason, and still fetches a good window', { timeout: 120_000 }, async () => {
    const cases = googleCases()
    const faultsBefore = google.stats.faultsServed
    const jobIds: string[] = []
    for (const [i, c] of cases.entries()) {
      // One at a time: each answer must reach the request of its own job.
      google.injectFault({ route: 'aggregate', status: 200, times: 1, ...c.answer })
      const job = await fetcher.queues.add(
        'fetch',
        { syncId: `google-${i}`, userId: users.google.id, dataTypes: ['steps'], window: windowOfCase(i), bucketMs: HOUR },
        { jobId: `google-${i}` },
      )
      await settled([job.id!], 15_000, 10)
      jobIds.push(job.id!)
    }
    // Every answer was read by exactly one attempt: none was retried into a good answer.
    expect(google.stats.faultsServed - faultsBefore).toBe(cases.length)

    const letters = await deadLetters('fetch')
    let completed = 0
    let samplesUsed = 0
    let pointsSkipped = 0
    for (const [i, c] of cases.entries()) {
      const outcome = outcomes.get(jobIds[i]!)!
      const where = `Google answer ${i} (${c.label}) -> ${JSON.stringify(outcome)}; the answer: ${JSON.stringify(c.answer).slice(0, 2_000)}`
      if ('deadLetter' in c.expected) {
        expect(outcome.state, where).toBe('failed')
        const letter = letters.get(jobIds[i]!)
        expect(letter, where).toMatchObject({ stage: 'fetch', permanent: true, attemptsMade: 1, error: { code: 'FST_ERR_GOOGLE_MALFORMED' } })
        expect(letter!.error.message, where).toMatch(c.expected.deadLetter)
        continue
      }
      expect(outcome, where).toMatchObject({ state: 'completed', result: { samples: c.expected.samples, rejectedPoints: c.expected.rejected } })
      completed++
      samplesUsed += c.expected.samples
      pointsSkipped += c.expected.rejected
    }
    reportFigures(
      `fuzz-jobs: fetch <- ${cases.length} corrupted Google answers (status 200) -> ${completed} completed, ${cases.length - completed} dead-lettered`,
      {
        samplesUsed,
        pointsOrBucketsSkipped: pointsSkipped,
        deadLettered: { FST_ERR_GOOGLE_MALFORMED: cases.length - completed },
      },
    )

    const job = await fetcher.queues.add(
      'fetch',
      { syncId: 'google-good', userId: users.google.id, dataTypes: ['steps'], window: { startMs: lastHour - 24 * HOUR, endMs: lastHour }, bucketMs: HOUR },
      { jobId: 'google-good' },
    )
    const good = (await finished('fetch', job)) as { samples: number; rejectedPoints: number }
    expect(good.samples).toBeGreaterThan(0)
    expect(good.rejectedPoints).toBe(0)

    const token = await readAccessToken(redis, prefix, fetcherConfig.ACCESS_TOKEN_KEYS, users.google.id)
    expect(token).toBeDefined()
    const text = JSON.stringify([...letters.values()])
    expect(text.includes(token!.token), 'a fetch dead letter holds the access token').toBe(false)
    expect(text).not.toMatch(/ya29\./)
  })
})

describe('corrupted job payloads', () => {
  it('publish: every corrupted payload is dead-lettered before anything is published', { timeout: 120_000 }, async () => {
    const jobs = await fuzzStage('publish', 200)
    // Nothing of an invalid payload went out: a record is published only if a job that completed held it.
    const recordIds = (payload: unknown): string[] => {
      const records = (payload as { records?: unknown } | null)?.records
      return (Array.isArray(records) ? records : []).map((r) => (r as { id?: unknown } | null)?.id).filter((id): id is string => typeof id === 'string')
    }
    const sent = new Set(published.flatMap((m) => (m.content.records ?? []).map((r) => r.id)))
    const fromCompleted = new Set(jobs.filter((j) => j.outcome.state === 'completed').flatMap((j) => recordIds(j.seen)))
    for (const job of jobs.filter((j) => !j.expected.valid)) {
      // The processor never saw it: it would have opened the job's delivery journal first.
      expect(await redis.exists(`${prefix}:publisher:job:${job.jobId}`), job.label).toBe(0)
      expect(await new DeliveryJournal(redis, prefix).isDone(job.jobId), job.label).toBe(false)
      for (const id of recordIds(job.seen)) {
        if (!fromCompleted.has(id)) expect(sent.has(id), `record ${id} of ${job.jobId} (${job.label}) was published`).toBe(false)
      }
    }

    const [payload] = fc.sample(validPayloads.publish(), { seed: SEED - 1, numRuns: 1 })
    const job = await fetcher.queues.add('publish', payload as StageInput<'publish'>, { jobId: 'after-fuzz-publish' })
    await finished('publish', job)
    const sentAfter = new Set(published.flatMap((m) => (m.content.records ?? []).map((r) => r.id)))
    for (const record of (payload as StageInput<'publish'>).records) expect(sentAfter.has(record.id)).toBe(true)
  })

  it('anonymize: every corrupted payload is dead-lettered, and the worker goes on', { timeout: 120_000 }, async () => {
    await fuzzStage('anonymize', 200)
    const [payload] = fc.sample(validPayloads.anonymize(), { seed: SEED - 2, numRuns: 1 })
    const job = await fetcher.queues.add('anonymize', payload as StageInput<'anonymize'>, { jobId: 'after-fuzz-anonymize' })
    expect(await finished('anonymize', job)).toMatchObject({ samples: (payload as StageInput<'anonymize'>).samples.length })
  })

  it('fetch: every corrupted payload is dead-lettered, and the worker goes on', { timeout: 120_000 }, async () => {
    const jobs = await fuzzStage('fetch', 200)
    // A type listed twice would be asked of Google twice and every bucket passed on twice: refused.
    const twice = jobs.find((j) => j.label === 'the same data type twice')!
    expect(twice.outcome.state).toBe('failed')
    const letter = (await deadLetterList('fetch')).find((l) => l.jobId === twice.jobId)
    expect(letter?.error.message).toMatch(/must not list a data type twice/)
    const job = await fetcher.queues.add(
      'fetch',
      {
        syncId: 'after-fuzz',
        userId: users.pipeline.id,
        dataTypes: ['steps', 'heart_rate'],
        window: { startMs: lastHour - 10 * 24 * HOUR, endMs: lastHour - 9 * 24 * HOUR },
        bucketMs: HOUR,
      },
      { jobId: 'after-fuzz-fetch' },
    )
    const result = (await finished('fetch', job)) as { samples: number; rejectedPoints: number }
    expect(result.samples).toBeGreaterThan(0)
    expect(result.rejectedPoints).toBe(0)
    // No payload moved the user's cursor somewhere the token service cannot show.
    const status = await tokenService.server.inject({ method: 'GET', url: `/users/${users.pipeline.id}`, headers: { authorization: `Bearer ${ADMIN}` } })
    expect(status.statusCode, status.body).toBe(200)
    expect(Date.parse((status.json() as { fetchedUntil: string }).fetchedUntil)).toBeLessThanOrEqual(Date.now())
  })

  it('sync: every corrupted payload is dead-lettered, and the worker goes on', { timeout: 120_000 }, async () => {
    tokenService.start()
    await fuzzStage('sync', 200)
    const job = await fetcher.queues.add('sync', { userId: users.pipeline.id, reason: 'manual' }, { jobId: 'after-fuzz-sync' })
    expect(await finished('sync', job)).toMatchObject({ status: expect.stringMatching(/^(planned|up_to_date)$/) })
  })
})

describe('secrets', () => {
  it('no dead letter and no log line holds a token, key or secret', async () => {
    const all = (await Promise.all(STAGE_NAMES.map(async (stage) => [...(await deadLetters(stage)).values()]))).flat()
    const letterCount = all.length
    const letters = JSON.stringify(all)
    const logs = logLines.join('')
    const accessTokens = await Promise.all([users.google, users.pipeline].map((u) => readAccessToken(redis, prefix, fetcherConfig.ACCESS_TOKEN_KEYS, u.id)))
    const secrets = [
      ADMIN,
      INTERNAL,
      SESSION_SECRET,
      google.clientSecret,
      accessKeys.split(':')[1]!,
      refreshKeys.split(':')[1]!,
      pseudonymKey,
      streamrKey,
      users.google.refreshToken,
      users.pipeline.refreshToken,
      ...accessTokens.map((t) => t!.token),
    ]
    for (const [i, secret] of secrets.entries()) {
      expect(letters.includes(secret), `secret ${i} in a dead letter`).toBe(false)
      expect(logs.includes(secret), `secret ${i} in a log line`).toBe(false)
    }
    for (const text of [letters, logs]) {
      expect(text).not.toMatch(/ya29\./)
      expect(text).not.toMatch(/1\/\/09/)
    }
    expect(logs).not.toContain('worker stopped')
    reportFigures('fuzz-jobs: secrets', { logLines: logLines.length, deadLetters: letterCount, secretsLookedFor: secrets.length })
  })
})
