import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  healthDailyValues,
  healthExerciseSessions,
  syntheticRollup,
  userProfile,
  type ActiveMinutesRollupValue,
  type ActiveZoneMinutesRollupValue,
  type DailyValues,
  type FloorsRollupValue,
} from '@fitstream/fake-google'
import { Stack, recordsOf, type RegisteredUser, type Subscriber } from '@fitstream/devstack'
import type { DataTypeKey } from '@fitstream/shared'
import { HOUR, expectedRecords } from './delivery.js'
import { redisUrl, uniquePrefix } from './helpers.js'

/**
 * A deployment on the Google Health API (`GOOGLE_DATA_API=health`), every service a process: a
 * person who granted Health API scopes is read through its roll-ups, never through Fit, and the
 * buyer receives the same records Fit would have given for the same data; heart points and active
 * minutes reach the buyer as Google defines them; Google's daily summaries and floors reach the
 * buyer as cohorts over weeks and months.
 */
const DAY = 24 * HOUR

let stack: Stack
let subscriber: Subscriber
let user: RegisteredUser
let runner: RegisteredUser

const startIndividualStack = async () => {
  stack = await Stack.start({ redisUrl: redisUrl(), prefix: uniquePrefix('health-api'), backfillDays: 1, googleApi: 'health' })
  subscriber = await stack.startSubscriber()
  user = await stack.registerUser({ seed: 'health-api-user-1', dataTypes: ['steps', 'calories', 'heart_rate'] })
  // A runner who ran in the day the backfill reads, so that cardio-zone minutes are there to check.
  const now = Date.now()
  let n = 0
  while (!userProfile(`health-api-runner-${n}`).runner || healthExerciseSessions(`health-api-runner-${n}`, now - 22 * HOUR, now - 2 * HOUR).length === 0) n++
  runner = await stack.registerUser({ seed: `health-api-runner-${n}`, dataTypes: ['heart_minutes', 'active_minutes'] })
}

const recordsOfTypes = (messages: readonly { content: unknown }[], types: readonly DataTypeKey[]) =>
  messages.flatMap((m) => recordsOf(m.content)).filter((r) => types.includes(r.type as DataTypeKey))
const count = (messages: readonly { content: unknown }[], types: readonly DataTypeKey[]) => recordsOfTypes(messages, types).length

/** `type|start` → values of the records the buyer received of these types. */
function received(types: readonly DataTypeKey[]): Record<string, string> {
  const got = new Map<string, string>()
  for (const record of recordsOfTypes(subscriber.messages, types)) got.set(`${record.type}|${record.start}`, JSON.stringify(record.values))
  return Object.fromEntries(got)
}

async function syncedUntil(who: RegisteredUser): Promise<number> {
  const state = async () => (await stack.api('GET', `/users/${who.userId}`)).body as { fetchedUntil: string | null; dataApi: string }
  await expect.poll(async () => (await state()).fetchedUntil, { timeout: 60_000, interval: 250 }).not.toBeNull()
  expect((await state()).dataApi).toBe('health')
  return Date.parse((await state()).fetchedUntil!)
}

const snap = (value: number, [low, high]: [number, number], step: number): number => Math.round(Math.min(high, Math.max(low, value)) / step) * step

describe('a deployment on the Google Health API', () => {
  beforeAll(startIndividualStack)
  afterAll(async () => {
    await stack?.stop()
  })

  it('delivers a person’s records to the buyer, read through Health API roll-ups only', async () => {
    const end = await syncedUntil(user)
    const expected = expectedRecords(user, end - 24 * HOUR, end)
    expect(expected.size).toBeGreaterThan(24)
    await subscriber.waitFor((messages) => count(messages, user.dataTypes) >= expected.size, 90_000)
    expect(received(user.dataTypes)).toEqual(Object.fromEntries(expected))
    expect(stack.google.stats.rollUpRequests).toBeGreaterThanOrEqual(3)
    expect(stack.google.stats.aggregateRequests).toBe(0)
  })

  it('delivers heart points as Google’s weighted zone minutes and active minutes as moderate and vigorous ones', async () => {
    const end = await syncedUntil(runner)
    // What Google answers for each hour, read by its documented meaning: cardio and peak zone sums
    // are 2 a minute already, fat burn 1; light minutes are not active ones. Then the devstack's
    // policy: intensity clamped to [0, 120], duration to [0, 60] in steps of 5, minutes to [0, 60] in steps of 5.
    const expected = new Map<string, string>()
    let cardio = 0
    for (let h = end - 24 * HOUR; h < end; h += HOUR) {
      const start = new Date(h).toISOString()
      const zones = syntheticRollup(runner.google.seed, 'active-zone-minutes', h, h + HOUR) as ActiveZoneMinutesRollupValue | undefined
      if (zones !== undefined) {
        const [fatBurn, high] = [Number(zones.sumInFatBurnHeartZone ?? 0), Number(zones.sumInCardioHeartZone ?? 0) + Number(zones.sumInPeakHeartZone ?? 0)]
        cardio += high
        expected.set(
          `heart_minutes|${start}`,
          JSON.stringify({ intensity: snap(fatBurn + high, [0, 120], 1), duration_min: snap(fatBurn + high / 2, [0, 60], 5) }),
        )
      }
      const levels = syntheticRollup(runner.google.seed, 'active-minutes', h, h + HOUR) as ActiveMinutesRollupValue | undefined
      if (levels !== undefined) {
        const minutes = (levels.activeMinutesRollupByActivityLevel ?? []).reduce(
          (m, l) => m + (l.activityLevel === 'LIGHT' ? 0 : Number(l.activeMinutesSum)),
          0,
        )
        expected.set(`active_minutes|${start}`, JSON.stringify({ minutes: snap(minutes, [0, 60], 5) }))
      }
    }
    expect(cardio).toBeGreaterThan(0)
    await subscriber.waitFor((messages) => count(messages, runner.dataTypes) >= expected.size, 90_000)
    expect(received(runner.dataTypes)).toEqual(Object.fromEntries(expected))
  })
})

