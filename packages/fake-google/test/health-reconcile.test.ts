import { beforeAll, describe, expect, it } from 'vitest'
import type { health_v4 } from 'googleapis/build/src/apis/health/index.js'
import { ALL_READ_SCOPES, HEALTH_SCOPE_PREFIX, healthReadScope, healthSamples } from '../src/index.js'
import {
  BOTH_APIS,
  DAY,
  HOUR,
  NOW,
  RECONCILE_METHOD,
  badRequestDetails,
  expectDelayed,
  expectRateLimited,
  expectUnavailable,
  expectInvalidFilter,
  failure,
  iso,
  scopeInsufficient,
  useFakeGoogle,
  type ListParams,
  type ReconcileParams,
} from './health-support.js'

/**
 * Health API reconcile (users.dataTypes.dataPoints.reconcile on `sleep`, `height` and
 * `oxygen-saturation`) through the real googleapis client. A synthetic user has one source per
 * type, so reconciling is checked against list: the same points, order and pages, each named by
 * `dataPointName` and without `dataSource`, less what a data source family leaves out.
 */
type DataType = 'sleep' | 'height' | 'oxygen-saturation'

const FIRST_DAY = Date.UTC(2026, 1, 1)
const TYPES: readonly DataType[] = ['sleep', 'height', 'oxygen-saturation']
const FAMILY = 'users/me/dataSourceFamilies/'
const WEARABLES = `${FAMILY}google-wearables`

/** Its user's watch is a Pixel Watch 2, their scale a Eufy. */
const google = useFakeGoogle({ seed: 'reconcile-2' })
const { list, reconcile, listAll, reconcileAll } = google
/** A user whose watch is a Samsung Galaxy Watch. */
let samsungToken: string

beforeAll(async () => {
  samsungToken = await google.accessToken(google.fake.addUser({ seed: 'reconcile-1', scopes: BOTH_APIS }))
})

const FILTER_FIELDS: Record<DataType, string> = {
  sleep: 'sleep.interval.end_time',
  height: 'height.sample_time.physical_time',
  'oxygen-saturation': 'oxygen_saturation.sample_time.physical_time',
}
const between = (type: DataType, fromMs: number, beforeMs: number): string =>
  `${FILTER_FIELDS[type]} >= "${iso(fromMs)}" AND ${FILTER_FIELDS[type]} < "${iso(beforeMs)}"`

type Page = { dataPoints?: (health_v4.Schema$DataPoint | health_v4.Schema$ReconciledDataPoint)[]; nextPageToken?: string | null }

/** A listed data point as reconcile should give it: `name` as `dataPointName`, and no `dataSource`. */
function asReconciled(point: health_v4.Schema$DataPoint): health_v4.Schema$ReconciledDataPoint {
  const data = Object.fromEntries(Object.entries(point).filter(([key]) => key !== 'name' && key !== 'dataSource'))
  return { dataPointName: point.name, ...data } as health_v4.Schema$ReconciledDataPoint
}

const pointsOf = (pages: Page[]): NonNullable<Page['dataPoints']> => pages.flatMap((p) => p.dataPoints ?? [])
const namesOf = (pages: Page[]): string[] => pointsOf(pages).map((p) => ('dataPointName' in p ? p.dataPointName : (p as health_v4.Schema$DataPoint).name) ?? '')

