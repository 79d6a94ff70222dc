import { describe, expect, it } from 'vitest'
import type { health_v4 } from 'googleapis/build/src/apis/health/index.js'
import type { FollowsSchema } from '../src/health-schema.js'
import {
  ALL_HEALTH_READ_SCOPES,
  CARDIO_FITNESS_LEVELS,
  DAY_READY_HOURS,
  HEALTH_DAILY_TYPES,
  dailyValues,
  healthDailyValues,
  syntheticRollup,
  type FloorsRollupValue,
} from '../src/index.js'
import { DAY, NOW, expectInvalidFilter, failure, iso, scopeInsufficient, useFakeGoogle } from './health-support.js'

/** The schema check the daily data points go through (health-schema.ts) catches a resting heart rate written as a number (Google's int64 is a string) and a misspelt field. */
type Fails<Check extends false> = Check
export type DailySchemaCheckCatches = [
  Fails<FollowsSchema<{ dailyRestingHeartRate: { beatsPerMinute: number } }, health_v4.Schema$DataPoint>>,
  Fails<FollowsSchema<{ dailyVo2Max: { vo2max: number } }, health_v4.Schema$DataPoint>>,
  Fails<FollowsSchema<{ dailyHeartRateVariability: { averageHeartRateVariabilityMillis: number } }, health_v4.Schema$DataPoint>>,
]

const google = useFakeGoogle({ seed: 'health-daily-1' })
const date = (ms: number) => new Date(ms).toISOString().slice(0, 10)

