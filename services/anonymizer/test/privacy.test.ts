import { describe, expect, it } from 'vitest'
import {
  createMetrics,
  deleteKeysWithPrefix,
  encodePrivacyLogEntry,
  readPrivacyReport,
  type DataTypeKey,
  type FitnessSample,
  type PublishJobData,
} from '@fitstream/shared'
import { createAnonymizeProcessor } from '../src/anonymize-processor.js'
import { createAnonymizerMetrics } from '../src/metrics.js'
import type { PrivacyPolicy } from '../src/policy.js'
import { PrivacyStore } from '../src/privacy-store.js'
import { silentLogger } from '../../../tests/helpers.js'
import { HOUR, defaultPolicy, jobContext, policyOf, redisWithQueues, sample, t0, testKeys } from './support.js'

const keys = testKeys()
const logger = silentLogger()
const origin = 'raw:com.google.step_count.delta:com.sec.android.app.shealth:Samsung:SM-G991B:1a2b3c4d:step_counter'

/**
 * A noisy daily cohort cell (0.1; 31 a month reserve 3.1) and noisy records (0.3 each) against a
 * budget of 4 a month: the cells are paid for in advance, and records get what is left, 0.9: three.
 */
const budgetPolicy: PrivacyPolicy = policyOf({
  budget: { period: 'month', epsilon: 4 },
  cohorts: { k: 10 },
  types: {
    steps: {
      release: 'both',
      individual: { consent: 'with-type', fields: { count: { clamp: [0, 12_000], round: 10 } }, noise: { epsilon: 0.3 } },
      cohort: { window: 'day', epsilon: 0.1, fields: { count: { clamp: [0, 40_000], round: 10 } } },
    },
  },
})

