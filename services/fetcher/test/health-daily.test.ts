import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  ALL_HEALTH_READ_SCOPES,
  FakeGoogle,
  dailyValues,
  healthDailyValues,
  syntheticRollup,
  type FakeUser,
  type FloorsRollupValue,
} from '@fitstream/fake-google'
import { dataType, type DataTypeKey } from '@fitstream/shared'
import { GoogleHealthClient } from '../src/google-health.js'
import type { HealthReadResult } from '../src/health-read.js'
import { normalizeHealth } from '../src/normalize-health.js'

const HOUR = 3_600_000
const DAY = 24 * HOUR
const iso = (ms: number) => new Date(ms).toISOString()

const result = (pages: Partial<Record<DataTypeKey, unknown[]>>, bucketMs = HOUR, daily = false): HealthReadResult => ({
  pages: new Map(Object.entries(pages) as [DataTypeKey, unknown[]][]),
  daily,
  bucketMs,
})
const date = (year: number, month: number, day: number) => ({ year, month, day })
/** A reconciled daily data point, as Google names and writes one. */
const day = (type: string, field: string, value: Record<string, unknown>) => ({
  dataPointName: `users/me/dataTypes/${type}/dataPoints/${Math.random().toString(16).slice(2, 10)}`,
  [field]: value,
})

