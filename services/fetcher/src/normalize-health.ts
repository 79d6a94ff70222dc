import {
  SLEEP_STAGE_FIELDS,
  UpstreamError,
  dataType,
  instantOf,
  type DataTypeKey,
  type DataTypeSpec,
  type FitnessSample,
  type TimeWindow,
} from '@fitstream/shared'
import type { HealthReadResult } from './health-read.js'
import { exerciseGroup } from './exercise-groups.js'
import { splitWindow } from './windows.js'
import type { NormalizeResult } from './normalize.js'

type Json = Record<string, unknown>

/**
 * How each type's values come out of its Health API roll-up: the roll-up's field, and the values in
 * FitStream's fields and units. Proto3 JSON leaves zeros out, so a missing count or sum is 0; a
 * missing average means there was nothing to average, and the window is set aside.
 */
const EXTRACTORS: Partial<Record<DataTypeKey, { readonly field: string; readonly values: (v: Json) => Record<string, number> | string }>> = {
  steps: { field: 'steps', values: (v) => fields({ count: count(v.countSum) }) },
  calories: { field: 'totalCalories', values: (v) => fields({ kcal: sum(v.kcalSum) }) },
  heart_rate: {
    field: 'heartRate',
    values: (v) => fields({ avg: average(v.beatsPerMinuteAvg), max: average(v.beatsPerMinuteMax), min: average(v.beatsPerMinuteMin) }),
  },
  distance: { field: 'distance', values: (v) => scaled(fields({ metres: count(v.millimetersSum) }), 1_000) },
  active_minutes: { field: 'activeMinutes', values: (v) => activeMinutes(v.activeMinutesRollupByActivityLevel) },
  floors: { field: 'floors', values: (v) => fields({ count: count(v.countSum) }) },
  heart_minutes: {
    // Heart points are active zone minutes, which Google already weights: a fat-burn minute earns 1,
    // a cardio or peak minute 2 (Schema$ActiveZoneMinutesRollupValue). So the points are the sum, and
    // the minutes are fat-burn plus half of cardio and peak.
    field: 'activeZoneMinutes',
    values: (v) => {
      const zones = fields({ fatBurn: count(v.sumInFatBurnHeartZone), cardio: count(v.sumInCardioHeartZone), peak: count(v.sumInPeakHeartZone) })
      if (typeof zones === 'string') return zones
      const [fatBurn, doubled] = [zones.fatBurn!, zones.cardio! + zones.peak!]
      return { intensity: fatBurn + doubled, duration_min: fatBurn + doubled / 2 }
    },
  },
}

/**
 * Turns what was read from the Health API into FitnessSamples, one per type and window, as
 * `normalizeAggregate` does for the Fitness API: the answer's shapes are checked, not trusted. A
 * page that is not a JSON object, or whose data point list is not a list, makes the answer
 * unusable; a data point that is malformed, outside the fetched window or a second one for its
 * window is set aside and counted while the rest is used. Windows come in any order (Google lists
 * newest first). Daily roll-ups carry local times, read in the person's time zone. Sleep sessions
 * are put into buckets by `sessionSamples`, single readings by `readingSamples`.
 */
