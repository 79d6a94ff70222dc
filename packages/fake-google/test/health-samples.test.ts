import { beforeAll, describe, expect, it } from 'vitest'
import type { health_v4 } from 'googleapis/build/src/apis/health/index.js'
import { ALL_READ_SCOPES, HEALTH_SCOPE_PREFIX, healthReadScope, healthSamples, rawSamples, type FakeUser, type HealthSample } from '../src/index.js'
import {
  BOTH_APIS,
  DAY,
  HOUR,
  LIST_METHOD,
  NOW,
  badRequestDetails,
  expectInvalidFilter,
  expectRateLimited,
  expectUnavailable,
  failure,
  iso,
  options,
  scopeInsufficient,
  useFakeGoogle,
  type ListParams,
} from './health-support.js'

/**
 * Health API samples (users.dataTypes.dataPoints.list on `height` and `oxygen-saturation`) through
 * the real googleapis client, checked against the Fit raw samples and aggregates of the same user
 * and against healthSamples, which predicts them without HTTP.
 */
type SampleType = 'height' | 'oxygen-saturation'

const FIRST_DAY = Date.UTC(2026, 1, 1)
const FILTER_NAMES: Record<SampleType, string> = { height: 'height', 'oxygen-saturation': 'oxygen_saturation' }

const google = useFakeGoogle({ seed: 'health-samples-1' })
const { list, listAll } = google

const field = (type: SampleType, kind: 'physical_time' | 'civil_time' = 'physical_time'): string => `${FILTER_NAMES[type]}.sample_time.${kind}`
const between = (type: SampleType, fromMs: number, beforeMs: number): string => `${field(type)} >= "${iso(fromMs)}" AND ${field(type)} < "${iso(beforeMs)}"`

/** A data point in the helper's terms: its instant and its value in millimetres or percent. */
function asSample(point: health_v4.Schema$DataPoint): HealthSample {
  if (point.height !== undefined) {
    return { timeMs: Date.parse(point.height.sampleTime!.physicalTime!), value: Number(point.height.heightMillimeters) }
  }
  const spo2 = point.oxygenSaturation!
  return { timeMs: Date.parse(spo2.sampleTime!.physicalTime!), value: spo2.percentage! }
}

const samplesOf = (pages: health_v4.Schema$ListDataPointsResponse[]): HealthSample[] => pages.flatMap((p) => (p.dataPoints ?? []).map(asSample))

/** Weight and body fat readings: instant, value in grams or percent, and the field it came in. */
const samplesOfType = (pages: health_v4.Schema$ListDataPointsResponse[]): (HealthSample & { field: string })[] =>
  pages.flatMap((p) =>
    (p.dataPoints ?? []).map((point) => {
      const [field, value] = point.weight !== undefined ? ['weightGrams', point.weight.weightGrams!] : ['percentage', point.bodyFat!.percentage!]
      return { timeMs: Date.parse((point.weight ?? point.bodyFat)!.sampleTime!.physicalTime!), value, field }
    }),
  )

/** Fit's hourly aggregate of a raw type over [start, end): each hour's [avg, max, min] and its span, by hour start. */
async function fitHours(rawType: string, start: number, end: number): Promise<Map<number, { values: number[]; startMs: number; endMs: number }>> {
  const data = await google.fitAggregate(rawType, start, end, HOUR)
  const hours = new Map<number, { values: number[]; startMs: number; endMs: number }>()
  for (const bucket of data.bucket ?? []) {
    const point = bucket.dataset?.[0]?.point?.[0]
    if (point === undefined) continue
    hours.set(Number(bucket.startTimeMillis), {
      values: point.value!.map((v) => v.fpVal!),
      startMs: Number(BigInt(point.startTimeNanos!) / 1_000_000n),
      endMs: Number(BigInt(point.endTimeNanos!) / 1_000_000n),
    })
  }
  return hours
}

/** The samples grouped by the UTC hour they fall in. */
function byHour(samples: readonly HealthSample[]): Map<number, HealthSample[]> {
  const hours = new Map<number, HealthSample[]>()
  for (const s of [...samples].reverse()) {
    const h = Math.floor(s.timeMs / HOUR) * HOUR
    hours.set(h, [...(hours.get(h) ?? []), s])
  }
  return hours
}

