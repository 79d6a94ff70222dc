/**
 * The Google Health API's daily data types the fake lists: users.dataTypes.dataPoints.list and
 * reconcile on `daily-resting-heart-rate`, `daily-heart-rate-variability`, `daily-vo2-max` and
 * `daily-respiratory-rate`. Google works each out once a day for the user's calendar date (in their
 * time zone) from what the watch recorded; a day the watch was not worn has none.
 *
 * A day's values follow from the user's seed and the date alone (dailyValues), so a test can say
 * what the fake answers. A day is listed once Google has it: DAY_READY_HOURS after its local
 * midnight, when the night's sleep the summaries are worked out from is over. The filter bounds
 * the date (`<type>.date >= "YYYY-MM-DD"`, `<`), joined by AND; the answer runs newest first.
 */

import { healthBadRequest } from './errors.js'
import type { HealthDailyTypeSpec } from './health-catalogue.js'
import { dataPointId, listPage, parseListQuery, parseTimeFilter, type DataPointsPage, type ListMethod, type PageQuery, type TimeListRequest } from './list.js'
import type { RollUpContext } from './rollup.js'
import { DAY_MS, rng, userProfile } from './synthetic.js'
import { wallTime, zonedToInstant } from './time-zones.js'

const NS_PER_MS = 1_000_000n

/** Hours after a day's local midnight at which Google has its daily values (after the main sleep). */
export const DAY_READY_HOURS = 10

// ---------------------------------------------------------------------------------------------
// The answer's JSON, as the Health API writes each daily DataPoint.

/** google.type.Date: a whole calendar date. */
export interface DateJson {
  year: number
  month: number
  day: number
}

/** DailyRestingHeartRateMetadata.CalculationMethod; proto3 JSON leaves CALCULATION_METHOD_UNSPECIFIED out. */
export type CalculationMethod = 'WITH_SLEEP' | 'ONLY_WITH_AWAKE_DATA'

export interface DailyRestingHeartRateJson {
  /** int64 beats per minute, as a decimal string. */
  beatsPerMinute: string
  dailyRestingHeartRateMetadata: { calculationMethod: CalculationMethod }
  date: DateJson
}

export interface DailyHeartRateVariabilityJson {
  /** RMSSD in milliseconds over the main sleep; left out on a night too short to work it out. */
  averageHeartRateVariabilityMilliseconds?: number
  deepSleepRootMeanSquareOfSuccessiveDifferencesMilliseconds?: number
  entropy: number
  /** int64 beats per minute outside REM sleep, as a decimal string. */
  nonRemHeartRateBeatsPerMinute: string
  date: DateJson
}

/** DailyVO2Max.CardioFitnessLevel; proto3 JSON leaves CARDIO_FITNESS_LEVEL_UNSPECIFIED out. */
export type CardioFitnessLevel = 'POOR' | 'FAIR' | 'AVERAGE' | 'GOOD' | 'VERY_GOOD' | 'EXCELLENT'

export const CARDIO_FITNESS_LEVELS: readonly CardioFitnessLevel[] = ['POOR', 'FAIR', 'AVERAGE', 'GOOD', 'VERY_GOOD', 'EXCELLENT']

export interface DailyVO2MaxJson {
  /** ml of oxygen per kg of body weight per minute, 0 to 100. */
  vo2Max: number
  cardioFitnessLevel: CardioFitnessLevel
  /** Only when true: proto3 JSON leaves false out. */
  estimated?: true
  vo2MaxCovariance: number
  date: DateJson
}

export interface DailyRespiratoryRateJson {
  /** Breaths per minute over the main sleep. */
  breathsPerMinute: number
  date: DateJson
}

export interface DailyRestingHeartRateDataPoint {
  /** `users/<googleId>/dataTypes/daily-resting-heart-rate/dataPoints/<id>`. */
  name: string
  dailyRestingHeartRate: DailyRestingHeartRateJson
}

export interface DailyHeartRateVariabilityDataPoint {
  name: string
  dailyHeartRateVariability: DailyHeartRateVariabilityJson
}

export interface DailyVO2MaxDataPoint {
  name: string
  dailyVo2Max: DailyVO2MaxJson
}

export interface DailyRespiratoryRateDataPoint {
  name: string
  dailyRespiratoryRate: DailyRespiratoryRateJson
}

export type DailyDataPoint = DailyRestingHeartRateDataPoint | DailyHeartRateVariabilityDataPoint | DailyVO2MaxDataPoint | DailyRespiratoryRateDataPoint