export function normalizeHealth(result: HealthReadResult, window: TimeWindow, timeZone = 'UTC'): NormalizeResult {
  const samples: FitnessSample[] = []
  const rejected: Record<string, number> = {}
  const reject = (reason: string): void => {
    rejected[reason] = (rejected[reason] ?? 0) + 1
  }
  let buckets = 0
  const windowBuckets = splitWindow(window, result.bucketMs, result.bucketMs, result.daily ? timeZone : undefined)
  // Every type's roll-up names the same window bounds: each is parsed once.
  const instants = new Map<string, number | undefined>()
  for (const [key, pages] of result.pages) {
    if (dataType(key).health?.read === 'samples') {
      // The client reduced each page as it came (reduceReadings).
      const reduced = pages as readonly ReadingsPage[]
      for (const page of reduced) {
        buckets += page.points
        for (const [reason, count] of Object.entries(page.rejected)) rejected[reason] = (rejected[reason] ?? 0) + count
      }
      samples.push(
        ...readingSamples(
          key,
          reduced.flatMap((page) => page.readings),
          windowBuckets,
          reject,
        ),
      )
      continue
    }
    const read = dataType(key).health?.read
    if (read === 'daily') {
      const days = pages.flatMap((page) => dataPointsOf(page, 'dataPoints', 'reconcile'))
      buckets += days.length
      samples.push(...dailySamples(key, days, windowBuckets, timeZone, reject))
      continue
    }
    if (read === 'sessions' || read === 'exercises') {
      const sessions = pages.flatMap((page) => dataPointsOf(page, 'dataPoints', 'reconcile'))
      buckets += sessions.length
      samples.push(...(read === 'sessions' ? sessionSamples : exerciseSamples)(key, sessions, windowBuckets, reject))
      continue
    }
    const extractor = EXTRACTORS[key]
    if (extractor === undefined) throw new UpstreamError('FST_ERR_GOOGLE_UNSUPPORTED', `the Google Health API has no ${key} data`, { permanent: true })
    const seen = new Set<number>()
    for (const page of pages) {
      for (const raw of dataPointsOf(page, 'rollupDataPoints', 'roll-up')) {
        buckets++
        const point = asObject(raw)
        const times = point === undefined ? undefined : result.daily ? civilSpan(point, timeZone) : span(point, instants)
        if (point === undefined || times === undefined) {
          reject('malformed window')
          continue
        }
        if (times.startMs < window.startMs || times.endMs > window.endMs) {
          reject('window outside range')
          continue
        }
        const value = point[extractor.field]
        if (value === undefined) continue // a window with nothing recorded
        const values = asObject(value) === undefined ? 'malformed values' : extractor.values(value as Json)
        if (typeof values === 'string') {
          reject(values)
          continue
        }
        if (seen.has(times.startMs)) {
          reject('extra point in bucket')
          continue
        }
        seen.add(times.startMs)
        samples.push({ type: key, startMs: times.startMs, endMs: times.endMs, values, unit: dataType(key).unit, revision: 0 })
      }
    }
  }
  // The type keys sort alike by code point and by locale (a test checks), and code points compare far faster.
  samples.sort((a, b) => a.startMs - b.startMs || (a.type < b.type ? -1 : a.type > b.type ? 1 : 0))
  return { samples, rejected, buckets }
}

/** The Health API's sleep stage types, as the Fitness API numbers them (RESTLESS is classic sleep's restless, awake time). */
const HEALTH_SLEEP_STAGES: ReadonlyMap<string, number> = new Map([
  ['AWAKE', 1],
  ['RESTLESS', 1],
  ['ASLEEP', 2],
  ['LIGHT', 4],
  ['DEEP', 5],
  ['REM', 6],
])
const ASLEEP = 2
const OUT_OF_BED = 3

/**
 * Minutes in each sleep stage per bucket, from listed sessions. As in the Fitness API's aggregate,
 * a segment counts in full in the bucket it starts in, so a person reads the same through either
 * API. Out-of-bed segments count as out of bed; a session without stages counts as asleep. A
 * session is read only once Google says it is processed (`metadata.processed`, which proto3 JSON
 * leaves out while it is false): until then its stages are still being worked out, and a later
 * sync reads it. Segments that start outside the window belong to another fetch and are passed
 * over, problems included; a session listed twice (across pages) counts once.
 */
