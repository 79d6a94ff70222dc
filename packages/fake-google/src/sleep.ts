/**
 * The Google Health API's sleep sessions: users.dataTypes.dataPoints.list on `sleep`. A session is
 * one synthetic night (sleepNight), tiled by the same stage segments Fit's com.google.sleep.segment
 * serves, so a night reads the same through either API: same instants, Fit stage 1/4/5/6 as
 * AWAKE/LIGHT/DEEP/REM.
 *
 * A session is listed once it has fully reached Google (its end is at or before the server's clock,
 * less any upload delay); a night in progress is not. Sessions are kept by their end time: the
 * filter bounds `sleep.interval.end_time` (or `civil_end_time`, in the user's time zone), and the
 * answer runs latest first, 25 to a page. The synthetic history starts at the Unix epoch, as the
 * Fit aggregate's does (it refuses negative times), so an unbounded list ends too.
 */

import { createHash } from 'node:crypto'
import { healthBadRequest } from './errors.js'
import type { HealthSessionTypeSpec } from './health-catalogue.js'
import {
  ceilMs,
  civilJson,
  decodePageToken,
  encodePageToken,
  fingerprint,
  formatTimestamp,
  parseInt32,
  parseTimestamp,
  type CivilDateTime,
  type RollUpContext,
} from './rollup.js'
import { DAY_MS, HOUR_MS, MINUTE_MS, sleepNight, type SleepNight } from './synthetic.js'
import { daysInMonth, offsetAt, wallAsUtc, wallTime } from './time-zones.js'

const NS_PER_MS = 1_000_000n

export type HealthSleepStageType = 'AWAKE' | 'LIGHT' | 'DEEP' | 'REM'

/** Fit's sleep_segment_type values as the Health API's stage types. */
const STAGE_TYPES: Readonly<Record<number, HealthSleepStageType>> = { 1: 'AWAKE', 4: 'LIGHT', 5: 'DEEP', 6: 'REM' }
const STAGE_ORDER: readonly HealthSleepStageType[] = ['AWAKE', 'LIGHT', 'DEEP', 'REM']

export interface HealthSleepStage {
  readonly startMs: number
  readonly endMs: number
  readonly type: HealthSleepStageType
}

/** A sleep session as the fake lists it, in milliseconds: what a test compares a data point with. */
export interface HealthSleepSession {
  readonly startMs: number
  readonly endMs: number
  /** Contiguous, in time order, tiling [startMs, endMs). */
  readonly stages: readonly HealthSleepStage[]
}

// ---------------------------------------------------------------------------------------------
// The answer's JSON, as the Health API writes a sleep DataPoint.

export interface SleepStageJson {
  startTime: string
  endTime: string
  type: HealthSleepStageType
  /** google.protobuf.Duration JSON, e.g. "-18000s": the user's offset from UTC at that instant. */
  startUtcOffset: string
  endUtcOffset: string
}

export interface SleepJson {
  interval: {
    startTime: string
    endTime: string
    startUtcOffset: string
    endUtcOffset: string
    /** The user's wall clock at the start and end (output only, as Google fills them in). */
    civilStartTime: CivilDateTime
    civilEndTime: CivilDateTime
  }
  type: 'STAGES'
  stages: SleepStageJson[]
  metadata: { processed: true; mainSleep: true; nap: false }
  /** int64 minutes as decimal strings; a "0" is left out, as proto3 JSON does. */
  summary: {
    minutesAsleep?: string
    minutesAwake?: string
    minutesInSleepPeriod?: string
    stagesSummary?: { type: HealthSleepStageType; minutes?: string; count?: string }[]
  }
}

export interface SleepDataPoint {
  /** `users/<googleId>/dataTypes/sleep/dataPoints/<id>`; the id is stable for a user's night. */
  name: string
  sleep: SleepJson
}

export interface ListDataPointsResponse {
  /** Left out when nothing matches, as proto3 JSON leaves out empty lists. */
  dataPoints?: SleepDataPoint[]
  nextPageToken?: string
}

// ---------------------------------------------------------------------------------------------
// Sessions