/** Google's daily summaries and floors, as a buyer of their cohort streams receives them. */
describe('a deployment on the Google Health API, for Google’s daily summaries and floors', () => {
  const SUMMARIES = ['resting_heart_rate', 'heart_rate_variability', 'vo2_max', 'respiratory_rate', 'floors'] as const
  const now = Date.now()
  // The last whole ISO week (Monday to Monday, UTC) and the last whole month: their cells are the ones checked.
  const today = Math.floor(now / DAY) * DAY
  const week = { startMs: today - (((new Date(today).getUTCDay() + 6) % 7) + 7) * DAY, endMs: 0 }
  week.endMs = week.startMs + 7 * DAY
  const thisMonth = Date.UTC(new Date(now).getUTCFullYear(), new Date(now).getUTCMonth(), 1)
  const month = { startMs: Date.UTC(new Date(now).getUTCFullYear(), new Date(now).getUTCMonth() - 1, 1), endMs: thisMonth }
  // Cells stay open for late data longer than the backfill takes to reach them (at most 40 days after
  // their month began), and the anonymiser's clock is moved past their close once everyone is in.
  const graceHours = 40 * 24
  const dir = mkdtempSync(join(tmpdir(), 'fitstream-health-summaries-'))
  const clockFile = join(dir, 'clock-offset')
  let cohorts: Stack
  let buyer: Subscriber
  const sellers: RegisteredUser[] = []

  beforeAll(async () => {
    // The default policy with noise too small to move a value off its grid (epsilon 5,000 a cell) and
    // k = 2, so three sellers make a cell whose values the test can work out from what Google said.
    const defaultPolicy = fileURLToPath(new URL('../services/anonymizer/policies/default.yaml', import.meta.url))
    const cell = (window: string, fields: Record<string, unknown>) => ({ release: 'cohort', cohort: { window, epsilon: 5000, fields } })
    const policy = {
      extends: defaultPolicy,
      budget: { epsilon: 100_000 },
      cohorts: { k: 2, delta: 1e-3, graceHours, closeEverySeconds: 1 },
      types: {
        resting_heart_rate: cell('week', { bpm: { clamp: [35, 100], round: 1 } }),
        heart_rate_variability: cell('week', { rmssd_ms: { clamp: [5, 150], round: 1 } }),
        floors: cell('week', { count: { clamp: [0, 500], round: 5 } }),
        vo2_max: cell('month', { ml_per_kg_min: { clamp: [20, 70], round: 0.5 } }),
        respiratory_rate: cell('month', { breaths_per_min: { clamp: [8, 25], round: 0.5 } }),
      },
    }
    const policyFile = join(dir, 'policy.json')
    writeFileSync(policyFile, JSON.stringify(policy))
    writeFileSync(clockFile, '0')
    cohorts = await Stack.start({
      redisUrl: redisUrl(),
      prefix: uniquePrefix('health-summaries'),
      backfillDays: Math.ceil((now - month.startMs) / DAY) + 1,
      googleApi: 'health',
      serviceEnv: {
        // Syncs after the backfill re-read a day, not the whole backfill (the stack's default).
        'token-service': { SYNC_LOOKBACK_HOURS: '24' },
        anonymizer: {
          ANONYMIZER_POLICY_FILE: policyFile,
          FITSTREAM_CLOCK_OFFSET_FILE: clockFile,
          NODE_OPTIONS: `--import=${new URL('./clock-offset.mjs', import.meta.url).href}`,
        },
      },
    })
    buyer = await cohorts.startSubscriber()
    for (const n of [1, 2, 3]) sellers.push(await cohorts.registerUser({ seed: `health-summaries-${n}`, dataTypes: [...SUMMARIES] }))
  })

  afterAll(async () => {
    await cohorts?.stop()
    rmSync(dir, { recursive: true, force: true })
  })

  /** Every seller's backfill read (every chunk of it) and anonymised: no anonymize job is left. */
  async function everyoneContributed(): Promise<void> {
    for (const seller of sellers) {
      const backfill = async () =>
        ((await cohorts.api('GET', `/users/${seller.userId}`)).body as { backfill: { chunks: number; done: number } | null }).backfill
      await expect
        .poll(
          async () => {
            const b = await backfill()
            return b !== null && b.chunks > 0 && b.done === b.chunks
          },
          { timeout: 300_000, interval: 500 },
        )
        .toBe(true)
    }
    // Empty twice, seconds apart: a fetch finishing hands its anonymize job on just after it.
    const anonymize = cohorts.queues().queue('anonymize')
    for (const pause of [0, 3_000]) {
      await new Promise((resolve) => setTimeout(resolve, pause))
      await expect
        .poll(async () => Object.values(await anonymize.getJobCounts('waiting', 'active', 'delayed', 'prioritized')).reduce((a, b) => a + b, 0), {
          timeout: 120_000,
          interval: 500,
        })
        .toBe(0)
    }
  }

  /** A cell's mean as the anonymiser releases it: each person's value clamped and on the grid, the mean of those on the grid. */
  const cellMean = (perPerson: readonly number[], [low, high]: [number, number], grid: number): number => {
    const units = perPerson.map((v) => Math.round(Math.min(high, Math.max(low, v)) / grid))
    return Number((Math.round(units.reduce((a, b) => a + b, 0) / units.length) * grid).toFixed(2))
  }
  const mean = (values: readonly number[]): number => values.reduce((a, b) => a + b, 0) / values.length
  /** A seller's days in a window, with Google's values for each (UTC: the sellers' zone). */
  const days = (seller: RegisteredUser, window: { startMs: number; endMs: number }): DailyValues[] =>
    healthDailyValues(seller.google.seed, window.startMs, window.endMs).map((d) => d.values)

  it('delivers weekly and monthly cohort means of what Google says each day, and never a person’s own record', async () => {
    await everyoneContributed()
    // Past the close of last week's cells and last month's, for the anonymiser only.
    const closeAt = Math.max(week.endMs, month.endMs) + graceHours * HOUR
    writeFileSync(clockFile, String(closeAt + 60_000 - Date.now()))

    const expected = new Map<string, { start: string; end: string; values: Record<string, number> }>()
    const weekly = { start: new Date(week.startMs).toISOString(), end: new Date(week.endMs).toISOString() }
    const monthly = { start: new Date(month.startMs).toISOString(), end: new Date(month.endMs).toISOString() }
    expected.set('resting_heart_rate', {
      ...weekly,
      values: {
        bpm: cellMean(
          sellers.map((s) => mean(days(s, week).map((d) => Number(d.dailyRestingHeartRate.beatsPerMinute)))),
          [35, 100],
          1,
        ),
      },
    })
    expected.set('heart_rate_variability', {
      ...weekly,
      values: {
        rmssd_ms: cellMean(
          sellers.map((s) => mean(days(s, week).flatMap((d) => d.dailyHeartRateVariability.averageHeartRateVariabilityMilliseconds ?? []))),
          [5, 150],
          1,
        ),
      },
    })
    const floorsOf = (seller: RegisteredUser): number => {
      let total = 0
      for (let h = week.startMs; h < week.endMs; h += HOUR) {
        total += Number((syntheticRollup(seller.google.seed, 'floors', h, h + HOUR) as FloorsRollupValue | undefined)?.countSum ?? 0)
      }
      return total
    }
    expected.set('floors', { ...weekly, values: { count: cellMean(sellers.map(floorsOf), [0, 500], 5) } })
    expected.set('vo2_max', {
      ...monthly,
      values: {
        ml_per_kg_min: cellMean(
          sellers.map((s) => mean(days(s, month).map((d) => d.dailyVo2Max.vo2Max))),
          [20, 70],
          0.5,
        ),
      },
    })
    expected.set('respiratory_rate', {
      ...monthly,
      values: {
        breaths_per_min: cellMean(
          sellers.map((s) => mean(days(s, month).map((d) => d.dailyRespiratoryRate.breathsPerMinute))),
          [8, 25],
          0.5,
        ),
      },
    })
    expect(expected.get('floors')!.values.count).toBeGreaterThan(0)

    type CohortRecord = { start: string; end: string; contributors: number; values: Record<string, number>; unit: string }
    const cohortRecords = (type: string): CohortRecord[] =>
      buyer.messages.flatMap((m) => {
        const content = m.content as { schema?: string; type?: string; records?: CohortRecord[] }
        return content.schema === 'fitstream.cohorts/1' && content.type === type ? (content.records ?? []) : []
      })
    const checked = (type: string): CohortRecord | undefined =>
      cohortRecords(type).find((r) => r.start === expected.get(type)!.start && r.end === expected.get(type)!.end)
    await buyer.waitFor(() => SUMMARIES.every((type) => checked(type) !== undefined), 120_000)
    for (const type of SUMMARIES) {
      expect([type, checked(type)]).toEqual([type, expect.objectContaining({ ...expected.get(type)!, contributors: 3 })])
    }
    // Cohort-only: nothing of these types went out as a person's own record.
    expect(buyer.messages.flatMap((m) => recordsOf(m.content)).filter((r) => (SUMMARIES as readonly string[]).includes(r.type))).toEqual([])
  })
})