function sessionSamples(key: DataTypeKey, sessions: readonly unknown[], buckets: readonly TimeWindow[], reject: (reason: string) => void): FitnessSample[] {
  const spec = dataType(key)
  const minutes = new MinuteTally(key)
  const seen = new Set<string>()
  const [windowStart, windowEnd] = [buckets[0]!.startMs, buckets[buckets.length - 1]!.endMs]
  const inWindow = (ms: number): boolean => ms >= windowStart && ms < windowEnd
  const add = (stage: number, startMs: number, endMs: number): void =>
    minutes.add(buckets[bucketIndex(buckets, startMs)]!, SLEEP_STAGE_FIELDS[stage]!, endMs - startMs)
  for (const raw of sessions) {
    const sleep = asObject(asObject(raw)?.[spec.health!.dataType])
    const interval = sleep === undefined ? undefined : span(asObject(sleep.interval) ?? {})
    if (sleep === undefined || interval === undefined) {
      reject('malformed session')
      continue
    }
    // Listed because it ends within a day after the window; nothing of it may lie in the window.
    if (interval.startMs >= windowEnd || interval.endMs <= windowStart) continue
    const metadata = sleep.metadata === undefined ? {} : asObject(sleep.metadata)
    if (metadata === undefined || (metadata.processed !== undefined && typeof metadata.processed !== 'boolean')) {
      reject('malformed session')
      continue
    }
    // proto3 JSON leaves `processed: false` out: only a session Google says is processed is read.
    if (metadata.processed !== true) continue
    if (!isList(sleep.stages) || !isList(sleep.outOfBedSegments)) {
      reject('malformed session')
      continue
    }
    const identity = identityOf(asObject(raw)!) ?? `${interval.startMs}-${interval.endMs}`
    if (seen.has(identity)) continue
    seen.add(identity)
    const stages = (sleep.stages ?? []) as unknown[]
    const segments = [
      ...stages.map((item) => ({ item, stage: (segment: Json) => HEALTH_SLEEP_STAGES.get(String(segment.type)) })),
      ...((sleep.outOfBedSegments ?? []) as unknown[]).map((item) => ({ item, stage: () => OUT_OF_BED })),
    ]
    if (stages.length === 0 && inWindow(interval.startMs)) add(ASLEEP, interval.startMs, interval.endMs)
    for (const { item, stage: stageOf } of segments) {
      const segment = asObject(item)
      const times = segment === undefined ? undefined : span(segment)
      if (times === undefined) {
        reject('malformed segment')
        continue
      }
      if (!inWindow(times.startMs)) continue
      const stage = stageOf(segment!)
      if (stage === undefined) reject('unknown category')
      else if (times.startMs < interval.startMs || times.endMs > interval.endMs) reject('segment outside session')
      else add(stage, times.startMs, times.endMs)
    }
  }
  return minutes.samples()
}

/** Time per bucket and field, in minutes, for the types that count time spent (sleep stages, workouts). */
class MinuteTally {
  private readonly spec: DataTypeSpec
  private readonly byBucket = new Map<number, { bucket: TimeWindow; values: Record<string, number> }>()

  constructor(private readonly key: DataTypeKey) {
    this.spec = dataType(key)
  }

  add(bucket: TimeWindow, field: string, ms: number): void {
    let entry = this.byBucket.get(bucket.startMs)
    if (entry === undefined) {
      entry = { bucket, values: Object.fromEntries(this.spec.fields.map((f) => [f.name, 0])) }
      this.byBucket.set(bucket.startMs, entry)
    }
    entry.values[field] = entry.values[field]! + ms / 60_000
  }

  /** A sample for each bucket that got time, in the order they first did. */
  samples(): FitnessSample[] {
    return [...this.byBucket.values()].map(({ bucket, values }) => ({
      type: this.key,
      startMs: bucket.startMs,
      endMs: bucket.endMs,
      values,
      unit: this.spec.unit,
      revision: 0,
    }))
  }
}

/**
 * The longest workout counted: the fetcher lists those that start up to this long before its
 * window, so a longer one would be counted by some fetches of its buckets and not by others.
 */
export const LONGEST_WORKOUT_MS = 86_400_000
/** Google rounds a workout's active duration: this much more than its interval is taken as all of it. */
const ACTIVE_TIME_ROUNDING_MS = 1_000

/**
 * Minutes of workouts per bucket, by exercise group, from listed workouts. A workout's active time
 * (its interval less pauses) is shared among the buckets it overlaps in proportion to the overlap,
 * so a two-hour hike adds an hour to each of two hourly buckets, and the buckets of this window
 * get their share whichever fetch reads the workout. Buckets without a workout have no sample. A
 * workout listed twice (across pages) counts once. An exercise type FitStream does not know (see
 * exerciseGroup) counts as other and is counted as `unknown exercise type`. One that is malformed,
 * or whose active time exceeds its interval by more than rounding, is set aside and counted; one
 * longer than a day (a recording left running, say) is passed over, as every fetch of its buckets
 * passes it over.
 */