function session(night: SleepNight): HealthSleepSession {
  const stages = night.segments.map((s): HealthSleepStage => {
    const type = STAGE_TYPES[s.stage]
    if (type === undefined) throw new Error(`No Health sleep stage for Fit stage ${s.stage}`)
    return { startMs: s.startMs, endMs: s.endMs, type }
  })
  return { startMs: night.startMs, endMs: night.endMs, stages }
}

/** A night keyed by day D starts at D-90min at the earliest and ends by D+7h30. */
const LATEST_WAKE_MS = 6 * HOUR_MS + 90 * MINUTE_MS

interface NightQuery {
  /** Nights ending in [endFromMs, endBeforeMs). */
  readonly endFromMs: number
  readonly endBeforeMs: number
  /** Only nights starting before this instant: where a page token left off. */
  readonly startBeforeNs?: bigint
  readonly accept?: (night: SleepNight) => boolean
  readonly limit: number
}

/**
 * The nights matching the query, latest first. Nights never overlap and each ends on its own UTC
 * day, so walking the days backwards visits them in descending start (and end) order.
 */
function nightsLatestFirst(seed: string, q: NightQuery): SleepNight[] {
  const found: SleepNight[] = []
  if (!(q.endBeforeMs > q.endFromMs) || q.limit <= 0) return found
  let day = Math.floor((q.endBeforeMs - 1) / DAY_MS) * DAY_MS
  if (q.startBeforeNs !== undefined) {
    // Nights of later days start after the cursor: skip them rather than walk through them.
    const cursorMs = Number(q.startBeforeNs / NS_PER_MS)
    day = Math.min(day, Math.floor(cursorMs / DAY_MS) * DAY_MS + DAY_MS)
  }
  for (; day + LATEST_WAKE_MS >= q.endFromMs && found.length < q.limit; day -= DAY_MS) {
    const night = sleepNight(seed, day)
    if (night.endMs < q.endFromMs || night.endMs >= q.endBeforeMs) continue
    if (q.startBeforeNs !== undefined && BigInt(night.startMs) * NS_PER_MS >= q.startBeforeNs) continue
    if (q.accept === undefined || q.accept(night)) found.push(night)
  }
  return found
}

/**
 * Exactly the sessions the fake lists for a user with this seed whose end lies in [startMs, endMs),
 * latest first (the list's own order), when the server's clock reads nowMs: a session is listed
 * only once it has ended. Each Fit sleep segment of the night is one stage, 1/4/5/6 as
 * AWAKE/LIGHT/DEEP/REM.
 */
export function healthSleepSessions(seed: string, startMs: number, endMs: number, nowMs: number = Number.POSITIVE_INFINITY): HealthSleepSession[] {
  if (!Number.isFinite(startMs) || !Number.isFinite(endMs)) throw new RangeError('startMs and endMs must be finite')
  const endBeforeMs = Math.min(endMs, Math.floor(nowMs) + 1)
  return nightsLatestFirst(seed, { endFromMs: startMs, endBeforeMs, limit: Number.POSITIVE_INFINITY }).map(session)
}

// ---------------------------------------------------------------------------------------------
// The filter: the AIP-160 subset Google documents for sleep, less OR.

const END_TIME = 'sleep.interval.end_time'
const CIVIL_END_TIME = 'sleep.interval.civil_end_time'
const SUPPORTED = `${END_TIME} or ${CIVIL_END_TIME} with >= or <, joined by AND`

export interface SleepFilter {
  /** Bounds on the session's end instant in ms: endFromMs <= end < endBeforeMs. */
  readonly endFromMs: number
  readonly endBeforeMs: number
  /** Bounds on the session's civil end time in the user's zone, as wall-clock ms (see wallAsUtc). */
  readonly civilEndFrom: number
  readonly civilEndBefore: number
}

function filterError(message: string): never {
  throw healthBadRequest(`Invalid filter: ${message}`, 'filter')
}

