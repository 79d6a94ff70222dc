import { beforeAll, describe, expect, it } from 'vitest'
import { cohortRecordSchema, createMetrics, readPrivacyReport, type CohortRecord, type FitnessSample, type PublishJobData } from '@fitstream/shared'
import { releaseThreshold } from '../src/accounting.js'
import { deriveKeys, memberToken, planRelease } from '../src/anonymize.js'
import { createAnonymizeProcessor } from '../src/anonymize-processor.js'
import { closeCohortWindows } from '../src/cohort-closer.js'
import { eraseCohortContributions } from '../src/cohort-erasure.js'
import { createAnonymizerMetrics } from '../src/metrics.js'
import type { PrivacyPolicy } from '../src/policy.js'
import { PrivacyStore } from '../src/privacy-store.js'
import { epochOf, historyBatchOf } from '../src/time-windows.js'
import { silentLogger } from '../../../tests/helpers.js'
import { DAY, HOUR, defaultPolicy, exactHeartRateDefaultPolicy, jobContext, redisWithQueues, sample } from './support.js'

/**
 * History cohorts: an export's past goes to back-dated cells, one per (type, day, weekly batch),
 * released once when the batch closes, never into the day's live cell, and a person is counted once
 * per (type, day) across them. Under the default policy with exact heart-rate cells (support.ts).
 */
const policy: PrivacyPolicy = exactHeartRateDefaultPolicy()
const keys = deriveKeys(Buffer.alloc(32, 28))
const logger = silentLogger()
const metrics = createAnonymizerMetrics(createMetrics('anonymizer-history-test'))

/** One anonymise job run in-process at `now` on a store and its queues; its window spans the samples unless given. */
function anonymizeAt(
  store: PrivacyStore,
  queues: ReturnType<typeof redisWithQueues>['queues'],
  now: number,
  job: { syncId: string; userId: string; samples: FitnessSample[]; window?: { startMs: number; endMs: number } },
) {
  const window = job.window ?? { startMs: job.samples[0]!.startMs, endMs: job.samples.at(-1)!.endMs }
  return createAnonymizeProcessor({ policy, keys, queues, store, metrics, now: () => now })(
    { syncId: job.syncId, userId: job.userId, window, samples: job.samples },
    jobContext(logger),
  )
}

/**
 * Redis expires a cell's hash by the real clock, a week after the cell should have closed, so the
 * batch these tests fill must be the current one: its Monday, plus an hour. Everything else is a
 * fixed offset from it.
 */
const batch = historyBatchOf(Date.now(), 7)
const NOW = batch.startMs + HOUR
/** The last day of the export: its live cell closed at the start of the batch (end + 48 h). */
const lastDay = batch.startMs - 3 * DAY
const DAYS = 21
const days = Array.from({ length: DAYS }, (_, i) => lastDay - (DAYS - 1 - i) * DAY)

const target = 'history-target-0001'
const live = [target, 'history-live-0002', 'history-live-0003', 'history-live-0004']
const importers = [target, 'history-import-0002', 'history-import-0003', 'history-import-0004', 'history-import-0005']

/** A person's hourly mean heart rate: two hours a day whose mean is an integer, so means per cell are worked out exactly. */
function heartRate(person: number, day: number, dayIndex: number, shift = 0): FitnessSample[] {
  const mean = 60 + 5 * person + (dayIndex % 4) + shift
  return [sample('heart_rate', day + 9 * HOUR, { avg: mean - 2 }), sample('heart_rate', day + 18 * HOUR, { avg: mean + 2 })]
}

interface World {
  readonly prefix: string
  readonly redis: ReturnType<typeof redisWithQueues>['redis']
  readonly rows: CohortRecord[]
  /** Per person: in the last day's live cell, in its history cell (read just before each closed). */
  readonly lastDayMembership: Map<string, { live: boolean; history: boolean }>
  readonly outcomes: Record<string, unknown>
}

