import { beforeAll, describe, expect, it } from 'vitest'
import type { Job } from 'bullmq'
import { syntheticBucket } from '@fitstream/fake-google'
import { recordsOf, type RegisteredUser } from '@fitstream/devstack'
import { dataType, type DataTypeKey, type DeadLetter } from '@fitstream/shared'
import { HOUR, expectedValues } from './delivery.js'
import { findLeaks } from './secrets.js'
import { useStack } from './system.js'

/**
 * The whole pipeline, every part real but the internet: a user registers, the services (separate
 * processes) fetch through googleapis from the fake Google, anonymise and publish to a local Streamr
 * network, and a buyer's subscriber checks what actually arrived.
 */
const TYPES: DataTypeKey[] = ['steps', 'calories', 'heart_rate']
let user: RegisteredUser

interface ReceivedContent {
  schema: string
  type: DataTypeKey
  epoch: string
  records: Record<string, unknown>[]
}

const system = useStack('e2e', { dataTypes: TYPES, backfillDays: 1, env: { FETCH_ATTEMPTS: '2', RETRY_BACKOFF_MS: '100' } })

beforeAll(async () => {
  user = await system.stack.registerUser({ seed: 'e2e-user-1', dataTypes: TYPES })
})

function received(): { content: ReceivedContent; streamId: string }[] {
  return system.subscriber.messages.map((m) => ({ content: m.content as ReceivedContent, streamId: m.streamId }))
}

describe('end to end', () => {
  it('delivers exactly the fake user’s data, anonymised, to a subscriber on Streamr', async () => {
    // A day of hourly buckets, ending at the last full hour before the first sync.
    const state = async () => (await system.stack.api('GET', `/users/${user.userId}`)).body as { fetchedUntil: string | null }
    await expect.poll(async () => (await state()).fetchedUntil, { timeout: 60_000, interval: 250 }).not.toBeNull()
    const end = Date.parse((await state()).fetchedUntil!)
    const start = end - 24 * HOUR

    const expected = new Map<string, Record<string, number>>()
    const origins = new Set<string>()
    for (const type of TYPES) {
      for (let h = start; h < end; h += HOUR) {
        for (const point of syntheticBucket(user.google.seed, dataType(type).fit!.dataType, h, h + HOUR)) {
          expected.set(`${type}|${new Date(h).toISOString()}`, expectedValues(type, point))
          origins.add(point.originDataSourceId)
        }
      }
    }
    expect(expected.size).toBeGreaterThan(24)

    await system.subscriber.waitFor((messages) => messages.reduce((n, m) => n + recordsOf(m.content).length, 0) >= expected.size, 90_000)
    const messages = received()
    const records = system.subscriber.messages.flatMap((m) => recordsOf(m.content))
    const got = new Map<string, Record<string, number>>()
    for (const { content, streamId } of messages) {
      expect(streamId).toBe(`${system.stack.network.accounts[1]!.address.toLowerCase()}/fitness/${content.type}`)
      // Released in a slot, as production does it: one data type and one epoch a message.
      expect(content.schema).toBe('fitstream.records/2')
    }
    for (const record of records) {
      expect(Date.parse(record.end) - Date.parse(record.start)).toBe(HOUR)
      expect(record.unit).toBe(dataType(record.type as DataTypeKey).unit)
      got.set(`${record.type}|${record.start}`, record.values)
    }
    expect(Object.fromEntries(got)).toEqual(Object.fromEntries(expected))

    // Nothing that identifies the person or their devices reaches a buyer.
    const everything = JSON.stringify(messages)
    for (const identifier of [user.userId, user.google.googleId, user.google.refreshToken, user.google.seed, ...origins]) {
      expect(everything).not.toContain(identifier)
    }
    for (const { content } of messages) {
      expect(Object.keys(content).sort()).toEqual(['epoch', 'records', 'schema', 'type'])
      for (const record of content.records) expect(Object.keys(record).sort()).toEqual(['end', 'id', 'pseudonym', 'revision', 'start', 'unit', 'values'])
    }
    // One person is one pseudonym per epoch, and every record has its own id.
    const pseudonyms = new Set(records.map((r) => `${r.epoch}|${r.pseudonym}`))
    expect(pseudonyms.size).toBe(new Set(records.map((r) => r.epoch)).size)
    const ids = records.map((r) => r.id)
    expect(new Set(ids).size).toBe(ids.length)

    // The user can see what was released about them.
    const report = (await system.stack.api('GET', `/users/${user.userId}/privacy`)).body as { totals: { recordsReleased: number } }
    expect(report.totals.recordsReleased).toBe(got.size)
  })

  it('sends a malformed job to its stage’s dead-letter queue with the validation message', async () => {
    const fetchQueue = system.stack.queues().queue('fetch')
    const job = await fetchQueue.add('fetch', { userId: user.userId, dataTypes: ['steps'], window: { startMs: 5, endMs: 1 } } as never, { attempts: 3 })
    const entry = await waitForDeadLetter('fetch', job.id!)
    expect(entry).toMatchObject({ stage: 'fetch', permanent: true, attemptsMade: 1, error: { code: 'FST_ERR_INVALID_PAYLOAD' } })
    expect(entry.error.message).toMatch(/syncId/)
    expect(entry.error.message).toMatch(/startMs must be before endMs/)
  })

  it('dead-letters a fetch that keeps failing after its attempts, with Google’s message', async () => {
    const failing = await system.stack.registerUser({ seed: 'e2e-user-failing', dataTypes: ['steps'] })
    system.stack.google.injectFault({ route: 'aggregate', status: 503, times: 1_000, reason: 'backendError' })
    try {
      const dead = await waitForDeadLetterWhere('fetch', (d) => (d.payload as { userId?: string }).userId === failing.userId)
      expect(dead).toMatchObject({ stage: 'fetch', permanent: false, attemptsMade: 2, maxAttempts: 2, error: { code: 'FST_ERR_GOOGLE_UNAVAILABLE' } })
      expect(dead.error.message).toMatch(/503/)
      expect(JSON.stringify(dead)).not.toContain(failing.google.refreshToken)
    } finally {
      system.stack.google.clearFaults()
    }
  })
})

async function waitForDeadLetter(stage: 'fetch', jobId: string): Promise<DeadLetter> {
  return waitForDeadLetterWhere(stage, (d) => d.jobId === jobId)
}

async function waitForDeadLetterWhere(stage: 'fetch', predicate: (d: DeadLetter) => boolean): Promise<DeadLetter> {
  const queue = system.stack.queues().deadLetterQueue(stage)
  let found: DeadLetter | undefined
  await expect
    .poll(
      async () => {
        const jobs = (await queue.getJobs(['waiting'])) as Job<DeadLetter>[]
        found = jobs.map((j) => j.data).find(predicate)
        return found !== undefined
      },
      { timeout: 60_000, interval: 250 },
    )
    .toBe(true)
  return found!
}

describe('secrets', () => {
  it('never appear in a log line, a job payload, a dead letter or a metric', async () => {
    const { leaks, places } = await findLeaks(system.stack, { 'a refresh token': user.google.refreshToken })
    // The places searched really hold the pipeline's traces (so an absent secret means something).
    expect(places.redis).toContain(user.userId)
    expect(places['fetcher log']).toContain('window fetched')
    expect(places['token-service metrics']).toContain('fitstream_token_refreshes_total')
    expect(leaks).toEqual([])
  })
})