const TOKEN = /\s*(?:("[^"]*"|'[^']*')|(>=|<=|!=|=|>|<|:)|([()])|([A-Za-z_][A-Za-z0-9_.]*)|([^\s"'()<>=!:]+|\S))/y

type Token = { kind: 'string'; text: string } | { kind: 'operator'; text: string } | { kind: 'word'; text: string } | { kind: 'other'; text: string }

function tokenize(filter: string): Token[] {
  const tokens: Token[] = []
  TOKEN.lastIndex = 0
  while (TOKEN.lastIndex < filter.length) {
    const m = TOKEN.exec(filter)
    if (m === null) break // only trailing whitespace is left
    const [, string, operator, paren, word, other] = m
    if (string !== undefined) tokens.push({ kind: 'string', text: string.slice(1, -1) })
    else if (operator !== undefined) tokens.push({ kind: 'operator', text: operator })
    else if (word !== undefined) tokens.push({ kind: 'word', text: word })
    else tokens.push({ kind: 'other', text: paren ?? other ?? '' })
  }
  return tokens
}

const CIVIL = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2}):(\d{2}))?$/

/** A `YYYY-MM-DD[THH:mm:ss]` literal as wall-clock ms. */
function parseCivilLiteral(text: string): number {
  const m = CIVIL.exec(text)
  const [year, month, day, hour, minute, second] = [1, 2, 3, 4, 5, 6].map((i) => Number(m?.[i] ?? 0)) as [number, number, number, number, number, number]
  const valid =
    m !== null && year >= 1 && month >= 1 && month <= 12 && day >= 1 && day <= daysInMonth(year, month) && hour <= 23 && minute <= 59 && second <= 59
  if (!valid) filterError(`"${text}" is not a civil date or date-time (YYYY-MM-DD or YYYY-MM-DDTHH:mm:ss) for ${CIVIL_END_TIME}.`)
  return wallAsUtc({ year, month, day, hour, minute, second, millisecond: 0 })
}

function parseTimestampLiteral(text: string): number {
  let ns: bigint | undefined
  try {
    ns = parseTimestamp(text, 'filter')
  } catch {
    filterError(`"${text}" is not an RFC 3339 timestamp (e.g. "2026-03-20T00:00:00Z") for ${END_TIME}.`)
  }
  // end >= ns and end < ns hold for a whole-millisecond end exactly when they hold for ceil(ns).
  return ceilMs(ns as bigint)
}

/**
 * Parses a list filter for sleep: comparisons `<field> >= "<literal>"` or `<field> < "<literal>"`
 * on sleep.interval.end_time (RFC 3339) or sleep.interval.civil_end_time (YYYY-MM-DD[THH:mm:ss]),
 * joined by AND. Anything else is a 400 naming what is wrong.
 */
export function parseSleepFilter(filter: string): SleepFilter {
  let endFromMs = Number.NEGATIVE_INFINITY
  let endBeforeMs = Number.POSITIVE_INFINITY
  let civilEndFrom = Number.NEGATIVE_INFINITY
  let civilEndBefore = Number.POSITIVE_INFINITY
  const tokens = tokenize(filter)
  if (tokens.length === 0) return { endFromMs, endBeforeMs, civilEndFrom, civilEndBefore }
  for (let i = 0; ;) {
    const [field, operator, literal] = [tokens[i], tokens[i + 1], tokens[i + 2]]
    if (field?.kind !== 'word' || field.text === 'AND' || field.text === 'OR' || field.text === 'NOT') {
      filterError(`expected a field name at "${field?.text ?? 'end of filter'}"; supported: ${SUPPORTED}.`)
    }
    const name = (field as Token).text
    if (name !== END_TIME && name !== CIVIL_END_TIME) {
      if (!name.startsWith('sleep.')) filterError(`field "${name}" does not belong to data type sleep; supported: ${SUPPORTED}.`)
      filterError(`sleep data points cannot be filtered by "${name}"; supported: ${SUPPORTED}.`)
    }
    if (operator?.kind !== 'operator' || (operator.text !== '>=' && operator.text !== '<')) {
      filterError(`operator "${operator?.text ?? 'end of filter'}" is not supported for ${name}; use >= or <.`)
    }
    if (literal?.kind !== 'string')
      filterError(`expected a quoted literal after "${name} ${(operator as Token).text}", found "${literal?.text ?? 'end of filter'}".`)
    const text = (literal as Token).text
    const lower = (operator as Token).text === '>='
    if (name === END_TIME) {
      const ms = parseTimestampLiteral(text)
      if (lower) endFromMs = Math.max(endFromMs, ms)
      else endBeforeMs = Math.min(endBeforeMs, ms)
    } else {
      const wall = parseCivilLiteral(text)
      if (lower) civilEndFrom = Math.max(civilEndFrom, wall)
      else civilEndBefore = Math.min(civilEndBefore, wall)
    }
    i += 3
    const next = tokens[i]
    if (next === undefined) break
    if (next.kind === 'word' && next.text === 'OR') filterError(`OR is not supported by this fake; join comparisons with AND.`)
    if (next.kind !== 'word' || next.text !== 'AND') filterError(`expected AND or the end of the filter at "${next.text}".`)
    i++
  }
  return { endFromMs, endBeforeMs, civilEndFrom, civilEndBefore }
}

