/**
 * The Google Health API's roll-ups: users.dataTypes.dataPoints.rollUp (fixed windows of physical
 * time) and dailyRollUp (the user's civil days). Request validation is as strict as the Fit
 * aggregate's; the values come from the same raw samples and the same aggregation as a Fit bucket,
 * so a window reads the same through either API, up to units.
 *
 * Times are carried as bigint nanoseconds: Health timestamps and durations have nanosecond
 * precision, while the synthetic samples start on whole milliseconds.
 */

import { createHash } from 'node:crypto'
import type { CivilTime as WallClock } from '@fitstream/shared/time-zones'
import { arrivedSamples, type DataArrival } from './aggregate.js'
import { healthBadRequest } from './errors.js'
import { DATA_SOURCE_FAMILIES, healthType, inFamily, type DataSourceFamily, type HealthTypeSpec } from './health-catalogue.js'
import { HOUR_MS, aggregateSamples, rawSamples, recordingDevice, stepBouts, type FitValue, type RawSample, type StepBout } from './synthetic.js'
import { daysInMonth, wallAsUtc, zonedToInstant } from './time-zones.js'

/** The page size when a request gives none (or 0). */
export const DEFAULT_ROLLUP_PAGE_SIZE = 1440
/** Larger page sizes are cut down to this, not refused. */
export const MAX_ROLLUP_PAGE_SIZE = 10_000

const NS_PER_MS = 1_000_000n
const NS_PER_SECOND = 1_000_000_000n
const NS_PER_DAY = 86_400n * NS_PER_SECOND
/** google.protobuf.Duration's own limit, about 10,000 years. */
const MAX_DURATION_SECONDS = 315_576_000_000n
/** google.protobuf.Timestamp's range: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z. */
const MIN_TIMESTAMP_NS = BigInt(wallAsUtc({ year: 1, month: 1, day: 1, hour: 0, minute: 0, second: 0, millisecond: 0 })) * NS_PER_MS
const MAX_TIMESTAMP_NS = BigInt(Date.UTC(10_000, 0, 1)) * NS_PER_MS - 1n

// ---------------------------------------------------------------------------------------------
// Values, as the Health API's RollupValue messages. Every field is optional, as in the typings:
// proto3 JSON leaves out a field holding its default (0, "0"), and Google's answers do.

export interface StepsRollupValue {
  countSum?: string
}

export interface TotalCaloriesRollupValue {
  kcalSum?: number
}

export interface HeartRateRollupValue {
  beatsPerMinuteAvg?: number
  beatsPerMinuteMax?: number
  beatsPerMinuteMin?: number
}

export interface DistanceRollupValue {
  millimetersSum?: string
}

/** Google's activity levels; proto3 JSON leaves ACTIVITY_LEVEL_UNSPECIFIED out. */
export type HealthActivityLevel = 'LIGHT' | 'MODERATE' | 'VIGOROUS'

export interface ActiveMinutesRollupValue {
  /** At most one entry per level; a level with no minutes is left out. */
  activeMinutesRollupByActivityLevel?: { activityLevel: HealthActivityLevel; activeMinutesSum: string }[]
}

/** Active zone minutes, already weighted as Google counts them: 1 per fat-burn minute, 2 per cardio or peak minute. */
export interface ActiveZoneMinutesRollupValue {
  sumInFatBurnHeartZone?: string
  sumInCardioHeartZone?: string
  sumInPeakHeartZone?: string
}

export interface WeightRollupValue {
  weightGramsAvg?: number
}

export interface BodyFatRollupValue {
  bodyFatPercentageAvg?: number
}

export interface FloorsRollupValue {
  countSum?: string
}

export type HealthRollupValue =
  | FloorsRollupValue
  | StepsRollupValue
  | TotalCaloriesRollupValue
  | HeartRateRollupValue
  | DistanceRollupValue
  | ActiveMinutesRollupValue
  | ActiveZoneMinutesRollupValue
  | WeightRollupValue
  | BodyFatRollupValue

