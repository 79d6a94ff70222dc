import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { Counter } from 'prom-client'
import { cohortRecordSchema, createMetrics, type CohortRecord, type PublishJobData } from '@fitstream/shared'
import { legacyMemberToken, memberToken, planRelease } from '../src/anonymize.js'
import { aggregateCell, decodeBuckets, encodeBuckets, type ClosedCell } from '../src/cohort-aggregate.js'
import { closeCohortWindows } from '../src/cohort-closer.js'
import { createAnonymizerMetrics } from '../src/metrics.js'
import type { PrivacyPolicy } from '../src/policy.js'
import { PrivacyStore } from '../src/privacy-store.js'
import { silentLogger } from '../../../tests/helpers.js'
import { DAY, HOUR, defaultPolicy, policyOf, redisWithQueues, sample, testKeys } from './support.js'

const keys = testKeys()
const exact: PrivacyPolicy = policyOf({
  budget: { epsilon: 5 },
  cohorts: { k: 3, graceHours: 2 },
  types: {
    steps: { release: 'cohort', cohort: { window: 'day', fields: { count: { clamp: [0, 20_000], round: 1 } } } },
    weight: { release: 'cohort', cohort: { window: 'day', fields: { avg: { clamp: [30, 200], round: 0.1 } }, bandBy: { field: 'avg', edges: [60, 80] } } },
  },
})
const user = (i: number): string => `user-cohort-${String(i).padStart(4, '0')}`
/**
 * 10:00 UTC three days ago. Cells in Redis expire by the real clock, a week after their window ends
 * in case their open entry was lost, so the days these tests fill must be recent ones.
 */
const dayStart = Math.floor(Date.now() / DAY) * DAY - 3 * DAY
const t0 = dayStart + 10 * HOUR
const dayEnd = dayStart + DAY

/** A cell built the way the store builds it, from people's plans. */
function cellOf(policy: PrivacyPolicy, people: { userId: string; samples: Parameters<typeof sample>[] }[]): ClosedCell {
  const entries: Record<string, string> = {}
  let type: ClosedCell['type'] = 'steps'
  let window = { startMs: 0, endMs: 0 }
  for (const person of people) {
    for (const c of planRelease(
      person.userId,
      person.samples.map((args) => sample(...args)),
      policy,
      keys,
    ).contributions) {
      type = c.type
      window = { startMs: c.startMs, endMs: c.endMs }
      entries[c.member] = [entries[c.member], encodeBuckets(c.type, c.startMs, c.buckets)].filter(Boolean).join(';')
    }
  }
  return { type, ...window, entries }
}

describe('aggregateCell', () => {
  it('never releases a cell or band with fewer than k distinct people, however their data is duplicated', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 12 }),
        fc.integer({ min: 1, max: 4 }),
        fc.array(fc.integer({ min: 0, max: 30_000 }), { minLength: 12, maxLength: 12 }),
        fc.boolean(),
        (people, copies, counts, noisy) => {
          const policy = noisy ? defaultPolicy() : exact
          const persons = Array.from({ length: people }, (_, i) => ({
            userId: user(i),
            // Every person's same hour several times over (retries, overlapping fetches), plus another hour.
            samples: [
              ...Array.from({ length: copies }, () => ['steps', t0, { count: counts[i]! }] as Parameters<typeof sample>),
              ['steps', t0 + HOUR, { count: 100 }] as Parameters<typeof sample>,
            ],
          }))
          const k = policy.cohorts.k
          const outcome = aggregateCell(cellOf(policy, persons), policy, keys)
          expect(outcome.contributors).toBe(people)
          if (people < k) expect(outcome.released).toEqual([])
          for (const record of outcome.released) {
            cohortRecordSchema.parse(record)
            expect(record.contributors).toBeGreaterThanOrEqual(k)
            expect(Object.keys(record).sort()).toEqual(['contributors', 'end', 'id', 'start', 'type', 'unit', 'values'])
          }
          if (!noisy && people >= k) {
            // Each person once: their hour counted once, plus the other hour.
            const mean = Math.round(counts.slice(0, people).reduce((a, b) => a + Math.min(20_000, b + 100), 0) / people)
            expect(outcome.released).toEqual([expect.objectContaining({ contributors: people, values: { count: mean } })])
          }
        },
      ),
      { numRuns: 150 },
    )
  })

  it('splits a cell into bands of a person’s own value, each released only at k', () => {
    const weights = [55, 58, 59, 61, 65, 70, 85]
    const outcome = aggregateCell(
      cellOf(
        exact,
        weights.map((w, i) => ({ userId: user(i), samples: [['weight', t0, { avg: w, max: w, min: w }]] })),
      ),
      exact,
      keys,
    )
    expect(outcome.released.map((r) => [r.band, r.contributors, r.values])).toEqual([
      ['avg:<60', 3, { avg: 57.3 }],
      ['avg:60-80', 3, { avg: 65.3 }],
    ])
    expect(outcome.suppressed).toEqual([{ band: 'avg:>=80', reason: 'under_k' }])
  })
})

