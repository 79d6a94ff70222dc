/**
 * The Google Health API's sleep sessions: users.dataTypes.dataPoints.list on `sleep`. A session is
 * one synthetic night (sleepNight), tiled by the same stage segments Fit's com.google.sleep.segment
 * serves, so a night reads the same through either API: same instants, Fit stage 1/4/5/6 as
 * AWAKE/LIGHT/DEEP/REM. A user set to classic sleep (FakeGoogle.setSleepType) has the same nights
 * as classic sleep: ASLEEP for light, deep and REM, RESTLESS for awakenings under 10 minutes, AWAKE.
 *
 * A session is listed once it has fully reached Google (its end is at or before the server's clock,
 * less any upload delay); a night in progress is not. Sessions are kept by their end time: the
 * filter bounds `sleep.interval.end_time` (or `civil_end_time`, in the user's time zone), and the
 * answer runs latest first, 25 to a page. The synthetic history starts at the Unix epoch, as the
 * Fit aggregate's does (it refuses negative times), so an unbounded list ends too.
 *
 * The sessions are built from the synthetic nights alone: late samples injected for
 * com.google.sleep.segment (addLateSamples) reach the Fit aggregate but are not in the sleep list,
 * nor in healthSleepSessions.
 */

import type { HealthSessionTypeSpec } from './health-catalogue.js'
import {
  dataPointId,
  iso,
  listPage,
  findAll,
  parseTimeListQuery,
  sessionInterval,
  startCursorNs,
  utcOffset,
  type DataPointsPage,
  type ListMethod,
  type PageQuery,
  type SessionIntervalJson,
  type TimeFilterFields,
  type TimeListRequest,
} from './list.js'
import { withoutDefaults, type RollUpContext } from './rollup.js'
import { DAY_MS, HOUR_MS, MINUTE_MS, sleepNight, type SleepNight } from './synthetic.js'

const NS_PER_MS = 1_000_000n

/** Stage types of staged sleep (AWAKE, LIGHT, DEEP, REM) and of classic sleep (AWAKE, RESTLESS, ASLEEP). */
export type HealthSleepStageType = 'AWAKE' | 'LIGHT' | 'DEEP' | 'REM' | 'RESTLESS' | 'ASLEEP'

/**
 * How a night is recorded: `STAGES` by a tracker that tells sleep stages apart, `CLASSIC` by one
 * that tells only asleep, restless and awake (older Fitbits, sleep logged without stages).
 */
export type HealthSleepType = 'STAGES' | 'CLASSIC'

/** Fit's sleep_segment_type values as the Health API's stage types. */
const STAGE_TYPES: Readonly<Record<number, HealthSleepStageType>> = { 1: 'AWAKE', 4: 'LIGHT', 5: 'DEEP', 6: 'REM' }
const STAGE_ORDER: readonly HealthSleepStageType[] = ['AWAKE', 'LIGHT', 'DEEP', 'REM', 'RESTLESS', 'ASLEEP']
/** In classic sleep, an awakening shorter than this is restlessness. */
const RESTLESS_MS = 10 * 60_000

export interface HealthSleepStage {
  readonly startMs: number
  readonly endMs: number
  readonly type: HealthSleepStageType
}

