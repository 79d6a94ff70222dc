import { beforeAll, describe, expect, it } from 'vitest'
import type { health_v4 } from 'googleapis/build/src/apis/health/index.js'
import {
  HEALTH_EXERCISE_TYPES,
  HEALTH_SCOPE_PREFIX,
  healthExerciseSessions,
  healthReadScope,
  stepBouts,
  userProfile,
  type FakeUser,
  type HealthExerciseSession,
} from '../src/index.js'
import {
  BOTH_APIS,
  DAY,
  HOUR,
  LIST_METHOD,
  MINUTE,
  NOW,
  RECONCILE_METHOD,
  badRequestDetails,
  expectInvalidFilter,
  expectSessionPaging,
  expectUnavailable,
  failure,
  iso,
  options,
  scopeInsufficient,
  useFakeGoogle,
  type ListParams,
} from './health-support.js'

/**
 * Health API exercise sessions (users.dataTypes.dataPoints.list and .reconcile on `exercise`)
 * through the real googleapis client, checked against the Fit running bouts of the same user and
 * against healthExerciseSessions, which predicts them without HTTP.
 */
const FIRST_DAY = Date.UTC(2026, 1, 1)
const RUNNING = 8

/** A runner whose phone (which records every run) is a Samsung and watch a Garmin. */
const google = useFakeGoogle({ seed: 'exercise-runner' })

const civilStartBetween = (from: string, before: string): string =>
  `exercise.interval.civil_start_time >= "${from}" AND exercise.interval.civil_start_time < "${before}"`
/** A UTC day (or instant) as a civil literal: a UTC user's wall clock. */
const utcDate = (ms: number): string => new Date(ms).toISOString().slice(0, 10)

/** A list of exercise with the runner's token unless given another. */
const list = (params: ListParams, token: string | null = google.token) => google.list('exercise', params, token)
const listAll = (params: ListParams) => google.listAll('exercise', params)

/** A data point in the helper's terms. */
function asSession(point: health_v4.Schema$DataPoint | health_v4.Schema$ReconciledDataPoint): HealthExerciseSession {
  const exercise = point.exercise!
  expect(exercise.activeDuration).toMatch(/^\d+s$/)
  return {
    startMs: Date.parse(exercise.interval!.startTime!),
    endMs: Date.parse(exercise.interval!.endTime!),
    activeMs: Number.parseInt(exercise.activeDuration!, 10) * 1000,
    exerciseType: exercise.exerciseType!,
  }
}

const sessionsOf = (pages: health_v4.Schema$ListDataPointsResponse[]): HealthExerciseSession[] => pages.flatMap((p) => (p.dataPoints ?? []).map(asSession))

/** What Google Health writes for a wall clock: zero fields left out, and the whole time at midnight. */
function civil(ms: number, offsetMs = 0): health_v4.Schema$CivilDateTime {
  const wall = new Date(ms + offsetMs)
  const date = { year: wall.getUTCFullYear(), month: wall.getUTCMonth() + 1, day: wall.getUTCDate() }
  const time = Object.fromEntries(
    Object.entries({ hours: wall.getUTCHours(), minutes: wall.getUTCMinutes(), seconds: wall.getUTCSeconds() }).filter(([, v]) => v !== 0),
  )
  return Object.keys(time).length === 0 ? { date } : { date, time }
}

/** A Timestamp as Google writes one of whole seconds. */
const stamp = (ms: number): string => iso(ms).replace('.000Z', 'Z')

interface FitRun {
  startMs: number
  endMs: number
  steps: number
  metres: number
}