/** One window of a rollUp answer: its bounds and, under the type's value field, its value. */
export interface RollupDataPoint {
  startTime: string
  endTime: string
  [valueField: string]: string | HealthRollupValue
}

export interface RollUpResponse {
  /** Left out when no window holds data, as proto3 JSON leaves out empty lists. */
  rollupDataPoints?: RollupDataPoint[]
  nextPageToken?: string
}

/** A google.type civil date and time of day; `time` is left out at midnight. */
export interface CivilDateTime {
  date: { year: number; month: number; day: number }
  time?: { hours?: number; minutes?: number; seconds?: number; nanos?: number }
}

export interface DailyRollupDataPoint {
  civilStartTime: CivilDateTime
  civilEndTime: CivilDateTime
  [valueField: string]: CivilDateTime | HealthRollupValue
}

export interface DailyRollUpResponse {
  rollupDataPoints?: DailyRollupDataPoint[]
}

const numberOf = (v: FitValue | undefined): number => (v === undefined ? 0 : 'intVal' in v ? v.intVal : v.fpVal)
const int64 = (n: number): string => String(Math.round(n))

/** The value as proto3 JSON writes it: fields holding 0 or "0" left out. */
export function withoutDefaults<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== 0 && v !== '0')) as T
}

/** The step bout a Fit sample of active or heart minutes was made from (undefined for one added later by a test). */
function boutOf(seed: string, sample: RawSample): StepBout | undefined {
  return stepBouts(seed, Math.floor(sample.startMs / HOUR_MS) * HOUR_MS).find((b) => b.startMs === sample.startMs)
}

/**
 * How hard a bout is, the same way the heart-minutes generator decides it: a stroll below 100 steps
 * a minute earns no heart points and is light activity, a brisk walk is moderate, a run (at 130 or
 * more) vigorous. A bout the fake did not generate itself counts as moderate.
 */
function activityLevel(bout: StepBout | undefined): HealthActivityLevel {
  if (bout === undefined) return 'MODERATE'
  return bout.cadence >= 130 ? 'VIGOROUS' : bout.cadence >= 100 ? 'MODERATE' : 'LIGHT'
}

/** Fit's move minutes split by level: Fit counts every bout, so the three levels add up to Fit's minutes. */
function activeMinutesByLevel(seed: string, samples: readonly RawSample[]): ActiveMinutesRollupValue {
  const minutes: Record<HealthActivityLevel, number> = { LIGHT: 0, MODERATE: 0, VIGOROUS: 0 }
  for (const s of samples) minutes[activityLevel(boutOf(seed, s))] += s.values[0] ?? 0
  const levels = (['LIGHT', 'MODERATE', 'VIGOROUS'] as const)
    .filter((level) => Math.round(minutes[level]) !== 0)
    .map((activityLevel) => ({ activityLevel, activeMinutesSum: int64(minutes[activityLevel]) }))
  return levels.length === 0 ? {} : { activeMinutesRollupByActivityLevel: levels }
}

/** A run at 160 steps a minute or more is in the peak heart-rate zone, a slower one in the cardio zone. */
const PEAK_CADENCE = 160

/**
 * Active zone minutes from Fit's heart points, which give a point per brisk minute and two per
 * vigorous one: a brisk minute is in the fat-burn zone (1 active zone minute), a vigorous one in
 * the cardio or peak zone (2 each, as Google counts them). So the three sums add up to Fit's heart
 * points, and fat-burn plus half of cardio and peak to Fit's heart minutes.
 */