/**
 * Four people sell the last day live; after its cell has closed, five people (one of them also live)
 * upload three weeks of history. `targetShift` moves the target's imported values.
 */
async function runWorld(world: ReturnType<typeof redisWithQueues>, targetShift: number): Promise<World> {
  const { prefix, redis, queues } = world
  const store = new PrivacyStore(redis, prefix, policy)
  const anonymize = (userId: string, samples: FitnessSample[], now: number) =>
    anonymizeAt(store, queues, now, { syncId: `sync-${userId}-${now}`, userId, samples })
  const close = (now: number) => closeCohortWindows({ policy, keys, store, queues, metrics, logger }, now)
  const liveName = `heart_rate:${lastDay}:${lastDay + DAY}`
  const historyName = `${liveName}:${batch.startMs}`
  const membership = new Map<string, { live: boolean; history: boolean }>()
  const members = async (name: string, kind: 'live' | 'history') => {
    const held = new Set(await redis.hkeys(`${prefix}:cohort:closing:${name}`))
    for (const userId of new Set([...live, ...importers])) {
      const entry = membership.get(userId) ?? { live: false, history: false }
      entry[kind] = held.has(memberToken(keys, name, userId))
      membership.set(userId, entry)
    }
  }

  const outcomes: Record<string, unknown> = {}
  // The last day, live: synced the evening of that day, while its cell is open.
  for (const [i, userId] of live.entries()) outcomes[`live ${userId}`] = await anonymize(userId, heartRate(i, lastDay, DAYS - 1), lastDay + 20 * HOUR)
  await store.closeDue(batch.startMs)
  await members(liveName, 'live')
  await close(batch.startMs)

  // The uploads, after the last day's live cell has closed: three weeks each, the target's shifted.
  for (const [i, userId] of importers.entries()) {
    const samples = days.flatMap((day, d) => heartRate(i, day, d, userId === target ? targetShift : 0))
    outcomes[`import ${userId}`] = await anonymize(userId, samples, NOW)
  }
  // One person alone on a day before everyone's history: a cell of one is never released.
  outcomes.alone = await anonymize('history-alone-0006', heartRate(0, days[0]! - DAY, 0), NOW)
  await store.closeDue(batch.endMs)
  await members(historyName, 'history')
  await close(batch.endMs)

  const jobs = await queues.queue('publish').getJobs(['waiting'])
  const rows = jobs.flatMap((job) => (job.data as PublishJobData).cohorts)
  return { prefix, redis, rows, lastDayMembership: membership, outcomes }
}

const day = (ms: number): string => new Date(ms).toISOString()
/** What a buyer keeps of a row: everything but the id (checked apart). */
const view = (row: CohortRecord): Omit<CohortRecord, 'id'> =>
  Object.fromEntries(Object.entries(row).filter(([key]) => key !== 'id')) as Omit<CohortRecord, 'id'>