function exerciseSamples(key: DataTypeKey, workouts: readonly unknown[], buckets: readonly TimeWindow[], reject: (reason: string) => void): FitnessSample[] {
  const spec = dataType(key)
  const minutes = new MinuteTally(key)
  const seen = new Set<string>()
  const [windowStart, windowEnd] = [buckets[0]!.startMs, buckets[buckets.length - 1]!.endMs]
  for (const raw of workouts) {
    const workout = asObject(asObject(raw)?.[spec.health!.dataType])
    const interval = workout === undefined ? undefined : span(asObject(workout.interval) ?? {})
    const activeMs = workout?.activeDuration === undefined ? interval && interval.endMs - interval.startMs : duration(workout.activeDuration)
    // proto3 JSON leaves EXERCISE_TYPE_UNSPECIFIED out: a missing type is an unknown one, not a malformed workout.
    const exerciseType = workout?.exerciseType
    if (workout === undefined || interval === undefined || activeMs === undefined || (exerciseType !== undefined && typeof exerciseType !== 'string')) {
      reject('malformed session')
      continue
    }
    // Listed because it starts within a day of the window; nothing of it may lie in the window.
    if (interval.startMs >= windowEnd || interval.endMs <= windowStart) continue
    const lengthMs = interval.endMs - interval.startMs
    if (lengthMs > LONGEST_WORKOUT_MS) continue
    if (activeMs > lengthMs + ACTIVE_TIME_ROUNDING_MS) {
      reject('active time outside session')
      continue
    }
    const identity = identityOf(asObject(raw)!) ?? `${interval.startMs}-${interval.endMs}-${String(exerciseType)}`
    if (seen.has(identity)) continue
    seen.add(identity)
    const { group: field, known } = exerciseGroup(exerciseType as string | undefined)
    // Counted as other, and among the points FitStream could not fully read.
    if (!known) reject('unknown exercise type')
    const activeShare = Math.min(activeMs, lengthMs) / lengthMs
    const first = bucketIndex(buckets, Math.max(interval.startMs, windowStart))
    for (let i = first; i < buckets.length && buckets[i]!.startMs < interval.endMs; i++) {
      const bucket = buckets[i]!
      const overlapMs = Math.min(bucket.endMs, interval.endMs) - Math.max(bucket.startMs, interval.startMs)
      minutes.add(bucket, field, overlapMs * activeShare)
    }
  }
  return minutes.samples()
}

const DURATION = /^(\d{1,12})(?:\.(\d{1,9}))?s$/

/** A google.protobuf.Duration in JSON ("1800s", "1800.5s") as ms; undefined when it is not one (or negative). */
function duration(value: unknown): number | undefined {
  const m = typeof value === 'string' ? DURATION.exec(value) : null
  if (m === null) return undefined
  return Number(m[1]) * 1_000 + Number(`0.${m[2] ?? '0'}`) * 1_000
}

/** A list, or left out (proto3 JSON leaves empty lists out). */
function isList(value: unknown): boolean {
  return value === undefined || Array.isArray(value)
}

/** A data point's name: `dataPointName` in reconciled answers (`name` where a list answer is given). */
function identityOf(point: Json): string | undefined {
  const name = point.dataPointName ?? point.name
  return typeof name === 'string' && name !== '' ? name : undefined
}

/** How a listed reading's value comes out, in FitStream's units, or the reason it is not a reading. */
const READINGS: Partial<Record<DataTypeKey, { readonly field: string; readonly value: (v: Json) => number | string }>> = {
  height: {
    field: 'height',
    value: (v) => {
      const millimetres = count(v.heightMillimeters)
      if (typeof millimetres === 'string') return millimetres
      return millimetres === 0 ? 'out-of-range value' : millimetres / 1_000
    },
  },
  oxygen_saturation: { field: 'oxygenSaturation', value: (v) => percentage(v.percentage) },
  // Google rolls weight and body fat up to an average only; their readings give the highest and lowest too.
  weight: {
    field: 'weight',
    value: (v) => {
      const grams = average(v.weightGrams)
      if (typeof grams === 'string') return grams
      return grams <= 0 ? 'out-of-range value' : grams / 1_000
    },
  },
  body_fat: { field: 'bodyFat', value: (v) => percentage(v.percentage) },
}

