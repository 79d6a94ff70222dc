import { describe, expect, it } from 'vitest'
import { DATA_TYPES, UpstreamError, dataType, type DataTypeKey } from '@fitstream/shared'
import type { HealthReadResult } from '../src/health-read.js'
import { splitWindow } from '../src/windows.js'
import { normalizeHealth, reduceReadings } from '../src/normalize-health.js'

const HOUR = 3_600_000
const DAY = 24 * HOUR
const t0 = Date.UTC(2026, 10, 23, 10)
const window = { startMs: t0, endMs: t0 + 3 * HOUR }
const iso = (ms: number) => new Date(ms).toISOString()
const point = (start: number, value: Record<string, unknown>) => ({ startTime: iso(start), endTime: iso(start + HOUR), ...value })
/** What the client hands over: readings pages reduced as they come, every other page as Google answered. */
const result = (pages: Partial<Record<DataTypeKey, unknown[]>>, daily = false, bucketMs = daily ? DAY : HOUR): HealthReadResult => ({
  pages: new Map(
    (Object.entries(pages) as [DataTypeKey, unknown[]][]).map(([key, list]) => [
      key,
      dataType(key).health?.read === 'samples' ? list.map((page) => (asReduced(page) ? page : reduceReadings(key, page))) : list,
    ]),
  ),
  daily,
  bucketMs,
})
const asReduced = (page: unknown): boolean => (page as { kind?: unknown } | null)?.kind === 'readings'