/** The runs Fit shows over [startMs, endMs): activity segments of type 8, with the steps and metres of their hour (a run's hour holds only the run). */
async function fitRuns(startMs: number, endMs: number): Promise<FitRun[]> {
  const { data } = await google.fitApi.users.dataset.aggregate(
    {
      userId: 'me',
      requestBody: {
        aggregateBy: [
          { dataTypeName: 'com.google.activity.segment' },
          { dataTypeName: 'com.google.step_count.delta' },
          { dataTypeName: 'com.google.distance.delta' },
        ],
        bucketByTime: { durationMillis: String(HOUR) },
        startTimeMillis: String(startMs),
        endTimeMillis: String(endMs),
      },
    },
    options(google.token),
  )
  const ms = (nanos: string | null | undefined) => Number(BigInt(nanos!) / 1_000_000n)
  return (data.bucket ?? [])
    .flatMap((bucket) => {
      const [activities, steps, distance] = bucket.dataset!
      const run = activities!.point!.find((p) => p.value![0]!.intVal === RUNNING)
      if (run === undefined) return []
      expect(run.value![2]!.intVal, 'one run an hour').toBe(1)
      return [
        {
          startMs: ms(run.startTimeNanos),
          endMs: ms(run.endTimeNanos),
          steps: steps!.point![0]!.value![0]!.intVal!,
          metres: distance!.point![0]!.value![0]!.fpVal!,
        },
      ]
    })
    .reverse()
}