// ---------------------------------------------------------------------------------------------
// Request and answer

/** The standard query parameters every Google API accepts besides a method's own. */
const SYSTEM_PARAMETERS = new Set([
  'access_token',
  'alt',
  'callback',
  'fields',
  'key',
  'oauth_token',
  'prettyPrint',
  'quotaUser',
  'upload_protocol',
  'uploadType',
  '$.xgafv',
])

const LIST_PARAMETERS: Readonly<Record<string, string>> = { filter: 'filter', pageSize: 'page_size', pageToken: 'page_token' }

export interface ListRequest {
  /** As given (trimmed): a page token continues only the same filter. */
  readonly filter: string
  readonly parsed: SleepFilter
  /** After the default and the cap. */
  readonly pageSize: number
  /** '' for the first page. */
  readonly pageToken: string
}

/** Validates a list request's query parameters the way Google does; throws HealthApiError (400). */
export function parseListRequest(query: URLSearchParams, type: HealthSessionTypeSpec): ListRequest {
  const values = new Map<string, string>()
  for (const [key, value] of query) {
    if (SYSTEM_PARAMETERS.has(key)) continue
    const field = LIST_PARAMETERS[key]
    if (field === undefined) {
      throw healthBadRequest(
        `Invalid JSON payload received. Unknown name "${key}": Cannot bind query parameter. Field '${key}' could not be found in request message.`,
      )
    }
    if (values.has(key)) throw healthBadRequest(`Invalid value at '${field}': the query parameter is repeated, but the field is not.`, field)
    values.set(key, value)
  }
  const size = values.has('pageSize') ? parseInt32(values.get('pageSize'), 'page_size') : 0
  if (size < 0) throw healthBadRequest('page_size must not be negative.', 'page_size')
  const filter = (values.get('filter') ?? '').trim()
  return {
    filter,
    parsed: parseSleepFilter(filter),
    pageSize: size === 0 ? type.defaultPageSize : Math.min(size, type.maxPageSize),
    pageToken: values.get('pageToken') ?? '',
  }
}

const utcOffset = (t: number, timeZone: string): string => `${Math.round(offsetAt(t, timeZone) / 1000)}s`

function civilAt(t: number, timeZone: string): CivilDateTime {
  const w = wallTime(t, timeZone)
  return civilJson({ year: w.year, month: w.month, day: w.day, hours: w.hour, minutes: w.minute, seconds: w.second, nanos: w.millisecond * 1_000_000 })
}

const iso = (ms: number): string => formatTimestamp(BigInt(ms) * NS_PER_MS)
const minutes = (ms: number): string => String(Math.round(ms / MINUTE_MS))
const present = <T extends object>(value: T): T => Object.fromEntries(Object.entries(value).filter(([, v]) => v !== '0')) as T

/** A stable data point id for the user's night: a lowercase UUID-shaped hash. */
function sessionId(seed: string, startMs: number): string {
  const hex = createHash('sha256')
    .update(JSON.stringify([seed, 'sleep-session', startMs]))
    .digest('hex')
  return [hex.slice(0, 8), hex.slice(8, 12), hex.slice(12, 16), hex.slice(16, 20), hex.slice(20, 32)].join('-')
}