describe('the fake’s daily summaries (daily-resting-heart-rate, daily-heart-rate-variability, daily-vo2-max, daily-respiratory-rate)', () => {
  it('lists one data point per calendar date, newest first, with the values the seed gives that date', async () => {
    const [from, before] = [date(NOW - 14 * DAY), date(NOW - DAY)]
    const pages = await google.reconcileAll('daily-resting-heart-rate', {
      filter: `daily_resting_heart_rate.date >= "${from}" AND daily_resting_heart_rate.date < "${before}"`,
    })
    const listed = pages.flatMap((p) => p.dataPoints ?? []).map((p) => p.dailyRestingHeartRate)
    const expected = healthDailyValues(google.user.seed, Date.parse(from), Date.parse(before)).reverse()
    expect(expected.length).toBeGreaterThan(8)
    expect(listed).toEqual(expected.map((d) => d.values.dailyRestingHeartRate))
    // An int64, so a decimal string; a method Google documents.
    for (const day of listed) {
      expect(day?.beatsPerMinute).toMatch(/^\d+$/)
      expect(['WITH_SLEEP', 'ONLY_WITH_AWAKE_DATA']).toContain(day?.dailyRestingHeartRateMetadata?.calculationMethod)
    }
  })

  it('pages through the days without repeating or skipping one', async () => {
    const filter = `daily_vo2_max.date >= "${date(NOW - 20 * DAY)}" AND daily_vo2_max.date < "${date(NOW)}"`
    const all = (await google.reconcileAll('daily-vo2-max', { filter })).flatMap((p) => p.dataPoints ?? [])
    const paged = await google.reconcileAll('daily-vo2-max', { filter, pageSize: 3 })
    expect(paged.length).toBeGreaterThan(3)
    expect(paged.flatMap((p) => p.dataPoints ?? [])).toEqual(all)
  })

  it('has a day only once its night’s sleep is over: DAY_READY_HOURS after its local midnight', async () => {
    // The fake's noon UTC is 05:00 in Los Angeles: 20 March is not ready there until 10:00, 19 March is.
    expect(DAY_READY_HOURS).toBe(10)
    const west = google.fake.addUser({ seed: 'health-daily-west', scopes: [...ALL_HEALTH_READ_SCOPES], timeZone: 'America/Los_Angeles' })
    for (const day of [19, 20]) expect(dailyValues(west.seed, { year: 2026, month: 3, day }), `a value for ${day} March`).toBeDefined()
    const { data } = await google.reconcile('daily-respiratory-rate', { filter: 'daily_respiratory_rate.date >= "2026-03-19"' }, await google.accessToken(west))
    expect((data.dataPoints ?? []).map((p) => p.dailyRespiratoryRate?.date)).toEqual([{ year: 2026, month: 3, day: 19 }])
  })

  it('writes every value Google documents across users and days, and leaves out what proto3 JSON leaves out', () => {
    const levels = new Set<string>()
    const methods = new Set<string>()
    let [estimated, withoutHrv, withoutWatch] = [0, 0, 0]
    for (let n = 0; n < 40; n++) {
      for (let d = 1; d <= 28; d++) {
        const values = dailyValues(`health-daily-range-${n}`, { year: 2026, month: 2, day: d })
        if (values === undefined) {
          withoutWatch++
          continue
        }
        levels.add(values.dailyVo2Max.cardioFitnessLevel)
        methods.add(values.dailyRestingHeartRate.dailyRestingHeartRateMetadata.calculationMethod)
        if (values.dailyVo2Max.estimated === true) estimated++
        if (values.dailyHeartRateVariability.averageHeartRateVariabilityMilliseconds === undefined) withoutHrv++
        expect('estimated' in values.dailyVo2Max ? values.dailyVo2Max.estimated : true).toBe(true)
        expect(values.dailyVo2Max.vo2Max).toBeGreaterThan(0)
        expect(values.dailyVo2Max.vo2Max).toBeLessThanOrEqual(100)
      }
    }
    expect([...levels].sort()).toEqual([...CARDIO_FITNESS_LEVELS].sort())
    expect([...methods].sort()).toEqual(['ONLY_WITH_AWAKE_DATA', 'WITH_SLEEP'])
    expect(Math.min(estimated, withoutHrv, withoutWatch)).toBeGreaterThan(0)
  })

  it('filters by date only: a time of day or an instant field is refused as Google refuses it', async () => {
    const withTime = `daily_heart_rate_variability.date >= "${date(NOW - DAY)}T00:00:00"`
    await expectInvalidFilter(google.reconcile('daily-heart-rate-variability', { filter: withTime }), withTime, /date literal/)
    const instant = `daily_heart_rate_variability.sample_time.physical_time >= "${iso(NOW - DAY)}"`
    await expectInvalidFilter(google.reconcile('daily-heart-rate-variability', { filter: instant }), instant, /cannot be filtered by/)
  })

  it('is not rolled up: a roll-up of a daily type is a 400 naming the parent', async () => {
    const refused = await failure(google.rollUp('daily-resting-heart-rate', { range: { startTime: iso(NOW - DAY), endTime: iso(NOW) }, windowSize: '3600s' }))
    expect(refused.status).toBe(400)
    expect(refused.error.message).toMatch(/list its data points/)
  })

  it('guards each type by its own scope: VO2 max by activity and fitness, the others by health metrics', async () => {
    const activityOnly = google.fake.addUser({
      seed: 'health-daily-activity-only',
      scopes: ['https://www.googleapis.com/auth/googlehealth.activity_and_fitness.readonly'],
    })
    const token = await google.accessToken(activityOnly)
    const filter = (type: string) => `${type.replaceAll('-', '_')}.date >= "${date(NOW - 3 * DAY)}"`
    expect((await google.reconcile('daily-vo2-max', { filter: filter('daily-vo2-max') }, token)).status).toBe(200)
    for (const type of HEALTH_DAILY_TYPES.filter((t) => t.name !== 'daily-vo2-max')) {
      const refused = await failure(google.reconcile(type.name, { filter: filter(type.name) }, token))
      expect([type.name, refused.status]).toEqual([type.name, 403])
      expect(refused.error).toMatchObject(scopeInsufficient('google.devicesandservices.health.v4.DataPointsService.ReconcileDataPoints'))
    }
  })
})

describe('the fake’s floors roll-up', () => {
  it('sums floors climbed per window as an int64 string, and leaves a window with none as an empty value', async () => {
    const start = NOW - 2 * DAY
    const { data } = await google.rollUp('floors', { range: { startTime: iso(start), endTime: iso(NOW) }, windowSize: '3600s' })
    const points = data.rollupDataPoints ?? []
    expect(points.length).toBeGreaterThan(0)
    for (const point of points) {
      const expected = syntheticRollup(google.user.seed, 'floors', Date.parse(point.startTime!), Date.parse(point.endTime!), NOW) as FloorsRollupValue
      expect(point.floors).toEqual(expected)
      if (point.floors?.countSum !== undefined) expect(point.floors.countSum).toMatch(/^[1-9]\d*$/)
    }
    expect(points.some((p) => p.floors?.countSum !== undefined)).toBe(true)
  })
})