describe('exercise sessions', () => {
  it('are the Fit running bouts of the same user, run by run, with their steps and distance', async () => {
    const end = FIRST_DAY + 4 * DAY
    const { data } = await list({ filter: civilStartBetween(utcDate(FIRST_DAY), utcDate(end)) })
    expect(data.nextPageToken).toBeUndefined()
    const points = data.dataPoints!
    const sessions = points.map(asSession)
    expect(sessions).toEqual(healthExerciseSessions(google.user.seed, FIRST_DAY, end, NOW))
    expect(sessions).toHaveLength(7)
    // Every running bout of stepBouts, and nothing else (walks are no workouts).
    const bouts = Array.from({ length: 4 * 24 }, (_, i) => stepBouts(google.user.seed, FIRST_DAY + i * HOUR)).flat()
    const runs = bouts.filter((b) => b.running).reverse()
    expect(bouts.length).toBeGreaterThan(runs.length)
    expect(sessions.map((s) => [s.startMs, s.endMs])).toEqual(runs.map((b) => [b.startMs, b.endMs]))
    // Fit shows each as an activity segment of type 8 over the same instants, with the same steps and metres.
    const fit = await fitRuns(FIRST_DAY, end)
    expect(fit.map((r) => [r.startMs, r.endMs])).toEqual(sessions.map((s) => [s.startMs, s.endMs]))
    points.forEach((point, i) => {
      const { steps, metres } = fit[i]!
      expect(point.exercise!.metricsSummary).toEqual({
        steps: String(steps),
        distanceMillimeters: metres * 1000,
        caloriesKcal: expect.closeTo(steps * 0.07, 9),
      })
    })
    // A run of 9 minutes or more pauses for one; a shorter one not at all.
    for (const s of sessions) {
      const minutes = (s.endMs - s.startMs) / MINUTE
      expect(s.activeMs).toBe((minutes >= 9 ? minutes - 1 : minutes) * MINUTE)
      expect(s.exerciseType).toBe('RUNNING')
    }
    expect(new Set(sessions.map((s) => s.endMs - s.startMs - s.activeMs))).toEqual(new Set([0, MINUTE]))
  })

  it('writes each run as a Health exercise data point: interval, events around the pause, metrics and metadata', async () => {
    const { data } = await list({ filter: civilStartBetween(utcDate(FIRST_DAY), utcDate(FIRST_DAY + 4 * DAY)) })
    const fit = await fitRuns(FIRST_DAY, FIRST_DAY + 4 * DAY)
    const paused = data.dataPoints!.findIndex((p) => asSession(p).activeMs < asSession(p).endMs - asSession(p).startMs)
    const straight = data.dataPoints!.findIndex((p) => asSession(p).activeMs === asSession(p).endMs - asSession(p).startMs)
    expect([paused, straight]).not.toContain(-1)
    for (const i of [paused, straight]) {
      const { startMs, endMs, steps, metres } = fit[i]!
      const minutes = (endMs - startMs) / MINUTE
      // The pause starts at the whole minute nearest the midpoint (4.5 minutes into a 9-minute run rounds up).
      const pauseMs = startMs + Math.round(minutes / 2) * MINUTE
      const event = (t: number, exerciseEventType: string) => ({ eventTime: stamp(t), eventUtcOffset: '0s', exerciseEventType })
      expect(data.dataPoints![i]).toEqual({
        name: expect.stringMatching(new RegExp(`^users/${google.user.googleId}/dataTypes/exercise/dataPoints/[a-z0-9-]{4,63}$`)),
        exercise: {
          interval: {
            startTime: stamp(startMs),
            endTime: stamp(endMs),
            startUtcOffset: '0s',
            endUtcOffset: '0s',
            civilStartTime: civil(startMs),
            civilEndTime: civil(endMs),
          },
          exerciseType: 'RUNNING',
          displayName: 'Running',
          activeDuration: i === paused ? `${(minutes - 1) * 60}s` : `${minutes * 60}s`,
          exerciseEvents:
            i === paused
              ? [event(startMs, 'START'), event(pauseMs, 'PAUSE'), event(pauseMs + MINUTE, 'RESUME'), event(endMs, 'STOP')]
              : [event(startMs, 'START'), event(endMs, 'STOP')],
          metricsSummary: { steps: String(steps), distanceMillimeters: metres * 1000, caloriesKcal: expect.closeTo(steps * 0.07, 9) },
          exerciseMetadata: { hasGps: true },
          createTime: stamp(endMs),
          updateTime: stamp(endMs),
        },
      })
    }
    // The same runs read the same again, ids included, and no two share one.
    expect((await list({ filter: civilStartBetween(utcDate(FIRST_DAY), utcDate(FIRST_DAY + 4 * DAY)) })).data).toEqual(data)
    expect(new Set(data.dataPoints!.map((p) => p.name)).size).toBe(data.dataPoints!.length)
  })

  it('records workouts as any of Google’s exercise types, or a name Google adds later, with Google’s display name', async () => {
    let n = 0
    while (!userProfile(`exercise-types-${n}`).runner) n++
    const cyclist = google.fake.addUser({ seed: `exercise-types-${n}`, scopes: BOTH_APIS })
    const types = ['OUTDOOR_BIKE', 'SWIMMING_POOL', 'WEIGHTS', 'TREADMILL', 'UNDERWATER_HOCKEY']
    google.fake.setExerciseTypes(cyclist.googleId, types)
    const token = await google.accessToken(cyclist)
    const filter = civilStartBetween(utcDate(FIRST_DAY), utcDate(FIRST_DAY + 28 * DAY))
    const points = (await google.listAll('exercise', { filter }, token)).flatMap((page) => page.dataPoints ?? [])
    const sessions = points.map(asSession)
    // The same runs as with the default type, taking the types in turn by the hour they start in.
    expect(sessions).toEqual(healthExerciseSessions(cyclist.seed, FIRST_DAY, FIRST_DAY + 28 * DAY, NOW, types))
    const asRuns = healthExerciseSessions(cyclist.seed, FIRST_DAY, FIRST_DAY + 28 * DAY, NOW)
    expect(asRuns.every((s) => s.exerciseType === 'RUNNING')).toBe(true)
    expect(sessions.map((s) => [s.startMs, s.endMs])).toEqual(asRuns.map((s) => [s.startMs, s.endMs]))
    expect(new Set(sessions.map((s) => s.exerciseType))).toEqual(new Set(types))
    for (const point of points)
      expect(point.exercise!.exerciseType).toBe(types[Math.floor(Date.parse(point.exercise!.interval!.startTime!) / HOUR) % types.length])
    const names = new Map(points.map((p) => [p.exercise!.exerciseType, p.exercise!.displayName]))
    expect(names.get('OUTDOOR_BIKE')).toBe('Outdoor bike')
    expect(names.get('SWIMMING_POOL')).toBe('Swimming pool')
    // Every published name can be produced.
    expect(HEALTH_EXERCISE_TYPES.length).toBeGreaterThan(40)
    expect(() => google.fake.setExerciseTypes(cyclist.googleId, [...HEALTH_EXERCISE_TYPES])).not.toThrow()
    expect(() => google.fake.setExerciseTypes(cyclist.googleId, [])).toThrow(RangeError)
  })

  it('selects by the local wall clock at the start in the user’s own zone, not by the UTC day', async () => {
    const kolkata = google.fake.addUser({ seed: 'exercise-kolkata-7', scopes: BOTH_APIS, timeZone: 'Asia/Kolkata' })
    const token = await google.accessToken(kolkata)
    const offsetMs = 5.5 * HOUR
    const local = (ms: number) => new Date(ms + offsetMs).toISOString().slice(0, 19)
    const { data } = await list({ filter: civilStartBetween('2026-03-10', '2026-03-12') }, token)
    const expected = healthExerciseSessions(kolkata.seed, Date.UTC(2026, 2, 9, 18, 30), Date.UTC(2026, 2, 11, 18, 30), NOW)
    expect(expected).toHaveLength(5)
    expect(data.dataPoints!.map(asSession)).toEqual(expected)
    // An evening run on 9 March UTC is already 10 March in Kolkata, and one late on 11 March UTC is the 12th.
    expect(expected).not.toEqual(healthExerciseSessions(kolkata.seed, Date.UTC(2026, 2, 10), Date.UTC(2026, 2, 12), NOW))
    for (const point of data.dataPoints!) {
      const { interval, exerciseEvents } = point.exercise!
      const [startMs, endMs] = [Date.parse(interval!.startTime!), Date.parse(interval!.endTime!)]
      expect(interval).toMatchObject({
        startUtcOffset: '19800s',
        endUtcOffset: '19800s',
        civilStartTime: civil(startMs, offsetMs),
        civilEndTime: civil(endMs, offsetMs),
      })
      for (const event of exerciseEvents!) expect(event.eventUtcOffset).toBe('19800s')
    }
    // A bound on a run's own local start: >= keeps it, < leaves it out; date-times and dates mix.
    const pivot = expected[2]!
    const at = async (filter: string) => (await list({ filter }, token)).data.dataPoints!.map(asSession)
    expect(await at(civilStartBetween(local(pivot.startMs), '2026-03-12'))).toEqual(expected.slice(0, 3))
    expect(await at(civilStartBetween('2026-03-10', local(pivot.startMs)))).toEqual(expected.slice(3))
    expect(await at(civilStartBetween('2026-03-10', local(pivot.startMs + 1000)))).toEqual(expected.slice(2))
    // Either bound alone.
    expect(await at(`exercise.interval.civil_start_time < "2026-03-10" AND exercise.interval.civil_start_time >= "2026-03-09"`)).toEqual(
      healthExerciseSessions(kolkata.seed, Date.UTC(2026, 2, 8, 18, 30), Date.UTC(2026, 2, 9, 18, 30), NOW),
    )
  })

  it('pages latest first through every run exactly once, and cuts page sizes above 25', async () => {
    const filter = civilStartBetween(utcDate(FIRST_DAY), utcDate(FIRST_DAY + 20 * DAY))
    const expected = healthExerciseSessions(google.user.seed, FIRST_DAY, FIRST_DAY + 20 * DAY, NOW)
    expect(expected).toHaveLength(47)
    await expectSessionPaging(listAll, filter, expected, sessionsOf, [1, 2, 7, 24, 25])
  })

  it('lists from the latest arrived run when no filter is given, and a page token continues it', async () => {
    const latest = healthExerciseSessions(google.user.seed, NOW - 4 * DAY, NOW, NOW)
    expect(latest.length).toBeGreaterThanOrEqual(6)
    const { data } = await list({ pageSize: 3 })
    expect(data.dataPoints!.map(asSession)).toEqual(latest.slice(0, 3))
    const next = await list({ pageSize: 3, pageToken: data.nextPageToken! })
    expect(next.data.dataPoints!.map(asSession)).toEqual(latest.slice(3, 6))
    expect((await list({ filter: '' })).data.dataPoints!.map(asSession)).toEqual((await list({})).data.dataPoints!.map(asSession))
  })

  it('gives a user who does not run no sessions at all', async () => {
    const walker = google.fake.addUser({ seed: 'exercise-walker', scopes: BOTH_APIS })
    const token = await google.accessToken(walker)
    expect((await list({}, token)).data).toEqual({})
    expect((await list({ filter: civilStartBetween('2026-02-01', '2026-03-01') }, token)).data).toEqual({})
    // They do walk: Fit has their walking segments (7), but no running ones (8).
    const fit = await google.fitAggregate('com.google.activity.segment', FIRST_DAY, FIRST_DAY + 7 * DAY, 7 * DAY, token)
    expect(fit.bucket![0]!.dataset![0]!.point!.map((p) => p.value![0]!.intVal)).toEqual([7, 72])
    expect(healthExerciseSessions(walker.seed, 0, NOW)).toEqual([])
  })
})

