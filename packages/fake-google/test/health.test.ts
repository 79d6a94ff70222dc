import { describe, expect, it } from 'vitest'
import type { health_v4 } from 'googleapis/build/src/apis/health/index.js'
import { HEALTH_TYPES, healthReadScope, syntheticRollup, type HealthRollupValue } from '../src/index.js'
import { BOTH_APIS, DAY, HOUR, NOW, continuing, expectDelayed, failure, followPages, iso, scopeInsufficient, useFakeGoogle } from './health-support.js'

/**
 * The Health API roll-ups through the real googleapis client, checked against the Fit aggregate of
 * the same user: one synthetic person must read the same through both APIs.
 */
const FIRST_DAY = Date.UTC(2026, 2, 2)

/** Its user is a runner (so cardio-zone and vigorous minutes occur) whose watch is a Fitbit. */
const google = useFakeGoogle({ seed: 'health-runner-7' })
const { rollUp, dailyRollUp } = google

/** Every page of an hourly rollUp, followed to the end. */
function hourlyRollUp(dataType: string, startMs: number, endMs: number, pageSize?: number, token = google.token) {
  const body = { range: { startTime: iso(startMs), endTime: iso(endMs) }, windowSize: '3600s', ...(pageSize === undefined ? {} : { pageSize }) }
  return followPages(async (pageToken) => (await rollUp(dataType, { ...body, ...continuing(pageToken) }, token)).data)
}

/** Fit's hourly buckets of one raw type: the numbers of each bucket's point, by bucket start. */
async function hourlyFit(dataTypeName: string, startMs: number, endMs: number): Promise<Map<number, number[]>> {
  const data = await google.fitAggregate(dataTypeName, startMs, endMs, HOUR)
  const buckets = new Map<number, number[]>()
  for (const bucket of data.bucket ?? []) {
    const point = bucket.dataset?.[0]?.point?.[0]
    if (point !== undefined)
      buckets.set(
        Number(bucket.startTimeMillis),
        (point.value ?? []).map((v) => v.intVal ?? v.fpVal ?? Number.NaN),
      )
  }
  return buckets
}

const int = (v: string | null | undefined): number => Number(v ?? 0)

