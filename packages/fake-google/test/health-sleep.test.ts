import { beforeAll, describe, expect, it } from 'vitest'
import type { health_v4 } from 'googleapis/build/src/apis/health/index.js'
import { HEALTH_SCOPE_PREFIX, healthReadScope, healthSleepSessions, sleepNight, type FakeUser, type HealthSleepSession } from '../src/index.js'
import {
  BOTH_APIS,
  DAY,
  HOUR,
  LIST_METHOD,
  MINUTE,
  NOW,
  badRequestDetails,
  expectDelayed,
  expectInvalidFilter,
  expectSessionPaging,
  expectRateLimited,
  expectUnavailable,
  failure,
  iso,
  scopeInsufficient,
  useFakeGoogle,
  type ListParams,
} from './health-support.js'

/**
 * Health API sleep sessions (users.dataTypes.dataPoints.list on `sleep`) through the real
 * googleapis client, checked against the Fit sleep segments of the same user and against
 * healthSleepSessions, which predicts them without HTTP.
 */
const FIRST_DAY = Date.UTC(2026, 1, 1)
const FIT_STAGES: Record<string, number> = { AWAKE: 1, LIGHT: 4, DEEP: 5, REM: 6 }

const google = useFakeGoogle({ seed: 'health-sleeper-3' })

const endBetween = (fromMs: number, beforeMs: number): string => `sleep.interval.end_time >= "${iso(fromMs)}" AND sleep.interval.end_time < "${iso(beforeMs)}"`

/** A list of sleep (or of dataType) with the sleeper's token unless given another. */
const list = (params: ListParams, token: string | null = google.token, dataType = 'sleep') => google.list(dataType, params, token)
const listAll = (params: ListParams) => google.listAll('sleep', params)

/** A data point in the helper's terms: instants and stage types. */
function asSession(point: health_v4.Schema$DataPoint): HealthSleepSession {
  const sleep = point.sleep!
  return {
    startMs: Date.parse(sleep.interval!.startTime!),
    endMs: Date.parse(sleep.interval!.endTime!),
    type: sleep.type as 'STAGES',
    stages: sleep.stages!.map((s) => ({ startMs: Date.parse(s.startTime!), endMs: Date.parse(s.endTime!), type: s.type as 'AWAKE' })),
  }
}

const sessionsOf = (pages: health_v4.Schema$ListDataPointsResponse[]): HealthSleepSession[] => pages.flatMap((p) => (p.dataPoints ?? []).map(asSession))