function activeZoneMinutes(seed: string, samples: readonly RawSample[]): ActiveZoneMinutesRollupValue {
  let [fatBurn, cardio, peak] = [0, 0, 0]
  for (const s of samples) {
    const points = s.values[0] ?? 0
    const minutes = (s.endMs - s.startMs) / 60_000
    if (points < 2 * minutes) fatBurn += points
    else if ((boutOf(seed, s)?.cadence ?? 0) >= PEAK_CADENCE) peak += points
    else cardio += points
  }
  return withoutDefaults({ sumInFatBurnHeartZone: int64(fatBurn), sumInCardioHeartZone: int64(cardio), sumInPeakHeartZone: int64(peak) })
}

/** Steps it takes to climb one floor (about 3 m: some 16 stairs, and the landing between them). */
const STEPS_PER_FLOOR = 20

/**
 * The floors climbed in a step sample: a share of its steps, the same for a user and hour (offices
 * and homes with stairs, or none), from none to a tenth of the steps, in whole floors.
 */
function floorsClimbed(seed: string, sample: RawSample): number {
  const hour = Math.floor(sample.startMs / HOUR_MS)
  const share = createHash('sha256').update(`${seed}|floors|${hour}`).digest().readUInt16BE(0) / 65_536
  return Math.floor(((sample.values[0] ?? 0) * share * 0.1) / STEPS_PER_FLOOR)
}

/**
 * A window's value from the raw samples that start in it, through the Fit aggregation of the same
 * samples: averages, extremes and sums are Fit's own numbers, converted to the Health API's units.
 */
function rollupValue(seed: string, type: HealthTypeSpec, samples: readonly RawSample[]): HealthRollupValue | undefined {
  const point = aggregateSamples(seed, type.fitType, samples)[0]
  if (point === undefined) return undefined
  const [a, b, c] = [0, 1, 2].map((i) => numberOf(point.value[i])) as [number, number, number]
  switch (type.name) {
    case 'steps':
      return withoutDefaults({ countSum: int64(a) })
    case 'total-calories':
      return withoutDefaults({ kcalSum: a })
    case 'heart-rate':
      return withoutDefaults({ beatsPerMinuteAvg: a, beatsPerMinuteMax: b, beatsPerMinuteMin: c })
    case 'distance':
      return withoutDefaults({ millimetersSum: int64(a * 1000) })
    case 'active-minutes':
      return activeMinutesByLevel(seed, samples)
    case 'active-zone-minutes':
      return activeZoneMinutes(seed, samples)
    case 'weight':
      // Grams to the microgram: kg x 1000 in doubles would carry noise like 72300.00000000001.
      return withoutDefaults({ weightGramsAvg: Math.round(a * 1e9) / 1e6 })
    case 'body-fat':
      return withoutDefaults({ bodyFatPercentageAvg: a })
    case 'floors':
      return withoutDefaults({ countSum: int64(samples.reduce((sum, s) => sum + floorsClimbed(seed, s), 0)) })
  }
}

function requireHealthType(name: string): HealthTypeSpec {
  const type = healthType(name)
  if (type === undefined) throw new Error(`Unknown Health data type ${name}`)
  return type
}

/**
 * Exactly the value the fake returns for a Health data type in the window [startMs, endMs) when
 * the server's clock reads nowMs (undefined: no data, so the window is left out of the answer).
 */
export function syntheticRollup(
  seed: string,
  healthDataType: string,
  startMs: number,
  endMs: number,
  nowMs: number = Number.POSITIVE_INFINITY,
): HealthRollupValue | undefined {
  const type = requireHealthType(healthDataType)
  return rollupValue(seed, type, rawSamples(seed, type.fitType, startMs, endMs, nowMs))
}

// ---------------------------------------------------------------------------------------------
// Request validation

type Json = Record<string, unknown>

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v)

/** proto3 JSON reads a null field as an absent one, and the typings let clients send null. */
function fieldsOf(v: unknown, field: string | undefined, allowed: readonly string[]): Json {
  if (!isObject(v)) {
    throw healthBadRequest(
      field === undefined ? 'Invalid JSON payload received. Root element must be a message.' : `Invalid value at '${field}', expected an object.`,
      field,
    )
  }
  const fields: Json = {}
  for (const [key, value] of Object.entries(v)) {
    if (!allowed.includes(key)) {
      const where = field === undefined ? '' : ` at '${field}'`
      throw healthBadRequest(`Invalid JSON payload received. Unknown name "${key}"${where}: Cannot find field.`, field)
    }
    if (value !== null) fields[key] = value
  }
  return fields
}

