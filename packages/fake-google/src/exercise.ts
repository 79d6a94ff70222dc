/**
 * The Google Health API's exercise sessions: users.dataTypes.dataPoints.list on `exercise`. A
 * session is one synthetic run (a running bout of stepBouts), so a runner reads the same through
 * either API: Fit shows the run as an activity segment of type 8 over the same instants, with the
 * same steps and metres. Walks are not workouts, and a user who is not a runner has none.
 *
 * A run of 9 minutes or more has a one-minute pause from the whole minute nearest its midpoint (a
 * half minute rounds up), as a runner stopping at a crossing; a shorter one runs straight through.
 *
 * A session is listed once it has fully reached Google (its end is at or before the server's clock,
 * less any upload delay); a run in progress is not. Sessions are kept by their start: the filter
 * bounds `exercise.interval.civil_start_time` in the user's time zone, the only field Google lets a
 * session other than sleep be filtered by, and the answer runs latest first, 25 to a page. The
 * synthetic history starts at the Unix epoch, so an unbounded list ends there.
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
import { exerciseDisplayName } from './exercise-types.js'
import { boutKcal, boutMetres, HOUR_MS, MINUTE_MS, runningBout, userProfile, type StepBout } from './synthetic.js'

const NS_PER_MS = 1_000_000n

/** What a runner's runs are recorded as unless a test says otherwise (FakeGoogle.setExerciseTypes). */
export const DEFAULT_EXERCISE_TYPES: readonly string[] = ['RUNNING']

export type HealthExerciseEventType = 'START' | 'PAUSE' | 'RESUME' | 'STOP'

/** An exercise session as the fake lists it, in milliseconds: what a test compares a data point with. */
export interface HealthExerciseSession {
  readonly startMs: number
  readonly endMs: number
  /** The interval less its pause, if it has one. */
  readonly activeMs: number
  /** One of HEALTH_EXERCISE_TYPES, or any name a test gave the fake. */
  readonly exerciseType: string
}

// ---------------------------------------------------------------------------------------------
// The answer's JSON, as the Health API writes an exercise DataPoint.

export interface ExerciseEventJson {
  eventTime: string
  /** google.protobuf.Duration JSON, e.g. "-18000s": the user's offset from UTC at that instant. */
  eventUtcOffset: string
  exerciseEventType: HealthExerciseEventType
}

export interface ExerciseJson {
  interval: SessionIntervalJson
  exerciseType: string
  /** Google's own name for the type (it overrides any client's for types other than OTHER). */
  displayName: string
  /** google.protobuf.Duration JSON: the interval less its pause. */
  activeDuration: string
  /** START, then PAUSE and RESUME for a paused run, then STOP, in time order. */
  exerciseEvents: ExerciseEventJson[]
  /** steps is an int64 decimal string; a zero is left out, as proto3 JSON does. */
  metricsSummary: { steps?: string; distanceMillimeters?: number; caloriesKcal?: number }
  /** The phone logs GPS fixes through every run. */
  exerciseMetadata: { hasGps: true }
  /** The run's end, when its last reading was written (as Fit's modifiedTimeMillis). */
  createTime: string
  updateTime: string
}

export interface ExerciseDataPoint {
  /** `users/<googleId>/dataTypes/exercise/dataPoints/<id>`; the id is stable for a user's run. */
  name: string
  exercise: ExerciseJson
}

// ---------------------------------------------------------------------------------------------
// Sessions

/** A run this long or longer pauses once, for a minute. */
const PAUSED_RUN_MS = 9 * MINUTE_MS
const PAUSE_MS = MINUTE_MS

/** Where a run's pause starts: the whole minute nearest its midpoint; undefined for a run too short to pause. */
function pauseStart(run: StepBout): number | undefined {
  const durationMs = run.endMs - run.startMs
  if (durationMs < PAUSED_RUN_MS) return undefined
  return run.startMs + Math.round(durationMs / 2 / MINUTE_MS) * MINUTE_MS
}

/** The type a run is recorded as: the types given take turns by the hour the run starts in. */
function exerciseTypeOf(run: StepBout, types: readonly string[]): string {
  return types[Math.floor(run.startMs / HOUR_MS) % types.length] ?? 'RUNNING'
}

function session(run: StepBout, types: readonly string[] = DEFAULT_EXERCISE_TYPES): HealthExerciseSession {
  const paused = pauseStart(run) === undefined ? 0 : PAUSE_MS
  return { startMs: run.startMs, endMs: run.endMs, activeMs: run.endMs - run.startMs - paused, exerciseType: exerciseTypeOf(run, types) }
}

const floorToHour = (t: number): number => Math.floor(t / HOUR_MS) * HOUR_MS

/**
 * The runs matching the query, latest first: those starting in [fromMs, beforeMs) whose start the
 * query accepts, that have ended by arrivedByMs and, after a page token, that start before its
 * cursor (the start of the last run served, in ns). A run starts in the hour that holds it alone, so
 * walking the hours backwards visits them in descending start order. Runs never overlap, so one that
 * has yet to arrive starts after every run that has: it cannot fall behind a cursor.
 */