describe('rollUp', () => {
  // Each Health type against the Fit numbers of the same hour: [data type, Fit raw type, check].
  const agreements: [string, string, (health: Record<string, unknown>, fit: number[]) => void][] = [
    ['steps', 'com.google.step_count.delta', (h, [steps]) => expect(h).toEqual({ countSum: String(steps) })],
    ['total-calories', 'com.google.calories.expended', (h, [kcal]) => expect(h).toEqual({ kcalSum: kcal })],
    [
      'heart-rate',
      'com.google.heart_rate.bpm',
      (h, [avg, max, min]) => expect(h).toEqual({ beatsPerMinuteAvg: avg, beatsPerMinuteMax: max, beatsPerMinuteMin: min }),
    ],
    ['distance', 'com.google.distance.delta', (h, [metres]) => expect(h).toEqual({ millimetersSum: String(Math.round(metres! * 1000)) })],
    [
      'active-minutes',
      'com.google.active_minutes',
      (h, [minutes]) => {
        // Fit's move minutes count every bout: Google's three levels together.
        const levels = (h as health_v4.Schema$ActiveMinutesRollupValue).activeMinutesRollupByActivityLevel ?? []
        expect(levels.reduce((total, l) => total + int(l.activeMinutesSum), 0)).toBe(minutes)
        expect(new Set(levels.map((l) => l.activityLevel)).size).toBe(levels.length)
      },
    ],
    [
      'active-zone-minutes',
      'com.google.heart_minutes',
      (h, [points, minutes]) => {
        const zones = h as health_v4.Schema$ActiveZoneMinutesRollupValue
        const [fatBurn, cardio, peak] = [zones.sumInFatBurnHeartZone, zones.sumInCardioHeartZone, zones.sumInPeakHeartZone].map(int) as [number, number, number]
        // Active zone minutes are weighted already (2 per cardio or peak minute): they add up to Fit's heart points.
        expect(fatBurn + cardio + peak).toBe(points)
        expect(fatBurn + (cardio + peak) / 2).toBe(minutes)
        expect(cardio % 2).toBe(0)
        expect(peak % 2).toBe(0)
      },
    ],
    ['weight', 'com.google.weight', (h, [kg]) => expect((h as health_v4.Schema$WeightRollupValue).weightGramsAvg).toBeCloseTo(kg! * 1000, 6)],
    ['body-fat', 'com.google.body.fat.percentage', (h, [percent]) => expect(h).toEqual({ bodyFatPercentageAvg: percent })],
  ]

  it.each(agreements)('hourly %s windows agree with Fit dataset:aggregate for the same user and hours', async (dataType, fitType, agree) => {
    const start = FIRST_DAY
    const end = FIRST_DAY + 3 * DAY
    const fit = await hourlyFit(fitType, start, end)
    const points = (await hourlyRollUp(dataType, start, end)).flatMap((page) => page.rollupDataPoints ?? [])
    const field = HEALTH_TYPES.find((t) => t.name === dataType)!.valueField
    expect(points.length).toBeGreaterThan(0)
    // The same hours hold data in both APIs, and nothing else comes back.
    expect(points.map((p) => Date.parse(p.startTime!)).sort((a, b) => a - b)).toEqual([...fit.keys()])
    for (const point of points) {
      const startMs = Date.parse(point.startTime!)
      expect(Date.parse(point.endTime!)).toBe(startMs + HOUR)
      const value = (point as Record<string, unknown>)[field] as Record<string, unknown>
      agree(value, fit.get(startMs)!)
      expect(value).toEqual(syntheticRollup(google.user.seed, dataType, startMs, startMs + HOUR, NOW) as HealthRollupValue)
    }
  })

  it('puts fast runs in the peak zone, runs in the cardio zone, brisk walks in the fat-burn zone, and strolls among light minutes', async () => {
    const range = { startTime: iso(FIRST_DAY), endTime: iso(FIRST_DAY + 3 * DAY) }
    const zones = (await rollUp('active-zone-minutes', { range, windowSize: `${(3 * DAY) / 1000}s` })).data.rollupDataPoints![0]!.activeZoneMinutes!
    expect(int(zones.sumInCardioHeartZone)).toBeGreaterThan(0)
    expect(int(zones.sumInPeakHeartZone)).toBeGreaterThan(0)
    expect(int(zones.sumInFatBurnHeartZone)).toBeGreaterThan(0)
    const levels = (await rollUp('active-minutes', { range, windowSize: `${(3 * DAY) / 1000}s` })).data.rollupDataPoints![0]!.activeMinutes!
    expect(levels.activeMinutesRollupByActivityLevel!.map((l) => l.activityLevel)).toEqual(['LIGHT', 'MODERATE', 'VIGOROUS'])
    expect(levels.activeMinutesRollupByActivityLevel!.every((l) => int(l.activeMinutesSum) > 0)).toBe(true)
  })

  it('pages through every window once, latest first, and checks that a token continues the same request', async () => {
    // Basal calories burn every hour, so all 24 windows of the day hold data.
    const pages = await hourlyRollUp('total-calories', FIRST_DAY, FIRST_DAY + DAY, 5)
    expect(pages.map((p) => p.rollupDataPoints?.length)).toEqual([5, 5, 5, 5, 4])
    expect(pages.at(-1)!.nextPageToken).toBeUndefined()
    const starts = pages.flatMap((p) => (p.rollupDataPoints ?? []).map((point) => Date.parse(point.startTime!)))
    expect(starts).toEqual(Array.from({ length: 24 }, (_, i) => FIRST_DAY + (23 - i) * HOUR))

    const range = { startTime: iso(FIRST_DAY), endTime: iso(FIRST_DAY + DAY) }
    const pageToken = pages[0]!.nextPageToken!
    const changed = await failure(rollUp('total-calories', { range, windowSize: '1800s', pageSize: 5, pageToken }))
    expect(changed.status).toBe(400)
    expect(changed.error.status).toBe('INVALID_ARGUMENT')
    expect(changed.error.message).toMatch(/page token/)
    expect((await failure(rollUp('steps', { range, windowSize: '3600s', pageSize: 5, pageToken }))).status).toBe(400)
    expect((await failure(rollUp('total-calories', { range, windowSize: '3600s', pageSize: 5, pageToken: 'not-a-token' }))).status).toBe(400)
  })

  it('cuts the last window at the end of the range and leaves out windows without data', async () => {
    // Steps stop for the night; the range ends 90 minutes into an hour.
    const { data } = await rollUp('steps', { range: { startTime: iso(FIRST_DAY), endTime: iso(FIRST_DAY + 12 * HOUR + 90 * 60_000) }, windowSize: '7200s' })
    const points = data.rollupDataPoints!
    expect(points[0]).toMatchObject({ startTime: '2026-03-02T12:00:00Z', endTime: '2026-03-02T13:30:00Z' })
    expect(points.some((p) => p.startTime === '2026-03-02T02:00:00Z')).toBe(false)
    const nightOnly = await rollUp('steps', { range: { startTime: iso(FIRST_DAY + HOUR), endTime: iso(FIRST_DAY + 4 * HOUR) }, windowSize: '3600s' })
    expect(nightOnly.data).toEqual({})
  })

  it('refuses a token without the data type’s read scope with 403 ACCESS_TOKEN_SCOPE_INSUFFICIENT', async () => {
    const activityOnly = google.fake.addUser({ scopes: [healthReadScope('activity_and_fitness')] })
    const token = await google.accessToken(activityOnly)
    const range = { startTime: iso(FIRST_DAY), endTime: iso(FIRST_DAY + DAY) }
    expect((await rollUp('steps', { range, windowSize: '86400s' }, token)).status).toBe(200)
    const denied = await failure(rollUp('heart-rate', { range, windowSize: '86400s' }, token))
    expect(denied.status).toBe(403)
    expect(denied.error).toMatchObject(scopeInsufficient())
    // A Fit grant reads nothing through the Health API.
    const fitOnly = await failure(rollUp('steps', { range, windowSize: '86400s' }, await google.accessToken(google.fake.addUser())))
    expect(fitOnly.status).toBe(403)
  })

  it('answers 401 UNAUTHENTICATED without a valid access token', async () => {
    const range = { startTime: iso(FIRST_DAY), endTime: iso(FIRST_DAY + DAY) }
    const missing = await failure(rollUp('steps', { range, windowSize: '3600s' }, null))
    expect(missing.status).toBe(401)
    expect(missing.error).toMatchObject({ status: 'UNAUTHENTICATED', details: [{ reason: 'CREDENTIALS_MISSING' }] })
    const invalid = await failure(rollUp('steps', { range, windowSize: '3600s' }, 'ya29.made-up'))
    expect(invalid.status).toBe(401)
    expect(invalid.error.status).toBe('UNAUTHENTICATED')
  })

  it('refuses malformed bodies and unknown data types with 400 INVALID_ARGUMENT', async () => {
    const range = { startTime: iso(FIRST_DAY), endTime: iso(FIRST_DAY + DAY) }
    const bad: [string, health_v4.Schema$RollUpDataPointsRequest, RegExp][] = [
      ['steps', { range, windowSize: '3600s', bucket: 'hour' } as health_v4.Schema$RollUpDataPointsRequest, /Unknown name "bucket"/],
      ['steps', { range: { startTime: 'yesterday', endTime: range.endTime }, windowSize: '3600s' }, /range\.start_time/],
      ['steps', { range: { startTime: range.endTime, endTime: range.startTime }, windowSize: '3600s' }, /must be after/],
      ['steps', { range: { startTime: range.startTime }, windowSize: '3600s' }, /range\.end_time/],
      ['steps', { range, windowSize: '0.5s' }, /at least 1 second/],
      ['steps', { range, windowSize: '1h' }, /window_size/],
      ['steps', { range }, /window_size/],
      ['steps', { range, windowSize: '3600s', pageSize: -1 }, /page_size/],
      ['steps', { range, windowSize: '3600s', dataSourceFamily: 'users/me/dataSourceFamilies/mine' }, /data source family/],
      ['altitude', { range, windowSize: '3600s' }, /"altitude"/],
    ]
    for (const [dataType, body, message] of bad) {
      const refused = await failure(rollUp(dataType, body))
      expect(refused.status).toBe(400)
      expect(refused.error.status).toBe('INVALID_ARGUMENT')
      expect(refused.error.message).toMatch(message)
    }
  })

  it('limits the range to 14 days for heart rate and to 90 days for steps', async () => {
    const days = (n: number) => ({ range: { startTime: iso(FIRST_DAY - n * DAY), endTime: iso(FIRST_DAY) }, windowSize: '86400s' })
    expect((await rollUp('heart-rate', days(14))).status).toBe(200)
    const tooLong = await failure(rollUp('heart-rate', days(15)))
    expect(tooLong.status).toBe(400)
    expect(tooLong.error.message).toMatch(/14 days/)
    expect((await rollUp('steps', days(90))).status).toBe(200)
    expect((await failure(rollUp('steps', days(91)))).status).toBe(400)
  })

  it('keeps only Google and Fitbit trackers for the google-wearables data source family', async () => {
    const range = { startTime: iso(FIRST_DAY), endTime: iso(FIRST_DAY + DAY) }
    const all = await rollUp('steps', { range, windowSize: '86400s', dataSourceFamily: 'users/me/dataSourceFamilies/all-sources' })
    expect(all.data.rollupDataPoints).toHaveLength(1)
    // Steps come from the phone, never a tracker; heart rate from the Fitbit.
    const wearables = { range, windowSize: '86400s', dataSourceFamily: 'users/me/dataSourceFamilies/google-wearables' }
    expect((await rollUp('steps', wearables)).data).toEqual({})
    expect((await rollUp('heart-rate', wearables)).data.rollupDataPoints).toHaveLength(1)
  })
})