describe('normalizeHealth', () => {
  it('orders samples of one window by type as the locale would (the type keys sort alike by code point)', () => {
    const keys = DATA_TYPES.map((t) => t.key)
    expect([...keys].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))).toEqual([...keys].sort((a, b) => a.localeCompare(b)))
  })

  it('reads each type’s roll-up into FitStream’s fields and units, one sample per window, oldest first', () => {
    const { samples, rejected, buckets } = normalizeHealth(
      result({
        // Newest first, as Google lists them; a window with nothing recorded has no value.
        steps: [{ rollupDataPoints: [point(t0 + 2 * HOUR, {}), point(t0 + HOUR, { steps: { countSum: '1250' } }), point(t0, { steps: { countSum: '532' } })] }],
        heart_rate: [{ rollupDataPoints: [point(t0, { heartRate: { beatsPerMinuteAvg: 71.5, beatsPerMinuteMax: 110, beatsPerMinuteMin: 52 } })] }],
        distance: [{ rollupDataPoints: [point(t0, { distance: { millimetersSum: '412500' } })] }],
        heart_minutes: [{ rollupDataPoints: [point(t0, { activeZoneMinutes: { sumInFatBurnHeartZone: '15', sumInCardioHeartZone: '28' } })] }],
        active_minutes: [
          {
            rollupDataPoints: [
              point(t0, {
                activeMinutes: {
                  activeMinutesRollupByActivityLevel: [
                    { activityLevel: 'LIGHT', activeMinutesSum: '40' },
                    { activityLevel: 'MODERATE', activeMinutesSum: '9' },
                    { activityLevel: 'VIGOROUS', activeMinutesSum: '3' },
                  ],
                },
              }),
            ],
          },
        ],
        calories: [{ rollupDataPoints: [point(t0, { totalCalories: { kcalSum: 98.25 } })] }],
      }),
      window,
    )
    expect(rejected).toEqual({})
    expect(buckets).toBe(8)
    const byType = (type: string) => samples.filter((s) => s.type === type).map((s) => ({ startMs: s.startMs, endMs: s.endMs, values: s.values, unit: s.unit }))
    expect(byType('steps')).toEqual([
      { startMs: t0, endMs: t0 + HOUR, values: { count: 532 }, unit: 'steps' },
      { startMs: t0 + HOUR, endMs: t0 + 2 * HOUR, values: { count: 1250 }, unit: 'steps' },
    ])
    expect(byType('heart_rate')[0]?.values).toEqual({ avg: 71.5, max: 110, min: 52 })
    expect(byType('distance')[0]?.values).toEqual({ metres: 412.5 })
    // 15 fat-burn minutes and 14 cardio minutes: Google counts the cardio ones twice already (28
    // active zone minutes), so the heart points are 15 + 28 and the minutes 15 + 14; the peak zone left out is 0.
    expect(byType('heart_minutes')[0]?.values).toEqual({ intensity: 43, duration_min: 29 })
    // Active minutes are moderate and vigorous ones: the 40 light minutes are not counted.
    expect(byType('active_minutes')[0]?.values).toEqual({ minutes: 12 })
    expect(byType('calories')[0]?.values).toEqual({ kcal: 98.25 })
    expect(samples.every((s) => s.revision === 0 && s.origin === undefined)).toBe(true)
    expect(samples.map((s) => s.startMs)).toEqual([...samples.map((s) => s.startMs)].sort((a, b) => a - b))
  })

  it('reads a zero Google left out as 0, but sets aside an average that is missing', () => {
    const { samples, rejected } = normalizeHealth(
      result({
        steps: [{ rollupDataPoints: [point(t0, { steps: {} })] }],
        heart_rate: [{ rollupDataPoints: [point(t0, { heartRate: { beatsPerMinuteAvg: 70 } })] }],
      }),
      window,
    )
    expect(samples).toMatchObject([{ type: 'steps', values: { count: 0 } }])
    expect(rejected).toEqual({ 'missing values': 1 })
  })

  it('sets aside and counts malformed, out-of-range and duplicate windows and uses the rest', () => {
    const { samples, rejected } = normalizeHealth(
      result({
        steps: [
          {
            rollupDataPoints: [
              point(t0, { steps: { countSum: '10' } }),
              point(t0, { steps: { countSum: '11' } }),
              point(t0 + HOUR, { steps: { countSum: '1e3' } }),
              point(t0 + 2 * HOUR, { steps: { countSum: '-4' } }),
              point(t0 - HOUR, { steps: { countSum: '5' } }),
              { startTime: 'yesterday', endTime: iso(t0), steps: { countSum: '5' } },
              { startTime: iso(t0 + HOUR), endTime: iso(t0), steps: { countSum: '5' } },
              null,
              point(t0 + HOUR, { steps: 'many' }),
            ],
          },
        ],
        calories: [{ rollupDataPoints: [point(t0, { totalCalories: { kcalSum: 'NaN' } })] }],
      }),
      window,
    )
    expect(samples).toMatchObject([{ type: 'steps', startMs: t0, values: { count: 10 } }])
    expect(rejected).toEqual({
      'extra point in bucket': 1,
      'non-integer value': 1,
      'negative value': 1,
      'window outside range': 1,
      'malformed window': 3,
      'malformed values': 1,
      'non-finite value': 1,
    })
  })

  it('counts peak-zone minutes as cardio ones, and sets aside a window with an activity level it does not know', () => {
    const levels = (...list: Record<string, unknown>[]) => ({ activeMinutes: { activeMinutesRollupByActivityLevel: list } })
    const { samples, rejected } = normalizeHealth(
      result({
        // 4 fat-burn, 3 cardio and 2 peak minutes: 4 + 6 + 4 active zone minutes.
        heart_minutes: [
          { rollupDataPoints: [point(t0, { activeZoneMinutes: { sumInFatBurnHeartZone: '4', sumInCardioHeartZone: '6', sumInPeakHeartZone: '4' } })] },
        ],
        active_minutes: [
          {
            rollupDataPoints: [
              point(t0 + 2 * HOUR, levels({ activityLevel: 'LIGHT', activeMinutesSum: '25' })),
              // A level Google added later, and one left out (proto3 JSON's unspecified level).
              point(t0 + HOUR, levels({ activityLevel: 'VERY_VIGOROUS', activeMinutesSum: '5' }, { activityLevel: 'MODERATE', activeMinutesSum: '5' })),
              point(t0, levels({ activeMinutesSum: '7' })),
            ],
          },
        ],
      }),
      window,
    )
    expect(samples.map((s) => [s.type, s.startMs, s.values])).toEqual([
      ['heart_minutes', t0, { intensity: 14, duration_min: 9 }],
      // A light stroll alone is no active minute.
      ['active_minutes', t0 + 2 * HOUR, { minutes: 0 }],
    ])
    expect(rejected).toEqual({ 'unknown activity level': 2 })
  })

  it('finds an answer unusable when a page is not an object or its list is not a list, and reads an empty page as no data', () => {
    const unusable = (page: unknown) => () => normalizeHealth(result({ steps: [page] }), window)
    expect(unusable('<html>Service Unavailable</html>')).toThrow(/not a JSON object but 32 characters of text/)
    expect(unusable([])).toThrow(/not a JSON object/)
    expect(unusable({ rollupDataPoints: {} })).toThrow(/no data point list/)
    expect(unusable(null)).toThrow(expect.objectContaining({ code: 'FST_ERR_GOOGLE_MALFORMED', permanent: true }))
    expect(unusable(null)).toThrow(UpstreamError)
    expect(normalizeHealth(result({ steps: [{}] }), window)).toEqual({ samples: [], rejected: {}, buckets: 0 })
  })

  it('reads daily roll-ups’ civil times as local days in the person’s time zone, 23 hours long when clocks go forward', () => {
    const zone = 'Europe/Helsinki'
    // Helsinki moves from UTC+2 to UTC+3 at 03:00 local on 29 March 2026.
    const start = Date.UTC(2026, 2, 27, 22)
    const day = (d: number) => ({ date: { year: 2026, month: 3, day: d } })
    const { samples, rejected } = normalizeHealth(
      result(
        {
          steps: [
            {
              rollupDataPoints: [
                { civilStartTime: day(29), civilEndTime: day(30), steps: { countSum: '9000' } },
                { civilStartTime: day(28), civilEndTime: day(29), steps: { countSum: '8000' } },
                { civilStartTime: { date: { year: 2026, month: 13, day: 1 } }, civilEndTime: day(29), steps: { countSum: '1' } },
              ],
            },
          ],
        },
        true,
      ),
      { startMs: start, endMs: start + 3 * DAY },
      zone,
    )
    expect(rejected).toEqual({ 'malformed window': 1 })
    expect(samples.map((s) => [s.startMs, s.endMs, s.values.count])).toEqual([
      [start, start + DAY, 8000],
      [start + DAY, start + 2 * DAY - HOUR, 9000],
    ])
  })

  it('knows how to read every type the catalogue says the Health API has', () => {
    for (const spec of DATA_TYPES.filter((t) => 'health' in t)) {
      expect(() => normalizeHealth(result({ [spec.key]: [{}] }), window), spec.key).not.toThrow()
    }
    expect(() => normalizeHealth(result({ activity: [{}] }), window)).toThrow(/no activity data/)
    expect(() => normalizeHealth(result({ workouts: [{ dataPoints: 'none' }] }), window)).toThrow(/reconcile response has no data point list/)
  })
})