/**
 * A percentage from 0 to 100, or the reason it is not one. proto3 JSON leaves a 0 out, and no one
 * has 0 % blood oxygen or body fat: a reading without one is set aside.
 */
function percentage(value: unknown): number | string {
  const percent = average(value)
  if (typeof percent === 'string') return percent
  return percent < 0 || percent > 100 ? 'out-of-range value' : percent
}

/** A page of readings as the fetcher keeps it: each reading reduced to its time and value as it arrives. */
export interface ReadingsPage {
  readonly kind: 'readings'
  readonly readings: readonly Reading[]
  /** Data points on the page, usable or not. */
  readonly points: number
  readonly rejected: Readonly<Record<string, number>>
}

interface Reading {
  readonly timeMs: number
  readonly value: number
  /** The data point's name, where Google gives one (most sample types have none). */
  readonly name?: string
}

/**
 * Reduces one answered page of readings to their times and values, so that a long window of dense
 * readings (blood oxygen through the night) is not held as Google's JSON until every page is in. A
 * page that is not an answer at all makes the whole answer unusable; a malformed or out-of-range
 * reading is set aside and counted.
 */
export function reduceReadings(key: DataTypeKey, page: unknown): ReadingsPage {
  const reader = READINGS[key]
  if (reader === undefined) throw new UpstreamError('FST_ERR_GOOGLE_UNSUPPORTED', `the Google Health API has no ${key} data`, { permanent: true })
  const points = dataPointsOf(page, 'dataPoints', 'reconcile')
  const readings: Reading[] = []
  const rejected: Record<string, number> = {}
  for (const raw of points) {
    const point = asObject(raw)
    const reading = asObject(point?.[reader.field])
    const timeMs = reading === undefined ? undefined : timestamp(asObject(reading.sampleTime)?.physicalTime)
    const value = reading === undefined || timeMs === undefined ? 'malformed reading' : reader.value(reading)
    if (typeof value === 'string') {
      rejected[value] = (rejected[value] ?? 0) + 1
      continue
    }
    const name = identityOf(point!)
    readings.push(name === undefined ? { timeMs: timeMs!, value } : { timeMs: timeMs!, value, name })
  }
  return { kind: 'readings', readings, points: points.length, rejected }
}

/**
 * Each bucket's average, highest and lowest reading, as the Fitness API's aggregate summarises them.
 * A reading outside the window is set aside and counted; one listed twice under the same name
 * (across pages) counts once.
 */
function readingSamples(key: DataTypeKey, readings: readonly Reading[], buckets: readonly TimeWindow[], reject: (reason: string) => void): FitnessSample[] {
  const [windowStart, windowEnd] = [buckets[0]!.startMs, buckets[buckets.length - 1]!.endMs]
  const byBucket = new Map<number, Reading[]>()
  const seen = new Set<string>()
  for (const reading of readings) {
    if (reading.timeMs < windowStart || reading.timeMs >= windowEnd) {
      reject('reading outside range')
      continue
    }
    if (reading.name !== undefined) {
      if (seen.has(reading.name)) continue
      seen.add(reading.name)
    }
    const bucket = buckets[bucketIndex(buckets, reading.timeMs)]!
    const held = byBucket.get(bucket.startMs)
    if (held === undefined) byBucket.set(bucket.startMs, [reading])
    else held.push(reading)
  }
  const spec = dataType(key)
  return [...byBucket].map(([startMs, held]) => {
    // Oldest first, as Google's aggregate adds them up: the same readings give the same average to the last bit.
    let [sum, max, min] = [0, -Infinity, Infinity]
    for (const { value } of held.sort((a, b) => a.timeMs - b.timeMs)) {
      sum += value
      max = Math.max(max, value)
      min = Math.min(min, value)
    }
    return {
      type: key,
      startMs,
      endMs: buckets[bucketIndex(buckets, startMs)]!.endMs,
      values: { avg: sum / held.length, max, min },
      unit: spec.unit,
      revision: 0,
    }
  })
}