describe('reconcile with one source per type', () => {
  it('gives list’s data points in list’s order, named by dataPointName and without dataSource, for sleep, height and oxygen saturation', async () => {
    const cases: [DataType, ReconcileParams][] = [
      ['sleep', { filter: between('sleep', FIRST_DAY, NOW) }],
      ['height', {}],
      ['oxygen-saturation', { filter: between('oxygen-saturation', FIRST_DAY, FIRST_DAY + DAY) }],
    ]
    for (const [type, params] of cases) {
      const listed = (await list(type, params)).data
      const reconciled = (await reconcile(type, params)).data
      expect(listed.dataPoints!.length, type).toBeGreaterThan(0)
      expect(reconciled.dataPoints, type).toEqual(listed.dataPoints!.map(asReconciled))
      for (const point of reconciled.dataPoints!) {
        expect(Object.keys(point)).not.toContain('name')
        expect(Object.keys(point)).not.toContain('dataSource')
        expect(point.dataPointName).toMatch(
          new RegExp(`^users/${google.user.googleId}/dataTypes/${type}/dataPoints/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`),
        )
      }
      expect(Boolean(reconciled.nextPageToken), type).toBe(Boolean(listed.nextPageToken))
    }
    // The synthetic history starts at the epoch: before it, reconcile is as empty as list.
    expect((await reconcile('height', { filter: `height.sample_time.physical_time < "1970-01-01T00:00:00Z"` })).data).toEqual({})
  })

  it('pages through every point exactly once, as list does, whatever the page size', async () => {
    const cases: [DataType, ReconcileParams, number[]][] = [
      ['sleep', { filter: between('sleep', FIRST_DAY, NOW) }, [1, 4, 25]],
      ['height', {}, [50, 333]],
      ['oxygen-saturation', { filter: between('oxygen-saturation', FIRST_DAY, FIRST_DAY + 2 * DAY) }, [1, 7, 29]],
    ]
    for (const [type, params, sizes] of cases) {
      for (const pageSize of sizes) {
        const listed = await listAll(type, { ...params, pageSize })
        const reconciled = await reconcileAll(type, { ...params, pageSize })
        expect(reconciled.length, `${type} ${pageSize}`).toBeGreaterThan(1)
        expect(reconciled.map((p) => p.dataPoints?.length ?? 0)).toEqual(listed.map((p) => p.dataPoints?.length ?? 0))
        expect(pointsOf(reconciled)).toEqual(pointsOf(listed).map(asReconciled))
        const names = namesOf(reconciled)
        expect(new Set(names).size).toBe(names.length)
      }
    }
    // The same samples healthSamples predicts, newest first.
    const spo2 = await reconcileAll('oxygen-saturation', { filter: between('oxygen-saturation', FIRST_DAY, FIRST_DAY + DAY), pageSize: 9 })
    expect(pointsOf(spo2).map((p) => Date.parse(p.oxygenSaturation!.sampleTime!.physicalTime!))).toEqual(
      healthSamples(google.user.seed, 'oxygen-saturation', FIRST_DAY, FIRST_DAY + DAY, NOW).map((s) => s.timeMs),
    )
  })

  it('gives list’s default page sizes and caps: 25 for sleep, 1440 up to 10000 for samples', async () => {
    expect((await reconcile('sleep', {})).data.dataPoints).toHaveLength(25)
    expect((await reconcile('sleep', { pageSize: 1000 })).data.dataPoints).toHaveLength(25)
    expect((await reconcile('oxygen-saturation', {})).data.dataPoints).toHaveLength(1440)
    const capped = (await reconcile('oxygen-saturation', { pageSize: 20_000 })).data
    expect(capped.dataPoints).toHaveLength(10_000)
    expect(capped.nextPageToken).toBeTruthy()
  })

  it('sees what list sees of the server’s clock: upload delays and late samples', async () => {
    const who = google.fake.addUser({ seed: 'reconcile-clock', scopes: BOTH_APIS })
    const token = await google.accessToken(who)
    const same = async (type: DataType, params: ReconcileParams): Promise<Page> => {
      const listed = (await list(type, params, token)).data
      const reconciled = (await reconcile(type, params, token)).data
      expect(reconciled.dataPoints ?? []).toEqual((listed.dataPoints ?? []).map(asReconciled))
      return reconciled
    }
    const newest = async (type: DataType): Promise<string> => namesOf([await same(type, { pageSize: 1 })])[0]!
    const [sleepBefore, spo2Before] = [await newest('sleep'), await newest('oxygen-saturation')]
    google.fake.setUploadDelay(20 * HOUR, who.googleId)
    try {
      expect(await newest('sleep')).not.toBe(sleepBefore)
      expect(await newest('oxygen-saturation')).not.toBe(spo2Before)
    } finally {
      google.fake.setUploadDelay(0, who.googleId)
    }
    const t = Date.UTC(2026, 2, 10, 3, 0, 0, 1)
    google.fake.addLateSamples(who.googleId, 'com.google.oxygen_saturation', [{ startMs: t, endMs: t, values: [88, 0] }])
    const around = await same('oxygen-saturation', { filter: between('oxygen-saturation', t, t + 1) })
    expect(around.dataPoints).toEqual([expect.objectContaining({ oxygenSaturation: expect.objectContaining({ percentage: 88 }) })])
  })
})