describe('sleep sessions', () => {
  it('are the Fit sleep segments of the same user, night by night, with the stage numbers as Health stage types', async () => {
    const start = FIRST_DAY
    const end = FIRST_DAY + 8 * DAY
    const fit = await google.fitAggregate('com.google.sleep.segment', start, end, end - start)
    const segments = (fit.bucket?.[0]?.dataset?.[0]?.point ?? []).map((p) => ({
      startMs: Number(BigInt(p.startTimeNanos!) / 1_000_000n),
      endMs: Number(BigInt(p.endTimeNanos!) / 1_000_000n),
      stage: p.value![0]!.intVal!,
    }))
    // The nights ending on days 2-8 lie wholly inside the Fit range.
    const { data } = await list({ filter: endBetween(start + DAY, end) })
    const sessions = (data.dataPoints ?? []).map(asSession)
    expect(sessions).toHaveLength(7)
    expect(data.nextPageToken).toBeUndefined()
    for (const session of sessions) {
      const fitNight = segments.filter((s) => s.startMs >= session.startMs && s.startMs < session.endMs)
      expect(session.stages.map((s) => ({ startMs: s.startMs, endMs: s.endMs, stage: FIT_STAGES[s.type] }))).toEqual(fitNight)
      const night = sleepNight(google.user.seed, Math.floor(session.endMs / DAY) * DAY)
      expect([session.startMs, session.endMs]).toEqual([night.startMs, night.endMs])
    }
    // Together the sessions hold every Fit segment from the first bedtime to the last wake-up.
    const [first, last] = [sessions.at(-1)!.startMs, sessions[0]!.endMs]
    expect(sessions.reduce((n, s) => n + s.stages.length, 0)).toBe(segments.filter((s) => s.startMs >= first && s.startMs < last).length)
    expect(sessions).toEqual(healthSleepSessions(google.user.seed, start + DAY, end, NOW))
  })

  it('writes each session as a Health sleep data point: RFC 3339 times, UTC offsets, metadata and summary', async () => {
    const { data } = await list({ filter: endBetween(FIRST_DAY, FIRST_DAY + DAY) })
    expect(data.dataPoints).toHaveLength(1)
    const point = data.dataPoints![0]!
    const [session] = healthSleepSessions(google.user.seed, FIRST_DAY, FIRST_DAY + DAY)
    expect(point.name).toMatch(new RegExp(`^users/${google.user.googleId}/dataTypes/sleep/dataPoints/[a-z0-9-]{4,63}$`))
    const sleep = point.sleep!
    expect(sleep.interval).toMatchObject({ startTime: iso(session!.startMs).replace('.000', ''), endTime: iso(session!.endMs).replace('.000', '') })
    expect(sleep.interval).toMatchObject({ startUtcOffset: '0s', endUtcOffset: '0s' })
    expect(sleep.type).toBe('STAGES')
    // proto3 JSON leaves false out: `nap: false` is never written.
    expect(sleep.metadata).toEqual({ processed: true, mainSleep: true })
    for (const stage of sleep.stages!) {
      expect(stage.startTime).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/)
      expect(stage).toMatchObject({ startUtcOffset: '0s', endUtcOffset: '0s' })
      expect(['AWAKE', 'LIGHT', 'DEEP', 'REM']).toContain(stage.type)
    }
    // Stages tile the session, and the summary counts their minutes.
    const stages = session!.stages
    expect(stages[0]!.startMs).toBe(session!.startMs)
    expect(stages.at(-1)!.endMs).toBe(session!.endMs)
    for (let i = 1; i < stages.length; i++) expect(stages[i]!.startMs).toBe(stages[i - 1]!.endMs)
    const minutesOf = (type?: string) => stages.filter((s) => type === undefined || s.type === type).reduce((m, s) => m + (s.endMs - s.startMs) / MINUTE, 0)
    expect(sleep.summary).toMatchObject({
      minutesAsleep: String(minutesOf() - minutesOf('AWAKE')),
      minutesAwake: String(minutesOf('AWAKE')),
      minutesInSleepPeriod: String((session!.endMs - session!.startMs) / MINUTE),
    })
    // The same night reads the same again, id included.
    expect((await list({ filter: endBetween(FIRST_DAY, FIRST_DAY + DAY) })).data).toEqual(data)
  })

  it('lists a night Google is still staging without stages and without `processed`, since proto3 JSON leaves false out', async () => {
    const [night] = healthSleepSessions(google.user.seed, NOW - 2 * DAY, NOW, NOW)
    const filter = endBetween(night!.endMs, night!.endMs + 1)
    google.fake.setSleepStaging(NOW - night!.endMs + 1)
    try {
      const staging = (await list({ filter })).data.dataPoints![0]!.sleep!
      expect(staging.metadata).toEqual({ mainSleep: true })
      expect('processed' in staging.metadata!).toBe(false)
      expect(staging.stages).toBeUndefined()
      expect(staging.summary).toEqual({ minutesInSleepPeriod: String((night!.endMs - night!.startMs) / MINUTE) })
      // An older night is staged by now.
      const older = (await list({ filter: endBetween(night!.endMs - 2 * DAY, night!.endMs) })).data.dataPoints![0]!.sleep!
      expect(older.metadata).toEqual({ processed: true, mainSleep: true })
    } finally {
      google.fake.setSleepStaging(0)
    }
    const staged = (await list({ filter })).data.dataPoints![0]!.sleep!
    expect(staged.metadata).toEqual({ processed: true, mainSleep: true })
    expect(staged.stages!.length).toBe(night!.stages.length)
  })

  it('records a user set to classic sleep as asleep, restless and awake, over the same instants as their staged nights', async () => {
    const classic = google.fake.addUser({ seed: 'sleep-classic-1', scopes: BOTH_APIS })
    google.fake.setSleepType(classic.googleId, 'CLASSIC')
    const token = await google.accessToken(classic)
    const filter = endBetween(FIRST_DAY, FIRST_DAY + 7 * DAY)
    const points = (await google.listAll('sleep', { filter }, token)).flatMap((p) => p.dataPoints ?? [])
    const nights = points.map(asSession)
    expect(nights).toEqual(healthSleepSessions(classic.seed, FIRST_DAY, FIRST_DAY + 7 * DAY, NOW, 'CLASSIC'))
    const staged = healthSleepSessions(classic.seed, FIRST_DAY, FIRST_DAY + 7 * DAY, NOW)
    expect(nights.length).toBe(staged.length)
    nights.forEach((night, i) => {
      const stages = staged[i]!
      expect(night.type).toBe('CLASSIC')
      expect([night.startMs, night.endMs]).toEqual([stages.startMs, stages.endMs])
      // The same time asleep and awake, in fewer segments: light, deep and REM are one asleep stretch.
      const minutes = (list: typeof night.stages, types: string[]) => list.filter((s) => types.includes(s.type)).reduce((m, s) => m + s.endMs - s.startMs, 0)
      expect(minutes(night.stages, ['ASLEEP'])).toBe(minutes(stages.stages, ['LIGHT', 'DEEP', 'REM']))
      expect(minutes(night.stages, ['AWAKE', 'RESTLESS'])).toBe(minutes(stages.stages, ['AWAKE']))
      expect(night.stages.every((s) => ['ASLEEP', 'RESTLESS', 'AWAKE'].includes(s.type))).toBe(true)
      for (const s of night.stages.filter((s) => s.type === 'RESTLESS')) expect(s.endMs - s.startMs).toBeLessThan(10 * MINUTE)
    })
    expect(new Set(nights.flatMap((n) => n.stages.map((s) => s.type)))).toContain('ASLEEP')
    expect(points[0]!.sleep!.summary!.stagesSummary!.map((s) => s.type).every((t) => ['ASLEEP', 'RESTLESS', 'AWAKE'].includes(t!))).toBe(true)
  })

  it('gives offsets in the user’s time zone, across a daylight-saving change', async () => {
    const newYorker = google.fake.addUser({ seed: 'sleep-new-york', scopes: BOTH_APIS, timeZone: 'America/New_York' })
    const token = await google.accessToken(newYorker)
    const switchMs = Date.UTC(2026, 2, 8, 7) // 02:00 EST, when clocks went forward
    const offset = (ms: number) => (ms < switchMs ? '-18000s' : '-14400s')
    const { data } = await list({ filter: endBetween(Date.UTC(2026, 2, 6), Date.UTC(2026, 2, 11)) }, token)
    expect(data.dataPoints).toHaveLength(5)
    const offsets = new Set<string>()
    for (const point of data.dataPoints!) {
      const { interval, stages } = point.sleep!
      expect(interval!.startUtcOffset).toBe(offset(Date.parse(interval!.startTime!)))
      expect(interval!.endUtcOffset).toBe(offset(Date.parse(interval!.endTime!)))
      for (const stage of stages!) {
        expect(stage.startUtcOffset).toBe(offset(Date.parse(stage.startTime!)))
        expect(stage.endUtcOffset).toBe(offset(Date.parse(stage.endTime!)))
        offsets.add(stage.startUtcOffset!)
      }
      // The wall clock at the end, as civil time.
      const wall = new Date(Date.parse(interval!.endTime!) + Number.parseInt(interval!.endUtcOffset!, 10) * 1000)
      expect(interval!.civilEndTime!.date).toEqual({ year: wall.getUTCFullYear(), month: wall.getUTCMonth() + 1, day: wall.getUTCDate() })
    }
    expect([...offsets].sort()).toEqual(['-14400s', '-18000s'])
  })

  it('keeps only sessions whose end lies in the filter’s bounds, a session ending exactly on a bound included by >= and left out by <', async () => {
    const all = healthSleepSessions(google.user.seed, FIRST_DAY, FIRST_DAY + 10 * DAY, NOW)
    expect(all).toHaveLength(10)
    const pivot = all[4]!
    const at = (filter: string) => list({ filter }).then(({ data }) => (data.dataPoints ?? []).map(asSession))
    const from = `sleep.interval.end_time >= "${iso(pivot.endMs)}"`
    const before = `sleep.interval.end_time < "${iso(pivot.endMs)}"`
    const lower = `sleep.interval.end_time >= "${iso(FIRST_DAY)}"`
    const upper = `sleep.interval.end_time < "${iso(FIRST_DAY + 10 * DAY)}"`
    expect(await at(`${from} AND ${upper}`)).toEqual(all.slice(0, 5))
    expect(await at(`${lower} AND ${before}`)).toEqual(all.slice(5))
    // A bound a nanosecond past the end leaves the session out; one a nanosecond after it keeps it below.
    const justAfter = iso(pivot.endMs).replace('.000Z', '.000000001Z')
    expect(await at(`sleep.interval.end_time >= "${justAfter}" AND ${upper}`)).toEqual(all.slice(0, 4))
    expect(await at(`${lower} AND sleep.interval.end_time < "${justAfter}"`)).toEqual(all.slice(4))
    // Offsets in the literal are honoured; whitespace and quotes are free.
    const plusTwo = new Date(pivot.endMs + 2 * HOUR).toISOString().replace('.000Z', '+02:00')
    expect(await at(`sleep.interval.end_time>='${plusTwo}'   AND   ${upper}`)).toEqual(all.slice(0, 5))
    // Either bound alone: the lower one runs up to the server's clock.
    expect(await at(`sleep.interval.end_time >= "${iso(NOW - 3 * DAY)}"`)).toEqual(healthSleepSessions(google.user.seed, NOW - 3 * DAY, NOW + DAY, NOW))
    // Between two nights nothing ends: the answer is an empty message.
    const gap = await list({ filter: endBetween(pivot.endMs + 1, pivot.endMs + 12 * HOUR) })
    expect(gap.data).toEqual({})
  })

  it('filters by civil end time in the user’s own zone', async () => {
    const tokyo = google.fake.addUser({ seed: 'sleep-tokyo', scopes: BOTH_APIS, timeZone: 'Asia/Tokyo' })
    const token = await google.accessToken(tokyo)
    const civil = (ms: number) => new Date(ms + 9 * HOUR).toISOString().slice(0, 19)
    const filter = 'sleep.interval.civil_end_time >= "2026-03-09" AND sleep.interval.civil_end_time < "2026-03-12T15:00:00"'
    const expected = healthSleepSessions(tokyo.seed, Date.UTC(2026, 2, 8, 15), Date.UTC(2026, 2, 12, 6), NOW)
    expect(expected).toHaveLength(3)
    expect(sessionsOf([(await list({ filter }, token)).data])).toEqual(expected)
    // A civil bound on a session's own wall-clock end: >= keeps it, < leaves it out.
    const pivot = expected[1]!
    const onEnd = `sleep.interval.civil_end_time >= "${civil(pivot.endMs)}" AND sleep.interval.civil_end_time < "2026-03-12T15:00:00"`
    expect(sessionsOf([(await list({ filter: onEnd }, token)).data])).toEqual(expected.slice(0, 2))
    const beforeEnd = `sleep.interval.civil_end_time >= "2026-03-09" AND sleep.interval.civil_end_time < "${civil(pivot.endMs)}"`
    expect(sessionsOf([(await list({ filter: beforeEnd }, token)).data])).toEqual(expected.slice(2))
    // Civil and physical bounds combine.
    const both = `${filter} AND sleep.interval.end_time < "${iso(pivot.endMs)}"`
    expect(sessionsOf([(await list({ filter: both }, token)).data])).toEqual(expected.slice(2))
  })

  it('pages latest first through every session exactly once, whatever the page size, and cuts page sizes above 25', async () => {
    const filter = endBetween(FIRST_DAY, FIRST_DAY + 40 * DAY)
    const expected = healthSleepSessions(google.user.seed, FIRST_DAY, FIRST_DAY + 40 * DAY, NOW)
    expect(expected).toHaveLength(40)
    await expectSessionPaging(
      listAll,
      filter,
      expected,
      sessionsOf,
      Array.from({ length: 25 }, (_, i) => i + 1),
    )
  })

  it('lists from the latest arrived night when no filter is given', async () => {
    const { data } = await list({ pageSize: 3 })
    expect(data.dataPoints!.map(asSession)).toEqual(healthSleepSessions(google.user.seed, NOW - 3 * DAY, NOW + DAY, NOW))
    expect(data.nextPageToken).toBeTruthy()
    const next = await list({ pageSize: 3, pageToken: data.nextPageToken! })
    expect(next.data.dataPoints!.map(asSession)).toEqual(healthSleepSessions(google.user.seed, NOW - 6 * DAY, NOW - 3 * DAY, NOW))
  })
})