/** How the data point of each daily summary is named: `daily-vo2-max` → `dailyVo2Max`. */
const camelCase = (dataType: string): string => dataType.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase())

/**
 * How a daily summary's value comes out, in FitStream's fields and units, or the reason it is set
 * aside. Proto3 JSON leaves a 0 out, and none of these can be 0 in a living person: a day without
 * its value is set aside (`missing values`), not read as 0.
 */
const DAILY: Partial<Record<DataTypeKey, (v: Json) => Record<string, number> | string>> = {
  // An int64, so a decimal string; Google says how it was worked out (with the night's sleep, or
  // awake data only), and a method it has not documented is not taken for either.
  resting_heart_rate: (v) => {
    const bpm = v.beatsPerMinute === undefined ? 'missing values' : count(v.beatsPerMinute)
    if (typeof bpm === 'string') return bpm
    if (bpm === 0) return 'missing values'
    const metadata = v.dailyRestingHeartRateMetadata === undefined ? {} : asObject(v.dailyRestingHeartRateMetadata)
    if (metadata === undefined) return 'malformed values'
    const method = metadata.calculationMethod
    if (method !== undefined && typeof method !== 'string') return 'malformed values'
    if (method !== undefined && !RESTING_HEART_RATE_METHODS.has(method)) return 'unknown calculation method'
    return { bpm }
  },
  // The day's average RMSSD in milliseconds; Google leaves it out on a day it could not work one out.
  heart_rate_variability: (v) => positive(v.averageHeartRateVariabilityMilliseconds, (rmssd_ms) => ({ rmssd_ms })),
  // ml of oxygen per kg of body weight per minute, 0 to 100; an estimate (Google's `estimated`) still is
  // the person's VO2 max, and the fitness level Google derives from it must be one it documents.
  vo2_max: (v) => {
    const level = v.cardioFitnessLevel
    if (v.estimated !== undefined && typeof v.estimated !== 'boolean') return 'malformed values'
    if (level !== undefined && typeof level !== 'string') return 'malformed values'
    if (level !== undefined && !CARDIO_FITNESS_LEVELS.has(level)) return 'unknown fitness level'
    return positive(v.vo2Max, (ml_per_kg_min) => (ml_per_kg_min > 100 ? 'out-of-range value' : { ml_per_kg_min }))
  },
  respiratory_rate: (v) => positive(v.breathsPerMinute, (breaths_per_min) => ({ breaths_per_min })),
}

/** DailyRestingHeartRateMetadata.CalculationMethod (proto3 JSON leaves CALCULATION_METHOD_UNSPECIFIED out). */
const RESTING_HEART_RATE_METHODS = new Set(['WITH_SLEEP', 'ONLY_WITH_AWAKE_DATA'])
/** DailyVO2Max.CardioFitnessLevel (proto3 JSON leaves CARDIO_FITNESS_LEVEL_UNSPECIFIED out). */
const CARDIO_FITNESS_LEVELS = new Set(['POOR', 'FAIR', 'AVERAGE', 'GOOD', 'VERY_GOOD', 'EXCELLENT'])

/** A double above 0 passed on, or the reason it is not one: left out (proto3's 0), not a finite number, or negative. */
function positive(value: unknown, then: (n: number) => Record<string, number> | string): Record<string, number> | string {
  const n = average(value)
  if (typeof n === 'string') return n
  if (n < 0) return 'negative value'
  return n === 0 ? 'missing values' : then(n)
}

/**
 * One sample per day from Google's daily summaries, in the bucket holding the day's local midnight
 * (so a daily bucket is the day itself, and an hourly one its first hour). A day whose midnight lies
 * outside the window belongs to another fetch and is passed over; a malformed day, a value set aside
 * (see DAILY) or a second value for one date is counted.
 */