// ---------------------------------------------------------------------------------------------
// Values

/** What Google works out for a user's calendar date, type by type (undefined: the watch was not worn). */
export interface DailyValues {
  readonly dailyRestingHeartRate: DailyRestingHeartRateJson
  readonly dailyHeartRateVariability: DailyHeartRateVariabilityJson
  readonly dailyVo2Max: DailyVO2MaxJson
  readonly dailyRespiratoryRate: DailyRespiratoryRateJson
}

/** Share of days the watch was off all night and day: no daily values at all. */
const DAYS_WITHOUT_WATCH = 0.08
/** Share of nights too short for heart-rate variability: the day's average is left out. */
const NIGHTS_WITHOUT_HRV = 0.1

/** VO2 max below which each cardio fitness level starts (Google's bands for a person of middle age, roughly). */
const LEVEL_FLOORS: readonly [number, CardioFitnessLevel][] = [
  [52, 'EXCELLENT'],
  [47, 'VERY_GOOD'],
  [42, 'GOOD'],
  [37, 'AVERAGE'],
  [32, 'FAIR'],
]

const round = (n: number, places: number): number => Math.round(n * 10 ** places) / 10 ** places

/**
 * The daily values of the user with this seed for the calendar date `date`, or undefined for a day
 * the watch was not worn. They follow from the user's profile (a runner has a lower resting heart
 * rate, a higher VO2 max and heart-rate variability) and vary from day to day.
 */
export function dailyValues(seed: string, date: DateJson): DailyValues | undefined {
  const key = `${date.year}-${date.month}-${date.day}`
  const r = rng(seed, 'daily', key)
  if (r.next() < DAYS_WITHOUT_WATCH) return undefined
  const base = rng(seed, 'daily-base', 0)
  const profile = userProfile(seed)
  const fit = profile.runner ? 1 : 0
  const rhr = profile.restingHeartRate - 6 * fit + r.int(-3, 3)
  const hrvBase = 25 + base.next() * 45 + 15 * fit
  const vo2Base = 27 + base.next() * 21 + 6 * fit
  const breathing = 12 + base.next() * 5
  const vo2Max = round(vo2Base + (r.next() - 0.5) * 1.5, 1)
  const hrv = round(hrvBase * (0.8 + r.next() * 0.4), 1)
  const withSleep = r.next() >= 0.15
  const estimated = r.next() < 0.3
  const shortNight = r.next() < NIGHTS_WITHOUT_HRV
  return {
    dailyRestingHeartRate: {
      beatsPerMinute: String(withSleep ? rhr : rhr + 4),
      dailyRestingHeartRateMetadata: { calculationMethod: withSleep ? 'WITH_SLEEP' : 'ONLY_WITH_AWAKE_DATA' },
      date,
    },
    dailyHeartRateVariability: {
      ...(shortNight ? {} : { averageHeartRateVariabilityMilliseconds: hrv, deepSleepRootMeanSquareOfSuccessiveDifferencesMilliseconds: round(hrv * 1.15, 1) }),
      entropy: round(2.5 + r.next(), 3),
      nonRemHeartRateBeatsPerMinute: String(rhr + 2),
      date,
    },
    dailyVo2Max: {
      vo2Max,
      cardioFitnessLevel: LEVEL_FLOORS.find(([floor]) => vo2Max >= floor)?.[1] ?? 'POOR',
      ...(estimated ? { estimated: true as const } : {}),
      vo2MaxCovariance: round(0.5 + r.next() * 2, 2),
      date,
    },
    dailyRespiratoryRate: { breathsPerMinute: round(breathing + (r.next() - 0.5), 1), date },
  }
}

// ---------------------------------------------------------------------------------------------
// Listing

/** A day found for a page: its date and the instant Google has its values from. */
interface ListedDay {
  readonly date: DateJson
  readonly readyMs: number
  readonly values: DailyValues
}

/** The instant a day's values are ready: DAY_READY_HOURS after its local midnight. */
function readyAt(date: DateJson, timeZone: string): number {
  return zonedToInstant({ ...date, hour: DAY_READY_HOURS, minute: 0, second: 0, millisecond: 0 }, timeZone)
}

/**
 * The user's days matching the query, newest first: those whose ready instant lies in [fromMs,
 * beforeMs) (which the page query has bounded by the server's clock), whose date the filter accepts,
 * and that come after the cursor.
 */
