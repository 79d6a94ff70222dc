/**
 * What the Health API tests share: a fake Google started for a file (or a describe block) with
 * googleapis Health and Fit clients pointed at it and a user of both APIs, the calls they make with
 * a user's token, paging to the end, and the error bodies Google answers with.
 */
import { afterAll, beforeAll, expect } from 'vitest'
import { fitness, type fitness_v1 } from 'googleapis/build/src/apis/fitness/index.js'
import { health, type health_v4 } from 'googleapis/build/src/apis/health/index.js'
import { ALL_HEALTH_READ_SCOPES, ALL_READ_SCOPES, FakeGoogle, type FakeGoogleStats, type FakeUser } from '../src/index.js'

export const MINUTE = 60_000
export const HOUR = 3_600_000
export const DAY = 86_400_000
/** The fake's clock, unless a test runs one of its own. */
export const NOW = Date.UTC(2026, 2, 20, 12)
/** Every Fit and every Health read scope. */
export const BOTH_APIS = [...ALL_READ_SCOPES, ...ALL_HEALTH_READ_SCOPES]

export const LIST_METHOD = 'google.devicesandservices.health.v4.DataPointsService.ListDataPoints'
export const RECONCILE_METHOD = 'google.devicesandservices.health.v4.DataPointsService.ReconcileDataPoints'

export type ListParams = Omit<health_v4.Params$Resource$Users$Datatypes$Datapoints$List, 'parent'>
export type ReconcileParams = Omit<health_v4.Params$Resource$Users$Datatypes$Datapoints$Reconcile, 'parent'>

/** null sends no Authorization header at all. */
export const options = (token: string | null): { headers: Record<string, string>; retry: boolean } => ({
  headers: token === null ? {} : { Authorization: `Bearer ${token}` },
  retry: false,
})

export const iso = (ms: number): string => new Date(ms).toISOString()

/** Every page of a paged call, followed to the end: `page` fetches the one a token (none for the first) continues to. */
export async function followPages<P extends { nextPageToken?: string | null }>(page: (pageToken: string | undefined) => Promise<P>): Promise<P[]> {
  const pages: P[] = []
  let pageToken: string | undefined
  do {
    const data = await page(pageToken)
    pages.push(data)
    pageToken = data.nextPageToken ?? undefined
    if (pages.length > 1000) throw new Error('endless paging')
  } while (pageToken !== undefined)
  return pages
}

/** A pageToken field, left out for the first page. */
export const continuing = (pageToken: string | undefined): { pageToken?: string } => (pageToken === undefined ? {} : { pageToken })

/** What a googleapis call resolves to, as far as the tests read it. */
type Answer<T> = Promise<{ status: number; data: T }>

/** The fake's counters, and the successful data requests of the fixture's user. */
export type Counts = Record<Exclude<keyof FakeGoogleStats, 'aggregateRequestsByUser'> | 'ofUser', number>

/**
 * A fake Google and googleapis clients pointed at it, with the fixture's user and their access
 * token. The calls default to that token; null sends none.
 */
export interface FakeGoogleFixture {
  readonly fake: FakeGoogle
  readonly fitApi: fitness_v1.Fitness
  readonly user: FakeUser
  readonly token: string
  /** A fresh access token for a user of this fake, from its token endpoint. */
  accessToken(user: FakeUser): Promise<string>
  list(dataType: string, params: ListParams, token?: string | null): Answer<health_v4.Schema$ListDataPointsResponse>
  reconcile(dataType: string, params: ReconcileParams, token?: string | null): Answer<health_v4.Schema$ReconcileDataPointsResponse>
  listAll(dataType: string, params: ListParams, token?: string): Promise<health_v4.Schema$ListDataPointsResponse[]>
  reconcileAll(dataType: string, params: ReconcileParams, token?: string): Promise<health_v4.Schema$ReconcileDataPointsResponse[]>
  rollUp(dataType: string, requestBody: health_v4.Schema$RollUpDataPointsRequest, token?: string | null): Answer<health_v4.Schema$RollUpDataPointsResponse>
  dailyRollUp(
    dataType: string,
    requestBody: health_v4.Schema$DailyRollUpDataPointsRequest,
    token?: string | null,
  ): Answer<health_v4.Schema$DailyRollUpDataPointsResponse>
  /** Fit's dataset:aggregate of one raw type over [startMs, endMs) in buckets of bucketMs. */
  fitAggregate(dataTypeName: string, startMs: number, endMs: number, bucketMs: number, token?: string): Promise<fitness_v1.Schema$AggregateResponse>
  /** How far each count has grown since the fake's stats read `before`. */
  countsSince(before: FakeGoogleStats): Counts
}