function dailySamples(
  key: DataTypeKey,
  days: readonly unknown[],
  buckets: readonly TimeWindow[],
  timeZone: string,
  reject: (reason: string) => void,
): FitnessSample[] {
  const spec = dataType(key)
  const field = camelCase(spec.health!.dataType)
  const values = DAILY[key]
  if (values === undefined) throw new UpstreamError('FST_ERR_GOOGLE_UNSUPPORTED', `the Google Health API has no ${key} data`, { permanent: true })
  const [windowStart, windowEnd] = [buckets[0]!.startMs, buckets[buckets.length - 1]!.endMs]
  const samples: FitnessSample[] = []
  const seen = new Set<number>()
  for (const raw of days) {
    const day = asObject(asObject(raw)?.[field])
    const midnight = day === undefined ? undefined : dateMidnight(day.date, timeZone)
    if (day === undefined || midnight === undefined) {
      reject('malformed day')
      continue
    }
    if (midnight < windowStart || midnight >= windowEnd) continue
    const value = values(day)
    if (typeof value === 'string') {
      reject(value)
      continue
    }
    if (seen.has(midnight)) {
      reject('extra point in bucket')
      continue
    }
    seen.add(midnight)
    const bucket = buckets[bucketIndex(buckets, midnight)]!
    samples.push({ type: key, startMs: bucket.startMs, endMs: bucket.endMs, values: value, unit: spec.unit, revision: 0 })
  }
  return samples
}

/** The instant a google.type.Date (a whole calendar date) begins in the time zone; undefined when it is not one. */
function dateMidnight(value: unknown, timeZone: string): number | undefined {
  const date = asObject(value)
  if (date === undefined) return undefined
  const [year, month, day] = [date.year, date.month, date.day]
  if (![year, month, day].every((n) => typeof n === 'number' && Number.isInteger(n))) return undefined
  const [y, m, d] = [year as number, month as number, day as number]
  const utc = new Date(Date.UTC(y, m - 1, d))
  // Google's "no day" (0) and impossible dates (30 February) are not calendar dates.
  if (y < 1 || y > 9999 || utc.getUTCFullYear() !== y || utc.getUTCMonth() !== m - 1 || utc.getUTCDate() !== d) return undefined
  return instantOf({ year: y, month: m, day: d, hours: 0, minutes: 0, seconds: 0 }, timeZone)
}

/** The bucket holding `ms` (buckets are consecutive and `ms` lies within them). */
function bucketIndex(buckets: readonly TimeWindow[], ms: number): number {
  let [low, high] = [0, buckets.length - 1]
  while (low < high) {
    const mid = (low + high + 1) >> 1
    if (buckets[mid]!.startMs <= ms) low = mid
    else high = mid - 1
  }
  return low
}

function dataPointsOf(page: unknown, listField: string, method: string): unknown[] {
  // The client hands over the text itself when the body does not parse (an HTML error page, a cut-off answer).
  if (typeof page === 'string') {
    throw new UpstreamError('FST_ERR_GOOGLE_MALFORMED', `Google Health API ${method} response is not a JSON object but ${page.length} characters of text`, {
      permanent: true,
    })
  }
  const object = asObject(page)
  if (object === undefined)
    throw new UpstreamError('FST_ERR_GOOGLE_MALFORMED', `Google Health API ${method} response is not a JSON object`, { permanent: true })
  const points = object[listField]
  // Proto3 JSON leaves an empty list out.
  if (points === undefined) return []
  if (!Array.isArray(points))
    throw new UpstreamError('FST_ERR_GOOGLE_MALFORMED', `Google Health API ${method} response has no data point list`, { permanent: true })
  return points
}

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:\d{2})$/

/** A point's interval; `instants` keeps the timestamps already parsed. */
function span(point: Json, instants?: Map<string, number | undefined>): { startMs: number; endMs: number } | undefined {
  const [startMs, endMs] =
    instants === undefined ? [timestamp(point.startTime), timestamp(point.endTime)] : [known(point.startTime, instants), known(point.endTime, instants)]
  return startMs === undefined || endMs === undefined || startMs >= endMs ? undefined : { startMs, endMs }
}

function known(value: unknown, instants: Map<string, number | undefined>): number | undefined {
  if (typeof value !== 'string') return undefined
  if (instants.has(value)) return instants.get(value)
  const ms = timestamp(value)
  instants.set(value, ms)
  return ms
}