/** Proto3 JSON int32: a number or a decimal string. */
export function parseInt32(v: unknown, field: string): number {
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^-?\d{1,10}$/.test(v) ? Number(v) : Number.NaN
  if (!Number.isInteger(n) || n > 2_147_483_647 || n < -2_147_483_648) {
    throw healthBadRequest(`Invalid value at '${field}' (TYPE_INT32), ${JSON.stringify(v) ?? String(v)}`, field)
  }
  return n
}

function parseString(v: unknown, field: string): string {
  if (typeof v !== 'string') throw healthBadRequest(`Invalid value at '${field}' (TYPE_STRING), ${JSON.stringify(v) ?? String(v)}`, field)
  return v
}

const TIMESTAMP = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:[Zz]|([+-])(\d{2}):(\d{2}))$/

/** An RFC 3339 timestamp (google.protobuf.Timestamp in JSON), in nanoseconds since the epoch. */
export function parseTimestamp(v: unknown, field: string): bigint {
  const m = typeof v === 'string' ? TIMESTAMP.exec(v) : null
  let ns: bigint | undefined
  if (m !== null) {
    const [year, month, day, hour, minute, second, offsetHours, offsetMinutes] = [1, 2, 3, 4, 5, 6, 9, 10].map((i) => Number(m[i] ?? 0)) as [
      number,
      number,
      number,
      number,
      number,
      number,
      number,
      number,
    ]
    const fieldsValid = year >= 1 && month >= 1 && month <= 12 && day >= 1 && day <= daysInMonth(year, month) && hour <= 23 && minute <= 59 && second <= 59
    if (fieldsValid && offsetHours <= 23 && offsetMinutes <= 59) {
      const ms = wallAsUtc({ year, month, day, hour, minute, second, millisecond: 0 })
      const offsetNs = BigInt((offsetHours * 60 + offsetMinutes) * 60) * NS_PER_SECOND * (m[8] === '-' ? -1n : 1n)
      ns = BigInt(ms) * NS_PER_MS + BigInt((m[7] ?? '').padEnd(9, '0')) - offsetNs
    }
  }
  if (ns === undefined || ns < MIN_TIMESTAMP_NS || ns > MAX_TIMESTAMP_NS) {
    throw healthBadRequest(`Invalid value at '${field}' (type.googleapis.com/google.protobuf.Timestamp), ${JSON.stringify(v) ?? String(v)}`, field)
  }
  return ns
}

/** A google.protobuf.Duration in JSON ("3600s", "0.5s"), in nanoseconds. */
function parseDuration(v: unknown, field: string): bigint {
  const m = typeof v === 'string' ? /^(-)?(\d{1,12})(?:\.(\d{1,9}))?s$/.exec(v) : null
  const seconds = BigInt(m?.[2] ?? 0)
  if (m === null || seconds > MAX_DURATION_SECONDS) {
    throw healthBadRequest(`Invalid value at '${field}' (type.googleapis.com/google.protobuf.Duration), ${JSON.stringify(v) ?? String(v)}`, field)
  }
  return (m[1] === '-' ? -1n : 1n) * (seconds * NS_PER_SECOND + BigInt((m[3] ?? '').padEnd(9, '0')))
}

interface Paging {
  /** After the default and the cap. */
  readonly pageSize: number
  /** '' for the first page. */
  readonly pageToken: string
  readonly family: DataSourceFamily
}