describe('dailyRollUp', () => {
  it('rolls up the user’s own local days, each the sum of its hours, a 23-hour day included', async () => {
    const newYorker = google.fake.addUser({ seed: 'health-new-york', scopes: BOTH_APIS, timeZone: 'America/New_York' })
    const token = await google.accessToken(newYorker)
    // Clocks in New York went forward on 2026-03-08: that day lasted 23 hours.
    const midnights = [Date.UTC(2026, 2, 7, 5), Date.UTC(2026, 2, 8, 5), Date.UTC(2026, 2, 9, 4), Date.UTC(2026, 2, 10, 4)]
    const range = { start: { date: { year: 2026, month: 3, day: 7 } }, end: { date: { year: 2026, month: 3, day: 10 } } }
    const steps = (await dailyRollUp('steps', { range }, token)).data.rollupDataPoints!
    expect(steps.map((p) => p.civilStartTime)).toEqual([9, 8, 7].map((day) => ({ date: { year: 2026, month: 3, day } })))
    expect(steps.map((p) => p.civilEndTime)).toEqual([10, 9, 8].map((day) => ({ date: { year: 2026, month: 3, day } })))
    const hours = (await hourlyRollUp('steps', midnights[0]!, midnights[3]!, undefined, token)).flatMap((page) => page.rollupDataPoints ?? [])
    for (const [i, day] of [...steps].reverse().entries()) {
      const ofDay = hours.filter((h) => Date.parse(h.startTime!) >= midnights[i]! && Date.parse(h.startTime!) < midnights[i + 1]!)
      expect(int(day.steps?.countSum)).toBe(ofDay.reduce((total, h) => total + int(h.steps?.countSum), 0))
      expect(day.steps).toEqual(syntheticRollup(newYorker.seed, 'steps', midnights[i]!, midnights[i + 1]!, NOW))
    }

    const heart = (await dailyRollUp('heart-rate', { range }, token)).data.rollupDataPoints!
    const heartHours = (await hourlyRollUp('heart-rate', midnights[0]!, midnights[3]!, undefined, token)).flatMap((page) => page.rollupDataPoints ?? [])
    for (const [i, day] of [...heart].reverse().entries()) {
      const ofDay = heartHours.filter((h) => Date.parse(h.startTime!) >= midnights[i]! && Date.parse(h.startTime!) < midnights[i + 1]!)
      expect(day.heartRate?.beatsPerMinuteMax).toBe(Math.max(...ofDay.map((h) => h.heartRate!.beatsPerMinuteMax!)))
      expect(day.heartRate?.beatsPerMinuteMin).toBe(Math.min(...ofDay.map((h) => h.heartRate!.beatsPerMinuteMin!)))
    }
  })

  it('refuses a start that is not a midnight, and a page token it never issued', async () => {
    const token = await google.accessToken(google.fake.addUser({ scopes: BOTH_APIS, timeZone: 'Europe/Helsinki' }))
    const unaligned = { start: { date: { year: 2026, month: 3, day: 7 }, time: { hours: 6 } }, end: { date: { year: 2026, month: 3, day: 10 } } }
    const refused = await failure(dailyRollUp('steps', { range: unaligned }, token))
    expect(refused.status).toBe(400)
    expect(refused.error.message).toMatch(/aligned/)
    const range = { start: { date: { year: 2026, month: 3, day: 7 } }, end: { date: { year: 2026, month: 3, day: 10 } } }
    expect((await failure(dailyRollUp('steps', { range, pageToken: 'abc' }, token))).status).toBe(400)
    expect((await dailyRollUp('steps', { range, windowSizeDays: 3 }, token)).data.rollupDataPoints).toHaveLength(1)
  })

  it('follows the user to a new time zone, and refuses one Intl does not know', async () => {
    const traveller = google.fake.addUser({ seed: 'health-traveller', scopes: BOTH_APIS })
    const token = await google.accessToken(traveller)
    const range = { start: { date: { year: 2026, month: 3, day: 7 } }, end: { date: { year: 2026, month: 3, day: 8 } } }
    const day = async () => (await dailyRollUp('steps', { range }, token)).data.rollupDataPoints![0]!.steps
    expect(await day()).toEqual(syntheticRollup(traveller.seed, 'steps', Date.UTC(2026, 2, 7), Date.UTC(2026, 2, 8), NOW))
    google.fake.setUserTimeZone(traveller.googleId, 'Asia/Tokyo')
    expect(await day()).toEqual(syntheticRollup(traveller.seed, 'steps', Date.UTC(2026, 2, 6, 15), Date.UTC(2026, 2, 7, 15), NOW))
    expect(() => google.fake.setUserTimeZone(traveller.googleId, 'Mars/Olympus_Mons')).toThrow(/time zone/)
    expect(() => google.fake.addUser({ timeZone: 'Mars/Olympus_Mons' })).toThrow(/time zone/)
  })
})