describe('height and oxygen saturation samples', () => {
  it('are the Fit oxygen saturation readings of the same user, hour by hour', async () => {
    const [start, end] = [FIRST_DAY, FIRST_DAY + 4 * DAY]
    const { data } = await list('oxygen-saturation', { filter: between('oxygen-saturation', start, end) })
    const samples = (data.dataPoints ?? []).map(asSample)
    expect(samples.length).toBeGreaterThan(40)
    expect(data.nextPageToken).toBeUndefined()
    // One data point per Fit raw sample, newest first, the saturation (the first field) as the percentage.
    const raw = rawSamples(google.user.seed, 'com.google.oxygen_saturation', start, end, NOW)
    expect(samples).toEqual(raw.reverse().map((s) => ({ timeMs: s.startMs, value: s.values[0] })))
    expect(samples).toEqual(healthSamples(google.user.seed, 'oxygen-saturation', start, end, NOW))
    // And what Fit's aggregate makes of them, hour by hour.
    const fit = await fitHours('com.google.oxygen_saturation', start, end)
    const hours = byHour(samples)
    expect([...hours.keys()]).toEqual([...fit.keys()])
    for (const [hour, group] of hours) {
      const values = group.map((s) => s.value)
      const sum = values.reduce((a, b) => a + b, 0)
      expect(fit.get(hour)).toEqual({
        values: [sum / values.length, Math.max(...values), Math.min(...values)],
        startMs: group[0]!.timeMs,
        endMs: group.at(-1)!.timeMs,
      })
      for (const s of group) expect(s.value).toSatisfy((v: number) => Number.isInteger(v) && v >= 0 && v <= 100)
    }
  })

  it('lists weight and body fat readings, whose hourly highest and lowest the roll-up (an average only) does not give', async () => {
    const [start, end] = [FIRST_DAY, FIRST_DAY + 14 * DAY]
    for (const [type, rawType, field, scale] of [
      ['weight', 'com.google.weight', 'weightGrams', 1000],
      ['body-fat', 'com.google.body.fat.percentage', 'percentage', 1],
    ] as const) {
      const points = samplesOfType(
        await listAll(type, {
          filter: `${type.replace('-', '_')}.sample_time.physical_time >= "${iso(start)}" AND ${type.replace('-', '_')}.sample_time.physical_time < "${iso(end)}"`,
        }),
      )
      expect(points.length, type).toBeGreaterThan(0)
      const raw = rawSamples(google.user.seed, rawType, start, end).reverse()
      expect(points.map((p) => p.timeMs)).toEqual(raw.map((s) => s.startMs))
      points.forEach((p, i) => expect(p.value).toBeCloseTo(raw[i]!.values[0]! * scale, 6))
      expect(points.every((p) => p.field === field)).toBe(true)
      // Each hour's roll-up is the average of its readings.
      const fit = await fitHours(rawType, start, end)
      for (const [hour, { values }] of fit) {
        const inHour = points.filter((p) => p.timeMs >= hour && p.timeMs < hour + HOUR).map((p) => p.value / scale)
        expect(Math.max(...inHour)).toBeCloseTo(values[1]!, 6)
        expect(Math.min(...inHour)).toBeCloseTo(values[2]!, 6)
      }
    }
  })

  it('are the Fit height readings of the same user, in whole millimetres', async () => {
    const [start, end] = [FIRST_DAY - 40 * DAY, FIRST_DAY + 50 * DAY]
    const { data } = await list('height', { filter: between('height', start, end) })
    const samples = (data.dataPoints ?? []).map(asSample)
    expect(samples).toHaveLength(3)
    for (const point of data.dataPoints!) expect(point.height!.heightMillimeters).toMatch(/^\d+$/)
    const fit = await fitHours('com.google.height', start, end)
    expect([...fit.entries()].reverse().map(([, h]) => ({ timeMs: h.startMs, value: Math.round(h.values[0]! * 1000) }))).toEqual(samples)
    for (const [, h] of fit) expect(new Set(h.values).size).toBe(1) // one reading an hour: avg = max = min
    expect(samples).toEqual(healthSamples(google.user.seed, 'height', start, end, NOW))
    const raw = rawSamples(google.user.seed, 'com.google.height', start, end).reverse()
    expect(samples).toEqual(raw.map((s) => ({ timeMs: s.startMs, value: Math.round(s.values[0]! * 1000) })))
  })

  it('writes each sample as a Health DataPoint: stable name, the recording device, sample time with offset and civil time', async () => {
    const filter = between('oxygen-saturation', FIRST_DAY, FIRST_DAY + DAY)
    const { data } = await list('oxygen-saturation', { filter })
    const { data: fitSources } = await google.fitApi.users.dataSources.list(
      { userId: 'me', dataTypeName: ['com.google.oxygen_saturation'] },
      options(google.token),
    )
    const device = fitSources.dataSource!.find((s) => s.type === 'raw')!
    const names = new Set<string>()
    for (const point of data.dataPoints!) {
      expect(Object.keys(point).sort()).toEqual(['dataSource', 'name', 'oxygenSaturation'])
      expect(point.name).toMatch(new RegExp(`^users/${google.user.googleId}/dataTypes/oxygen-saturation/dataPoints/[a-z0-9-]{4,63}$`))
      names.add(point.name!)
      expect(point.dataSource).toMatchObject({
        recordingMethod: 'PASSIVELY_MEASURED',
        device: { formFactor: 'WATCH', manufacturer: device.device!.manufacturer, displayName: device.device!.model },
        application: { packageName: device.application!.packageName },
      })
      expect(['FIT', 'FITBIT', 'HEALTH_CONNECT']).toContain(point.dataSource!.platform)
      const { sampleTime } = point.oxygenSaturation!
      expect(sampleTime!.physicalTime).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/)
      expect(sampleTime!.utcOffset).toBe('0s')
      const t = new Date(sampleTime!.physicalTime!)
      expect(sampleTime!.civilTime!.date).toEqual({ year: t.getUTCFullYear(), month: t.getUTCMonth() + 1, day: t.getUTCDate() })
    }
    expect(names.size).toBe(data.dataPoints!.length)
    // The same samples read the same again, names included.
    expect((await list('oxygen-saturation', { filter })).data).toEqual(data)
    const { data: heights } = await list('height', { pageSize: 1 })
    expect(heights.dataPoints![0]!.dataSource).toMatchObject({ recordingMethod: 'ACTIVELY_MEASURED', device: { formFactor: 'SCALE' } })
  })

  it('gives offsets and civil times in the user’s time zone, across a daylight-saving change', async () => {
    const newYorker = google.fake.addUser({ seed: 'samples-new-york', scopes: BOTH_APIS, timeZone: 'America/New_York' })
    const token = await google.accessToken(newYorker)
    const switchMs = Date.UTC(2026, 2, 8, 7) // 02:00 EST, when clocks went forward
    const offset = (ms: number) => (ms < switchMs ? -5 : -4)
    const { data } = await list('oxygen-saturation', { filter: between('oxygen-saturation', Date.UTC(2026, 2, 6), Date.UTC(2026, 2, 11)) }, token)
    const offsets = new Set<string>()
    for (const point of data.dataPoints!) {
      const { physicalTime, utcOffset, civilTime } = point.oxygenSaturation!.sampleTime!
      const t = Date.parse(physicalTime!)
      expect(utcOffset).toBe(`${offset(t) * 3600}s`)
      offsets.add(utcOffset!)
      const wall = new Date(t + offset(t) * HOUR)
      // google.type.TimeOfDay in proto3 JSON: zero fields left out, and the whole time at midnight.
      const time = Object.fromEntries(
        Object.entries({ hours: wall.getUTCHours(), minutes: wall.getUTCMinutes(), seconds: wall.getUTCSeconds() }).filter(([, v]) => v !== 0),
      )
      expect(civilTime).toEqual({
        date: { year: wall.getUTCFullYear(), month: wall.getUTCMonth() + 1, day: wall.getUTCDate() },
        ...(Object.keys(time).length === 0 ? {} : { time }),
      })
    }
    expect([...offsets].sort()).toEqual(['-14400s', '-18000s'])
  })

  it('keeps the samples in the filter’s bounds, one exactly on a bound included by >= and left out by <', async () => {
    const type = 'oxygen-saturation'
    const all = healthSamples(google.user.seed, type, FIRST_DAY, FIRST_DAY + 3 * DAY, NOW)
    expect(all.length).toBeGreaterThan(30)
    const pivot = all[12]!
    const at = (filter: string) => list(type, { filter }).then(({ data }) => samplesOf([data]))
    const lower = `${field(type)} >= "${iso(FIRST_DAY)}"`
    const upper = `${field(type)} < "${iso(FIRST_DAY + 3 * DAY)}"`
    expect(await at(`${field(type)} >= "${iso(pivot.timeMs)}" AND ${upper}`)).toEqual(all.slice(0, 13))
    expect(await at(`${lower} AND ${field(type)} < "${iso(pivot.timeMs)}"`)).toEqual(all.slice(13))
    // A bound a nanosecond past the sample leaves it out below and keeps it above.
    const justAfter = iso(pivot.timeMs).replace('.000Z', '.000000001Z')
    expect(await at(`${field(type)} >= "${justAfter}" AND ${upper}`)).toEqual(all.slice(0, 12))
    expect(await at(`${lower} AND ${field(type)} < "${justAfter}"`)).toEqual(all.slice(12))
    // Offsets in the literal are honoured; whitespace and quotes are free; bounds may repeat (the tighter wins).
    const plusTwo = new Date(pivot.timeMs + 2 * HOUR).toISOString().replace('.000Z', '+02:00')
    expect(await at(`${field(type)}>='${plusTwo}'   AND   ${upper} AND ${lower}`)).toEqual(all.slice(0, 13))
    // A lower bound alone runs up to the server's clock.
    expect(await at(`${field(type)} >= "${iso(NOW - 2 * DAY)}"`)).toEqual(healthSamples(google.user.seed, type, NOW - 2 * DAY, NOW + 1, NOW))
    // Between two samples there is nothing: the answer is an empty message.
    expect((await list(type, { filter: between(type, pivot.timeMs + 1, all[11]!.timeMs) })).data).toEqual({})
    expect((await list('height', { filter: between('height', FIRST_DAY, FIRST_DAY + DAY) })).data).toEqual({})
  })

  it('filters by civil sample time in the user’s own zone', async () => {
    const tokyo = google.fake.addUser({ seed: 'samples-tokyo', scopes: BOTH_APIS, timeZone: 'Asia/Tokyo' })
    const token = await google.accessToken(tokyo)
    const type = 'oxygen-saturation'
    const civil = field(type, 'civil_time')
    const expected = healthSamples(tokyo.seed, type, Date.UTC(2026, 2, 8, 15), Date.UTC(2026, 2, 10, 15), NOW)
    expect(expected.length).toBeGreaterThan(20)
    const filter = `${civil} >= "2026-03-09" AND ${civil} < "2026-03-11"`
    const { data } = await list(type, { filter }, token)
    expect(samplesOf([data])).toEqual(expected)
    expect(data.dataPoints![0]!.oxygenSaturation!.sampleTime!.utcOffset).toBe('32400s')
    // A civil bound on a sample's own wall-clock time: >= keeps it, < leaves it out.
    const pivot = expected[5]!
    const wall = new Date(pivot.timeMs + 9 * HOUR).toISOString().slice(0, 19)
    expect(samplesOf([(await list(type, { filter: `${civil} >= "${wall}" AND ${civil} < "2026-03-11"` }, token)).data])).toEqual(expected.slice(0, 6))
    expect(samplesOf([(await list(type, { filter: `${civil} >= "2026-03-09" AND ${civil} < "${wall}"` }, token)).data])).toEqual(expected.slice(6))
    // Civil and physical bounds combine.
    const both = `${filter} AND ${field(type)} < "${iso(pivot.timeMs)}"`
    expect(samplesOf([(await list(type, { filter: both }, token)).data])).toEqual(expected.slice(6))
  })

  it('pages newest first through every sample exactly once, whatever the page size', async () => {
    const type = 'oxygen-saturation'
    const filter = between(type, FIRST_DAY, FIRST_DAY + 3 * DAY)
    const expected = healthSamples(google.user.seed, type, FIRST_DAY, FIRST_DAY + 3 * DAY, NOW)
    const n = expected.length
    for (let i = 1; i < n; i++) expect(expected[i]!.timeMs).toBeLessThan(expected[i - 1]!.timeMs)
    for (const pageSize of [1, 2, 7, 13, n - 1, n, n + 1]) {
      const pages = await listAll(type, { filter, pageSize })
      expect(pages.map((p) => p.dataPoints?.length ?? 0)).toEqual(
        Array.from({ length: Math.ceil(n / pageSize) }, (_, i) => Math.min(pageSize, n - i * pageSize)),
      )
      expect(samplesOf(pages)).toEqual(expected)
    }
    const names = (await listAll(type, { filter, pageSize: 5 })).flatMap((p) => p.dataPoints!.map((d) => d.name))
    expect(new Set(names).size).toBe(n)
  })

  it('gives 1440 to a page by default and cuts page sizes above 10000 to 10000', async () => {
    const type = 'oxygen-saturation'
    const byDefault = await list(type, {})
    expect(byDefault.data.dataPoints).toHaveLength(1440)
    expect(byDefault.data.nextPageToken).toBeTruthy()
    const firstPage = samplesOf([byDefault.data])
    expect(firstPage).toEqual(healthSamples(google.user.seed, type, firstPage.at(-1)!.timeMs, NOW + 1, NOW))
    expect(samplesOf([(await list(type, { pageSize: 0 })).data])).toEqual(firstPage)
    for (const pageSize of [10_000, 10_001, 2_000_000_000]) {
      const { data } = await list(type, { pageSize })
      expect(data.dataPoints, String(pageSize)).toHaveLength(10_000)
      expect(data.nextPageToken).toBeTruthy()
      const samples = samplesOf([data])
      expect(samples.slice(0, 1440)).toEqual(firstPage)
      if (pageSize === 10_000) expect(samples).toEqual(healthSamples(google.user.seed, type, samples.at(-1)!.timeMs, NOW + 1, NOW))
    }
  })

  it('lists back to the Unix epoch without a lower bound', async () => {
    const { data } = await list('height', {})
    expect(data.nextPageToken).toBeUndefined()
    const samples = samplesOf([data])
    expect(samples).toEqual(healthSamples(google.user.seed, 'height', 0, NOW + 1, NOW))
    // Once every 30 days since 1970.
    expect(samples.length).toBeGreaterThan(670)
    expect(samples.at(-1)!.timeMs).toBeGreaterThanOrEqual(0)
    expect(samples.at(-1)!.timeMs).toBeLessThan(30 * DAY)
    expect((await list('height', { filter: `height.sample_time.physical_time < "1970-01-01T00:00:00Z"` })).data).toEqual({})
    const before1971 = await list('height', { filter: `height.sample_time.physical_time < "1971-01-01T00:00:00Z"` })
    expect(samplesOf([before1971.data])).toEqual(healthSamples(google.user.seed, 'height', -DAY, Date.UTC(1971, 0, 1), NOW))
  })
})