/** One session as the Health API's sleep DataPoint, its offsets and civil times in the user's zone. */
export function sleepDataPoint(googleId: string, seed: string, s: HealthSleepSession, timeZone: string): SleepDataPoint {
  const byType = new Map<HealthSleepStageType, { ms: number; count: number }>()
  for (const stage of s.stages) {
    const total = byType.get(stage.type) ?? { ms: 0, count: 0 }
    byType.set(stage.type, { ms: total.ms + stage.endMs - stage.startMs, count: total.count + 1 })
  }
  const awakeMs = byType.get('AWAKE')?.ms ?? 0
  return {
    name: `users/${googleId}/dataTypes/sleep/dataPoints/${sessionId(seed, s.startMs)}`,
    sleep: {
      interval: {
        startTime: iso(s.startMs),
        endTime: iso(s.endMs),
        startUtcOffset: utcOffset(s.startMs, timeZone),
        endUtcOffset: utcOffset(s.endMs, timeZone),
        civilStartTime: civilAt(s.startMs, timeZone),
        civilEndTime: civilAt(s.endMs, timeZone),
      },
      type: 'STAGES',
      stages: s.stages.map((stage) => ({
        startTime: iso(stage.startMs),
        endTime: iso(stage.endMs),
        type: stage.type,
        startUtcOffset: utcOffset(stage.startMs, timeZone),
        endUtcOffset: utcOffset(stage.endMs, timeZone),
      })),
      metadata: { processed: true, mainSleep: true, nap: false },
      summary: {
        ...present({
          minutesAsleep: minutes(s.endMs - s.startMs - awakeMs),
          minutesAwake: minutes(awakeMs),
          minutesInSleepPeriod: minutes(s.endMs - s.startMs),
        }),
        stagesSummary: STAGE_ORDER.flatMap((type) => {
          const total = byType.get(type)
          return total === undefined ? [] : [{ type, ...present({ minutes: minutes(total.ms), count: String(total.count) }) }]
        }),
      },
    },
  }
}

/**
 * The list answer: the user's sessions that match the filter and have fully reached Google, latest
 * first, one page of them. A page token holds where the last page stopped (the start of its last
 * session), so a session can neither repeat nor be skipped when a night arrives between pages.
 */
export function buildListResponse(type: HealthSessionTypeSpec, request: ListRequest, timeZone: string, ctx: RollUpContext): ListDataPointsResponse {
  const requestFingerprint = fingerprint([ctx.googleId, type.name, request.filter, request.pageSize])
  const startBeforeNs = request.pageToken === '' ? undefined : decodePageToken(request.pageToken, requestFingerprint)
  const f = request.parsed
  const visibleUntil = ctx.nowMs - (ctx.arrival?.uploadDelayMs ?? 0)
  const civilBounded = f.civilEndFrom > Number.NEGATIVE_INFINITY || f.civilEndBefore < Number.POSITIVE_INFINITY
  const civilEnd = (night: SleepNight): number => wallAsUtc(wallTime(night.endMs, timeZone))
  // A zone's offset is within a day of UTC, so these instant bounds hold every civil match.
  const nights = nightsLatestFirst(ctx.seed, {
    endFromMs: Math.max(0, f.endFromMs, f.civilEndFrom - DAY_MS),
    endBeforeMs: Math.min(f.endBeforeMs, f.civilEndBefore + DAY_MS, Math.floor(visibleUntil) + 1),
    ...(startBeforeNs === undefined ? {} : { startBeforeNs }),
    ...(civilBounded
      ? {
          accept: (night: SleepNight) => {
            const c = civilEnd(night)
            return c >= f.civilEndFrom && c < f.civilEndBefore
          },
        }
      : {}),
    limit: request.pageSize + 1,
  })
  const page = nights.slice(0, request.pageSize)
  const last = page[page.length - 1]
  return {
    ...(page.length === 0 ? {} : { dataPoints: page.map((night) => sleepDataPoint(ctx.googleId, ctx.seed, session(night), timeZone)) }),
    ...(nights.length > page.length && last !== undefined ? { nextPageToken: encodePageToken(requestFingerprint, BigInt(last.startMs) * NS_PER_MS) } : {}),
  }
}