interface Started {
  readonly fake: FakeGoogle
  readonly healthApi: health_v4.Health
  readonly fitApi: fitness_v1.Fitness
  readonly user?: FakeUser
  readonly token?: string
}

/**
 * A fake Google for the tests of a file (or of the describe block that calls this): started before
 * them with its clock reading now() and, given a seed, a user of both APIs added and their access
 * token fetched; closed after them. The fields are there once this beforeAll has run, before those
 * the caller registers after it.
 */
export function useFakeGoogle({ now = () => NOW, seed }: { now?: () => number; seed?: string } = {}): FakeGoogleFixture {
  let started: Started | undefined
  const get = (): Started => {
    if (started === undefined) throw new Error('the fake Google starts in beforeAll')
    return started
  }
  const dataPoints = () => get().healthApi.users.dataTypes.dataPoints
  const parent = (dataType: string) => `users/me/dataTypes/${dataType}`
  beforeAll(async () => {
    const fake = await FakeGoogle.start({ now })
    const apis = { fake, healthApi: health({ version: 'v4', rootUrl: fake.rootUrl }), fitApi: fitness({ version: 'v1', rootUrl: fake.rootUrl }) }
    if (seed === undefined) {
      started = apis
    } else {
      const user = fake.addUser({ seed, scopes: BOTH_APIS })
      started = { ...apis, user, token: await fake.accessTokenFor(user) }
    }
  })
  afterAll(async () => {
    await started?.fake.close()
  })

  const fixture: FakeGoogleFixture = {
    get fake(): FakeGoogle {
      return get().fake
    },
    get fitApi(): fitness_v1.Fitness {
      return get().fitApi
    },
    get user(): FakeUser {
      const { user } = get()
      if (user === undefined) throw new Error('the fixture was given no seed, so has no user')
      return user
    },
    get token(): string {
      const { token } = get()
      if (token === undefined) throw new Error('the fixture was given no seed, so has no token')
      return token
    },
    accessToken: (user: FakeUser) => get().fake.accessTokenFor(user),
    list: (dataType: string, params: ListParams, token: string | null = fixture.token) =>
      dataPoints().list({ parent: parent(dataType), ...params }, options(token)),
    reconcile: (dataType: string, params: ReconcileParams, token: string | null = fixture.token) =>
      dataPoints().reconcile({ parent: parent(dataType), ...params }, options(token)),
    listAll: (dataType: string, params: ListParams, token: string = fixture.token) =>
      followPages(async (pageToken) => (await fixture.list(dataType, { ...params, ...continuing(pageToken) }, token)).data),
    reconcileAll: (dataType: string, params: ReconcileParams, token: string = fixture.token) =>
      followPages(async (pageToken) => (await fixture.reconcile(dataType, { ...params, ...continuing(pageToken) }, token)).data),
    rollUp: (dataType: string, requestBody: health_v4.Schema$RollUpDataPointsRequest, token: string | null = fixture.token) =>
      dataPoints().rollUp({ parent: parent(dataType), requestBody }, options(token)),
    dailyRollUp: (dataType: string, requestBody: health_v4.Schema$DailyRollUpDataPointsRequest, token: string | null = fixture.token) =>
      dataPoints().dailyRollUp({ parent: parent(dataType), requestBody }, options(token)),
    fitAggregate: async (dataTypeName: string, startMs: number, endMs: number, bucketMs: number, token: string = fixture.token) =>
      (
        await get().fitApi.users.dataset.aggregate(
          {
            userId: 'me',
            requestBody: {
              aggregateBy: [{ dataTypeName }],
              bucketByTime: { durationMillis: String(bucketMs) },
              startTimeMillis: String(startMs),
              endTimeMillis: String(endMs),
            },
          },
          options(token),
        )
      ).data,
    countsSince: (before: FakeGoogleStats) => {
      const after = get().fake.stats
      const ofUser = (stats: FakeGoogleStats) => stats.aggregateRequestsByUser[fixture.user.googleId] ?? 0
      const grown = Object.keys(after).flatMap((key) => {
        const counter = key as keyof FakeGoogleStats
        return counter === 'aggregateRequestsByUser' ? [] : [[counter, after[counter] - before[counter]]]
      })
      return { ...Object.fromEntries(grown), ofUser: ofUser(after) - ofUser(before) } as Counts
    },
  }
  return fixture
}

// ---------------------------------------------------------------------------------------------
// Refusals

export interface HealthFailure {
  status: number
  headers: Headers
  error: health_v4.Schema$Status & { status: string }
}