describe('samples and the server’s clock', () => {
  let now = Date.UTC(2026, 2, 19, 12)
  const clocked = useFakeGoogle({ now: () => now })
  let who: FakeUser
  const type = 'oxygen-saturation'
  const token = () => clocked.accessToken(who)
  /** The samples of the night that ends on 2026-03-20, newest first. */
  const night = () => healthSamples(who.seed, type, Date.UTC(2026, 2, 19, 20), Date.UTC(2026, 2, 20, 10))

  beforeAll(() => {
    who = clocked.fake.addUser({ seed: 'samples-clock', scopes: BOTH_APIS })
  })

  const latest = async (): Promise<HealthSample> => samplesOf([(await clocked.list(type, { pageSize: 1 }, await token())).data])[0]!

  it('lists a sample once its instant has passed, and after any upload delay', async () => {
    const [newest, previous] = night().slice(-2) // the night's second sample, and its first
    now = newest!.timeMs - 1
    expect(await latest()).toEqual(previous)
    now = newest!.timeMs
    expect(await latest()).toEqual(newest)
    clocked.fake.setUploadDelay(HOUR, who.googleId)
    expect(await latest()).not.toEqual(newest)
    now = newest!.timeMs + HOUR
    expect(await latest()).toEqual(newest)
    clocked.fake.setUploadDelay(0, who.googleId)
  })

  it('neither repeats nor skips a sample when one arrives between pages', async () => {
    const samples = night()
    now = samples[3]!.timeMs
    const filter = between(type, Date.UTC(2026, 2, 18), Date.UTC(2026, 2, 21))
    const first = await clocked.list(type, { filter, pageSize: 4 }, await token())
    now = samples[1]!.timeMs // two more arrive
    const rest = await clocked.listAll(type, { filter, pageSize: 4, pageToken: first.data.nextPageToken! }, await token())
    const expected = healthSamples(who.seed, type, Date.UTC(2026, 2, 18), samples[3]!.timeMs + 1)
    expect(samplesOf([first.data, ...rest])).toEqual(expected)
    // A new listing sees the new ones first.
    expect(samplesOf([(await clocked.list(type, { filter, pageSize: 1 }, await token())).data])).toEqual([samples[1]])
  })

  it('lists late samples with the rest, those at one instant in the order they arrived, each once across pages', async () => {
    const samples = night()
    now = Date.UTC(2026, 2, 20, 12)
    const t = samples[4]!.timeMs
    clocked.fake.addLateSamples(who.googleId, 'com.google.oxygen_saturation', [
      { startMs: t, endMs: t, values: [90, 0] },
      { startMs: t, endMs: t, values: [91, 0] },
    ])
    const filter = between(type, samples[6]!.timeMs, samples[2]!.timeMs)
    const first = await clocked.list(type, { filter, pageSize: 3 }, await token())
    expect(samplesOf([first.data])).toEqual([samples[3], samples[4], { timeMs: t, value: 90 }])
    // Another arrives at the same instant, and one later than the page: only the first is still to come.
    clocked.fake.addLateSamples(who.googleId, 'com.google.oxygen_saturation', [
      { startMs: t, endMs: t, values: [92, 0] },
      { startMs: samples[3]!.timeMs + 1, endMs: samples[3]!.timeMs + 1, values: [80, 0] },
    ])
    const rest = await clocked.listAll(type, { filter, pageSize: 3, pageToken: first.data.nextPageToken! }, await token())
    expect(samplesOf(rest)).toEqual([{ timeMs: t, value: 91 }, { timeMs: t, value: 92 }, samples[5], samples[6]])
    const names = [first.data, ...rest].flatMap((p) => p.dataPoints!.map((d) => d.name))
    expect(new Set(names).size).toBe(names.length)
    // The Fit aggregate reads the same late samples.
    const data = await clocked.fitAggregate('com.google.oxygen_saturation', t, t + 1, 1, await token())
    const values = [samples[4]!.value, 90, 91, 92]
    expect(data.bucket![0]!.dataset![0]!.point![0]!.value!.map((v) => v.fpVal)).toEqual([
      values.reduce((a, b) => a + b, 0) / 4,
      Math.max(...values),
      Math.min(...values),
    ])
  })
})

