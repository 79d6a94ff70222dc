import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { fileURLToPath } from 'node:url'
import type { Redis } from 'ioredis'
import { ALL_READ_SCOPES, syntheticBucket, type FakeUser } from '@fitstream/fake-google'
import { recordsOf } from '@fitstream/devstack'
import { createRedis, dataType, type DataTypeKey } from '@fitstream/shared'
import { HOUR, expectedValues } from './delivery.js'
import { redisUrl } from './helpers.js'
import { useStack } from './system.js'

/**
 * The attacker of erasure: a person in a half-hour zone who sells steps as individual records and
 * everything else to cohorts syncs end to end, then deletes their data. Afterwards every key, hash
 * field, list, set and sorted-set member, stream entry and value under the stack's prefix is searched
 * for their user id, their Google id and their pseudonyms, and the open cohort cells for their
 * contributions. On the way it checks the person's records lie on whole UTC hours and that only the
 * type they opted in to is released individually.
 */
const TYPES: DataTypeKey[] = ['steps', 'calories', 'heart_rate']
const DEFAULT_POLICY = fileURLToPath(new URL('../services/anonymizer/policies/default.yaml', import.meta.url))
const system = useStack('erasure-scan', { backfillDays: 1, serviceEnv: { anonymizer: { ANONYMIZER_POLICY_FILE: DEFAULT_POLICY } } })
const { prefix } = system
let redis: Redis
let google: FakeUser
let userId: string

beforeAll(async () => {
  redis = createRedis(redisUrl(), 'producer', 'erasure-scan-test')
  google = system.stack.google.addUser({ seed: 'erasure-scan-kolkata', scopes: [...ALL_READ_SCOPES] })
  const response = await system.stack.api('POST', '/users', {
    refreshToken: google.refreshToken,
    dataTypes: TYPES,
    individualTypes: ['steps'],
    timeZone: 'Asia/Kolkata',
  })
  expect(response.status).toBe(201)
  userId = (response.body as { id: string }).id
})

afterAll(() => {
  redis?.disconnect()
})

/** The individual records the buyer received, each with its pseudonym (cohort messages carry none). */
const received = () => system.subscriber.messages.flatMap((m) => recordsOf(m.content))

/** Every place under the prefix where one of `needles` occurs, as `key` or `key -> where`. */
async function findEverywhere(needles: readonly string[]): Promise<string[]> {
  const found: string[] = []
  const look = (key: string, where: string, text: string) => {
    for (const needle of needles) if (text.includes(needle)) found.push(`${key}${where === '' ? '' : ` -> ${where}`}: ${needle}`)
  }
  let cursor = '0'
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000)
    cursor = next
    for (const key of keys) {
      look(key, '', key)
      const type = await redis.type(key)
      if (type === 'string') look(key, 'value', (await redis.getBuffer(key))?.toString('latin1') ?? '')
      else if (type === 'hash') for (const [field, value] of Object.entries(await redis.hgetall(key))) look(key, `field ${field}`, `${field}\n${value}`)
      else if (type === 'list') (await redis.lrange(key, 0, -1)).forEach((entry, i) => look(key, `entry ${i}`, entry))
      else if (type === 'set') for (const member of await redis.smembers(key)) look(key, 'member', member)
      else if (type === 'zset') for (const member of await redis.zrange(key, 0, -1)) look(key, 'member', member)
      else if (type === 'stream') for (const [id, fields] of await redis.xrange(key, '-', '+')) look(key, `entry ${id}`, fields.join('\n'))
    }
  } while (cursor !== '0')
  return found
}