describe('history cohorts under the default policy', () => {
  const a = redisWithQueues('anon-history-a', logger)
  const b = redisWithQueues('anon-history-b', logger)
  let world: World
  let shifted: World

  beforeAll(async () => {
    world = await runWorld(a, 0)
    shifted = await runWorld(b, 40)
  })

  it('is on in the default policy: a batch of a week, on the same threshold as live cells', () => {
    expect(defaultPolicy().cohorts.history).toEqual({ batchDays: 7 })
    // k = 3 plus a margin of 1 for epsilon 2,500 on the count: four people clear it, three do not.
    expect(releaseThreshold(policy, policy.types.heart_rate!.cohort!).threshold).toBe(4)
  })

  it('releases three weeks of an export as history cells, once, with exact counts and means, and not the live cell again', () => {
    for (const row of world.rows) expect(cohortRecordSchema.parse(row)).toEqual(row)
    const batchDay = new Date(batch.startMs).toISOString().slice(0, 10)
    const mean = (people: number[], d: number, targetShift = 0): number =>
      Math.round(people.reduce((sum, p) => sum + 60 + 5 * p + (d % 4) + (p === 0 ? targetShift : 0), 0) / people.length)
    const expected = [
      // The last day live, released when its cell closed: the four live sellers.
      { type: 'heart_rate', start: day(lastDay), end: day(lastDay + DAY), contributors: 4, values: { avg: mean([0, 1, 2, 3], DAYS - 1) }, unit: 'bpm' },
      // Every day of the export as a history cell of the five uploaders, released when the batch closed...
      ...days.slice(0, -1).map((start, d) => ({
        type: 'heart_rate',
        start: day(start),
        end: day(start + DAY),
        release: 'history',
        batch: batchDay,
        contributors: 5,
        values: { avg: mean([0, 1, 2, 3, 4], d) },
        unit: 'bpm',
      })),
      // ...but the last day without the target, who is counted in its live cell.
      {
        type: 'heart_rate',
        start: day(lastDay),
        end: day(lastDay + DAY),
        release: 'history',
        batch: batchDay,
        contributors: 4,
        values: { avg: mean([1, 2, 3, 4], DAYS - 1) },
        unit: 'bpm',
      },
    ]
    const sort = (rows: object[]) => [...rows].sort((x, y) => JSON.stringify(x).localeCompare(JSON.stringify(y)))
    expect(sort(world.rows.map(view))).toEqual(sort(expected))
    // Each cell once: no id twice, one live row and one history row of the last day.
    expect(new Set(world.rows.map((row) => row.id)).size).toBe(world.rows.length)
    expect(
      world.rows
        .filter((row) => row.start === day(lastDay))
        .map((row) => row.release ?? 'live')
        .sort(),
    ).toEqual(['history', 'live'])
    // The day only one person uploaded is suppressed, not released.
    expect(world.rows.some((row) => row.start === day(days[0]! - DAY))).toBe(false)
  })

  it('counts a person once per type and day: the target’s last day goes to no history cell, and every day is charged to its own month', async () => {
    expect(world.outcomes[`import ${target}`]).toMatchObject({ cohortContributions: DAYS - 1, late: 0 })
    expect(world.outcomes['import history-import-0002']).toMatchObject({ cohortContributions: DAYS, late: 0 })
    const report = await readPrivacyReport(world.redis, world.prefix, target)
    expect(report.totals.cohortContributions).toBe(DAYS)
    // 5,000 a day: each day charged to the month it falls in, the live day once with the rest.
    const perMonth = new Map<string, number>()
    for (const start of days) perMonth.set(epochOf(start, 'month'), (perMonth.get(epochOf(start, 'month')) ?? 0) + 5_000)
    expect(report.budgets.map(({ period, spent }) => ({ period, spent }))).toEqual([...perMonth].map(([period, spent]) => ({ period, spent })))
  })

  it('adds nothing when the same export comes again, in the same batch or a later one', async () => {
    const { redis, prefix, queues } = a
    const store = new PrivacyStore(redis, prefix, policy)
    const anonymize = (userId: string, samples: FitnessSample[], now: number) =>
      anonymizeAt(store, queues, now, { syncId: `again-${userId}-${now}`, userId, samples })
    const before = await readPrivacyReport(redis, prefix, importers[1]!)
    const samples = days.flatMap((start, d) => heartRate(1, start, d))
    // The next batch: every day of it is counted already (in a released history cell), so no cell takes it.
    const next = historyBatchOf(batch.endMs, 7)
    expect(await anonymize(importers[1]!, samples, next.startMs + HOUR)).toMatchObject({ cohortContributions: 0, withheldForBudget: 0, late: 0 })
    const after = await readPrivacyReport(redis, prefix, importers[1]!)
    expect(after.budgets).toEqual(before.budgets)
    expect(after.totals.cohortContributions).toBe(before.totals.cohortContributions)
    expect(await closeCohortWindows({ policy, keys, store, queues, metrics, logger }, next.endMs)).toEqual({ cells: 0, released: 0, suppressed: 0 })
  })

  it('(attack) a buyer differencing the live and history rows of one day can’t isolate anyone: disjoint people, each cell released once', () => {
    // Nobody is in both cells of the last day; the target is in the live one only.
    for (const [userId, cells] of world.lastDayMembership) expect(cells.live && cells.history, userId).toBe(false)
    expect(world.lastDayMembership.get(target)).toEqual({ live: true, history: false })
    expect([...world.lastDayMembership.values()].filter((cells) => cells.history)).toHaveLength(4)
    // The target's imported data for a day they sold live moves no row a buyer sees; their other days
    // do move their history rows, as a contributor's data does (differential privacy bounds by how much).
    const ofDay = (rows: CohortRecord[], start: number) => rows.filter((row) => row.start === day(start))
    expect(ofDay(shifted.rows, lastDay)).toEqual(ofDay(world.rows, lastDay))
    expect(ofDay(shifted.rows, days[0]!)).not.toEqual(ofDay(world.rows, days[0]!))
  })

  it('withholds a history contribution whose month’s budget is spent, and counts it in the privacy report', async () => {
    const { redis, prefix, queues } = a
    const store = new PrivacyStore(redis, prefix, policy)
    const userId = 'history-spent-0007'
    const start = days[5]!
    // A month spent to the last micro-epsilon (as under an earlier, costlier policy).
    const budget = `${prefix}:privacy:${userId}:budget:${epochOf(start, 'month')}`
    await redis.hset(budget, 'budget', String(200_000e6), 'spent', String(200_000e6))
    await redis.hset(`${prefix}:privacy:${userId}`, `period:${epochOf(start, 'month')}`, '1')
    const run = (now: number) =>
      anonymizeAt(store, queues, now, { syncId: `spent-${now}`, userId, window: { startMs: start, endMs: start + DAY }, samples: heartRate(6, start, 5) })
    const next = historyBatchOf(batch.endMs, 7)
    expect(await run(next.startMs + HOUR)).toMatchObject({ cohortContributions: 0, withheldForBudget: 1 })
    expect(await run(next.startMs + 2 * HOUR)).toMatchObject({ cohortContributions: 0, withheldForBudget: 1 })
    expect((await readPrivacyReport(redis, prefix, userId)).totals.withheldForBudget).toBe(1)
    expect(await redis.exists(`${prefix}:cohort:cell:heart_rate:${start}:${start + DAY}:${next.startMs}`)).toBe(0)
  })
})