describe('reconcile data source families', () => {
  it('keeps a Pixel Watch’s sleep and SpO2 and leaves out the scale’s height for google-wearables', async () => {
    // The list says where each type comes from: SpO2 from the watch, height from the scale.
    const [spo2Source, heightSource] = [(await list('oxygen-saturation', { pageSize: 1 })).data, (await list('height', { pageSize: 1 })).data].map(
      (d) => d.dataPoints![0]!.dataSource!.device,
    )
    expect(spo2Source).toMatchObject({ formFactor: 'WATCH', manufacturer: 'Google', displayName: 'Pixel Watch 2' })
    expect(heightSource).toMatchObject({ formFactor: 'SCALE' })
    for (const type of TYPES) {
      const params = { filter: between(type, FIRST_DAY, NOW), pageSize: 20 }
      const all = (await reconcile(type, params)).data
      // Height is weighed once every 30 days; the others fill the page.
      if (type === 'height') expect(all.dataPoints!.length).toBeGreaterThan(0)
      else expect(all.dataPoints, type).toHaveLength(20)
      // All sources and Google sources hold every synthetic device: they change nothing.
      for (const family of ['all-sources', 'google-sources']) {
        expect((await reconcile(type, { ...params, dataSourceFamily: `${FAMILY}${family}` })).data.dataPoints, family).toEqual(all.dataPoints)
      }
      const wearables = (await reconcile(type, { ...params, dataSourceFamily: WEARABLES })).data
      if (type === 'height') expect(wearables).toEqual({})
      else expect(wearables.dataPoints, type).toEqual(all.dataPoints)
    }
    // And pages through the watch's sleep as without a family.
    const filter = between('sleep', FIRST_DAY, NOW)
    const wearablePages = await reconcileAll('sleep', { filter, pageSize: 10, dataSourceFamily: WEARABLES })
    expect(wearablePages.length).toBeGreaterThan(1)
    expect(pointsOf(wearablePages)).toEqual(pointsOf(await reconcileAll('sleep', { filter, pageSize: 10 })))
  })

  it('leaves out every type for google-wearables when the watch is another maker’s', async () => {
    const source = (await list('oxygen-saturation', { pageSize: 1 }, samsungToken)).data.dataPoints![0]!.dataSource!.device
    expect(source).toMatchObject({ formFactor: 'WATCH', manufacturer: 'Samsung' })
    for (const type of TYPES) {
      expect((await reconcile(type, {}, samsungToken)).data.dataPoints!.length, type).toBeGreaterThan(0)
      expect((await reconcile(type, { dataSourceFamily: WEARABLES }, samsungToken)).data, type).toEqual({})
    }
  })

  it('refuses an unknown family with 400 INVALID_ARGUMENT, as the roll-ups do; list takes no family', async () => {
    for (const family of [`${FAMILY}fitbit`, 'google-wearables', FAMILY, `${FAMILY}all-sources/`]) {
      const refused = await failure(reconcile('sleep', { dataSourceFamily: family }))
      expect(refused.status, family).toBe(400)
      expect(refused.error.status).toBe('INVALID_ARGUMENT')
      expect(refused.error.message).toMatch(/^Invalid data source family: /)
      expect(refused.error.details).toEqual(badRequestDetails('data_source_family', refused.error.message))
      const range = { startTime: iso(FIRST_DAY), endTime: iso(FIRST_DAY + DAY) }
      const rollUp = await failure(google.rollUp('steps', { range, windowSize: '3600s', dataSourceFamily: family }))
      expect(rollUp.error.message).toBe(refused.error.message)
    }
    // An empty family is the default: all sources.
    expect((await reconcile('height', { dataSourceFamily: '' })).data).toEqual((await reconcile('height', {})).data)
    const listed = await failure(list('height', { dataSourceFamily: WEARABLES } as ListParams))
    expect(listed.status).toBe(400)
    expect(listed.error.message).toMatch(/Unknown name "dataSourceFamily"/)
  })
})