function parsePaging(b: Json): Paging {
  const size = b['pageSize'] === undefined ? 0 : parseInt32(b['pageSize'], 'page_size')
  if (size < 0) throw healthBadRequest('page_size must not be negative.', 'page_size')
  const pageToken = b['pageToken'] === undefined ? '' : parseString(b['pageToken'], 'page_token')
  const family = b['dataSourceFamily'] === undefined ? '' : parseString(b['dataSourceFamily'], 'data_source_family')
  return {
    pageSize: size === 0 ? DEFAULT_ROLLUP_PAGE_SIZE : Math.min(size, MAX_ROLLUP_PAGE_SIZE),
    pageToken,
    family: parseDataSourceFamily(family),
  }
}

/** A request's `dataSourceFamily` ('' when not given: all sources); any other than Google's three is a 400. */
export function parseDataSourceFamily(family: string): DataSourceFamily {
  if (family === '') return 'users/me/dataSourceFamilies/all-sources'
  if (!(DATA_SOURCE_FAMILIES as readonly string[]).includes(family)) {
    throw healthBadRequest(`Invalid data source family: ${family}. Expected one of ${DATA_SOURCE_FAMILIES.join(', ')}.`, 'data_source_family')
  }
  return family as DataSourceFamily
}

function checkRange(type: HealthTypeSpec, spanNs: bigint): void {
  if (spanNs > BigInt(type.maxRangeDays) * NS_PER_DAY) {
    throw healthBadRequest(`The range of a ${type.name} roll-up must not be longer than ${type.maxRangeDays} days.`, 'range')
  }
}

export interface RollUpRequest extends Paging {
  readonly startNs: bigint
  readonly endNs: bigint
  readonly windowNs: bigint
}

/** Validates a rollUp body the way Google does; throws HealthApiError (400). */
export function parseRollUpRequest(body: unknown, type: HealthTypeSpec): RollUpRequest {
  const b = fieldsOf(body, undefined, ['range', 'windowSize', 'pageSize', 'pageToken', 'dataSourceFamily'])
  if (b['range'] === undefined) throw healthBadRequest('range is required.', 'range')
  const range = fieldsOf(b['range'], 'range', ['startTime', 'endTime'])
  if (range['startTime'] === undefined) throw healthBadRequest('range.start_time is required.', 'range.start_time')
  if (range['endTime'] === undefined) throw healthBadRequest('range.end_time is required.', 'range.end_time')
  const startNs = parseTimestamp(range['startTime'], 'range.start_time')
  const endNs = parseTimestamp(range['endTime'], 'range.end_time')
  if (endNs <= startNs) throw healthBadRequest('range.end_time must be after range.start_time.', 'range')
  checkRange(type, endNs - startNs)
  if (b['windowSize'] === undefined) throw healthBadRequest('window_size is required.', 'window_size')
  const windowNs = parseDuration(b['windowSize'], 'window_size')
  if (windowNs < NS_PER_SECOND) throw healthBadRequest('window_size must be at least 1 second.', 'window_size')
  return { startNs, endNs, windowNs, ...parsePaging(b) }
}

/** A civil date and time as a rollUp range gives it: the shared wall-clock fields, to the nanosecond. */
export interface CivilTime extends WallClock {
  readonly nanos: number
}

function parseBounded(v: unknown, field: string, min: number, max: number): number {
  const n = v === undefined ? 0 : parseInt32(v, field)
  if (n < min || n > max) throw healthBadRequest(`Invalid value at '${field}': ${n} is out of range [${min}, ${max}].`, field)
  return n
}