/** A sleep session as the fake lists it, in milliseconds: what a test compares a data point with. */
export interface HealthSleepSession {
  readonly startMs: number
  readonly endMs: number
  readonly type: HealthSleepType
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
  interval: SessionIntervalJson
  type: HealthSleepType
  /** Left out while the night is being staged, as proto3 JSON leaves out an empty list. */
  stages?: SleepStageJson[]
  /** `processed` is left out while the night is being staged, and `nap` always: proto3 JSON leaves false out. */
  metadata: { processed?: true; mainSleep: true }
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

function session(night: SleepNight, sleepType: HealthSleepType = 'STAGES'): HealthSleepSession {
  const stages = night.segments.map((s): HealthSleepStage => {
    const type = STAGE_TYPES[s.stage]
    if (type === undefined) throw new Error(`No Health sleep stage for Fit stage ${s.stage}`)
    return { startMs: s.startMs, endMs: s.endMs, type }
  })
  return { startMs: night.startMs, endMs: night.endMs, type: sleepType, stages: sleepType === 'STAGES' ? stages : classicStages(stages) }
}

/** The same night as classic sleep: light, deep and REM are asleep (one segment while unbroken), a short awakening restless. */
function classicStages(stages: readonly HealthSleepStage[]): HealthSleepStage[] {
  const classic: HealthSleepStage[] = []
  for (const stage of stages) {
    const type = stage.type !== 'AWAKE' ? 'ASLEEP' : stage.endMs - stage.startMs < RESTLESS_MS ? 'RESTLESS' : 'AWAKE'
    const last = classic[classic.length - 1]
    if (last !== undefined && last.type === type && last.endMs === stage.startMs) classic[classic.length - 1] = { ...last, endMs: stage.endMs }
    else classic.push({ startMs: stage.startMs, endMs: stage.endMs, type })
  }
  return classic
}

/** A night keyed by day D starts at D-90min at the earliest and ends by D+7h30. */
const LATEST_WAKE_MS = 6 * HOUR_MS + 90 * MINUTE_MS

/**
 * The nights matching the query, latest first: those ending in [fromMs, beforeMs) whose end the
 * query accepts and, after a page token, that start before its cursor (the start of the last night
 * served, in ns). Nights never overlap and each ends on its own UTC day, so walking the days
 * backwards visits them in descending start (and end) order.
 */
function nightsLatestFirst(seed: string, q: PageQuery): SleepNight[] {
  const found: SleepNight[] = []
  // A night ending after arrivedByMs has not reached Google (a page's beforeMs says so already).
  const beforeMs = Math.min(q.beforeMs, Math.floor(q.arrivedByMs) + 1)
  if (!(beforeMs > q.fromMs) || q.limit <= 0) return found
  let day = Math.floor((beforeMs - 1) / DAY_MS) * DAY_MS
  if (q.cursorNs !== undefined) {
    // Nights of later days start after the cursor: skip them rather than walk through them.
    const cursorMs = Number(q.cursorNs / NS_PER_MS)
    day = Math.min(day, Math.floor(cursorMs / DAY_MS) * DAY_MS + DAY_MS)
  }
  for (; day + LATEST_WAKE_MS >= q.fromMs && found.length < q.limit; day -= DAY_MS) {
    const night = sleepNight(seed, day)
    if (night.endMs < q.fromMs || night.endMs >= beforeMs) continue
    if (q.cursorNs !== undefined && BigInt(night.startMs) * NS_PER_MS >= q.cursorNs) continue
    if (q.accept === undefined || q.accept(night.endMs)) found.push(night)
  }
  return found
}

/**
 * Exactly the sessions the fake lists for a user with this seed whose end lies in [startMs, endMs),
 * latest first (the list's own order), when the server's clock reads nowMs: a session is listed
 * only once it has ended. Each Fit sleep segment of the night is one stage, 1/4/5/6 as
 * AWAKE/LIGHT/DEEP/REM; as classic sleep, AWAKE and RESTLESS (awakenings under 10 minutes) and
 * ASLEEP for the rest. Times before the Unix epoch hold none, as in the list.
 */
export function healthSleepSessions(
  seed: string,
  startMs: number,
  endMs: number,
  nowMs: number = Number.POSITIVE_INFINITY,
  sleepType: HealthSleepType = 'STAGES',
): HealthSleepSession[] {
  return findAll((q) => nightsLatestFirst(seed, q), startMs, endMs, nowMs).map((night) => session(night, sleepType))
}

// ---------------------------------------------------------------------------------------------
// The filter: the AIP-160 subset Google documents for sleep, less OR.

const SLEEP_FIELDS: TimeFilterFields = {
  dataType: 'sleep',
  prefix: 'sleep',
  physical: 'sleep.interval.end_time',
  civil: 'sleep.interval.civil_end_time',
}

// ---------------------------------------------------------------------------------------------
// Request and answer

/** The filter bounds the session's end: its instant, and its civil time in the user's zone. */
export type ListRequest = TimeListRequest

/**
 * Validates a list (or reconcile) request's query parameters the way Google does; throws
 * HealthApiError (400). The filter takes sleep.interval.end_time (RFC 3339) and
 * sleep.interval.civil_end_time (YYYY-MM-DD[THH:mm:ss]) with >= and <, joined by AND.
 */
export function parseListRequest(query: URLSearchParams, type: HealthSessionTypeSpec, method: ListMethod = 'list'): ListRequest {
  return parseTimeListQuery(query, type, SLEEP_FIELDS, method)
}

const minutes = (ms: number): string => String(Math.round(ms / MINUTE_MS))

/** A stable data point id for the user's night. */
const sessionId = (seed: string, startMs: number): string => dataPointId([seed, 'sleep-session', startMs])

/**
 * One session as the Health API's sleep DataPoint, its offsets and civil times in the user's zone.
 * A night still being staged has its interval only: no stages, no stage summary, not processed.
 */
function sleepDataPoint(googleId: string, seed: string, s: HealthSleepSession, timeZone: string, staged = true): SleepDataPoint {
  const byType = new Map<HealthSleepStageType, { ms: number; count: number }>()
  for (const stage of s.stages) {
    const total = byType.get(stage.type) ?? { ms: 0, count: 0 }
    byType.set(stage.type, { ms: total.ms + stage.endMs - stage.startMs, count: total.count + 1 })
  }
  const awakeMs = byType.get('AWAKE')?.ms ?? 0
  return {
    name: `users/${googleId}/dataTypes/sleep/dataPoints/${sessionId(seed, s.startMs)}`,
    sleep: {
      interval: sessionInterval(s.startMs, s.endMs, timeZone),
      type: s.type,
      ...(staged
        ? {
            stages: s.stages.map((stage) => ({
              startTime: iso(stage.startMs),
              endTime: iso(stage.endMs),
              type: stage.type,
              startUtcOffset: utcOffset(stage.startMs, timeZone),
              endUtcOffset: utcOffset(stage.endMs, timeZone),
            })),
          }
        : {}),
      metadata: staged ? { processed: true, mainSleep: true } : { mainSleep: true },
      summary: staged
        ? {
            ...withoutDefaults({
              minutesAsleep: minutes(s.endMs - s.startMs - awakeMs),
              minutesAwake: minutes(awakeMs),
              minutesInSleepPeriod: minutes(s.endMs - s.startMs),
            }),
            stagesSummary: STAGE_ORDER.flatMap((type) => {
              const total = byType.get(type)
              return total === undefined ? [] : [{ type, ...withoutDefaults({ minutes: minutes(total.ms), count: String(total.count) }) }]
            }),
          }
        : withoutDefaults({ minutesInSleepPeriod: minutes(s.endMs - s.startMs) }),
    },
  }
}

/**
 * The list (or reconcile) answer: the user's sessions that match the filter and have fully reached
 * Google, latest first, one page of them. A page token holds where the last page stopped (the start
 * of its last session), so a session can neither repeat nor be skipped when a night arrives between
 * pages. A reconcile whose family leaves out the user's watch, which records every night, finds none.
 */
export function buildListResponse(type: HealthSessionTypeSpec, request: ListRequest, timeZone: string, ctx: RollUpContext): DataPointsPage<SleepDataPoint> {
  return listPage(type, request, timeZone, ctx, {
    find: (q) => nightsLatestFirst(ctx.seed, q),
    // Google stages a night some time after it has reached it (the end plus any upload delay).
    dataPoint: (night) =>
      sleepDataPoint(
        ctx.googleId,
        ctx.seed,
        session(night, ctx.sleepType),
        timeZone,
        night.endMs + (ctx.arrival?.uploadDelayMs ?? 0) + (ctx.sleepStagingMs ?? 0) <= ctx.nowMs,
      ),
    cursorNs: startCursorNs,
  })
}