describe('reconcile page tokens', () => {
  it('continue only the same reconcile: not a list’s, nor another family’s, page size’s, filter’s or user’s', async () => {
    const type = 'oxygen-saturation'
    const filter = between(type, FIRST_DAY, FIRST_DAY + DAY)
    const listToken = (await list(type, { filter, pageSize: 3 })).data.nextPageToken!
    const reconcileToken = (await reconcile(type, { filter, pageSize: 3 })).data.nextPageToken!
    expect(listToken).toBeTruthy()
    expect(reconcileToken).toBeTruthy()
    expect(reconcileToken).not.toBe(listToken)
    // Each continues its own method, to the same second page.
    const second = (await reconcile(type, { filter, pageSize: 3, pageToken: reconcileToken })).data
    expect(second.dataPoints).toEqual((await list(type, { filter, pageSize: 3, pageToken: listToken })).data.dataPoints!.map(asReconciled))
    // Naming the default family continues the same request.
    expect((await reconcile(type, { filter, pageSize: 3, pageToken: reconcileToken, dataSourceFamily: `${FAMILY}all-sources` })).data).toEqual(second)

    const listTokenOnReconcile = await failure(reconcile(type, { filter, pageSize: 3, pageToken: listToken }))
    expect(listTokenOnReconcile.status).toBe(400)
    expect(listTokenOnReconcile.error).toMatchObject({ status: 'INVALID_ARGUMENT', message: expect.stringMatching(/page token/) })
    expect(listTokenOnReconcile.error.details).toEqual(badRequestDetails('page_token', listTokenOnReconcile.error.message))
    expect((await failure(list(type, { filter, pageSize: 3, pageToken: reconcileToken }))).status).toBe(400)
    const mismatches: ReconcileParams[] = [
      { filter, pageSize: 3, dataSourceFamily: WEARABLES },
      { filter, pageSize: 3, dataSourceFamily: `${FAMILY}google-sources` },
      { filter, pageSize: 4 },
      { pageSize: 3 },
    ]
    for (const params of mismatches) {
      expect((await failure(reconcile(type, { ...params, pageToken: reconcileToken }))).status, JSON.stringify(params)).toBe(400)
    }
    expect((await failure(reconcile('height', { pageSize: 3, pageToken: reconcileToken }))).status).toBe(400)
    expect((await failure(reconcile(type, { filter, pageSize: 3, pageToken: reconcileToken }, samsungToken))).status).toBe(400)
    expect((await failure(reconcile(type, { pageToken: 'not-a-token' }))).error.message).toMatch(/page token/i)
  })
})