describe('exercise sessions and the server’s clock', () => {
  let now = Date.UTC(2026, 2, 20)
  const clocked = useFakeGoogle({ now: () => now })
  let user: FakeUser
  /** The user's last run on 19 March, and the one before it. */
  let run: HealthExerciseSession
  let previous: HealthExerciseSession

  beforeAll(() => {
    user = clocked.fake.addUser({ seed: 'exercise-clock', scopes: BOTH_APIS })
    ;[run, previous] = healthExerciseSessions(user.seed, Date.UTC(2026, 2, 19), Date.UTC(2026, 2, 20)) as [HealthExerciseSession, HealthExerciseSession]
  })

  const latest = async () => {
    const token = await clocked.accessToken(user)
    const { data } = await clocked.list('exercise', { pageSize: 1 }, token)
    return asSession(data.dataPoints![0]!)
  }

  it('lists a run only once it has ended, and after any upload delay', async () => {
    now = run.startMs + 3 * MINUTE
    expect(await latest()).toEqual(previous)
    now = run.endMs - 1
    expect(await latest()).toEqual(previous)
    expect(healthExerciseSessions(user.seed, Date.UTC(2026, 2, 19), Date.UTC(2026, 2, 20), now)[0]).toEqual(previous)
    now = run.endMs
    expect(await latest()).toEqual(run)
    clocked.fake.setUploadDelay(2 * HOUR, user.googleId)
    try {
      // Two hours back, even the run before may not have arrived: the latest is whichever had ended by then.
      const arrived = healthExerciseSessions(user.seed, Date.UTC(2026, 2, 10), Date.UTC(2026, 2, 20), now - 2 * HOUR)[0]!
      expect(arrived.endMs).toBeLessThanOrEqual(now - 2 * HOUR)
      expect(arrived.startMs).toBeLessThan(run.startMs)
      expect(await latest()).toEqual(arrived)
      now = run.endMs + 2 * HOUR
      expect(await latest()).toEqual(run)
    } finally {
      clocked.fake.setUploadDelay(0, user.googleId)
    }
  })

  it('neither repeats nor skips a run when one arrives between pages', async () => {
    now = run.endMs - MINUTE
    const token = await clocked.accessToken(user)
    const filter = civilStartBetween('2026-03-10', '2026-03-25')
    const first = await clocked.list('exercise', { filter, pageSize: 4 }, token)
    now = run.endMs + MINUTE
    const rest = await clocked.listAll('exercise', { filter, pageSize: 4, pageToken: first.data.nextPageToken! }, token)
    const expected = healthExerciseSessions(user.seed, Date.UTC(2026, 2, 10), run.startMs)
    expect(expected.length).toBeGreaterThan(8)
    expect(sessionsOf([first.data, ...rest])).toEqual(expected)
    // A new listing sees the new run first.
    expect(sessionsOf([(await clocked.list('exercise', { filter, pageSize: 1 }, token)).data])).toEqual([run])
  })
})

