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

import type { HealthSessionTypeSpec } from './health-catalogue.js'
import {
  civilAt,
  civilMs,
  dataPointId,
  dataPointsPage,
  iso,
  pageFingerprint,
  parseListQuery,
  parseTimeFilter,
  sourceInFamily,
  utcOffset,
  type ListDataPointsResponse,
  type ListMethod,
  type ListRequest as GenericListRequest,
  type ReconcileDataPointsResponse,
  type ReconciledDataPoint,
  type TimeFilterFields,
} from './list.js'
import { decodePageToken, encodePageToken, type CivilDateTime, type RollUpContext } from './rollup.js'
import { DAY_MS, HOUR_MS, MINUTE_MS, sleepNight, type SleepNight } from './synthetic.js'

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

const SLEEP_FIELDS: TimeFilterFields = {
  dataType: 'sleep',
  prefix: 'sleep',
  physical: 'sleep.interval.end_time',
  civil: 'sleep.interval.civil_end_time',
}

export interface SleepFilter {
  /** Bounds on the session's end instant in ms: endFromMs <= end < endBeforeMs. */
  readonly endFromMs: number
  readonly endBeforeMs: number
  /** Bounds on the session's civil end time in the user's zone, as wall-clock ms (see wallAsUtc). */
  readonly civilEndFrom: number
  readonly civilEndBefore: number
}

/**
 * Parses a list filter for sleep: comparisons `<field> >= "<literal>"` or `<field> < "<literal>"`
 * on sleep.interval.end_time (RFC 3339) or sleep.interval.civil_end_time (YYYY-MM-DD[THH:mm:ss]),
 * joined by AND. Anything else is a 400 naming what is wrong.
 */
export function parseSleepFilter(filter: string): SleepFilter {
  const f = parseTimeFilter(filter, SLEEP_FIELDS)
  return { endFromMs: f.fromMs, endBeforeMs: f.beforeMs, civilEndFrom: f.civilFrom, civilEndBefore: f.civilBefore }
}

// ---------------------------------------------------------------------------------------------
// Request and answer

export type ListRequest = GenericListRequest<SleepFilter>

/** Validates a list (or reconcile) request's query parameters the way Google does; throws HealthApiError (400). */
export function parseListRequest(query: URLSearchParams, type: HealthSessionTypeSpec, method: ListMethod = 'list'): ListRequest {
  return parseListQuery(query, type, parseSleepFilter, method)
}

const minutes = (ms: number): string => String(Math.round(ms / MINUTE_MS))
const present = <T extends object>(value: T): T => Object.fromEntries(Object.entries(value).filter(([, v]) => v !== '0')) as T

/** A stable data point id for the user's night. */
const sessionId = (seed: string, startMs: number): string => dataPointId([seed, 'sleep-session', startMs])

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
 * The list (or reconcile) answer: the user's sessions that match the filter and have fully reached
 * Google, latest first, one page of them. A page token holds where the last page stopped (the start
 * of its last session), so a session can neither repeat nor be skipped when a night arrives between
 * pages. A reconcile whose family leaves out the user's watch, which records every night, finds none.
 */
export function buildListResponse(
  type: HealthSessionTypeSpec,
  request: ListRequest,
  timeZone: string,
  ctx: RollUpContext,
): ListDataPointsResponse<SleepDataPoint> | ReconcileDataPointsResponse<ReconciledDataPoint<SleepDataPoint>> {
  const requestFingerprint = pageFingerprint(ctx.googleId, type.name, request)
  const startBeforeNs = request.pageToken === '' ? undefined : decodePageToken(request.pageToken, requestFingerprint)
  const f = request.parsed
  const visibleUntil = ctx.nowMs - (ctx.arrival?.uploadDelayMs ?? 0)
  const civilBounded = f.civilEndFrom > Number.NEGATIVE_INFINITY || f.civilEndBefore < Number.POSITIVE_INFINITY
  // A zone's offset is within a day of UTC, so these instant bounds hold every civil match.
  const nights = nightsLatestFirst(ctx.seed, {
    endFromMs: Math.max(0, f.endFromMs, f.civilEndFrom - DAY_MS),
    endBeforeMs: Math.min(f.endBeforeMs, f.civilEndBefore + DAY_MS, Math.floor(visibleUntil) + 1),
    ...(startBeforeNs === undefined ? {} : { startBeforeNs }),
    ...(civilBounded
      ? {
          accept: (night: SleepNight) => {
            const c = civilMs(night.endMs, timeZone)
            return c >= f.civilEndFrom && c < f.civilEndBefore
          },
        }
      : {}),
    // A family without the user's only source of the type holds none of it.
    limit: sourceInFamily(ctx.seed, type.fitType, request.family) ? request.pageSize + 1 : 0,
  })
  const page = nights.slice(0, request.pageSize)
  const last = page[page.length - 1]
  return dataPointsPage(
    request.method,
    page.map((night) => sleepDataPoint(ctx.googleId, ctx.seed, session(night), timeZone)),
    nights.length > page.length && last !== undefined ? encodePageToken(requestFingerprint, BigInt(last.startMs) * NS_PER_MS) : undefined,
  )
}