describe('sleep sessions and the server’s clock', () => {
  let now = Date.UTC(2026, 2, 20, 3)
  const clocked = useFakeGoogle({ now: () => now })
  let user: FakeUser
  let token: string
  const night = () => sleepNight(user.seed, Date.UTC(2026, 2, 20))

  beforeAll(() => {
    user = clocked.fake.addUser({ seed: 'sleep-clock', scopes: BOTH_APIS })
  })

  const latest = async () => {
    token = await clocked.accessToken(user)
    const { data } = await clocked.list('sleep', { pageSize: 1 }, token)
    return asSession(data.dataPoints![0]!)
  }

  it('lists a night only once it has ended, and after any upload delay', async () => {
    const previous = sleepNight(user.seed, Date.UTC(2026, 2, 19))
    // In the middle of the night, and a millisecond before its end: the night is not there yet.
    expect((await latest()).endMs).toBe(previous.endMs)
    now = night().endMs - 1
    expect((await latest()).endMs).toBe(previous.endMs)
    now = night().endMs
    expect((await latest()).endMs).toBe(night().endMs)
    clocked.fake.setUploadDelay(2 * HOUR, user.googleId)
    expect((await latest()).endMs).toBe(previous.endMs)
    now = night().endMs + 2 * HOUR
    expect((await latest()).endMs).toBe(night().endMs)
    clocked.fake.setUploadDelay(0, user.googleId)
  })

  it('neither repeats nor skips a session when a night arrives between pages', async () => {
    now = night().endMs - MINUTE
    token = await clocked.accessToken(user)
    const filter = endBetween(Date.UTC(2026, 2, 10), Date.UTC(2026, 2, 25))
    const first = await clocked.list('sleep', { filter, pageSize: 4 }, token)
    now = night().endMs + MINUTE
    const rest = await clocked.listAll('sleep', { filter, pageSize: 4, pageToken: first.data.nextPageToken! }, token)
    expect(sessionsOf([first.data, ...rest])).toEqual(healthSleepSessions(user.seed, Date.UTC(2026, 2, 10), night().endMs))
    // A new listing sees the new night first.
    expect(sessionsOf([(await clocked.list('sleep', { filter, pageSize: 1 }, token)).data])[0]!.endMs).toBe(night().endMs)
  })
})