describe('exercise reconcile', () => {
  const { reconcile, reconcileAll } = google
  const filter = civilStartBetween('2026-03-01', '2026-03-08')

  it('gives list’s sessions named by dataPointName for every family that holds the phone, and none for google-wearables', async () => {
    // Their phone is a Pixel 7 and their watch a Pixel Watch 2: a Google phone is still no wearable.
    const pixel = google.fake.addUser({ seed: 'exercise-pixel-19', scopes: BOTH_APIS })
    const token = await google.accessToken(pixel)
    const listed = await google.listAll('exercise', { filter, pageSize: 5 }, token)
    expect(sessionsOf(listed)).toEqual(healthExerciseSessions(pixel.seed, Date.UTC(2026, 2, 1), Date.UTC(2026, 2, 8), NOW))
    const asReconciled = listed.flatMap((p) => p.dataPoints!.map(({ name, ...data }) => ({ dataPointName: name, ...data })))
    for (const family of [undefined, '', 'users/me/dataSourceFamilies/all-sources', 'users/me/dataSourceFamilies/google-sources']) {
      const pages = await reconcileAll('exercise', { filter, pageSize: 5, ...(family === undefined ? {} : { dataSourceFamily: family }) }, token)
      expect(pages.map((p) => p.dataPoints?.length)).toEqual(listed.map((p) => p.dataPoints?.length))
      expect(pages.flatMap((p) => p.dataPoints)).toEqual(asReconciled)
    }
    const wearables = { filter, dataSourceFamily: 'users/me/dataSourceFamilies/google-wearables' }
    expect((await reconcile('exercise', wearables, token)).data).toEqual({})
    // The same family keeps the nights their watch records.
    expect((await reconcile('sleep', { dataSourceFamily: wearables.dataSourceFamily, pageSize: 1 }, token)).data.dataPoints).toHaveLength(1)
  })

  it('refuses what list refuses, and a list’s page token', async () => {
    await expectInvalidFilter(
      reconcile('exercise', { filter: 'exercise.interval.end_time < "2026-03-01T00:00:00Z"' }),
      'end_time',
      /cannot be filtered by "exercise.interval.end_time"/,
    )
    const { data } = await list({ filter, pageSize: 2 })
    const mixed = await failure(reconcile('exercise', { filter, pageSize: 2, pageToken: data.nextPageToken! }))
    expect(mixed.error).toMatchObject({ status: 'INVALID_ARGUMENT', message: expect.stringMatching(/page token/) })
    const bogusFamily = await failure(reconcile('exercise', { dataSourceFamily: 'users/me/dataSourceFamilies/garmin' }))
    expect(bogusFamily.error.details).toEqual(badRequestDetails('data_source_family', bogusFamily.error.message))
  })
})