function parseCivilDateTime(v: unknown, field: string): CivilTime {
  const c = fieldsOf(v, field, ['date', 'time'])
  if (c['date'] === undefined) throw healthBadRequest(`${field}.date is required.`, `${field}.date`)
  const date = fieldsOf(c['date'], `${field}.date`, ['year', 'month', 'day'])
  const time = fieldsOf(c['time'] ?? {}, `${field}.time`, ['hours', 'minutes', 'seconds', 'nanos'])
  const year = parseBounded(date['year'], `${field}.date.year`, 1, 9999)
  const month = parseBounded(date['month'], `${field}.date.month`, 1, 12)
  return {
    year,
    month,
    day: parseBounded(date['day'], `${field}.date.day`, 1, daysInMonth(year, month)),
    hours: parseBounded(time['hours'], `${field}.time.hours`, 0, 23),
    minutes: parseBounded(time['minutes'], `${field}.time.minutes`, 0, 59),
    seconds: parseBounded(time['seconds'], `${field}.time.seconds`, 0, 59),
    nanos: parseBounded(time['nanos'], `${field}.time.nanos`, 0, 999_999_999),
  }
}

/** A civil time as if the zone were UTC, in nanoseconds: for comparing and measuring civil spans. */
function civilNs(c: CivilTime): bigint {
  const ms = wallAsUtc({ year: c.year, month: c.month, day: c.day, hour: c.hours, minute: c.minutes, second: c.seconds, millisecond: 0 })
  return BigInt(ms) * NS_PER_MS + BigInt(c.nanos)
}

const isMidnight = (c: CivilTime): boolean => c.hours === 0 && c.minutes === 0 && c.seconds === 0 && c.nanos === 0

export interface DailyRollUpRequest extends Paging {
  readonly start: CivilTime
  readonly end: CivilTime
  readonly windowDays: number
}

/** Validates a dailyRollUp body the way Google does; throws HealthApiError (400). */
export function parseDailyRollUpRequest(body: unknown, type: HealthTypeSpec): DailyRollUpRequest {
  const b = fieldsOf(body, undefined, ['range', 'windowSizeDays', 'pageSize', 'pageToken', 'dataSourceFamily'])
  if (b['range'] === undefined) throw healthBadRequest('range is required.', 'range')
  const range = fieldsOf(b['range'], 'range', ['start', 'end'])
  if (range['start'] === undefined) throw healthBadRequest('range.start is required.', 'range.start')
  if (range['end'] === undefined) throw healthBadRequest('range.end is required.', 'range.end')
  const start = parseCivilDateTime(range['start'], 'range.start')
  const end = parseCivilDateTime(range['end'], 'range.end')
  if (civilNs(end) <= civilNs(start)) throw healthBadRequest('range.end must be after range.start.', 'range')
  checkRange(type, civilNs(end) - civilNs(start))
  const days = b['windowSizeDays'] === undefined ? 0 : parseInt32(b['windowSizeDays'], 'window_size_days')
  if (days < 0) throw healthBadRequest('window_size_days must not be negative.', 'window_size_days')
  if (!isMidnight(start)) throw healthBadRequest('range.start must be aligned with the aggregation window: the start of a day.', 'range.start')
  return { start, end, windowDays: days === 0 ? 1 : days, ...parsePaging(b) }
}

// ---------------------------------------------------------------------------------------------
// Answers

/** Who is asking, and what has reached Google by now: the same inputs as a Fit aggregate's. */
export interface RollUpContext {
  readonly seed: string
  /** Page tokens are bound to the user, so another user's token is refused. */
  readonly googleId: string
  readonly nowMs: number
  readonly arrival?: DataArrival
  /** How long after reaching Google a night is still being staged (listed without stages); default 0. */
  readonly sleepStagingMs?: number
  /** The exercise types the user's workouts are recorded as, in turns; default running. */
  readonly exerciseTypes?: readonly string[]
  /** How the user's nights are recorded; default STAGES. */
  readonly sleepType?: 'STAGES' | 'CLASSIC'
}

/** The earliest whole millisecond at or after ns (exact for either sign: bigint division truncates). */
export function ceilMs(ns: bigint): number {
  const q = ns / NS_PER_MS
  return Number(ns > q * NS_PER_MS ? q + 1n : q)
}