describe('cohort members across token forms', () => {
  it('counts a person once when a cell holds them under both their earlier hex name and their current one', () => {
    const people = [0, 1, 2].map((i) => ({ userId: user(i), samples: [['steps', t0, { count: 1000 * (i + 1) }]] as Parameters<typeof sample>[] }))
    const cell = cellOf(exact, people)
    const [first] = Object.keys(cell.entries)
    // A process of the earlier version wrote the same person's buckets again under the hex form of the token.
    const twice = { ...cell, entries: { ...cell.entries, [legacyMemberToken(first!)]: cell.entries[first!]! } }
    expect(aggregateCell(twice, exact, keys).released.map((r) => r.contributors)).toEqual(aggregateCell(cell, exact, keys).released.map((r) => r.contributors))
  })
})

describe('cohort cells in Redis', () => {
  const logger = silentLogger()
  const metrics = createAnonymizerMetrics(createMetrics('anonymizer-test'))
  const { prefix, redis, queues } = redisWithQueues('anon-cohort', logger)

  const store = () => new PrivacyStore(redis, prefix, exact)
  const contribute = async (userId: string, samples: Parameters<typeof sample>[], now = dayEnd) => {
    const plan = planRelease(
      userId,
      samples.map((args) => sample(...args)),
      exact,
      keys,
    )
    return Promise.all(plan.contributions.map((c) => store().contribute(userId, c, now)))
  }
  const publishedCohorts = async (): Promise<CohortRecord[]> => {
    const jobs = await queues.queue('publish').getJobs(['waiting'])
    return jobs.flatMap((job) => (job.data as PublishJobData).cohorts)
  }

  it('holds a window open through its grace period, then releases the cells that reached k and suppresses the rest', async () => {
    expect(await contribute(user(1), [['steps', t0, { count: 1000 }]])).toEqual(['joined'])
    // The same bucket again, and again as a revision: one person, one value, never doubled.
    expect(await contribute(user(1), [['steps', t0, { count: 1000 }]])).toEqual(['updated'])
    expect(await contribute(user(1), [['steps', t0, { count: 4000 }, { revision: 1 }]])).toEqual(['updated'])
    expect(await contribute(user(1), [['steps', t0, { count: 9999 }, { revision: 0 }]])).toEqual(['updated'])
    await contribute(user(2), [
      ['steps', t0, { count: 2000 }],
      ['steps', t0 + HOUR, { count: 1000 }],
    ])
    await contribute(user(3), [['steps', t0 + 2 * HOUR, { count: 6000 }]])
    await contribute(user(4), [['weight', t0, { avg: 70, max: 70, min: 70 }]])

    // Nothing closes before the window's end plus grace.
    expect(await closeCohortWindows({ policy: exact, keys, store: store(), queues, metrics, logger }, dayEnd + HOUR)).toEqual({
      cells: 0,
      released: 0,
      suppressed: 0,
    })
    expect(await publishedCohorts()).toEqual([])

    const closed = await closeCohortWindows({ policy: exact, keys, store: store(), queues, metrics, logger }, dayEnd + 2 * HOUR)
    expect(closed).toEqual({ cells: 2, released: 1, suppressed: 1 })
    const cohorts = await publishedCohorts()
    expect(cohorts).toEqual([
      {
        id: expect.stringMatching(/^[0-9a-f]{32}$/),
        type: 'steps',
        start: new Date(dayStart).toISOString(),
        end: new Date(dayEnd).toISOString(),
        contributors: 3,
        values: { count: Math.round((4000 + 3000 + 6000) / 3) },
        unit: 'steps',
      },
    ])
    expect(JSON.stringify(cohorts)).not.toContain('user-cohort')
    // Contributions are forgotten once the outcome is handed on.
    expect(await redis.keys(`${prefix}:cohort:cell:*`)).toEqual([])
    expect(await redis.keys(`${prefix}:cohort:closing:*`)).toEqual([])
  })

  it('turns away contributions to a closed window instead of reopening it', async () => {
    expect(await contribute(user(5), [['steps', t0, { count: 1000 }]], dayEnd + 3 * HOUR)).toEqual(['late'])
    // A replica whose clock lags still can't reopen it: the closed marker stops it.
    expect(await contribute(user(5), [['steps', t0, { count: 1000 }]], dayEnd)).toEqual(['late'])
    expect(await redis.exists(`${prefix}:cohort:cell:steps:${dayStart}:${dayEnd}`)).toBe(0)
  })

  it('finishes cells a crashed closer left half done', async () => {
    const next = dayStart + DAY
    for (let i = 10; i < 13; i++) await contribute(user(i), [['steps', next + HOUR, { count: 3000 }]], next + DAY)
    await store().closeDue(next + DAY + 2 * HOUR)
    expect(await redis.zcard(`${prefix}:cohort:closing`)).toBe(1)
    const closed = await closeCohortWindows({ policy: exact, keys, store: store(), queues, metrics, logger }, next + DAY + 3 * HOUR)
    expect(closed).toEqual({ cells: 1, released: 1, suppressed: 0 })
    expect((await publishedCohorts()).filter((c) => c.start === new Date(next).toISOString())).toHaveLength(1)
  })

  it('erases one person’s contributions from every cell not yet released, open or closing, and keeps everyone else’s', async () => {
    const open = t0 + 8 * DAY
    const closing = t0 + 6 * DAY
    for (const i of [30, 31]) {
      await contribute(
        user(i),
        [
          ['steps', open, { count: 1000 + i }],
          ['weight', open, { avg: 70, max: 70, min: 70 }],
        ],
        open,
      )
      await contribute(user(i), [['steps', closing, { count: 2000 + i }]], closing)
    }
    const closingDay = Math.floor(closing / DAY) * DAY
    await store().closeDue(closingDay + DAY + 2 * HOUR)
    const members = async (kind: 'cell' | 'closing', type: string, at: number): Promise<string[]> => {
      const day = Math.floor(at / DAY) * DAY
      return (await redis.hkeys(`${prefix}:cohort:${kind}:${type}:${day}:${day + DAY}`)).sort()
    }
    const tokenOf = (i: number, type: string, at: number): string => {
      const day = Math.floor(at / DAY) * DAY
      return memberToken(keys, `${type}:${day}:${day + DAY}`, user(i))
    }
    expect(await members('closing', 'steps', closing)).toEqual([tokenOf(30, 'steps', closing), tokenOf(31, 'steps', closing)].sort())

    expect(await store().eraseContributions((cell) => memberToken(keys, cell, user(30)))).toBe(3)
    expect(await members('cell', 'steps', open)).toEqual([tokenOf(31, 'steps', open)])
    expect(await members('cell', 'weight', open)).toEqual([tokenOf(31, 'weight', open)])
    expect(await members('closing', 'steps', closing)).toEqual([tokenOf(31, 'steps', closing)])
    // Again: nothing left of theirs.
    expect(await store().eraseContributions((cell) => memberToken(keys, cell, user(30)))).toBe(0)
    await store().finishCells(await store().closingCells())
  })

  it('keys cells by window, never by person, and keeps no user id in them', async () => {
    for (let i = 20; i < 22; i++) await contribute(user(i), [['steps', t0 + 3 * DAY, { count: 10 }]], t0 + 3 * DAY)
    const keysNow = await redis.keys(`${prefix}:cohort:*`)
    expect(keysNow.length).toBeGreaterThan(0)
    for (const key of keysNow) {
      expect(key).not.toMatch(/user-cohort/)
      const type = await redis.type(key)
      const content = type === 'hash' ? JSON.stringify(await redis.hgetall(key)) : type === 'zset' ? JSON.stringify(await redis.zrange(key, 0, -1)) : ''
      expect(content).not.toMatch(/user-cohort/)
    }
    expect(metrics.cohortCells).toBeInstanceOf(Counter)
  })
})