describe('one cell per person, type and day, whatever the clocks and the ledger’s age', () => {
  const { prefix, redis } = redisWithQueues('anon-history-once', logger)
  const store = () => new PrivacyStore(redis, prefix, policy)
  const contribute = (userId: string, start: number, now: number) =>
    Promise.all(planRelease(userId, heartRate(1, start, 0), policy, keys, new Set(), now).contributions.map((c) => store().contribute(userId, c, now)))
  const closeAt = (start: number) => start + DAY + 48 * HOUR

  it('keeps someone counted in a history cell out of the live cell a replica with a lagging clock still sees open', async () => {
    const start = lastDay
    expect(await contribute('history-skew-0001', start, closeAt(start))).toEqual(['joined'])
    expect(await contribute('history-skew-0001', start, closeAt(start) - 1_000)).toEqual(['counted'])
    expect(await redis.exists(`${prefix}:cohort:cell:heart_rate:${start}:${start + DAY}`)).toBe(0)
  })

  it('keeps someone counted live out of a history cell after their ledger’s charges are compacted away', async () => {
    const userId = 'history-compacted-0001'
    const start = lastDay - DAY
    expect(await contribute(userId, start, start + 20 * HOUR)).toEqual(['joined'])
    // A cohort charge is the window's bit and a count: nothing for compaction to drop.
    const budget = `${prefix}:privacy:${userId}:budget:${epochOf(start, 'month')}`
    expect((await redis.hkeys(budget)).filter((field) => field.includes('|'))).toEqual([])
    expect(await redis.hget(budget, 'charges')).toBe('1')
    expect(await contribute(userId, start, NOW)).toEqual(['counted'])
    expect(await redis.exists(`${prefix}:cohort:cell:heart_rate:${start}:${start + DAY}:${batch.startMs}`)).toBe(0)
  })

  it('reads a ledger that holds its cohort charges as fields, as ledgers were written before', async () => {
    const start = lastDay - 2 * DAY
    const budgetOf = (userId: string) => `${prefix}:privacy:${userId}:budget:${epochOf(start, 'month')}`
    // Counted live, in the earlier layout: a charge field and the window's bit, no count.
    const live = 'history-legacy-0001'
    expect(await contribute(live, start, start + 20 * HOUR)).toEqual(['joined'])
    const spent = await redis.hget(budgetOf(live), 'spent')
    await redis.hdel(budgetOf(live), 'charges')
    await redis.hset(budgetOf(live), `c|heart_rate|${start}`, String(Number(spent)))
    // A retry of the live contribution is an update, not paid again; a history cell does not count them again.
    expect(await contribute(live, start, start + 21 * HOUR)).toEqual(['updated'])
    expect(await redis.hget(budgetOf(live), 'spent')).toBe(spent)
    expect(await contribute(live, start, NOW)).toEqual(['counted'])
    // Counted in a history cell, in the earlier layout (the charge's value ends in `h`, no history bit):
    // a replica whose clock still shows the live cell open keeps them out of it.
    const history = 'history-legacy-0002'
    expect(await contribute(history, start, NOW)).toEqual(['joined'])
    await redis.hdel(budgetOf(history), 'charges', 'h~heart_rate')
    await redis.hset(budgetOf(history), `c|heart_rate|${start}`, `${Number(await redis.hget(budgetOf(history), 'spent'))}h`)
    expect(await contribute(history, start, closeAt(start) - 1_000)).toEqual(['counted'])
    const report = await readPrivacyReport(redis, prefix, history)
    expect(report.budgets.map((b) => b.charges)).toEqual([1])
  })
})