/** Contributions held in cohort cells not yet released (everyone's: this person is the only one). */
async function openContributions(): Promise<number> {
  let total = 0
  for (const kind of ['cell', 'closing']) {
    let cursor = '0'
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:cohort:${kind}:*`, 'COUNT', 1000)
      cursor = next
      for (const key of keys) total += await redis.hlen(key)
    } while (cursor !== '0')
  }
  return total
}

describe('erasure, attacked', () => {
  it('leaves nothing in Redis that names the person, and takes them out of every open cohort cell', async () => {
    const state = async () => (await system.stack.api('GET', `/users/${userId}`)).body as { fetchedUntil: string | null; individualTypes: string[] }
    await expect.poll(async () => (await state()).fetchedUntil, { timeout: 60_000, interval: 250 }).not.toBeNull()
    expect((await state()).individualTypes).toEqual(['steps'])
    // Windows on whole UTC hours, although the person's hours begin at :30 UTC.
    const end = Date.parse((await state()).fetchedUntil!)
    expect(end % HOUR).toBe(0)

    // Every steps hour Google has, each on its whole UTC hour and with Google's value for that hour.
    const expected = new Map<string, Record<string, number>>()
    for (let h = end - 24 * HOUR; h < end; h += HOUR)
      for (const point of syntheticBucket(google.seed, dataType('steps').fit!.dataType, h, h + HOUR))
        expected.set(new Date(h).toISOString(), expectedValues('steps', point))
    expect(expected.size).toBeGreaterThan(12)
    const stepsRecords = () => received().filter((r) => r.type === 'steps')
    await system.subscriber.waitFor(() => stepsRecords().length >= expected.size, 90_000)
    expect(Object.fromEntries(stepsRecords().map((r) => [r.start, r.values]))).toEqual(Object.fromEntries(expected))
    for (const r of stepsRecords()) expect(Date.parse(r.end) - Date.parse(r.start)).toBe(HOUR)
    // Opted in to steps only: calories and heart rate go to cohorts, not out as individual records.
    expect(received().filter((r) => r.type !== 'steps')).toEqual([])
    const pseudonyms = [...new Set(received().map((r) => r.pseudonym))]
    expect(pseudonyms.length).toBeGreaterThanOrEqual(1)

    // Their cohort contributions wait in open cells (one person: under k, nothing released).
    await expect.poll(openContributions, { timeout: 30_000 }).toBeGreaterThan(0)
    await expect.poll(async () => system.stack.queues().queue('anonymize').count(), { timeout: 30_000 }).toBe(0)
    const needles = [userId, google.googleId, ...pseudonyms]
    const before = await findEverywhere(needles)
    const contributionsBefore = await openContributions()

    const erased = await system.stack.api('DELETE', `/users/${userId}`)
    expect(erased.status).toBe(200)
    const receipt = erased.body as { googleAccess: string; byOwner: { owner: string; outcome: string; detail: string }[] }
    expect(receipt.byOwner.map((o) => [o.owner, o.outcome])).toEqual([
      ['token-service', 'deleted'],
      ['anonymizer', 'queued_for_removal'],
      ['google', 'revoked'],
      ['published', 'cannot_be_recalled'],
    ])
    expect(receipt.byOwner.find((o) => o.owner === 'published')!.detail).toMatch(/pseudonymised records.*noisy averages over many people/is)

    await expect.poll(openContributions, { timeout: 30_000 }).toBe(0)
    await expect.poll(async () => system.stack.queues().queueNamed('anonymizer-erasure').count(), { timeout: 30_000 }).toBe(0)
    const after = await findEverywhere(needles)
    process.stdout.write(
      `erasure scan: before erasure ${before.length} place(s) named the person (${summarise(before)}); ${contributionsBefore} open cohort contribution(s). ` +
        `After: ${after.length} place(s) (${summarise(after)}); ${await openContributions()} open cohort contribution(s).\n`,
    )
    expect(before.length).toBeGreaterThan(0)
    expect(after).toEqual([])
  }, 120_000)

  it('leaves nothing either when the person is erased while a fetch of theirs is waiting on Google', async () => {
    const person = system.stack.google.addUser({ seed: 'erasure-scan-racing', scopes: [...ALL_READ_SCOPES] })
    const response = await system.stack.api('POST', '/users', { refreshToken: person.refreshToken, dataTypes: TYPES })
    expect(response.status).toBe(201)
    const id = (response.body as { id: string }).id
    const fetchedUntil = async () => ((await system.stack.api('GET', `/users/${id}`)).body as { fetchedUntil: string | null }).fetchedUntil
    await expect.poll(fetchedUntil, { timeout: 60_000, interval: 250 }).not.toBeNull()
    await expect.poll(async () => system.stack.queues().queue('anonymize').count(), { timeout: 30_000 }).toBe(0)
    await expect.poll(openContributions, { timeout: 30_000 }).toBeGreaterThan(0)

    // Finished fetches are kept a while under ids that de-duplicate: cleared, the sync below fetches the same window again.
    await system.stack.queues().queue('fetch').clean(0, 1_000, 'completed')
    system.stack.google.setLatency(3_000)
    try {
      expect((await system.stack.api('POST', `/users/${id}/sync`)).status).toBe(202)
      await expect.poll(() => system.stack.google.stats.inFlight, { timeout: 30_000, interval: 50 }).toBeGreaterThan(0)
      expect((await system.stack.api('DELETE', `/users/${id}`)).status).toBe(200)
    } finally {
      system.stack.google.setLatency(0)
    }
    await expect.poll(() => system.stack.google.stats.inFlight, { timeout: 30_000 }).toBe(0)
    const queues = system.stack.queues()
    await expect
      .poll(async () => (await Promise.all(['sync', 'fetch', 'anonymize'].map((q) => queues.queue(q as 'sync').getActiveCount()))).reduce((a, b) => a + b), {
        timeout: 30_000,
      })
      .toBe(0)
    // A fetch was running, so the anonymiser is asked again later; run now, the second ask finds what the fetch left.
    const erasures = queues.queueNamed('anonymizer-erasure')
    const delayed = await erasures.getDelayed()
    expect(delayed).toHaveLength(1)
    await Promise.all(delayed.map((job) => job.promote()))
    await expect.poll(async () => erasures.count(), { timeout: 30_000 }).toBe(0)
    const after = await findEverywhere([id, person.googleId])
    process.stdout.write(
      `erasure during a fetch: after it ${after.length} place(s) named the person (${after.join('; ') || 'none'}); ${await openContributions()} open cohort contribution(s)\n`,
    )
    expect(after).toEqual([])
    expect(await openContributions()).toBe(0)
  }, 120_000)
})

function summarise(found: readonly string[]): string {
  const byKey = new Map<string, number>()
  for (const place of found) {
    const key = place
      .split(' -> ')[0]!
      .split(': ')[0]!
      .replace(/[A-Za-z0-9_-]{16,}/g, '<id>')
    byKey.set(key, (byKey.get(key) ?? 0) + 1)
  }
  return [...byKey].map(([key, n]) => `${key} x${n}`).join(', ') || 'none'
}