describe('normalizeHealth on Google’s daily summaries', () => {
  // Auckland is 13 hours ahead in (southern) summer: 24 November begins there at 11:00 UTC on the 23rd.
  const zone = 'Pacific/Auckland'
  const midnight = Date.UTC(2026, 10, 23, 11)
  const window = { startMs: midnight - 2 * HOUR, endMs: midnight + 22 * HOUR }

  it('files each day’s value under the hour its calendar date begins in the person’s zone, in FitStream’s units', () => {
    const { samples, rejected, buckets } = normalizeHealth(
      result({
        // beatsPerMinute is an int64: Google writes it as a decimal string.
        resting_heart_rate: [
          {
            dataPoints: [
              day('daily-resting-heart-rate', 'dailyRestingHeartRate', {
                beatsPerMinute: '58',
                dailyRestingHeartRateMetadata: { calculationMethod: 'ONLY_WITH_AWAKE_DATA' },
                date: date(2026, 11, 24),
              }),
            ],
          },
        ],
        // The day's average RMSSD, not the one of deep sleep alone; entropy is not a millisecond figure.
        heart_rate_variability: [
          {
            dataPoints: [
              day('daily-heart-rate-variability', 'dailyHeartRateVariability', {
                averageHeartRateVariabilityMilliseconds: 41.7,
                deepSleepRootMeanSquareOfSuccessiveDifferencesMilliseconds: 55.2,
                entropy: 3.1,
                nonRemHeartRateBeatsPerMinute: '61',
                date: date(2026, 11, 24),
              }),
            ],
          },
        ],
        // An estimated VO2 max is still the person's; Google's fitness level is derived from it, not sold.
        vo2_max: [
          {
            dataPoints: [
              day('daily-vo2-max', 'dailyVo2Max', {
                vo2Max: 47.3,
                cardioFitnessLevel: 'VERY_GOOD',
                estimated: true,
                vo2MaxCovariance: 1.2,
                date: date(2026, 11, 24),
              }),
            ],
          },
        ],
        respiratory_rate: [{ dataPoints: [day('daily-respiratory-rate', 'dailyRespiratoryRate', { breathsPerMinute: 14.2, date: date(2026, 11, 24) })] }],
      }),
      window,
      zone,
    )
    expect(rejected).toEqual({})
    expect(buckets).toBe(4)
    expect(samples.map((s) => [s.type, iso(s.startMs), iso(s.endMs), s.values, s.unit])).toEqual([
      ['heart_rate_variability', '2026-11-23T11:00:00.000Z', '2026-11-23T12:00:00.000Z', { rmssd_ms: 41.7 }, 'ms'],
      ['respiratory_rate', '2026-11-23T11:00:00.000Z', '2026-11-23T12:00:00.000Z', { breaths_per_min: 14.2 }, 'breaths/min'],
      ['resting_heart_rate', '2026-11-23T11:00:00.000Z', '2026-11-23T12:00:00.000Z', { bpm: 58 }, 'bpm'],
      ['vo2_max', '2026-11-23T11:00:00.000Z', '2026-11-23T12:00:00.000Z', { ml_per_kg_min: 47.3 }, 'ml/kg/min'],
    ])
  })

  it('makes a daily bucket the person’s whole calendar day', () => {
    const days = { startMs: midnight, endMs: midnight + 2 * DAY }
    const { samples } = normalizeHealth(
      result(
        { respiratory_rate: [{ dataPoints: [day('daily-respiratory-rate', 'dailyRespiratoryRate', { breathsPerMinute: 15, date: date(2026, 11, 25) })] }] },
        DAY,
        true,
      ),
      days,
      zone,
    )
    expect(samples.map((s) => [iso(s.startMs), iso(s.endMs)])).toEqual([['2026-11-24T11:00:00.000Z', '2026-11-25T11:00:00.000Z']])
  })

  it('sets aside and counts a day it cannot read, by reason, and keeps every other', () => {
    const rhr = (value: Record<string, unknown>) => day('daily-resting-heart-rate', 'dailyRestingHeartRate', { date: date(2026, 11, 24), ...value })
    const vo2 = (value: Record<string, unknown>) => day('daily-vo2-max', 'dailyVo2Max', { date: date(2026, 11, 24), ...value })
    const { samples, rejected, buckets } = normalizeHealth(
      result({
        resting_heart_rate: [
          {
            dataPoints: [
              rhr({ beatsPerMinute: '57.5' }), // an int64 with a fraction
              rhr({ beatsPerMinute: '57', dailyRestingHeartRateMetadata: { calculationMethod: 'WITH_NAPS' } }), // not a documented method
              rhr({}), // proto3 leaves out a 0, and nobody has a resting heart rate of 0
              rhr({ beatsPerMinute: '57', dailyRestingHeartRateMetadata: { calculationMethod: 'WITH_SLEEP' } }),
              rhr({ beatsPerMinute: '59' }), // a second value for the same date
            ],
          },
        ],
        heart_rate_variability: [
          {
            dataPoints: [
              // A night too short for HRV: Google leaves the average out and sends the rest.
              day('daily-heart-rate-variability', 'dailyHeartRateVariability', { entropy: 2.9, nonRemHeartRateBeatsPerMinute: '60', date: date(2026, 11, 24) }),
              day('daily-heart-rate-variability', 'dailyHeartRateVariability', {
                averageHeartRateVariabilityMilliseconds: 44,
                date: { year: 2026, month: 2, day: 30 },
              }),
              day('daily-heart-rate-variability', 'dailyHeartRateVariability', { averageHeartRateVariabilityMilliseconds: 44 }),
            ],
          },
        ],
        vo2_max: [
          {
            dataPoints: [
              vo2({ vo2Max: 46, cardioFitnessLevel: 'SUPERB' }),
              vo2({ vo2Max: 120 }), // Google's range is 0 to 100 ml/kg/min
              vo2({ vo2Max: '46' }), // a double, never a string
              vo2({ vo2Max: 46, estimated: 'yes' }),
            ],
          },
        ],
        // The day before belongs to the fetch whose window holds its midnight: passed over, not counted.
        respiratory_rate: [{ dataPoints: [day('daily-respiratory-rate', 'dailyRespiratoryRate', { breathsPerMinute: 14, date: date(2026, 11, 23) })] }],
      }),
      window,
      zone,
    )
    expect(samples.map((s) => [s.type, s.values])).toEqual([['resting_heart_rate', { bpm: 57 }]])
    expect(rejected).toEqual({
      'non-integer value': 1,
      'unknown calculation method': 1,
      'missing values': 2,
      'extra point in bucket': 1,
      'malformed day': 2,
      'unknown fitness level': 1,
      'out-of-range value': 1,
      'non-finite value': 1,
      'malformed values': 1,
    })
    expect(buckets).toBe(13)
  })

  it('reads floors from their roll-up: a count, Google’s int64 as a string, and none when left out', () => {
    const t0 = Date.UTC(2026, 10, 23, 10)
    const point = (start: number, value: Record<string, unknown>) => ({ startTime: iso(start), endTime: iso(start + HOUR), ...value })
    const { samples, rejected } = normalizeHealth(
      result({
        floors: [
          {
            rollupDataPoints: [
              point(t0 + 2 * HOUR, { floors: { countSum: 'many' } }),
              point(t0 + HOUR, { floors: {} }),
              point(t0, { floors: { countSum: '12' } }),
            ],
          },
        ],
      }),
      { startMs: t0, endMs: t0 + 3 * HOUR },
    )
    expect(samples.map((s) => [iso(s.startMs), s.values, s.unit])).toEqual([
      ['2026-11-23T10:00:00.000Z', { count: 12 }, 'floors'],
      ['2026-11-23T11:00:00.000Z', { count: 0 }, 'floors'],
    ])
    expect(rejected).toEqual({ 'non-integer value': 1 })
  })
})