describe('normalizeHealth: sleep sessions', () => {
  const min = 60_000
  const segment = (type: string, start: number, durationMs: number) => ({ type, startTime: iso(start), endTime: iso(start + durationMs) })
  const session = (name: string, start: number, end: number, extra: Record<string, unknown>) => ({
    dataPointName: `users/1/dataTypes/sleep/dataPoints/${name}`,
    // Google marks a session whose stages are worked out with `processed: true`.
    sleep: { interval: { startTime: iso(start), endTime: iso(end) }, type: 'STAGES', metadata: { processed: true }, ...extra },
  })
  const zeros = { awake_min: 0, sleep_min: 0, out_of_bed_min: 0, light_min: 0, deep_min: 0, rem_min: 0 }

  it('puts each stage’s minutes in full into the bucket it starts in, as the Fitness API does, and passes over stages of other windows', () => {
    // A night from 09:20 to 11:30 against the window 10:00–13:00.
    const night = session('a', t0 - 40 * min, t0 + 90 * min, {
      stages: [
        segment('AWAKE', t0 - 40 * min, 10 * min), // before the window: another fetch's
        segment('LIGHT', t0 - 30 * min, 40 * min), // starts before the window, ends in it: another fetch's
        segment('DEEP', t0 + 10 * min, 35 * min),
        segment('REM', t0 + 45 * min, 20 * min), // 10:45–11:05 counts in full at 10:00
        segment('LIGHT', t0 + 65 * min, 25 * min),
      ],
      outOfBedSegments: [{ startTime: iso(t0 + 70 * min), endTime: iso(t0 + 75 * min) }],
    })
    const { samples, rejected, buckets } = normalizeHealth(result({ sleep: [{ dataPoints: [night] }] }), window)
    expect(rejected).toEqual({})
    expect(buckets).toBe(1)
    expect(samples).toEqual([
      { type: 'sleep', startMs: t0, endMs: t0 + HOUR, values: { ...zeros, deep_min: 35, rem_min: 20 }, unit: 'min', revision: 0 },
      { type: 'sleep', startMs: t0 + HOUR, endMs: t0 + 2 * HOUR, values: { ...zeros, light_min: 25, out_of_bed_min: 5 }, unit: 'min', revision: 0 },
    ])
  })

  it('reads classic sleep’s stages, counts a session without stages as asleep, and counts a session listed on two pages once', () => {
    const classic = session('c', t0, t0 + 30 * min, {
      type: 'CLASSIC',
      stages: [segment('ASLEEP', t0, 20 * min), segment('RESTLESS', t0 + 20 * min, 10 * min)],
    })
    const nap = session('n', t0 + 2 * HOUR, t0 + 2 * HOUR + 25 * min, { metadata: { processed: true, nap: true } })
    const { samples, rejected } = normalizeHealth(result({ sleep: [{ dataPoints: [nap, classic], nextPageToken: 'p2' }, { dataPoints: [classic] }] }), window)
    expect(rejected).toEqual({})
    expect(samples.map((s) => [s.startMs, s.values])).toEqual([
      [t0, { ...zeros, sleep_min: 20, awake_min: 10 }],
      [t0 + 2 * HOUR, { ...zeros, sleep_min: 25 }],
    ])
  })

  it('sets aside malformed sessions and segments, and unknown stages, using the rest', () => {
    const good = session('g', t0, t0 + HOUR, {
      stages: [
        segment('DEEP', t0, 30 * min),
        segment('SNORING', t0 + 30 * min, 10 * min),
        { type: 'REM', startTime: 'yesterday', endTime: iso(t0 + 50 * min) },
        segment('REM', t0 + 50 * min, 20 * min), // runs past the session's end
      ],
    })
    const { samples, rejected } = normalizeHealth(
      result({
        sleep: [
          {
            dataPoints: [
              good,
              { sleep: { interval: {} } },
              { steps: {} },
              7,
              session('x', t0, t0 + HOUR, { stages: {} }),
              // `processed` as a string, and metadata that is not an object.
              session('s', t0, t0 + HOUR, { metadata: { processed: 'true' } }),
              session('m', t0, t0 + HOUR, { metadata: [] }),
            ],
          },
        ],
      }),
      window,
    )
    expect(rejected).toEqual({ 'unknown category': 1, 'malformed segment': 1, 'segment outside session': 1, 'malformed session': 6 })
    expect(samples.map((s) => s.values)).toEqual([{ ...zeros, deep_min: 30 }])
  })

  it('counts a stage that starts in the window and runs past its end in full, and leaves a night still being staged for a later sync', () => {
    const late = session('l', t0 + 2 * HOUR, t0 + 5 * HOUR, {
      stages: [segment('DEEP', t0 + 2 * HOUR + 50 * min, 40 * min), segment('REM', t0 + 3 * HOUR + 30 * min, 20 * min)],
    })
    // proto3 JSON never writes `processed: false`: a night still being staged comes without the field,
    // or without metadata at all, and its stages so far must not be counted.
    const staging = session('p', t0, t0 + 2 * HOUR, { metadata: { mainSleep: true }, stages: [segment('LIGHT', t0, 30 * min)] })
    const bare = session('b', t0 + 20 * min, t0 + 50 * min, { metadata: undefined })
    const { samples, rejected } = normalizeHealth(result({ sleep: [{ dataPoints: [late, staging, bare] }] }), window)
    expect(rejected).toEqual({})
    expect(samples.map((s) => [s.startMs, s.values])).toEqual([[t0 + 2 * HOUR, { ...zeros, deep_min: 40 }]])
  })

  it('sets aside stages named like JavaScript’s own object properties as unknown, and ignores problems in stages of other windows', () => {
    const night = session('j', t0 - HOUR, t0 + HOUR, {
      stages: [
        segment('constructor', t0, 10 * min),
        segment('__proto__', t0 + 10 * min, 10 * min),
        segment('toString', t0 + 20 * min, 10 * min),
        segment('hasOwnProperty', t0 + 30 * min, 10 * min),
        segment('SNORING', t0 - HOUR, 10 * min), // before the window: another fetch's problem
        segment('LIGHT', t0 + 40 * min, 10 * min),
      ],
    })
    const { samples, rejected } = normalizeHealth(result({ sleep: [{ dataPoints: [night] }] }), window)
    expect(rejected).toEqual({ 'unknown category': 4 })
    expect(samples.map((s) => s.values)).toEqual([{ ...zeros, light_min: 10 }])
  })

  it('cuts local days at local midnight when clocks go back, with no empty day at the end', () => {
    const zone = 'America/New_York'
    // 1 November 2026: New York goes from UTC-4 to UTC-5 at 02:00 local.
    const start = Date.UTC(2026, 9, 31, 4)
    const end = Date.UTC(2026, 10, 2, 5)
    expect(splitWindow({ startMs: start, endMs: end }, DAY, DAY, zone)).toEqual([
      { startMs: start, endMs: start + DAY },
      { startMs: start + DAY, endMs: end },
    ])
    const night = session('b', start + DAY - 2 * HOUR, start + DAY + 8 * HOUR, { stages: [segment('DEEP', start + DAY + 3 * HOUR, HOUR)] })
    const { samples } = normalizeHealth(result({ sleep: [{ dataPoints: [night] }] }, true), { startMs: start, endMs: end }, zone)
    expect(samples.map((s) => [s.startMs, s.endMs - s.startMs, s.values.deep_min])).toEqual([[start + DAY, 25 * HOUR, 60]])
  })

  it('buckets local days in the person’s time zone, and finds an unusable list answer unusable', () => {
    const zone = 'America/New_York'
    const midnight = Date.UTC(2026, 10, 23, 5) // 00:00 in New York (UTC-5)
    const night = session('d', midnight - 2 * HOUR, midnight + 6 * HOUR, {
      stages: [segment('LIGHT', midnight - 2 * HOUR, HOUR), segment('DEEP', midnight - HOUR, 2 * HOUR), segment('REM', midnight + HOUR, 30 * min)],
    })
    const { samples } = normalizeHealth(result({ sleep: [{ dataPoints: [night] }] }, true), { startMs: midnight - DAY, endMs: midnight + DAY }, zone)
    expect(samples.map((s) => [s.startMs, s.endMs, s.values.light_min, s.values.deep_min, s.values.rem_min])).toEqual([
      [midnight - DAY, midnight, 60, 120, 0],
      [midnight, midnight + DAY, 0, 0, 30],
    ])
    expect(() => normalizeHealth(result({ sleep: [{ dataPoints: {} }] }), window)).toThrow(/reconcile response has no data point list/)
    expect(() => normalizeHealth(result({ sleep: ['<html>'] }), window)).toThrow(/reconcile response is not a JSON object/)
  })
})