describe('a cohort cell in Redis', () => {
  const { prefix, redis } = redisWithQueues('anon-cell', silentLogger())

  it('holds one field per person, keeps each bucket’s newest revision, and counts the person once', async () => {
    const store = new PrivacyStore(redis, prefix, exact)
    const planOf = (revision: number, count: number, hour: number) =>
      planRelease('cell-user-1', [sample('steps', t0 + hour * HOUR, { count }, { revision })], exact, keys).contributions[0]!
    const now = t0 + 2 * HOUR
    // Hour 0 at revision 0, then revision 2, then a stale revision 1 that must not win; hour 1 beside it.
    for (const contribution of [planOf(0, 100, 0), planOf(2, 300, 0), planOf(1, 200, 0), planOf(0, 50, 1)]) {
      expect(await store.contribute('cell-user-1', contribution, now)).toMatch(/joined|updated/)
    }
    const contribution = planOf(0, 50, 1)
    const cells = await redis.keys(`${prefix}:cohort:cell:*`)
    expect(cells).toHaveLength(1)
    const fields = await redis.hgetall(cells[0]!)
    expect(Object.keys(fields)).toEqual([contribution.member])
    const buckets = decodeBuckets('steps', fields[contribution.member]!)
    expect(buckets.map((b) => b.values.count).sort((a, b) => a! - b!)).toEqual([50, 300])
  })

  it('reads and merges a person’s buckets stored in the earlier layout, so no bucket counts twice', async () => {
    const store = new PrivacyStore(redis, prefix, exact)
    const userId = 'cell-user-legacy'
    const planOf = (revision: number, count: number, hour: number) =>
      planRelease(userId, [sample('steps', t0 + hour * HOUR, { count }, { revision })], exact, keys).contributions[0]!
    const now = t0 + 2 * HOUR
    const first = planOf(0, 100, 0)
    expect(await store.contribute(userId, first, now)).toBe('joined')
    // As the earlier layout stored hours 10 and 11 (minutes 600 and 660 after the cell's start), under
    // the person's token in hex.
    const cell = `${prefix}:cohort:cell:${first.cell}`
    await redis.hdel(cell, first.member)
    await redis.hset(cell, legacyMemberToken(first.member), '600/60,0,,100;660/60,1,,70')
    expect(await store.contribute(userId, planOf(2, 300, 0), now)).toBe('updated')
    expect(await redis.hexists(cell, legacyMemberToken(first.member))).toBe(0)
    const stored = await redis.hget(cell, first.member)
    expect(stored).not.toMatch(/\//)
    expect(
      decodeBuckets('steps', stored!)
        .map((b) => b.values.count)
        .sort((a, b) => a! - b!),
    ).toEqual([70, 300])
    // A stale revision in either layout loses to the newer one held.
    expect(await store.contribute(userId, planOf(0, 5, 1), now)).toBe('updated')
    expect(
      decodeBuckets('steps', (await redis.hget(cell, first.member))!)
        .map((b) => b.values.count)
        .sort((a, b) => a! - b!),
    ).toEqual([70, 300])
    expect(
      decodeBuckets('steps', '600/60,0,,100;660/60,1,,70;go=5;ic.2=80')
        .map((b) => b.values.count)
        .sort((a, b) => a! - b!),
    ).toEqual([5, 80])
  })

  it('erases a person held under their token as cells written before named it', async () => {
    const store = new PrivacyStore(redis, prefix, exact)
    const contribution = planRelease('cell-user-erased', [sample('steps', t0, { count: 10 })], exact, keys).contributions[0]!
    expect(await store.contribute('cell-user-erased', contribution, t0 + 2 * HOUR)).toBe('joined')
    const cell = `${prefix}:cohort:cell:${contribution.cell}`
    await redis.hdel(cell, contribution.member)
    await redis.hset(cell, legacyMemberToken(contribution.member), '600/60,0,,10')
    expect(await store.eraseContributions((name) => memberToken(keys, name, 'cell-user-erased'))).toBe(1)
    expect(await redis.hexists(cell, legacyMemberToken(contribution.member))).toBe(0)
  })

  it('keeps a cell expiring after its last member is erased and someone joins it again', async () => {
    const store = new PrivacyStore(redis, prefix, exact)
    // A window no other test contributes to, so that the cell empties.
    const lonely = t0 + 40 * 24 * HOUR
    const first = planRelease('cell-user-gone', [sample('steps', lonely, { count: 10 })], exact, keys).contributions[0]!
    expect(await store.contribute('cell-user-gone', first, lonely + 2 * HOUR)).toBe('joined')
    const cell = `${prefix}:cohort:cell:${first.cell}`
    expect(await store.eraseContributions((name) => memberToken(keys, name, 'cell-user-gone'))).toBe(1)
    // The last member gone, Redis dropped the hash and its expiry with it.
    expect(await redis.pttl(cell)).toBe(-2)
    const next = planRelease('cell-user-next', [sample('steps', lonely, { count: 20 })], exact, keys).contributions[0]!
    expect(await store.contribute('cell-user-next', next, lonely + 2 * HOUR)).toBe('joined')
    expect(await redis.pttl(cell)).toBeGreaterThan(0)
  })
})