describe('sample list refusals', () => {
  it('needs a health metrics scope: 403 ACCESS_TOKEN_SCOPE_INSUFFICIENT otherwise', async () => {
    for (const scopes of [[healthReadScope('activity_and_fitness'), healthReadScope('sleep')], [...ALL_READ_SCOPES]]) {
      const token = await google.accessToken(google.fake.addUser({ scopes }))
      for (const type of ['height', 'oxygen-saturation']) {
        const denied = await failure(list(type, {}, token))
        expect(denied.status).toBe(403)
        expect(denied.error).toMatchObject(scopeInsufficient(LIST_METHOD))
        expect(denied.headers.get('www-authenticate')).toContain(healthReadScope('health_metrics_and_measurements'))
      }
    }
    // The read-only scope and the full-access one both do.
    for (const scope of [healthReadScope('health_metrics_and_measurements'), `${HEALTH_SCOPE_PREFIX}health_metrics_and_measurements`]) {
      const token = await google.accessToken(google.fake.addUser({ scopes: [scope] }))
      expect((await list('height', { pageSize: 1 }, token)).data.dataPoints).toHaveLength(1)
      expect((await list('oxygen-saturation', { pageSize: 1 }, token)).data.dataPoints).toHaveLength(1)
    }
  })

  it('answers 401 UNAUTHENTICATED without a valid access token', async () => {
    const missing = await failure(list('height', {}, null))
    expect(missing.status).toBe(401)
    expect(missing.error).toMatchObject({ status: 'UNAUTHENTICATED', details: [{ reason: 'CREDENTIALS_MISSING' }] })
    expect((await failure(list('oxygen-saturation', {}, 'ya29.made-up'))).status).toBe(401)
  })

  it('refuses filters outside the supported subset with 400 INVALID_ARGUMENT, a field of another type included', async () => {
    const t = '"2026-03-01T00:00:00Z"'
    const bad: [SampleType, string, RegExp][] = [
      ['height', `sleep.interval.end_time >= ${t}`, /field "sleep.interval.end_time" does not belong to data type height/],
      ['height', `oxygen_saturation.sample_time.physical_time >= ${t}`, /does not belong to data type height/],
      ['oxygen-saturation', `height.sample_time.physical_time >= ${t}`, /does not belong to data type oxygen-saturation/],
      ['oxygen-saturation', `oxygen-saturation.sample_time.physical_time >= ${t}`, /filters name the type "oxygen_saturation"/],
      ['oxygen-saturation', `sample_time.physical_time >= ${t}`, /does not belong to data type oxygen-saturation/],
      ['height', `height.interval.start_time >= ${t}`, /height data points cannot be filtered by "height.interval.start_time"/],
      ['height', `height.sample_time >= ${t}`, /cannot be filtered by/],
      ['oxygen-saturation', `oxygen_saturation.sample_time.physical_time > ${t}`, /operator ">"/],
      ['oxygen-saturation', `oxygen_saturation.sample_time.physical_time <= ${t}`, /operator "<="/],
      ['height', `height.sample_time.physical_time = ${t}`, /operator "="/],
      ['height', `height.sample_time.physical_time >= "2026-03-01"`, /RFC 3339/],
      ['height', `height.sample_time.physical_time >= "2026-02-30T00:00:00Z"`, /RFC 3339/],
      ['oxygen-saturation', `oxygen_saturation.sample_time.physical_time >= 2026-03-01T00:00:00Z`, /quoted literal/],
      ['oxygen-saturation', `oxygen_saturation.sample_time.civil_time >= "2026-03-01T00:00:00Z"`, /civil date/],
      ['height', `height.sample_time.civil_time >= "2026-13-01"`, /civil date/],
      ['height', `height.sample_time.physical_time >= ${t} OR height.sample_time.physical_time < ${t}`, /OR is not supported/],
      ['height', `height.sample_time.physical_time >= ${t} height.sample_time.physical_time < ${t}`, /expected AND/],
      ['oxygen-saturation', `oxygen_saturation.sample_time.physical_time >= ${t} AND`, /expected a field name/],
      ['oxygen-saturation', `(oxygen_saturation.sample_time.physical_time >= ${t})`, /expected a field name/],
      ['oxygen-saturation', `NOT oxygen_saturation.sample_time.physical_time >= ${t}`, /expected a field name/],
    ]
    for (const [type, filter, message] of bad) {
      const refused = await expectInvalidFilter(list(type, { filter }), filter, message)
      expect(refused.error.details).toEqual(badRequestDetails('filter', refused.error.message))
    }
    // The sleep list takes none of the sample fields either.
    expect((await failure(list('sleep', { filter: `height.sample_time.physical_time >= ${t}` }))).error.message).toMatch(/does not belong to data type sleep/)
  })

  it('refuses a negative page size, a made-up page token, another request’s token and unknown query parameters', async () => {
    const negative = await failure(list('height', { pageSize: -1 }))
    expect(negative.status).toBe(400)
    expect(negative.error.message).toMatch(/page_size/)
    expect((await failure(list('oxygen-saturation', { pageToken: 'not-a-token' }))).error.message).toMatch(/page token/i)
    const unknown = await failure(list('height', { orderBy: 'sample_time' } as ListParams))
    expect(unknown.status).toBe(400)
    expect(unknown.error.message).toMatch(/Unknown name "orderBy"/)
    const filter = between('oxygen-saturation', FIRST_DAY, FIRST_DAY + DAY)
    const { data } = await list('oxygen-saturation', { filter, pageSize: 3 })
    const pageToken = data.nextPageToken!
    expect((await list('oxygen-saturation', { filter, pageSize: 3, pageToken })).status).toBe(200)
    expect((await failure(list('oxygen-saturation', { filter, pageSize: 4, pageToken }))).status).toBe(400)
    expect((await failure(list('oxygen-saturation', { pageSize: 3, pageToken }))).status).toBe(400)
    const asHeight = await failure(list('height', { filter: between('height', FIRST_DAY, FIRST_DAY + DAY), pageSize: 3, pageToken }))
    expect(asHeight.error).toMatchObject({ status: 'INVALID_ARGUMENT', message: expect.stringMatching(/page token/) })
    const someoneElse = await google.accessToken(google.fake.addUser({ scopes: BOTH_APIS }))
    expect((await failure(list('oxygen-saturation', { filter, pageSize: 3, pageToken }, someoneElse))).status).toBe(400)
  })

  it('still lists no other type, and rolls up neither height nor oxygen saturation', async () => {
    for (const dataType of ['heart-rate', 'blood-pressure', 'oxygen_saturation', 'daily-oxygen-saturation']) {
      const refused = await failure(list(dataType, {}))
      expect(refused.status, dataType).toBe(400)
      expect(refused.error.message).toMatch(
        /lists only sleep, exercise, height, oxygen-saturation, weight, body-fat, daily-resting-heart-rate, daily-heart-rate-variability, daily-vo2-max and daily-respiratory-rate data points/,
      )
    }
    for (const dataType of ['height', 'oxygen-saturation']) {
      const range = { startTime: iso(FIRST_DAY), endTime: iso(FIRST_DAY + DAY) }
      const rollUp = await failure(google.rollUp(dataType, { range, windowSize: '3600s' }))
      expect(rollUp.status).toBe(400)
      expect(rollUp.error).toMatchObject({ status: 'INVALID_ARGUMENT', message: expect.stringMatching(/does not support roll-ups/) })
      const civil = { start: { date: { year: 2026, month: 3, day: 1 } }, end: { date: { year: 2026, month: 3, day: 2 } } }
      const daily = await failure(google.dailyRollUp(dataType, { range: civil }))
      expect(daily.status).toBe(400)
    }
  })
})

describe('sample list faults and counters', () => {
  it('serves injected faults on the list route in the Health error shape, and counts requests and errors', async () => {
    const before = google.fake.stats
    google.fake.injectFault({ route: 'list', status: 503 })
    await expectUnavailable(list('height', { pageSize: 1 }))
    google.fake.injectFault({ route: 'list', status: 429, retryAfterSeconds: 7 })
    await expectRateLimited(list('oxygen-saturation', { pageSize: 1 }), '7', LIST_METHOD)
    google.fake.injectFault({ route: 'list', status: 200, body: { dataPoints: [{ height: { heightMillimeters: 'tall' } }] } })
    expect((await list('height', {})).data).toEqual({ dataPoints: [{ height: { heightMillimeters: 'tall' } }] })
    // A roll-up fault leaves the list alone.
    google.fake.injectFault({ route: 'rollUp', status: 500 })
    expect((await list('oxygen-saturation', { pageSize: 1 })).status).toBe(200)
    google.fake.clearFaults()
    await failure(list('height', { filter: 'bogus' }))
    expect(google.countsSince(before)).toMatchObject({ listRequests: 5, listErrors: 3, faultsServed: 3, rollUpRequests: 0, ofUser: 1 })
  })
})