describe('normalizeHealth: workouts', () => {
  const min = 60_000
  const workout = (name: string, type: string, start: number, end: number, extra: Record<string, unknown> = {}) => ({
    dataPointName: `users/1/dataTypes/exercise/dataPoints/${name}`,
    exercise: { interval: { startTime: iso(start), endTime: iso(end) }, exerciseType: type, displayName: type, ...extra },
  })
  const zeros = { walking_min: 0, running_min: 0, cycling_min: 0, swimming_min: 0, strength_min: 0, other_min: 0 }
  const read = (...pages: unknown[]) => normalizeHealth(result({ workouts: pages }), window)

  it('shares each workout’s minutes among the buckets it overlaps, by exercise group, and leaves buckets without one out', () => {
    // Window 10:00–13:00. A run 10:40–11:20, a hike 09:30–10:30 (its first half is another fetch's), a swim 12:50–13:30.
    const { samples, rejected, buckets } = read({
      dataPoints: [
        workout('s', 'SWIMMING', t0 + 170 * min, t0 + 210 * min),
        workout('r', 'RUNNING', t0 + 40 * min, t0 + 80 * min),
        workout('h', 'HIKING', t0 - 30 * min, t0 + 30 * min),
      ],
    })
    expect(rejected).toEqual({})
    expect(buckets).toBe(3)
    expect(samples).toEqual([
      { type: 'workouts', startMs: t0, endMs: t0 + HOUR, values: { ...zeros, walking_min: 30, running_min: 20 }, unit: 'min', revision: 0 },
      { type: 'workouts', startMs: t0 + HOUR, endMs: t0 + 2 * HOUR, values: { ...zeros, running_min: 20 }, unit: 'min', revision: 0 },
      { type: 'workouts', startMs: t0 + 2 * HOUR, endMs: t0 + 3 * HOUR, values: { ...zeros, swimming_min: 10 }, unit: 'min', revision: 0 },
    ])
  })

  it('counts only active time, shared evenly over the workout, and groups Google’s exercise types, counting one it does not know as other', () => {
    // 40 minutes of cycling with a 10-minute pause: 30 active minutes over 10:30–11:10.
    const ride = workout('b', 'OUTDOOR_BIKE', t0 + 30 * min, t0 + 70 * min, { activeDuration: '1800s' })
    const at = (m: number) => t0 + 2 * HOUR + m * min
    const { samples, rejected } = read({
      dataPoints: [
        ride,
        workout('w', 'WALKING', at(0), at(5), { activeDuration: '300.000s' }),
        workout('l', 'WEIGHTS', at(5), at(10)),
        workout('t', 'STRENGTH_TRAINING', at(10), at(12)),
        workout('y', 'YOGA', at(12), at(15)),
        workout('m', 'TREADMILL', at(15), at(18)),
        workout('p', 'SWIMMING_POOL', at(18), at(20)),
        workout('a', 'ASSAULT_BIKE', at(20), at(21)),
        // Types of health/v4beta's longer list.
        workout('o', 'SWIMMING_OPEN_WATER', at(21), at(22)),
        workout('k', 'MOUNTAIN_BIKE', at(22), at(23)),
        workout('q', 'TREADMILL_WALK', at(23), at(24)),
        // One Google adds later, and EXERCISE_TYPE_UNSPECIFIED, which proto3 JSON leaves out: other, and counted.
        workout('n', 'UNDERWATER_HOCKEY', at(24), at(30)),
        { dataPointName: 'users/1/dataTypes/exercise/dataPoints/x', exercise: { interval: { startTime: iso(at(30)), endTime: iso(at(31)) } } },
      ],
    })
    expect(rejected).toEqual({ 'unknown exercise type': 2 })
    expect(samples.map((s) => [s.startMs, s.values])).toEqual([
      [t0, { ...zeros, cycling_min: 22.5 }],
      [t0 + HOUR, { ...zeros, cycling_min: 7.5 }],
      [t0 + 2 * HOUR, { walking_min: 6, running_min: 3, cycling_min: 2, swimming_min: 3, strength_min: 7, other_min: 10 }],
    ])
  })

  it('sets aside malformed and implausible workouts and counts one listed on two pages once, using the rest', () => {
    const run = workout('r', 'RUNNING', t0, t0 + 20 * min)
    const { samples, rejected } = read(
      {
        dataPoints: [
          run,
          workout('a', 'RUNNING', t0, t0 + 10 * min, { activeDuration: '15m' }),
          workout('b', 'RUNNING', t0, t0 + 10 * min, { activeDuration: '900s' }), // longer than its interval
          workout('o', 'constructor', t0 + 20 * min, t0 + 30 * min, { activeDuration: '600.5s' }), // rounded up: all of it, as other
          workout('c', 'BIKING', t0 - 2 * DAY, t0 + 10 * min), // longer than a day: passed over, not an error
          { exercise: { interval: { startTime: iso(t0) }, exerciseType: 'RUNNING' } },
          { exercise: { interval: { startTime: iso(t0), endTime: iso(t0 + min) }, exerciseType: 3 } },
          { steps: {} },
          7,
        ],
        nextPageToken: 'p2',
      },
      { dataPoints: [run] },
    )
    expect(rejected).toEqual({ 'malformed session': 5, 'active time outside session': 1, 'unknown exercise type': 1 })
    expect(samples.map((s) => s.values)).toEqual([{ ...zeros, running_min: 20, other_min: 10 }])
  })

  it('passes over a workout longer than a day without calling the answer unusable, even when it is all there is', () => {
    const { samples, rejected, buckets } = read({ dataPoints: [workout('left-running', 'HIKING', t0 - DAY, t0 + 30 * min)] })
    expect(rejected).toEqual({})
    expect(samples).toEqual([])
    expect(buckets).toBe(1)
  })

  it('passes over workouts wholly outside the window, which other fetches read', () => {
    const { samples, rejected } = read({
      dataPoints: [workout('e', 'RUNNING', t0 - HOUR, t0), workout('l', 'RUNNING', t0 + 3 * HOUR, t0 + 4 * HOUR)],
    })
    expect(rejected).toEqual({})
    expect(samples).toEqual([])
  })

  it('buckets local days in the person’s time zone', () => {
    const zone = 'Asia/Tokyo'
    const midnight = Date.UTC(2026, 10, 22, 15) // 00:00 on 23 November in Tokyo (UTC+9)
    const late = workout('n', 'RUNNING', midnight - 10 * min, midnight + 20 * min)
    const { samples } = normalizeHealth(result({ workouts: [{ dataPoints: [late] }] }, true), { startMs: midnight - DAY, endMs: midnight + DAY }, zone)
    expect(samples.map((s) => [s.startMs, s.endMs, s.values.running_min])).toEqual([
      [midnight - DAY, midnight, 10],
      [midnight, midnight + DAY, 20],
    ])
  })
})