describe('GoogleHealthClient reading the daily summaries and floors from the fake Google', () => {
  // Noon UTC on 20 March: 05:00 in Los Angeles, 7 hours behind since daylight saving began on 8 March.
  const now = Date.UTC(2026, 2, 20, 12)
  const zone = 'America/Los_Angeles'
  let fake: FakeGoogle
  let user: FakeUser
  let token: string

  beforeAll(async () => {
    fake = await FakeGoogle.start({ now: () => now })
    user = fake.addUser({ seed: 'health-daily-reader-2', scopes: [...ALL_HEALTH_READ_SCOPES], timeZone: zone })
    token = await fake.accessTokenFor(user)
  })
  afterAll(async () => {
    await fake?.close()
  })

  it('lists each day by the person’s calendar date and reads it as Google means it', async () => {
    const client = new GoogleHealthClient({ rootUrl: fake.rootUrl, timeoutMs: 5_000 })
    const window = { startMs: now - 10 * DAY, endMs: now - DAY }
    const keys = ['resting_heart_rate', 'heart_rate_variability', 'vo2_max', 'respiratory_rate'] as const
    const read = await client.read({ accessToken: token, dataTypes: keys, window, bucketMs: HOUR, timeZone: zone })
    const { samples, rejected } = normalizeHealth(read, window, zone)
    const expected = healthDailyValues(user.seed, window.startMs, window.endMs, zone)
    // 11 to 19 March, less days the watch was off: each began at 07:00 UTC (daylight saving from 8 March).
    expect(expected.length).toBeGreaterThan(5)
    const skipped = expected.filter((d) => d.values.dailyHeartRateVariability.averageHeartRateVariabilityMilliseconds === undefined).length
    expect(rejected).toEqual(skipped === 0 ? {} : { 'missing values': skipped })
    const got = (key: DataTypeKey) => samples.filter((s) => s.type === key).map((s) => [new Date(s.startMs).toISOString(), s.values])
    const at = (d: (typeof expected)[number]) => new Date(Date.UTC(d.date.year, d.date.month - 1, d.date.day, 7)).toISOString()
    expect(got('resting_heart_rate')).toEqual(expected.map((d) => [at(d), { bpm: Number(d.values.dailyRestingHeartRate.beatsPerMinute) }]))
    expect(got('vo2_max')).toEqual(expected.map((d) => [at(d), { ml_per_kg_min: d.values.dailyVo2Max.vo2Max }]))
    expect(got('respiratory_rate')).toEqual(expected.map((d) => [at(d), { breaths_per_min: d.values.dailyRespiratoryRate.breathsPerMinute }]))
    expect(got('heart_rate_variability')).toEqual(
      expected.flatMap((d) => {
        const rmssd = d.values.dailyHeartRateVariability.averageHeartRateVariabilityMilliseconds
        return rmssd === undefined ? [] : [[at(d), { rmssd_ms: rmssd }]]
      }),
    )
    // The fake answers with every documented value, so a test that reads them all reads each kind.
    const methods = new Set(expected.map((d) => d.values.dailyRestingHeartRate.dailyRestingHeartRateMetadata.calculationMethod))
    expect(methods.size).toBe(2)
    expect(dataType('vo2_max').health?.read).toBe('daily')
  })

  it('reads a day only once Google has worked it out, after the night’s sleep', async () => {
    const client = new GoogleHealthClient({ rootUrl: fake.rootUrl, timeoutMs: 5_000 })
    // 20 March began in Los Angeles at 07:00 UTC; at noon UTC it is 05:00 there, before its summaries.
    const today = Date.UTC(2026, 2, 20, 7)
    const window = { startMs: today - HOUR, endMs: now }
    const read = await client.read({ accessToken: token, dataTypes: ['resting_heart_rate'], window, bucketMs: HOUR, timeZone: zone })
    expect(dailyValues(user.seed, { year: 2026, month: 3, day: 20 }), 'the watch was worn on 20 March').toBeDefined()
    expect(normalizeHealth(read, window, zone).samples).toEqual([])
  })

  it('reads floors as Google rolls them up, hour by hour', async () => {
    const client = new GoogleHealthClient({ rootUrl: fake.rootUrl, timeoutMs: 5_000 })
    const window = { startMs: now - 2 * DAY, endMs: now }
    const read = await client.read({ accessToken: token, dataTypes: ['floors'], window, bucketMs: HOUR })
    const { samples, rejected } = normalizeHealth(read, window)
    expect(rejected).toEqual({})
    const expected: [string, { count: number }][] = []
    for (let h = window.startMs; h < window.endMs; h += HOUR) {
      const value = syntheticRollup(user.seed, 'floors', h, h + HOUR, now) as FloorsRollupValue | undefined
      if (value !== undefined) expected.push([iso(h), { count: Number(value.countSum ?? 0) }])
    }
    expect(expected.some(([, v]) => v.count > 0)).toBe(true)
    expect(samples.map((s) => [iso(s.startMs), s.values])).toEqual(expected)
  })
})