describe('erasure and history cells', () => {
  const { prefix, redis, queues } = redisWithQueues('anon-history-erasure', logger)

  it('takes an erased person out of every history cell not yet released', async () => {
    const store = new PrivacyStore(redis, prefix, policy)
    const run = (userId: string, person: number) =>
      anonymizeAt(store, queues, NOW, {
        syncId: `erase-${userId}`,
        userId,
        window: { startMs: days[0]!, endMs: lastDay + DAY },
        samples: days.flatMap((d, i) => heartRate(person, d, i)),
      })
    const people = ['history-erase-0001', 'history-erase-0002', 'history-erase-0003', 'history-erase-0004', 'history-erase-0005']
    for (const [i, userId] of people.entries()) await run(userId, i)
    expect(await eraseCohortContributions(store, keys, people[0]!)).toMatchObject({ cells: DAYS })
    const cells = days.map((d) => `heart_rate:${d}:${d + DAY}:${batch.startMs}`)
    for (const cell of cells) {
      expect(await redis.hexists(`${prefix}:cohort:cell:${cell}`, memberToken(keys, cell, people[0]!))).toBe(0)
      expect(await redis.hlen(`${prefix}:cohort:cell:${cell}`)).toBe(4)
    }
    await closeCohortWindows({ policy, keys, store, queues, metrics, logger }, batch.endMs)
    const rows = (await queues.queue('publish').getJobs(['waiting'])).flatMap((job) => (job.data as PublishJobData).cohorts)
    expect(rows.map((row) => row.contributors)).toEqual(days.map(() => 4))
  })
})