describe('splitWindow', () => {
  it('cuts a long window into whole buckets no longer than Google allows', () => {
    expect(splitWindow({ startMs: 0, endMs: 30 * DAY }, HOUR, 14 * DAY)).toEqual([
      { startMs: 0, endMs: 14 * DAY },
      { startMs: 14 * DAY, endMs: 28 * DAY },
      { startMs: 28 * DAY, endMs: 30 * DAY },
    ])
    expect(splitWindow({ startMs: 0, endMs: 5 * HOUR }, HOUR, 14 * DAY)).toEqual([{ startMs: 0, endMs: 5 * HOUR }])
  })

  it('cuts local days at local midnight across a daylight-saving change', () => {
    // Local midnight in Helsinki on 20 March 2026 (UTC+2); clocks go forward on the 29th.
    const start = Date.UTC(2026, 2, 19, 22)
    const parts = splitWindow({ startMs: start, endMs: start + 20 * DAY - HOUR }, DAY, 14 * DAY, 'Europe/Helsinki')
    // 3 April, 00:00 local, is 21:00 UTC the day before: one hour earlier than 14 × 24 hours on.
    expect(parts.map((p) => p.endMs)).toEqual([start + 14 * DAY - HOUR, start + 20 * DAY - HOUR])
  })
})