/** The error body a rejected googleapis call carries, with its status and headers. */
export async function failure(call: Promise<unknown>): Promise<HealthFailure> {
  try {
    await call
  } catch (err) {
    const response = (err as { response: { status: number; headers: Headers; data: { error: HealthFailure['error'] } } }).response
    return { status: response.status, headers: response.headers, error: response.data.error }
  }
  throw new Error('the call succeeded')
}

/** The 403 error of a token without the data type's read scope; method, when given, names the RPC refused. */
export const scopeInsufficient = (method?: string) => ({
  code: 403,
  status: 'PERMISSION_DENIED',
  message: 'Request had insufficient authentication scopes.',
  details: [
    {
      '@type': 'type.googleapis.com/google.rpc.ErrorInfo',
      reason: 'ACCESS_TOKEN_SCOPE_INSUFFICIENT',
      metadata: { service: 'health.googleapis.com', ...(method === undefined ? {} : { method }) },
    },
  ],
})

/** The details of a 400 that names the request field at fault. */
export const badRequestDetails = (field: string, description: string | null | undefined) => [
  { '@type': 'type.googleapis.com/google.rpc.BadRequest', fieldViolations: [{ field, description }] },
]

/** An injected 503 answers the call in the Health error shape. */
export async function expectUnavailable(call: Promise<unknown>): Promise<void> {
  const unavailable = await failure(call)
  expect(unavailable.status).toBe(503)
  expect(unavailable.error).toMatchObject({ code: 503, status: 'UNAVAILABLE', message: 'The service is currently unavailable.' })
}

/** An injected 429 answers the call in the Health error shape, naming the RPC method, with Retry-After. */
export async function expectRateLimited(call: Promise<unknown>, retryAfter: string, method: string): Promise<void> {
  const limited = await failure(call)
  expect(limited.status).toBe(429)
  expect(limited.headers.get('retry-after')).toBe(retryAfter)
  expect(limited.error).toMatchObject({ status: 'RESOURCE_EXHAUSTED', details: [{ reason: 'RATE_LIMIT_EXCEEDED', metadata: { method } }] })
}

/** Refuses the call's filter with 400 INVALID_ARGUMENT, the message starting "Invalid filter: " and matching message. */
export async function expectInvalidFilter(call: Promise<unknown>, filter: string, message: RegExp): Promise<HealthFailure> {
  const refused = await failure(call)
  expect(refused.status, filter).toBe(400)
  expect(refused.error.status).toBe('INVALID_ARGUMENT')
  expect(refused.error.message, filter).toMatch(/^Invalid filter: /)
  expect(refused.error.message, filter).toMatch(message)
  return refused
}

/** The call answers no sooner than the latency set on the fake. */
export async function expectDelayed(fake: FakeGoogle, call: () => Promise<unknown>): Promise<void> {
  fake.setLatency(150)
  try {
    const started = Date.now()
    await call()
    expect(Date.now() - started).toBeGreaterThanOrEqual(140)
  } finally {
    fake.setLatency(0)
  }
}

/**
 * Checks that a session list pages latest first through `expected` (already in the list's order)
 * exactly once at each of `pageSizes`, and that a page size left out, 0 or above 25 is served 25
 * to a page. `listAll` follows every page of a listing; `read` turns its pages into sessions.
 */
export async function expectSessionPaging<P extends { dataPoints?: { name?: string | null }[] }, S extends { startMs: number }>(
  listAll: (params: ListParams) => Promise<P[]>,
  filter: string,
  expected: readonly S[],
  read: (pages: P[]) => S[],
  pageSizes: readonly number[],
): Promise<void> {
  const total = expected.length
  for (let i = 1; i < total; i++) expect(expected[i]!.startMs).toBeLessThan(expected[i - 1]!.startMs)
  for (const pageSize of pageSizes) {
    const pages = await listAll({ filter, pageSize })
    expect(pages.map((p) => p.dataPoints?.length ?? 0)).toEqual(
      Array.from({ length: Math.ceil(total / pageSize) }, (_, i) => Math.min(pageSize, total - i * pageSize)),
    )
    expect(read(pages)).toEqual(expected)
  }
  for (const pageSize of [undefined, 0, 26, 10_000]) {
    const pages = await listAll({ filter, ...(pageSize === undefined ? {} : { pageSize }) })
    expect(pages.map((p) => p.dataPoints?.length)).toEqual(Array.from({ length: Math.ceil(total / 25) }, (_, i) => Math.min(25, total - i * 25)))
    expect(read(pages)).toEqual(expected)
  }
  const names = (await listAll({ filter })).flatMap((p) => (p.dataPoints ?? []).map((d) => d.name))
  expect(new Set(names).size).toBe(total)
}