function daysNewestFirst(seed: string, timeZone: string, q: PageQuery): ListedDay[] {
  const found: ListedDay[] = []
  if (q.beforeMs <= q.fromMs) return found
  const last = wallTime(q.beforeMs, timeZone)
  let day = Date.UTC(last.year, last.month - 1, last.day) + DAY_MS
  const after = q.cursorNs === undefined ? undefined : Number(q.cursorNs / NS_PER_MS)
  while (found.length < q.limit) {
    day -= DAY_MS
    const d = new Date(day)
    const date = { year: d.getUTCFullYear(), month: d.getUTCMonth() + 1, day: d.getUTCDate() }
    const readyMs = readyAt(date, timeZone)
    // Older dates are ready earlier still.
    if (readyMs < q.fromMs) break
    if (readyMs >= q.beforeMs) continue
    if (after !== undefined && readyMs >= after) continue
    if (q.accept !== undefined && !q.accept(readyMs)) continue
    const values = dailyValues(seed, date)
    if (values !== undefined) found.push({ date, readyMs, values })
  }
  return found
}

export type DailyListRequest = TimeListRequest

/**
 * Validates a list (or reconcile) request on a daily type the way Google does; throws
 * HealthApiError (400). The filter takes `<type>.date` with >= and <, compared with `YYYY-MM-DD`
 * date literals (a time of day is refused), joined by AND.
 */
export function parseDailyListRequest(query: URLSearchParams, type: HealthDailyTypeSpec, method: ListMethod = 'list'): DailyListRequest {
  return parseListQuery(
    query,
    type,
    (filter) => {
      const field = `${type.filterName}.date`
      const parsed = parseTimeFilter(filter, { dataType: type.name, prefix: type.filterName, civil: field })
      if (/["']\d{4}-\d{2}-\d{2}T/.test(filter)) {
        throw healthBadRequest(`Invalid filter: ${field} takes a date literal (YYYY-MM-DD), not a date and time.`, 'filter')
      }
      return parsed
    },
    method,
  )
}

/**
 * The list (or reconcile) answer on a daily type: the user's days that match the filter and that
 * Google has worked out by the server's clock, newest first, one page of them. A reconcile whose
 * family leaves out the watch that records the heart rate (google-wearables, for a watch not by
 * Google or Fitbit) finds none.
 */
export function buildDailyListResponse(
  type: HealthDailyTypeSpec,
  request: DailyListRequest,
  timeZone: string,
  ctx: RollUpContext,
): DataPointsPage<DailyDataPoint> {
  return listPage(type, request, timeZone, ctx, {
    find: (q) => daysNewestFirst(ctx.seed, timeZone, q),
    dataPoint: (listed) => dailyDataPoint(type, ctx, listed),
    cursorNs: (last) => BigInt(last.readyMs) * NS_PER_MS,
  })
}

function dailyDataPoint(type: HealthDailyTypeSpec, ctx: RollUpContext, listed: ListedDay): DailyDataPoint {
  const id = dataPointId([ctx.seed, type.name, listed.date.year, listed.date.month, listed.date.day])
  const name = `users/${ctx.googleId}/dataTypes/${type.name}/dataPoints/${id}`
  switch (type.valueField) {
    case 'dailyRestingHeartRate':
      return { name, dailyRestingHeartRate: listed.values.dailyRestingHeartRate }
    case 'dailyHeartRateVariability':
      return { name, dailyHeartRateVariability: listed.values.dailyHeartRateVariability }
    case 'dailyVo2Max':
      return { name, dailyVo2Max: listed.values.dailyVo2Max }
    case 'dailyRespiratoryRate':
      return { name, dailyRespiratoryRate: listed.values.dailyRespiratoryRate }
  }
}

/** Exactly the daily values the fake lists for a user with this seed for the dates of [startMs, endMs) in the zone, oldest first. */
export function healthDailyValues(seed: string, startMs: number, endMs: number, timeZone = 'UTC'): { date: DateJson; values: DailyValues }[] {
  const out: { date: DateJson; values: DailyValues }[] = []
  const first = wallTime(startMs, timeZone)
  for (let day = Date.UTC(first.year, first.month - 1, first.day); ; day += DAY_MS) {
    const d = new Date(day)
    const date = { year: d.getUTCFullYear(), month: d.getUTCMonth() + 1, day: d.getUTCDate() }
    const midnight = zonedToInstant({ ...date, hour: 0, minute: 0, second: 0, millisecond: 0 }, timeZone)
    if (midnight >= endMs) break
    const values = midnight >= startMs ? dailyValues(seed, date) : undefined
    if (values !== undefined) out.push({ date, values })
  }
  return out
}