describe('normalizeHealth: single readings', () => {
  const reading = (name: string, field: string, value: Record<string, unknown>, timeMs: number) => ({
    dataPointName: `users/1/dataTypes/x/dataPoints/${name}`,
    [field]: { ...value, sampleTime: { physicalTime: iso(timeMs), utcOffset: '0s' } },
  })
  const spo2 = (name: string, percentage: unknown, timeMs: number) => reading(name, 'oxygenSaturation', { percentage }, timeMs)

  it('summarises each bucket’s readings as average, highest and lowest, in FitStream’s units', () => {
    const height = (name: string, mm: string, timeMs: number) => reading(name, 'height', { heightMillimeters: mm }, timeMs)
    // Weight (grams, a double) and body fat (percent) come as readings too: the roll-up has their average only.
    const weight = (name: string, grams: unknown, timeMs: number) => reading(name, 'weight', { weightGrams: grams }, timeMs)
    const bodyFat = (name: string, percentage: unknown, timeMs: number) => reading(name, 'bodyFat', { percentage }, timeMs)
    const { samples, rejected, buckets } = normalizeHealth(
      result({
        height: [{ dataPoints: [height('h2', '1802', t0 + HOUR + 5), height('h1', '1800', t0 + 60_000)] }],
        oxygen_saturation: [{ dataPoints: [spo2('o3', 99, t0 + 2 * HOUR), spo2('o2', 95.5, t0 + 30 * 60_000), spo2('o1', 97, t0)] }],
        weight: [{ dataPoints: [weight('w2', 72_100, t0 + 20 * 60_000), weight('w1', 72_700, t0 + 10 * 60_000)] }],
        body_fat: [{ dataPoints: [bodyFat('f2', 21, t0 + 20 * 60_000), bodyFat('f1', 22, t0 + 10 * 60_000)] }],
      }),
      window,
    )
    expect(rejected).toEqual({})
    expect(buckets).toBe(9)
    expect(samples.map((s) => [s.type, s.startMs - t0, s.endMs - s.startMs, s.values, s.unit])).toEqual([
      ['body_fat', 0, HOUR, { avg: 21.5, max: 22, min: 21 }, '%'],
      ['height', 0, HOUR, { avg: 1.8, max: 1.8, min: 1.8 }, 'm'],
      ['oxygen_saturation', 0, HOUR, { avg: 96.25, max: 97, min: 95.5 }, '%'],
      ['weight', 0, HOUR, { avg: 72.4, max: 72.7, min: 72.1 }, 'kg'],
      ['height', HOUR, HOUR, { avg: 1.802, max: 1.802, min: 1.802 }, 'm'],
      ['oxygen_saturation', 2 * HOUR, HOUR, { avg: 99, max: 99, min: 99 }, '%'],
    ])
  })

  it('sets aside readings outside the window, listed twice, malformed or out of range, using the rest', () => {
    const { samples, rejected } = normalizeHealth(
      result({
        oxygen_saturation: [
          {
            dataPoints: [
              spo2('a', 96, t0),
              spo2('b', 101, t0),
              spo2('c', 'high', t0),
              spo2('d', 90, window.endMs),
              { oxygenSaturation: { percentage: 90 } },
              42,
            ],
          },
          // 'a' again, on a second page: counted once (a second count would pull the average down).
          { dataPoints: [spo2('a', 50, t0), spo2('e', undefined, t0)] },
        ],
        weight: [
          {
            dataPoints: [
              reading('w0', 'weight', { weightGrams: '72000' }, t0),
              reading('w1', 'weight', {}, t0),
              reading('w2', 'weight', { weightGrams: -5 }, t0),
            ],
          },
        ],
      }),
      window,
    )
    // A weight as a string, none at all, or below zero: each set aside by reason.
    expect(rejected).toEqual({
      'out-of-range value': 2,
      'non-finite value': 2,
      'reading outside range': 1,
      'malformed reading': 2,
      'missing values': 2,
    })
    expect(samples.map((s) => s.values)).toEqual([{ avg: 96, max: 96, min: 96 }])
  })

  it('takes pages the client already reduced to times and values as they came', () => {
    const page = { dataPoints: [spo2('r1', 97, t0 + 5), spo2('r2', 'high', t0 + 6), spo2('r3', 93, t0 + HOUR)] }
    const reduced = reduceReadings('oxygen_saturation', page)
    expect(reduced).toEqual({
      kind: 'readings',
      points: 3,
      rejected: { 'non-finite value': 1 },
      readings: [
        { timeMs: t0 + 5, value: 97, name: 'users/1/dataTypes/x/dataPoints/r1' },
        { timeMs: t0 + HOUR, value: 93, name: 'users/1/dataTypes/x/dataPoints/r3' },
      ],
    })
    const { samples, rejected, buckets } = normalizeHealth(result({ oxygen_saturation: [reduced] }), window)
    expect({ rejected, buckets }).toEqual({ rejected: { 'non-finite value': 1 }, buckets: 3 })
    expect(samples.map((s) => [s.startMs - t0, s.values.avg])).toEqual([
      [0, 97],
      [HOUR, 93],
    ])
    expect(() => reduceReadings('oxygen_saturation', '<html>')).toThrow(/reconcile response is not a JSON object/)
  })

  it('summarises thousands of readings in one bucket', () => {
    const many = Array.from({ length: 200_000 }, (_, i) => spo2(`m${i}`, 90 + (i % 10), t0 + (i % 3_600_000)))
    const { samples } = normalizeHealth(result({ oxygen_saturation: [{ dataPoints: many }] }), window)
    expect(samples).toEqual([expect.objectContaining({ values: { avg: 94.5, max: 99, min: 90 } })])
  })
})