/** Whether the user's only source of a Fit raw type (the device that records it) is in the family. */
export function sourceInFamily(seed: string, fitTypeName: string, family: DataSourceFamily): boolean {
  return inFamily(family, recordingDevice(seed, fitTypeName))
}

/** The samples of the type's Fit source starting in [startNs, endNs) that the request sees, in start order. */
function samplesIn(type: HealthTypeSpec, startNs: bigint, endNs: bigint, family: DataSourceFamily, ctx: RollUpContext): RawSample[] {
  if (!sourceInFamily(ctx.seed, type.fitType, family)) return []
  return arrivedSamples(ctx.seed, type.fitType, ceilMs(startNs), ceilMs(endNs), ctx.nowMs, ctx.arrival)
}

/** The samples of each window that has any, by window index; windows without samples have no entry. */
function groupByWindow(samples: readonly RawSample[], indexOf: (ns: bigint) => number): Map<number, RawSample[]> {
  const groups = new Map<number, RawSample[]>()
  for (const s of samples) {
    const i = indexOf(BigInt(s.startMs) * NS_PER_MS)
    const group = groups.get(i)
    if (group === undefined) groups.set(i, [s])
    else group.push(s)
  }
  return groups
}

/** RFC 3339 in UTC with 0, 3, 6 or 9 fractional digits, as Google writes a Timestamp. */
export function formatTimestamp(ns: bigint): string {
  const seconds = ns / NS_PER_SECOND - (ns % NS_PER_SECOND < 0n ? 1n : 0n)
  const nanos = Number(ns - seconds * NS_PER_SECOND)
  const base = new Date(Number(seconds) * 1000).toISOString().slice(0, 19)
  const digits = nanos === 0 ? 0 : nanos % 1_000_000 === 0 ? 3 : nanos % 1000 === 0 ? 6 : 9
  const fraction = digits === 0 ? '' : `.${String(nanos).padStart(9, '0').slice(0, digits)}`
  return `${base}${fraction}Z`
}

export function fingerprint(parts: readonly (string | number | bigint)[]): string {
  return createHash('sha256')
    .update(JSON.stringify(parts.map(String)))
    .digest('base64url')
    .slice(0, 22)
}

// A page token names the request it continues (by fingerprint) and the start of the last window
// served: the next page holds the windows starting before it, so a window can neither repeat nor
// be skipped when data arrives between pages.
export function encodePageToken(requestFingerprint: string, beforeNs: bigint): string {
  return Buffer.from(JSON.stringify([requestFingerprint, beforeNs.toString()])).toString('base64url')
}

export function decodePageToken(token: string, requestFingerprint: string): bigint {
  let decoded: unknown
  try {
    decoded = /^[A-Za-z0-9_-]+$/.test(token) ? JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) : undefined
  } catch {
    decoded = undefined
  }
  if (!Array.isArray(decoded) || decoded.length !== 2 || typeof decoded[0] !== 'string' || typeof decoded[1] !== 'string' || !/^-?\d+$/.test(decoded[1])) {
    throw healthBadRequest('Invalid page token.', 'page_token')
  }
  if (decoded[0] !== requestFingerprint) {
    throw healthBadRequest('Invalid page token: every other request field must be the same as in the request that returned it.', 'page_token')
  }
  return BigInt(decoded[1])
}