describe('sleep list refusals', () => {
  it('needs a sleep scope: 403 ACCESS_TOKEN_SCOPE_INSUFFICIENT otherwise', async () => {
    const activityOnly = await google.accessToken(google.fake.addUser({ scopes: [healthReadScope('activity_and_fitness')] }))
    const denied = await failure(list({}, activityOnly))
    expect(denied.status).toBe(403)
    expect(denied.error).toMatchObject(scopeInsufficient(LIST_METHOD))
    expect(denied.headers.get('www-authenticate')).toContain(healthReadScope('sleep'))
    // A Fit grant, sleep included, reads nothing through the Health API.
    expect(await failure(list({}, await google.accessToken(google.fake.addUser())))).toMatchObject({ status: 403 })
    // The read-only scope and the full-access one both do.
    for (const scope of [healthReadScope('sleep'), `${HEALTH_SCOPE_PREFIX}sleep`]) {
      const token = await google.accessToken(google.fake.addUser({ scopes: [scope] }))
      expect((await list({ pageSize: 1 }, token)).data.dataPoints).toHaveLength(1)
    }
  })

  it('answers 401 UNAUTHENTICATED without a valid access token', async () => {
    const missing = await failure(list({}, null))
    expect(missing.status).toBe(401)
    expect(missing.error).toMatchObject({ status: 'UNAUTHENTICATED', details: [{ reason: 'CREDENTIALS_MISSING' }] })
    const invalid = await failure(list({}, 'ya29.made-up'))
    expect(invalid.status).toBe(401)
    expect(invalid.error).toMatchObject({ status: 'UNAUTHENTICATED', details: [{ reason: 'ACCESS_TOKEN_TYPE_UNSUPPORTED' }] })
  })

  it('refuses filters outside the supported subset with 400 INVALID_ARGUMENT', async () => {
    const t = '"2026-03-01T00:00:00Z"'
    const bad: [string, RegExp][] = [
      [`sleep.interval.start_time >= ${t}`, /cannot be filtered by "sleep.interval.start_time"/],
      [`sleep.interval.civil_start_time >= "2026-03-01"`, /cannot be filtered/],
      [`steps.interval.start_time >= ${t}`, /does not belong to data type sleep/],
      [`end_time >= ${t}`, /does not belong to data type sleep/],
      [`sleep.interval.end_time > ${t}`, /operator ">"/],
      [`sleep.interval.end_time <= ${t}`, /operator "<="/],
      [`sleep.interval.end_time = ${t}`, /operator "="/],
      [`sleep.interval.end_time : ${t}`, /operator ":"/],
      [`sleep.interval.end_time >= "yesterday"`, /RFC 3339/],
      [`sleep.interval.end_time >= "2026-03-01"`, /RFC 3339/],
      [`sleep.interval.end_time >= "2026-02-30T00:00:00Z"`, /RFC 3339/],
      [`sleep.interval.end_time >= 2026-03-01T00:00:00Z`, /quoted literal/],
      [`sleep.interval.civil_end_time >= "2026-02-30"`, /civil date/],
      [`sleep.interval.civil_end_time >= "2026-03-01T25:00:00"`, /civil date/],
      [`sleep.interval.civil_end_time >= "2026-03-01T00:00:00Z"`, /civil date/],
      [`sleep.interval.end_time >= ${t} OR sleep.interval.end_time < ${t}`, /OR is not supported/],
      [`sleep.interval.end_time >= ${t} sleep.interval.end_time < ${t}`, /expected AND/],
      [`sleep.interval.end_time >= ${t} AND`, /expected a field name/],
      [`sleep.interval.end_time >=`, /quoted literal/],
      [`sleep.interval.end_time`, /operator/],
      [`(sleep.interval.end_time >= ${t})`, /expected a field name/],
      [`NOT sleep.interval.end_time >= ${t}`, /expected a field name/],
    ]
    for (const [filter, message] of bad) {
      const refused = await expectInvalidFilter(list({ filter }), filter, message)
      expect(refused.error.details).toEqual(badRequestDetails('filter', refused.error.message))
    }
  })

  it('refuses a negative page size, a made-up page token and unknown query parameters', async () => {
    const negative = await failure(list({ pageSize: -1 }))
    expect(negative.status).toBe(400)
    expect(negative.error.message).toMatch(/page_size/)
    expect((await failure(list({ pageToken: 'not-a-token' }))).error.message).toMatch(/page token/i)
    const unknown = await failure(list({ orderBy: 'start_time' } as ListParams))
    expect(unknown.status).toBe(400)
    expect(unknown.error.message).toMatch(/Unknown name "orderBy"/)
  })

  it('checks that a page token continues the same request: same filter, page size and user', async () => {
    const filter = endBetween(FIRST_DAY, FIRST_DAY + 10 * DAY)
    const { data } = await list({ filter, pageSize: 3 })
    const pageToken = data.nextPageToken!
    expect((await list({ filter, pageSize: 3, pageToken })).status).toBe(200)
    const otherFilter = await failure(list({ filter: endBetween(FIRST_DAY, FIRST_DAY + 11 * DAY), pageSize: 3, pageToken }))
    expect(otherFilter.status).toBe(400)
    expect(otherFilter.error).toMatchObject({ status: 'INVALID_ARGUMENT', message: expect.stringMatching(/page token/) })
    expect((await failure(list({ pageSize: 3, pageToken }))).status).toBe(400)
    expect((await failure(list({ filter, pageSize: 4, pageToken }))).status).toBe(400)
    const someoneElse = await google.accessToken(google.fake.addUser({ scopes: BOTH_APIS }))
    expect((await failure(list({ filter, pageSize: 3, pageToken }, someoneElse))).status).toBe(400)
  })

  it('lists only sleep, and rolls up no sleep', async () => {
    for (const dataType of ['steps', 'heart-rate', 'floors']) {
      const refused = await failure(list({}, google.token, dataType))
      expect(refused.status).toBe(400)
      expect(refused.error.status).toBe('INVALID_ARGUMENT')
      expect(refused.error.message).toMatch(/lists only sleep/)
    }
    const range = { startTime: iso(FIRST_DAY), endTime: iso(FIRST_DAY + DAY) }
    const rollUp = await failure(google.rollUp('sleep', { range, windowSize: '3600s' }))
    expect(rollUp.status).toBe(400)
    expect(rollUp.error).toMatchObject({ status: 'INVALID_ARGUMENT', message: expect.stringMatching(/session type/) })
    const civil = { start: { date: { year: 2026, month: 3, day: 1 } }, end: { date: { year: 2026, month: 3, day: 2 } } }
    const daily = await failure(google.dailyRollUp('sleep', { range: civil }))
    expect(daily.status).toBe(400)
    expect(daily.error.message).toMatch(/session type/)
  })
})