function timestamp(value: unknown): number | undefined {
  if (typeof value !== 'string' || !RFC3339.test(value)) return undefined
  const ms = Date.parse(value)
  return Number.isFinite(ms) ? ms : undefined
}

function civilSpan(point: Json, timeZone: string): { startMs: number; endMs: number } | undefined {
  const [startMs, endMs] = [civilInstant(point.civilStartTime, timeZone), civilInstant(point.civilEndTime, timeZone)]
  return startMs === undefined || endMs === undefined || startMs >= endMs ? undefined : { startMs, endMs }
}

function civilInstant(value: unknown, timeZone: string): number | undefined {
  const date = asObject(asObject(value)?.date)
  const time = asObject(value)?.time === undefined ? {} : asObject(asObject(value)!.time)
  if (date === undefined || time === undefined) return undefined
  const part = (v: unknown, min: number, max: number): number | undefined => {
    const n = v === undefined ? 0 : v
    return typeof n === 'number' && Number.isInteger(n) && n >= min && n <= max ? n : undefined
  }
  const [year, month, day] = [part(date.year, 1, 9999), part(date.month, 1, 12), part(date.day, 1, 31)]
  const [hours, minutes, seconds] = [part(time.hours, 0, 24), part(time.minutes, 0, 59), part(time.seconds, 0, 59)]
  if (year === undefined || month === undefined || day === undefined || hours === undefined || minutes === undefined || seconds === undefined) return undefined
  return instantOf({ year, month, day, hours, minutes, seconds }, timeZone)
}

function asObject(value: unknown): Json | undefined {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Json) : undefined
}

/** Values that are all numbers, or the reason one is not. */
function fields(values: Record<string, number | string>): Record<string, number> | string {
  for (const value of Object.values(values)) if (typeof value === 'string') return value
  return values as Record<string, number>
}

function scaled(values: Record<string, number> | string, divisor: number): Record<string, number> | string {
  return typeof values === 'string' ? values : Object.fromEntries(Object.entries(values).map(([k, v]) => [k, v / divisor]))
}

/** A proto3 int64 (a decimal string, sometimes a number), 0 when left out; negative counts are not readings. */
function count(value: unknown): number | string {
  if (value === undefined) return 0
  const n = typeof value === 'number' ? value : typeof value === 'string' && /^-?\d{1,19}$/.test(value) ? Number(value) : Number.NaN
  if (!Number.isSafeInteger(n)) return 'non-integer value'
  return n < 0 ? 'negative value' : n
}

function sum(value: unknown): number | string {
  if (value === undefined) return 0
  if (typeof value !== 'number' || !Number.isFinite(value)) return 'non-finite value'
  return value < 0 ? 'negative value' : value
}

function average(value: unknown): number | string {
  if (value === undefined) return 'missing values'
  return typeof value === 'number' && Number.isFinite(value) ? value : 'non-finite value'
}

/**
 * Google's activity levels, and whether FitStream's `active_minutes` counts each: moderate and
 * vigorous minutes do, light ones (an easy stroll) do not, as "active minutes" usually mean
 * moderate-to-vigorous activity. proto3 JSON leaves an unspecified level out.
 */
const ACTIVITY_LEVELS: ReadonlyMap<string, boolean> = new Map([
  ['LIGHT', false],
  ['MODERATE', true],
  ['VIGOROUS', true],
])

/** Moderate and vigorous minutes, added up; a level FitStream does not know makes the window unusable. */
function activeMinutes(levels: unknown): Record<string, number> | string {
  if (levels === undefined) return { minutes: 0 }
  if (!Array.isArray(levels)) return 'malformed values'
  let minutes = 0
  for (const item of levels) {
    const level = asObject(item)
    if (level === undefined) return 'malformed values'
    const n = count(level.activeMinutesSum)
    if (typeof n === 'string') return n
    const counted = typeof level.activityLevel === 'string' ? ACTIVITY_LEVELS.get(level.activityLevel) : undefined
    if (counted === undefined) return 'unknown activity level'
    if (counted) minutes += n
  }
  return { minutes }
}