describe('faults, latency and counters', () => {
  it('serves an injected 429 in the Health API’s error shape, with Retry-After, and counts it', async () => {
    const before = google.fake.stats
    google.fake.injectFault({ route: 'rollUp', status: 429, retryAfterSeconds: 7 })
    const range = { startTime: iso(FIRST_DAY), endTime: iso(FIRST_DAY + DAY) }
    const limited = await failure(rollUp('steps', { range, windowSize: '3600s' }))
    expect(limited.status).toBe(429)
    expect(limited.headers.get('retry-after')).toBe('7')
    expect(limited.error).toMatchObject({ code: 429, status: 'RESOURCE_EXHAUSTED', details: [{ reason: 'RATE_LIMIT_EXCEEDED' }] })
    expect((await rollUp('steps', { range, windowSize: '3600s' })).status).toBe(200)
    expect(google.countsSince(before)).toMatchObject({ rollUpRequests: 2, rollUpErrors: 1, faultsServed: 1, ofUser: 1 })
  })

  it('delays Health answers by the configured latency', async () => {
    await expectDelayed(google.fake, () => rollUp('steps', { range: { startTime: iso(FIRST_DAY), endTime: iso(FIRST_DAY + DAY) }, windowSize: '3600s' }))
  })

  it('shows Health scopes on the consent screen', async () => {
    const url = new URL(google.fake.authorizeUrl)
    url.search = new URLSearchParams({
      client_id: google.fake.clientId,
      redirect_uri: 'http://app.test/cb',
      response_type: 'code',
      scope: `${healthReadScope('activity_and_fitness')} ${healthReadScope('health_metrics_and_measurements')}`,
    }).toString()
    const page = await fetch(url)
    expect(page.status).toBe(200)
    const html = await page.text()
    expect(html).toContain('See your activity and fitness data')
    expect(html).toContain('See your health metrics and measurements')
  })
})