describe('sleep list faults, latency and counters', () => {
  it('serves injected faults on the list route in the Health error shape, and counts requests and errors', async () => {
    const before = google.fake.stats
    google.fake.injectFault({ route: 'list', status: 503, times: 2 })
    for (let i = 0; i < 2; i++) {
      await expectUnavailable(list({ pageSize: 1 }))
    }
    expect((await list({ pageSize: 1 })).status).toBe(200)
    google.fake.injectFault({ route: 'list', status: 429, retryAfterSeconds: 5 })
    await expectRateLimited(list({ pageSize: 1 }), '5', LIST_METHOD)
    // A roll-up fault leaves the list alone, and the reverse.
    google.fake.injectFault({ route: 'rollUp', status: 500 })
    expect((await list({ pageSize: 1 })).status).toBe(200)
    google.fake.clearFaults()
    await failure(list({ filter: 'bogus' }))
    expect(google.countsSince(before)).toMatchObject({ listRequests: 6, listErrors: 4, faultsServed: 3, rollUpRequests: 0, ofUser: 2 })
  })

  it('answers a corrupted 200 verbatim when told to', async () => {
    google.fake.injectFault({ route: 'list', status: 200, body: { dataPoints: 'nope' } })
    expect((await list({})).data).toEqual({ dataPoints: 'nope' })
  })

  it('delays list answers by the configured latency', async () => {
    await expectDelayed(google.fake, () => list({ pageSize: 1 }))
  })
})