describe('exercise list refusals', () => {
  it('filters by the civil start time alone: a physical time or any other field is a 400 naming it', async () => {
    const t = '"2026-03-01T00:00:00Z"'
    const supported = 'supported: exercise.interval.civil_start_time with >= or <, joined by AND.'
    const bad: [string, string][] = [
      [`exercise.interval.start_time >= ${t}`, `exercise data points cannot be filtered by "exercise.interval.start_time"; ${supported}`],
      [`exercise.interval.end_time < ${t}`, `exercise data points cannot be filtered by "exercise.interval.end_time"; ${supported}`],
      [`exercise.interval.civil_end_time < "2026-03-01"`, `exercise data points cannot be filtered by "exercise.interval.civil_end_time"; ${supported}`],
      [`sleep.interval.end_time >= ${t}`, `field "sleep.interval.end_time" does not belong to data type exercise; ${supported}`],
      [
        `exercise.interval.civil_start_time >= "2026-03-01" AND exercise.interval.start_time < ${t}`,
        `exercise data points cannot be filtered by "exercise.interval.start_time"; ${supported}`,
      ],
    ]
    for (const [filter, message] of bad) {
      const refused = await expectInvalidFilter(list({ filter }), filter, /./)
      expect(refused.error.message).toBe(`Invalid filter: ${message}`)
      expect(refused.error.details).toEqual(badRequestDetails('filter', refused.error.message))
    }
    const others: [string, RegExp][] = [
      [`exercise.interval.civil_start_time > "2026-03-01"`, /operator ">"/],
      [`exercise.interval.civil_start_time >= ${t}`, /civil date/],
      [`exercise.interval.civil_start_time >= "2026-03-01" OR exercise.interval.civil_start_time < "2026-03-02"`, /OR is not supported/],
    ]
    for (const [filter, message] of others) await expectInvalidFilter(list({ filter }), filter, message)
  })

  it('needs an activity_and_fitness scope: 403 ACCESS_TOKEN_SCOPE_INSUFFICIENT otherwise', async () => {
    const sleepOnly = await google.accessToken(google.fake.addUser({ seed: 'exercise-runner-5', scopes: [healthReadScope('sleep')] }))
    const denied = await failure(list({}, sleepOnly))
    expect(denied.status).toBe(403)
    expect(denied.error).toMatchObject(scopeInsufficient(LIST_METHOD))
    expect(denied.headers.get('www-authenticate')).toContain(healthReadScope('activity_and_fitness'))
    expect((await failure(google.reconcile('exercise', {}, sleepOnly))).error).toMatchObject(scopeInsufficient(RECONCILE_METHOD))
    // The same token reads the user's sleep.
    expect((await google.list('sleep', { pageSize: 1 }, sleepOnly)).data.dataPoints).toHaveLength(1)
    const runners = ['exercise-scoped-1', 'exercise-scoped-4']
    expect(runners.map((seed) => userProfile(seed).runner)).toEqual([true, true])
    for (const [i, scope] of [healthReadScope('activity_and_fitness'), `${HEALTH_SCOPE_PREFIX}activity_and_fitness`].entries()) {
      const token = await google.accessToken(google.fake.addUser({ scopes: [scope], seed: runners[i]! }))
      expect((await list({ pageSize: 30 }, token)).data.dataPoints).toHaveLength(25)
    }
  })

  it('rolls up no exercise, as Google rolls up no session type', async () => {
    const range = { startTime: iso(FIRST_DAY), endTime: iso(FIRST_DAY + DAY) }
    const rollUp = await failure(google.rollUp('exercise', { range, windowSize: '3600s' }))
    expect(rollUp.status).toBe(400)
    expect(rollUp.error).toMatchObject({
      status: 'INVALID_ARGUMENT',
      message: 'Data type "exercise" is a session type and is not rolled up; list its data points instead.',
    })
    const civilRange = { start: { date: { year: 2026, month: 3, day: 1 } }, end: { date: { year: 2026, month: 3, day: 2 } } }
    const daily = await failure(google.dailyRollUp('exercise', { range: civilRange }))
    expect(daily.status).toBe(400)
    expect(daily.error.message).toMatch(/"exercise" is a session type/)
  })

  it('shares the list route’s faults and counters', async () => {
    const before = google.fake.stats
    google.fake.injectFault({ route: 'list', status: 503 })
    await expectUnavailable(list({ pageSize: 1 }))
    expect((await list({ pageSize: 1 })).data.dataPoints).toHaveLength(1)
    await failure(list({ filter: 'exercise.interval.start_time >= "2026-03-01T00:00:00Z"' }))
    expect(google.countsSince(before)).toMatchObject({ listRequests: 3, listErrors: 2, faultsServed: 1, reconcileRequests: 0, ofUser: 1 })
  })
})