function runsLatestFirst(seed: string, q: PageQuery): StepBout[] {
  const found: StepBout[] = []
  if (!(q.beforeMs > q.fromMs) || q.limit <= 0 || !userProfile(seed).runner) return found
  let hour = floorToHour(q.beforeMs - 1)
  // Hours after the cursor's hold runs the last page already served: skip them rather than walk through them.
  if (q.cursorNs !== undefined) hour = Math.min(hour, floorToHour(Number(q.cursorNs / NS_PER_MS)))
  for (; hour + HOUR_MS > q.fromMs && found.length < q.limit; hour -= HOUR_MS) {
    const run = runningBout(seed, hour)
    if (run === undefined || run.startMs < q.fromMs || run.startMs >= q.beforeMs || run.endMs > q.arrivedByMs) continue
    if (q.cursorNs !== undefined && BigInt(run.startMs) * NS_PER_MS >= q.cursorNs) continue
    if (q.accept === undefined || q.accept(run.startMs)) found.push(run)
  }
  return found
}

/**
 * Exactly the sessions the fake lists for a user with this seed whose START lies in
 * [startMs, endMs), latest first (the list's own order), when the server's clock reads nowMs: a
 * session is listed only once it has ended. Each is one running bout of stepBouts, recorded as the
 * exercise types given (in turns, by the hour it starts in; running unless given). Times before the
 * Unix epoch hold none, as in the list.
 */
export function healthExerciseSessions(
  seed: string,
  startMs: number,
  endMs: number,
  nowMs: number = Number.POSITIVE_INFINITY,
  exerciseTypes: readonly string[] = DEFAULT_EXERCISE_TYPES,
): HealthExerciseSession[] {
  return findAll((q) => runsLatestFirst(seed, q), startMs, endMs, nowMs).map((run) => session(run, exerciseTypes))
}

// ---------------------------------------------------------------------------------------------
// The filter: the civil start time alone, as Google documents for sessions other than sleep and ECG.

const EXERCISE_FIELDS: TimeFilterFields = {
  dataType: 'exercise',
  prefix: 'exercise',
  civil: 'exercise.interval.civil_start_time',
}

// ---------------------------------------------------------------------------------------------
// Request and answer

/** The filter bounds the session's start: its civil time in the user's zone. */
export type ExerciseListRequest = TimeListRequest

/**
 * Validates a list (or reconcile) request on `exercise` the way Google does; throws HealthApiError
 * (400). The filter takes exercise.interval.civil_start_time (YYYY-MM-DD[THH:mm:ss]) with >= and <,
 * joined by AND; any other field, the physical start and end times included, is a 400.
 */
export function parseExerciseListRequest(query: URLSearchParams, type: HealthSessionTypeSpec, method: ListMethod = 'list'): ExerciseListRequest {
  return parseTimeListQuery(query, type, EXERCISE_FIELDS, method)
}

/** A stable data point id for the user's run. */
const sessionId = (seed: string, startMs: number): string => dataPointId([seed, 'exercise-session', startMs])

/** A duration of whole milliseconds as google.protobuf.Duration JSON. */
const duration = (ms: number): string => `${ms / 1000}s`

/** One run as the Health API's exercise DataPoint, its offsets and civil times in the user's zone. */
function exerciseDataPoint(googleId: string, seed: string, run: StepBout, timeZone: string, types: readonly string[]): ExerciseDataPoint {
  const s = session(run, types)
  const event = (t: number, exerciseEventType: HealthExerciseEventType): ExerciseEventJson => ({
    eventTime: iso(t),
    eventUtcOffset: utcOffset(t, timeZone),
    exerciseEventType,
  })
  const pause = pauseStart(run)
  return {
    name: `users/${googleId}/dataTypes/exercise/dataPoints/${sessionId(seed, s.startMs)}`,
    exercise: {
      interval: sessionInterval(s.startMs, s.endMs, timeZone),
      exerciseType: s.exerciseType,
      displayName: exerciseDisplayName(s.exerciseType),
      activeDuration: duration(s.activeMs),
      exerciseEvents: [
        event(s.startMs, 'START'),
        ...(pause === undefined ? [] : [event(pause, 'PAUSE'), event(pause + PAUSE_MS, 'RESUME')]),
        event(s.endMs, 'STOP'),
      ],
      metricsSummary: withoutDefaults({
        steps: String(run.steps),
        distanceMillimeters: boutMetres(seed, run) * 1000,
        caloriesKcal: boutKcal(run),
      }),
      exerciseMetadata: { hasGps: true },
      createTime: iso(s.endMs),
      updateTime: iso(s.endMs),
    },
  }
}

/**
 * The list (or reconcile) answer: the user's runs that match the filter and have fully reached
 * Google, latest first, one page of them. A page token holds where the last page stopped (the start
 * of its last run), so a run can neither repeat nor be skipped when one arrives between pages. A
 * reconcile whose family leaves out the user's phone, which records every run, finds none.
 */
export function buildExerciseListResponse(
  type: HealthSessionTypeSpec,
  request: ExerciseListRequest,
  timeZone: string,
  ctx: RollUpContext,
): DataPointsPage<ExerciseDataPoint> {
  return listPage(type, request, timeZone, ctx, {
    find: (q) => runsLatestFirst(ctx.seed, q),
    dataPoint: (run) => exerciseDataPoint(ctx.googleId, ctx.seed, run, timeZone, ctx.exerciseTypes ?? DEFAULT_EXERCISE_TYPES),
    cursorNs: startCursorNs,
  })
}