describe('reconcile refusals', () => {
  it('needs the type’s read scope: 403 ACCESS_TOKEN_SCOPE_INSUFFICIENT from ReconcileDataPoints otherwise', async () => {
    const cases: [string[], DataType[], string][] = [
      [[healthReadScope('sleep'), ...ALL_READ_SCOPES], ['height', 'oxygen-saturation'], healthReadScope('health_metrics_and_measurements')],
      [[healthReadScope('health_metrics_and_measurements'), healthReadScope('activity_and_fitness')], ['sleep'], healthReadScope('sleep')],
    ]
    for (const [scopes, denied, required] of cases) {
      const token = await google.accessToken(google.fake.addUser({ scopes }))
      for (const type of denied) {
        const refused = await failure(reconcile(type, {}, token))
        expect(refused.status, type).toBe(403)
        expect(refused.error).toMatchObject(scopeInsufficient(RECONCILE_METHOD))
        expect(refused.headers.get('www-authenticate')).toContain(required)
      }
      for (const type of TYPES.filter((t) => !denied.includes(t))) {
        expect((await reconcile(type, { pageSize: 1 }, token)).data.dataPoints, type).toHaveLength(1)
      }
    }
    // The full-access scope does too.
    const full = await google.accessToken(google.fake.addUser({ scopes: [`${HEALTH_SCOPE_PREFIX}sleep`] }))
    expect((await reconcile('sleep', { pageSize: 1 }, full)).data.dataPoints).toHaveLength(1)
  })

  it('answers 401 UNAUTHENTICATED without a valid access token', async () => {
    const missing = await failure(reconcile('sleep', {}, null))
    expect(missing.status).toBe(401)
    expect(missing.error).toMatchObject({ status: 'UNAUTHENTICATED', details: [{ reason: 'CREDENTIALS_MISSING', metadata: { method: RECONCILE_METHOD } }] })
    expect((await failure(reconcile('height', {}, 'ya29.made-up'))).status).toBe(401)
  })

  it('refuses list’s bad filters, page sizes and parameters, and types it does not serve, with 400 INVALID_ARGUMENT', async () => {
    const t = '"2026-03-01T00:00:00Z"'
    const bad: [DataType, string, RegExp][] = [
      ['sleep', `sleep.interval.end_time > ${t}`, /operator ">"/],
      ['sleep', `sleep.interval.end_time >= ${t} OR sleep.interval.end_time < ${t}`, /OR is not supported/],
      ['oxygen-saturation', `height.sample_time.physical_time >= ${t}`, /does not belong to data type oxygen-saturation/],
      ['height', `height.sample_time.civil_time >= "2026-13-01"`, /civil date/],
    ]
    for (const [type, filter, message] of bad) {
      await expectInvalidFilter(reconcile(type, { filter }), filter, message)
    }
    expect((await failure(reconcile('height', { pageSize: -1 }))).error.message).toMatch(/page_size/)
    expect((await failure(reconcile('height', { orderBy: 'sample_time' } as ReconcileParams))).error.message).toMatch(/Unknown name "orderBy"/)
    for (const dataType of ['blood-pressure', 'steps', 'heart-rate', 'oxygen_saturation']) {
      const refused = await failure(reconcile(dataType, {}))
      expect(refused.status, dataType).toBe(400)
      expect(refused.error.message).toMatch(
        /reconciles only sleep, exercise, height, oxygen-saturation, weight, body-fat, daily-resting-heart-rate, daily-heart-rate-variability, daily-vo2-max and daily-respiratory-rate data points; data type ".*" cannot be reconciled/,
      )
    }
  })
})

describe('reconcile faults, latency and counters', () => {
  it('shares the list route’s faults and counters, and counts reconciles on their own too', async () => {
    const before = google.fake.stats
    google.fake.injectFault({ route: 'list', status: 503 })
    await expectUnavailable(reconcile('sleep', { pageSize: 1 }))
    google.fake.injectFault({ route: 'list', status: 429, retryAfterSeconds: 3 })
    await expectRateLimited(reconcile('oxygen-saturation', { pageSize: 1 }), '3', RECONCILE_METHOD)
    google.fake.injectFault({ route: 'list', status: 200, body: { dataPoints: [{ dataPointName: 42 }] } })
    expect((await reconcile('height', {})).data).toEqual({ dataPoints: [{ dataPointName: 42 }] })
    // One fault serves list and reconcile alike, first come first served.
    google.fake.injectFault({ route: 'list', status: 500, times: 2 })
    expect((await failure(list('height', { pageSize: 1 }))).status).toBe(500)
    expect((await failure(reconcile('height', { pageSize: 1 }))).status).toBe(500)
    // A roll-up fault leaves reconcile alone.
    google.fake.injectFault({ route: 'rollUp', status: 500 })
    expect((await reconcile('oxygen-saturation', { pageSize: 1 })).status).toBe(200)
    google.fake.clearFaults()
    await failure(reconcile('height', { filter: 'bogus' }))
    expect(google.countsSince(before)).toMatchObject({ listRequests: 7, reconcileRequests: 6, listErrors: 5, faultsServed: 5, rollUpRequests: 0, ofUser: 1 })
  })

  it('delays reconcile answers by the configured latency', async () => {
    await expectDelayed(google.fake, () => reconcile('sleep', { pageSize: 1 }))
  })
})