describe('the anonymize processor, the budget ledger and the privacy report', () => {
  const { prefix, redis, queues } = redisWithQueues('anon-privacy', logger)

  const processor = (policy: PrivacyPolicy, now: number) =>
    createAnonymizeProcessor({
      policy,
      keys,
      queues,
      store: new PrivacyStore(redis, prefix, policy),
      metrics: createAnonymizerMetrics(createMetrics('anonymizer-test')),
      now: () => now,
    })
  const run = (policy: PrivacyPolicy, userId: string, samples: FitnessSample[], now = t0 + HOUR, individualTypes?: DataTypeKey[]) =>
    processor(policy, now)(
      {
        syncId: `sync-${samples.length}-${samples[0]?.startMs}`,
        userId,
        window: { startMs: 0, endMs: 1 },
        samples,
        ...(individualTypes && { individualTypes }),
      },
      jobContext(logger),
    )
  const published = async (): Promise<PublishJobData[]> => (await queues.queue('publish').getJobs(['waiting'])).map((job) => job.data as PublishJobData)
  const hours = (from: number, n: number): FitnessSample[] => Array.from({ length: n }, (_, h) => sample('steps', from + h * HOUR, { count: 4_000 }))

  it('hands the default policy’s records to the publisher only for the types a person opted in to, with no user id, device or source in them', async () => {
    const userId = 'user-default-0001'
    const samples = [
      sample('steps', t0, { count: 527 }, { origin }),
      sample('heart_rate', t0, { avg: 71.6, max: 77, min: 67 }, { origin }),
      sample('calories', t0, { kcal: 80 }, { origin }),
      sample('location', t0, { low_lat: 52.5, low_lng: 13.4, high_lat: 52.51, high_lng: 13.41 }),
    ]
    // Without an opt-in, cohorts only.
    expect(await run(defaultPolicy(), 'user-default-0000', samples)).toMatchObject({ samples: 4, records: 0, cohortContributions: 3, dropped: 1 })
    expect(await published()).toEqual([])

    const result = await run(defaultPolicy(), userId, samples, t0 + HOUR, ['steps', 'heart_rate'])
    expect(result).toMatchObject({ samples: 4, records: 2, cohortContributions: 3, withheldForBudget: 0, dropped: 1 })
    const jobs = await published()
    expect(jobs).toHaveLength(1)
    // No hourly heart-rate extremes in individual records; no calories records (not opted in).
    expect(jobs[0]!.records.map((r) => [r.type, r.values])).toEqual([
      ['heart_rate', { avg: 72 }],
      ['steps', { count: 530 }],
    ])
    const text = JSON.stringify(jobs)
    for (const secret of [userId, 'SM-G991B', 'shealth', '1a2b3c4d', 'raw:', '52.5']) expect(text).not.toContain(secret)
  })

  it('stops a person’s noisy records when their share of the budget is spent, never their cohort cells, until the next period', async () => {
    const userId = 'user-budget-0001'
    // 3 records (0.9, the records' whole share) + 1 cohort cell (0.1 of the 3.1 set aside for cells).
    expect(await run(budgetPolicy, userId, hours(t0, 3))).toMatchObject({ records: 3, cohortContributions: 1, withheldForBudget: 0 })
    // A retry of the same job is not charged again, and releases the same noisy values.
    const before = await published()
    expect(await run(budgetPolicy, userId, hours(t0, 3))).toMatchObject({ records: 3, withheldForBudget: 0 })
    expect(await published()).toEqual(before)
    // More of the same month: the records are withheld; the day's cohort cell was already paid for.
    expect(await run(budgetPolicy, userId, hours(t0 + 3 * HOUR, 2))).toMatchObject({ records: 0, cohortContributions: 1, withheldForBudget: 2 })
    // Another day of the same month: its record is withheld, but its cohort cell was reserved in advance.
    expect(await run(budgetPolicy, userId, hours(t0 + 24 * HOUR, 1))).toMatchObject({ records: 0, cohortContributions: 1, withheldForBudget: 1 })
    // The next period starts with a fresh budget.
    expect(await run(budgetPolicy, userId, hours(Date.UTC(2026, 11, 2, 8), 2))).toMatchObject({ records: 2, cohortContributions: 1, withheldForBudget: 0 })

    const report = await readPrivacyReport(redis, prefix, userId)
    expect(report.budgets).toEqual([
      { period: '2026-11', budget: 4, spent: 1.1, remaining: 2.9, charges: 5 },
      { period: '2026-12', budget: 4, spent: 0.7, remaining: 3.3, charges: 3 },
    ])
    expect(report.totals).toMatchObject({ recordsReleased: 8, cohortContributions: 3, withheldForBudget: 3, lateContributions: 0 })
    expect(report.totals.lastReleaseAt).not.toBeNull()
    const kinds = report.releases.map((entry) => `${entry.kind}:${entry.type}:${entry.count}:${entry.epsilon}`)
    expect(kinds).toEqual(
      expect.arrayContaining(['records:steps:3:0.9', 'cohort:steps:1:0.1', 'withheld:steps:2:0', 'withheld:steps:1:0', 'records:steps:2:0.6']),
    )
  })

  it('logs each release as one line per kind and type, exactly as the shared ledger encodes and reads it', async () => {
    const userId = 'user-log-lines-0001'
    // Five noisy hours: three fit the records' share, two are withheld; the day's cohort cell is joined.
    expect(await run(budgetPolicy, userId, hours(t0, 5))).toMatchObject({ records: 3, cohortContributions: 1, withheldForBudget: 2 })
    const iso = (ms: number): string => new Date(ms).toISOString()
    const at = iso(t0 + HOUR)
    const day = Math.floor(t0 / (24 * HOUR)) * 24 * HOUR
    const expected = [
      { at, kind: 'withheld', type: 'steps', start: iso(t0 + 3 * HOUR), end: iso(t0 + 5 * HOUR), count: 2, epsilon: 0 },
      { at, kind: 'cohort', type: 'steps', start: iso(day), end: iso(day + 24 * HOUR), count: 1, epsilon: 0.1 },
      { at, kind: 'records', type: 'steps', start: iso(t0), end: iso(t0 + 3 * HOUR), count: 3, epsilon: 0.9 },
    ] as const
    expect((await readPrivacyReport(redis, prefix, userId)).releases).toEqual(expected)
    expect(await redis.lrange(`${prefix}:privacy:${userId}:log`, 0, -1)).toEqual(expected.map(encodePrivacyLogEntry))
  })

  it('charges a job whose hours span two budget periods to each period once, however often it is retried', async () => {
    const userId = 'user-two-periods-0001'
    // 30 November 22:00 to 1 December 02:00 UTC: two records and a day's cohort cell in each month.
    const samples = hours(Date.UTC(2026, 10, 30, 22), 4)
    const now = Date.UTC(2026, 11, 1, 3)
    for (let attempt = 0; attempt < 2; attempt++) {
      expect(await run(budgetPolicy, userId, samples, now)).toMatchObject({ records: 4, cohortContributions: 2, withheldForBudget: 0 })
    }
    const report = await readPrivacyReport(redis, prefix, userId)
    expect(report.budgets).toEqual([
      { period: '2026-11', budget: 4, spent: 0.7, remaining: 3.3, charges: 3 },
      { period: '2026-12', budget: 4, spent: 0.7, remaining: 3.3, charges: 3 },
    ])
    expect(report.totals).toMatchObject({ recordsReleased: 8, cohortContributions: 2, withheldForBudget: 0 })
  })

  it('(d) counts a withheld release once in the privacy report, however often its job is retried', async () => {
    const userId = 'user-withheld-0001'
    await run(budgetPolicy, userId, hours(t0, 3))
    // Five hours beyond the records' share, each job retried four times (as BullMQ would after failures downstream).
    for (let attempt = 0; attempt < 4; attempt++) {
      expect(await run(budgetPolicy, userId, hours(t0 + 3 * HOUR, 5))).toMatchObject({ records: 0, withheldForBudget: 5 })
    }
    const report = await readPrivacyReport(redis, prefix, userId)
    expect(report.totals.withheldForBudget).toBe(5)
    // The log says so once too.
    expect(report.releases.filter((entry) => entry.kind === 'withheld')).toEqual([expect.objectContaining({ type: 'steps', count: 5 })])
    // The markers that make retries count once are not charges, and cost nothing.
    expect(report.budgets).toEqual([{ period: '2026-11', budget: 4, spent: 1, remaining: 3, charges: 4 }])
  })

  it('drops a finished period’s per-charge fields some days after it ends, keeping what the report shows', async () => {
    const userId = 'user-compact-0001'
    // November: 3 records and a day's cohort cell (4 charges), synced as it happens. The cell's charge
    // is a bit of `k~steps` and one in `charges`; each record's is a field of its own.
    await run(budgetPolicy, userId, hours(t0, 3))
    const budgetKey = `${prefix}:privacy:${userId}:budget:2026-11`
    const chargeFields = async () => (await redis.hkeys(budgetKey)).filter((field) => field.includes('|'))
    expect(await chargeFields()).toHaveLength(3)
    expect(await redis.hget(budgetKey, 'charges')).toBe('1')
    const report = (await readPrivacyReport(redis, prefix, userId)).budgets

    // December 5: November is over but only for 4 days, so its retries are still protected.
    await run(budgetPolicy, userId, hours(Date.UTC(2026, 11, 5, 8), 1), Date.UTC(2026, 11, 5, 9))
    expect(await chargeFields()).toHaveLength(3)

    // December 10: over for 9 days and uncharged since November: only budget, spent and the count stay.
    await run(budgetPolicy, userId, hours(Date.UTC(2026, 11, 10, 8), 1), Date.UTC(2026, 11, 10, 9))
    expect(await chargeFields()).toEqual([])
    // And which windows they were counted in (November 23, bit 22), so no history cell counts them again.
    expect(await redis.hgetall(budgetKey)).toEqual({ budget: '4000000', spent: '1000000', spentRecords: '900000', charges: '4', 'k~steps': '000004' })
    expect((await readPrivacyReport(redis, prefix, userId)).budgets[0]).toEqual(report[0])
    // December itself, still running, keeps its charge fields.
    expect((await redis.hkeys(`${prefix}:privacy:${userId}:budget:2026-12`)).filter((field) => field.includes('|')).length).toBeGreaterThan(0)

    // A November release replayed after that is charged again: more budget spent, never less.
    expect(await run(budgetPolicy, userId, hours(t0, 1), Date.UTC(2026, 11, 10, 10))).toMatchObject({ records: 0, withheldForBudget: 1 })
  })

  it('keeps the charge fields of an old period while it is still being charged (a backfill)', async () => {
    const userId = 'user-compact-0002'
    // A September day backfilled on November 23 and again on November 24: September ended long ago,
    // but its last charge is recent, so a retry of either must not be charged twice.
    const september = Date.UTC(2026, 8, 14, 8)
    await run(budgetPolicy, userId, hours(september, 2), t0)
    await run(budgetPolicy, userId, hours(september + 2 * HOUR, 1), t0 + 24 * HOUR)
    // Three records; September's cohort cells closed long ago, so those contributions came too late.
    expect((await redis.hkeys(`${prefix}:privacy:${userId}:budget:2026-09`)).filter((field) => field.includes('|'))).toHaveLength(3)
    expect(await run(budgetPolicy, userId, hours(september, 2), t0 + 25 * HOUR)).toMatchObject({ records: 2, withheldForBudget: 0 })
  })

  it('records late cohort contributions instead of dropping them silently', async () => {
    const userId = 'user-late-0001'
    const result = await run(budgetPolicy, userId, hours(t0, 1), t0 + 4 * 24 * HOUR)
    expect(result).toMatchObject({ records: 1, late: 1, cohortContributions: 0 })
    expect((await readPrivacyReport(redis, prefix, userId)).totals.lateContributions).toBe(1)
  })

  it('keeps per-person state only under <prefix>:privacy:<userId>, so erasure removes every trace', async () => {
    const userId = 'user-erase-0001'
    await run(budgetPolicy, userId, hours(t0, 2))
    const everything = async (): Promise<Map<string, string>> => {
      const contents = new Map<string, string>()
      let cursor = '0'
      do {
        const [next, found] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000)
        cursor = next
        for (const key of found) {
          const type = await redis.type(key)
          const value =
            type === 'hash'
              ? await redis.hgetall(key)
              : type === 'list'
                ? await redis.lrange(key, 0, -1)
                : type === 'set'
                  ? await redis.smembers(key)
                  : type === 'zset'
                    ? await redis.zrange(key, 0, -1)
                    : type === 'string'
                      ? await redis.get(key)
                      : null
          contents.set(key, JSON.stringify(value))
        }
      } while (cursor !== '0')
      return contents
    }
    const before = await everything()
    const personal = [...before.keys()].filter((key) => key.includes(userId))
    expect(personal.length).toBeGreaterThan(0)
    for (const key of personal) expect(key === `${prefix}:privacy:${userId}` || key.startsWith(`${prefix}:privacy:${userId}:`)).toBe(true)
    for (const [key, value] of before) if (!key.includes(userId)) expect(value).not.toContain(userId)

    // What the token service's erasure does.
    await redis.unlink(`${prefix}:privacy:${userId}`)
    await deleteKeysWithPrefix(redis, `${prefix}:privacy:${userId}`)
    const after = await everything()
    for (const [key, value] of after) expect(`${key} ${value}`).not.toContain(userId)
    expect((await readPrivacyReport(redis, prefix, userId)).budgets).toEqual([])
  })
})