/** The rollUp answer: the windows holding data, latest first, one page of them. */
export function buildRollUpResponse(type: HealthTypeSpec, request: RollUpRequest, ctx: RollUpContext): RollUpResponse {
  const { startNs, endNs, windowNs } = request
  const requestFingerprint = fingerprint([ctx.googleId, type.name, startNs, endNs, windowNs, request.pageSize, request.family])
  const beforeNs = request.pageToken === '' ? undefined : decodePageToken(request.pageToken, requestFingerprint)
  const groups = groupByWindow(samplesIn(type, startNs, endNs, request.family, ctx), (ns) => Number((ns - startNs) / windowNs))
  const windowStart = (i: number): bigint => startNs + BigInt(i) * windowNs
  const pending = [...groups.keys()].sort((x, y) => y - x).filter((i) => beforeNs === undefined || windowStart(i) < beforeNs)
  const page = pending.slice(0, request.pageSize)
  const points = page.map((i): RollupDataPoint => {
    const value = rollupValue(ctx.seed, type, groups.get(i) ?? []) ?? {}
    const end = windowStart(i) + windowNs
    return { startTime: formatTimestamp(windowStart(i)), endTime: formatTimestamp(end < endNs ? end : endNs), [type.valueField]: value }
  })
  const last = page[page.length - 1]
  return {
    ...(points.length === 0 ? {} : { rollupDataPoints: points }),
    ...(pending.length > page.length && last !== undefined ? { nextPageToken: encodePageToken(requestFingerprint, windowStart(last)) } : {}),
  }
}

function addDays(c: CivilTime, days: number): CivilTime {
  const d = new Date(wallAsUtc({ year: c.year, month: c.month, day: c.day + days, hour: 0, minute: 0, second: 0, millisecond: 0 }))
  return { year: d.getUTCFullYear(), month: d.getUTCMonth() + 1, day: d.getUTCDate(), hours: 0, minutes: 0, seconds: 0, nanos: 0 }
}

/** The instant a civil time occurs in the zone (just after a daylight-saving gap it falls in). */
function instantNs(c: CivilTime, timeZone: string): bigint {
  const wall = { year: c.year, month: c.month, day: c.day, hour: c.hours, minute: c.minutes, second: c.seconds, millisecond: Math.floor(c.nanos / 1e6) }
  return BigInt(zonedToInstant(wall, timeZone)) * NS_PER_MS + BigInt(c.nanos % 1e6)
}

export function civilJson(c: CivilTime): CivilDateTime {
  const date = { year: c.year, month: c.month, day: c.day }
  return isMidnight(c) ? { date } : { date, time: withoutDefaults({ hours: c.hours, minutes: c.minutes, seconds: c.seconds, nanos: c.nanos }) }
}

/**
 * The dailyRollUp answer: the user's civil days (in their own time zone, so a day can last 23 or
 * 25 hours) holding data, latest first. The answer has no page token, so pageSize only caps it.
 */
export function buildDailyRollUpResponse(type: HealthTypeSpec, request: DailyRollUpRequest, timeZone: string, ctx: RollUpContext): DailyRollUpResponse {
  // No answer carries a token, so none can be valid.
  if (request.pageToken !== '') throw healthBadRequest('Invalid page token.', 'page_token')
  const civilStarts: CivilTime[] = []
  for (let c = request.start; civilNs(c) < civilNs(request.end); c = addDays(c, request.windowDays)) civilStarts.push(c)
  const civilEnds = [...civilStarts.slice(1), request.end]
  const bounds = [...civilStarts.map((c) => instantNs(c, timeZone)), instantNs(request.end, timeZone)]
  const indexOf = (ns: bigint): number => {
    let lo = 0
    let hi = civilStarts.length - 1
    while (lo < hi) {
      const mid = Math.ceil((lo + hi) / 2)
      if ((bounds[mid] as bigint) <= ns) lo = mid
      else hi = mid - 1
    }
    return lo
  }
  const groups = groupByWindow(samplesIn(type, bounds[0] as bigint, bounds[bounds.length - 1] as bigint, request.family, ctx), indexOf)
  const page = [...groups.keys()].sort((x, y) => y - x).slice(0, request.pageSize)
  const points = page.map((i): DailyRollupDataPoint => ({
    civilStartTime: civilJson(civilStarts[i] as CivilTime),
    civilEndTime: civilJson(civilEnds[i] as CivilTime),
    [type.valueField]: rollupValue(ctx.seed, type, groups.get(i) ?? []) ?? {},
  }))
  return points.length === 0 ? {} : { rollupDataPoints: points }
}
