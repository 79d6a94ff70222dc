/**
 * An in-process stand-in for Google's OAuth token endpoint, the Fitness REST API and the Health
 * API's roll-ups, sleep and exercise sessions and height and SpO2 samples (listed or reconciled), faithful
 * enough that the real googleapis client cannot tell the difference, plus controls (users, faults,
 * latency, clock, counters) that tests and the benchmark need and Google does not offer.
 */

import { randomBytes } from 'node:crypto'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { buildAggregateResponse, parseAggregateRequest, type DataArrival } from './aggregate.js'
import { buildExerciseListResponse, parseExerciseListRequest } from './exercise.js'
import { ALL_READ_SCOPES, FIT_TYPES, FITNESS_SCOPE_PREFIX, GMS_PACKAGE, mergedDataSourceId, type FitTypeSpec, type ScopeGroup } from './catalogue.js'
import {
  badRequest,
  FitApiError,
  HealthApiError,
  healthBadRequest,
  healthFault,
  healthScopeInsufficient,
  healthUnauthenticated,
  OAuthError,
  unauthenticated,
  type CredentialProblem,
  type HealthRpc,
} from './errors.js'
import {
  canReadHealth,
  HEALTH_DAILY_TYPES,
  HEALTH_SAMPLE_TYPES,
  HEALTH_SESSION_TYPES,
  HEALTH_TYPES,
  healthDailyType,
  healthReadScope,
  healthSampleType,
  healthSessionType,
  healthType,
  type HealthDailyTypeSpec,
  type HealthScopeGroup,
} from './health-catalogue.js'
import { buildDailyListResponse, parseDailyListRequest } from './daily.js'
import { BodyTooLargeError, MAX_BODY_BYTES, readBody, send, type Reply } from './http.js'
import type { ListMethod } from './list.js'
import { ConsentScreen } from './oauth.js'
import { buildDailyRollUpResponse, buildRollUpResponse, parseDailyRollUpRequest, parseRollUpRequest, type RollUpContext } from './rollup.js'
import { buildSampleListResponse, parseSampleListRequest } from './samples.js'
import { buildSettingsResponse } from './settings.js'
import { buildListResponse, parseListRequest, type HealthSleepType } from './sleep.js'
import { googleIdForSeed, rawDataSourceId, userProfile, type RawSample } from './synthetic.js'
import { isValidTimeZone } from './time-zones.js'

export interface FakeGoogleOptions {
  /** Interface to listen on; default 127.0.0.1. */
  host?: string
  /** 0 (default) picks a free port. */
  port?: number
  /** The OAuth client the fake accepts; default 'fitstream-dev-client'. */
  clientId?: string
  /** Default 'fitstream-dev-secret'. */
  clientSecret?: string
  /** Lifetime of issued access tokens; default 3600 (expires_in reports one second less, like Google). */
  accessTokenTtlSeconds?: number
  /** Delay before every Fit and Health API answer (not the token endpoint); default 0. */
  latencyMs?: number
  /** The server's clock: token expiry and "data exists only before now"; default Date.now. */
  now?: () => number
  /**
   * How long Google takes to work out a night's sleep stages once the night has reached it: until
   * then the Health API lists the session without stages and without `metadata.processed`
   * (proto3 JSON leaves false out); default 0 (staged at once).
   */
  sleepStagingMs?: number
}

export interface AddUserOptions {
  /** Determines all of the user's data and their googleId; default 'user-1', 'user-2', ... */
  seed?: string
  /** Granted scopes; default every Fit read scope (Health scopes, e.g. ALL_HEALTH_READ_SCOPES, only when given). */
  scopes?: string[]
  /** Default: a fresh random Google-looking refresh token. */
  refreshToken?: string
  /** The IANA time zone of the user's Health profile (dailyRollUp's civil days, sleep's UTC offsets); default 'UTC'. */
  timeZone?: string
}

export interface FakeUser {
  googleId: string
  seed: string
  refreshToken: string
  scopes: string[]
  timeZone: string
}

/** 'rollUp' covers both Health roll-up methods (rollUp and dailyRollUp); 'list' both dataPoints.list and dataPoints.reconcile. */
export type FaultRoute = 'token' | 'aggregate' | 'dataSources' | 'rollUp' | 'list' | 'settings' | 'any'

export interface FaultSpec {
  route: FaultRoute
  status: number
  /** How many matching requests fail; default 1. */
  times?: number
  /** Adds a Retry-After header. */
  retryAfterSeconds?: number
  /** Replaces the default body (Google's error shape for the route) verbatim; with status 200, a corrupted answer. */
  body?: unknown
  /** Sent as the body byte for byte instead of any JSON (overrides `body`): an answer cut off in transit, or not JSON at all. */
  rawBody?: string
  /** The errors[].reason (Fitness), the ErrorInfo reason (Health) or `error` (token endpoint) of the default body. */
  reason?: string
}

export interface FakeGoogleStats {
  /** Every request to /token, whatever the outcome. */
  tokenRequests: number
  /** Access tokens handed out. */
  tokensIssued: number
  tokenErrors: number
  /** Every request to dataset:aggregate, whatever the outcome. */
  aggregateRequests: number
  aggregateErrors: number
  dataSourcesRequests: number
  /** Every Health roll-up request (rollUp and dailyRollUp), whatever the outcome. */
  rollUpRequests: number
  rollUpErrors: number
  /** Every Health dataPoints.list and dataPoints.reconcile request (sleep and exercise sessions, height and SpO2 samples), whatever the outcome. */
  listRequests: number
  listErrors: number
  /** The dataPoints.reconcile requests among listRequests. */
  reconcileRequests: number
  /** Every Health users.getSettings request, whatever the outcome. */
  settingsRequests: number
  /** Fit and Health requests rejected with 401. */
  unauthorized: number
  /** Requests answered by an injected fault. */
  faultsServed: number
  bucketsServed: number
  pointsServed: number
  /** Fit and Health requests being handled right now (including latency). */
  inFlight: number
  maxInFlight: number
  /** Successful data requests (Fit aggregates, Health roll-ups and lists) per googleId. */
  aggregateRequestsByUser: Record<string, number>
}

interface UserState {
  readonly googleId: string
  readonly seed: string
  readonly scopes: readonly string[]
  readonly timeZone: string
}

interface AccessGrant {
  readonly googleId: string
  readonly refreshToken: string
  readonly scopes: readonly string[]
  readonly expiresAtMs: number
}

interface ActiveFault {
  readonly spec: FaultSpec
  remaining: number
}

type Route = 'token' | 'aggregate' | 'dataSources' | 'rollUp' | 'list' | 'settings'

const FAULT_ROUTES: readonly FaultRoute[] = ['token', 'aggregate', 'dataSources', 'rollUp', 'list', 'settings', 'any']

const emptyStats = (): FakeGoogleStats => ({
  tokenRequests: 0,
  tokensIssued: 0,
  tokenErrors: 0,
  aggregateRequests: 0,
  aggregateErrors: 0,
  dataSourcesRequests: 0,
  rollUpRequests: 0,
  rollUpErrors: 0,
  listRequests: 0,
  listErrors: 0,
  reconcileRequests: 0,
  settingsRequests: 0,
  unauthorized: 0,
  faultsServed: 0,
  bucketsServed: 0,
  pointsServed: 0,
  inFlight: 0,
  maxInFlight: 0,
  aggregateRequestsByUser: {},
})

function groupOf(scope: string): string | undefined {
  if (!scope.startsWith(FITNESS_SCOPE_PREFIX)) return undefined
  const rest = scope.slice(FITNESS_SCOPE_PREFIX.length)
  const m = /^(.+)\.(read|write)$/.exec(rest)
  return m?.[1]
}

/** Write scopes imply read, as with Google. */
function canRead(scopes: readonly string[], group: ScopeGroup): boolean {
  return scopes.some((s) => groupOf(s) === group)
}

function fitFaultBody(status: number, reason: string | undefined): unknown {
  return new FitApiError(status, defaultFaultMessage(status, reason ?? ''), reason === undefined ? {} : { reason }).toBody()
}

function tokenFaultBody(status: number, reason: string | undefined): unknown {
  return { error: reason ?? defaultTokenFaultError(status), error_description: `Injected fault (${status})` }
}

function defaultFaultMessage(status: number, reason: string): string {
  if (status === 429 || reason === 'rateLimitExceeded') {
    return "Quota exceeded for quota metric 'Read requests' and limit 'Read requests per minute per user' of service 'fitness.googleapis.com'."
  }
  if (status === 401) return 'Request had invalid authentication credentials.'
  if (status === 403) return 'The caller does not have permission'
  if (status === 503) return 'The service is currently unavailable.'
  if (status >= 500) return 'Internal error encountered.'
  return 'Request failed (injected fault).'
}

function defaultTokenFaultError(status: number): string {
  if (status === 400) return 'invalid_request'
  if (status === 401) return 'invalid_client'
  if (status === 429) return 'rate_limit_exceeded'
  if (status >= 500) return 'internal_failure'
  return 'server_error'
}

const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)

export class FakeGoogle {
  readonly url: string
  readonly rootUrl: string
  readonly tokenUrl: string
  /** The consent screen (accounts.google.com/o/oauth2/v2/auth). */
  readonly authorizeUrl: string
  readonly revokeUrl: string
  readonly clientId: string
  readonly clientSecret: string

  private readonly server: Server
  private readonly now: () => number
  private readonly ttlSeconds: number
  private latencyMs: number
  private sleepStagingMs: number
  private readonly users = new Map<string, UserState>()
  private readonly refreshTokens = new Map<string, string>() // refresh token -> googleId
  private readonly accessTokens = new Map<string, AccessGrant>()
  private faults: ActiveFault[] = []
  private readonly errorRates: { route: Route | 'any'; status: number; rate: number }[] = []
  private readonly uploadDelays = new Map<string, number>() // googleId or '*' -> ms
  private readonly exerciseTypes = new Map<string, readonly string[]>() // googleId -> types in turn
  private readonly sleepTypes = new Map<string, HealthSleepType>() // googleId -> how their nights are recorded
  private readonly lateSamples = new Map<string, RawSample[]>() // `${googleId}|${rawType}` -> samples
  private counters = emptyStats()
  private nextSeed = 1
  private readonly sleepers = new Set<{ timer: NodeJS.Timeout; resolve: () => void }>()
  private closing: Promise<void> | undefined
  private readonly consent: ConsentScreen

  private constructor(server: Server, url: string, opts: FakeGoogleOptions) {
    this.server = server
    this.url = url
    this.rootUrl = `${url}/`
    this.tokenUrl = `${url}/token`
    this.authorizeUrl = `${url}/o/oauth2/v2/auth`
    this.revokeUrl = `${url}/revoke`
    this.clientId = opts.clientId ?? 'fitstream-dev-client'
    this.clientSecret = opts.clientSecret ?? 'fitstream-dev-secret'
    this.ttlSeconds = opts.accessTokenTtlSeconds ?? 3600
    this.latencyMs = opts.latencyMs ?? 0
    this.sleepStagingMs = opts.sleepStagingMs ?? 0
    this.now = opts.now ?? Date.now
    this.consent = new ConsentScreen({
      clientId: this.clientId,
      now: () => this.now(),
      hasAccount: (seed) => this.users.has(googleIdForSeed(seed)),
      grant: (seed, scopes, merge) => this.grantConsent(seed, scopes, merge),
      issueAccessToken: (googleId, refreshToken) => this.issueAccessToken(this.users.get(googleId)!, refreshToken),
    })
    server.on('request', (req: IncomingMessage, res: ServerResponse) => this.handle(req, res))
  }

  static async start(opts: FakeGoogleOptions = {}): Promise<FakeGoogle> {
    if (opts.accessTokenTtlSeconds !== undefined && !(opts.accessTokenTtlSeconds > 0)) {
      throw new RangeError('accessTokenTtlSeconds must be positive')
    }
    if (opts.latencyMs !== undefined && !(Number.isFinite(opts.latencyMs) && opts.latencyMs >= 0)) {
      throw new RangeError('latencyMs must be a non-negative number')
    }
    const host = opts.host ?? '127.0.0.1'
    const server = createServer()
    // Malformed HTTP must never take the process down.
    server.on('clientError', (_err, socket) => {
      if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n')
      else socket.destroy()
    })
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(opts.port ?? 0, host, () => {
        server.off('error', reject)
        resolve()
      })
    })
    const { port } = server.address() as AddressInfo
    const shownHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host
    return new FakeGoogle(server, `http://${shownHost}:${port}`, opts)
  }

  // ------------------------------------------------------------------------------------------
  // Controls

  addUser(opts: AddUserOptions = {}): FakeUser {
    let seed = opts.seed
    if (seed === undefined) {
      do seed = `user-${this.nextSeed++}`
      while (this.users.has(googleIdForSeed(seed)))
    }
    if (typeof seed !== 'string' || seed.length === 0) throw new TypeError('seed must be a non-empty string')
    const scopes = opts.scopes ?? [...ALL_READ_SCOPES]
    if (!Array.isArray(scopes) || !scopes.every((s) => typeof s === 'string' && s.length > 0 && !/\s/.test(s))) {
      throw new TypeError('scopes must be an array of scope strings')
    }
    const googleId = googleIdForSeed(seed)
    if (this.users.has(googleId)) throw new Error(`A user with seed ${JSON.stringify(seed)} already exists`)
    const refreshToken = opts.refreshToken ?? `1//09${randomBytes(60).toString('base64url')}`
    if (typeof refreshToken !== 'string' || refreshToken.length === 0) throw new TypeError('refreshToken must be a non-empty string')
    if (this.refreshTokens.has(refreshToken)) throw new Error('That refresh token is already in use')
    const timeZone = opts.timeZone ?? 'UTC'
    if (typeof timeZone !== 'string' || !isValidTimeZone(timeZone)) throw new TypeError('timeZone must be an IANA time zone')
    this.users.set(googleId, { googleId, seed, scopes: [...scopes], timeZone })
    this.refreshTokens.set(refreshToken, googleId)
    return { googleId, seed, refreshToken, scopes: [...scopes], timeZone }
  }

  /**
   * A fresh access token for the user, got as a client gets one: a refresh_token grant at the token
   * endpoint, over HTTP, so faults, latency and stats apply to it as to any client's.
   */
  async accessTokenFor(user: Pick<FakeUser, 'refreshToken'>): Promise<string> {
    const body = new URLSearchParams({
      grant_type: 'refresh_token',
      refresh_token: user.refreshToken,
      client_id: this.clientId,
      client_secret: this.clientSecret,
    })
    const response = await fetch(this.tokenUrl, { method: 'POST', body })
    return ((await response.json()) as { access_token: string }).access_token
  }

  /**
   * The user moves: their settings name this IANA zone, and dailyRollUp reads their civil days, and
   * sessions and samples their offsets, in it from now on.
   */
  setUserTimeZone(googleId: string, timeZone: string): void {
    const user = this.users.get(googleId)
    if (user === undefined) throw new Error(`no user ${googleId}`)
    if (typeof timeZone !== 'string' || !isValidTimeZone(timeZone)) throw new TypeError('timeZone must be an IANA time zone')
    this.users.set(googleId, { ...user, timeZone })
  }

  /** The user's refresh token stops working, and so do access tokens minted from it (as at Google). */
  revokeRefreshToken(refreshToken: string): void {
    this.refreshTokens.delete(refreshToken)
    for (const [token, grant] of this.accessTokens) {
      if (grant.refreshToken === refreshToken) this.accessTokens.delete(token)
    }
  }

  /** Invalidates access tokens already issued (to one user, or everyone); refreshing still works. */
  expireAccessTokens(googleId?: string): void {
    for (const [token, grant] of this.accessTokens) {
      if (googleId === undefined || grant.googleId === googleId) this.accessTokens.delete(token)
    }
  }

  /** The next `times` requests matching the route fail with this status (FIFO across faults). */
  injectFault(fault: FaultSpec): void {
    if (!isPlainObject(fault)) throw new TypeError('fault must be an object')
    if (!FAULT_ROUTES.includes(fault.route)) throw new TypeError(`route must be one of ${FAULT_ROUTES.join(', ')}`)
    // A 200 with a replacement body is a corrupted answer (wrong types, missing fields, NaN...).
    if (fault.rawBody !== undefined && typeof fault.rawBody !== 'string') throw new TypeError('rawBody must be a string')
    const corrupted = fault.status === 200 && (fault.body !== undefined || fault.rawBody !== undefined)
    if (!corrupted && (!Number.isInteger(fault.status) || fault.status < 400 || fault.status > 599)) {
      throw new TypeError('status must be an integer HTTP error status (400-599), or 200 with a body')
    }
    const times = fault.times ?? 1
    if (!Number.isInteger(times) || times < 1) throw new TypeError('times must be a positive integer')
    if (fault.retryAfterSeconds !== undefined && !(Number.isFinite(fault.retryAfterSeconds) && fault.retryAfterSeconds >= 0)) {
      throw new TypeError('retryAfterSeconds must be a non-negative number')
    }
    if (fault.reason !== undefined && typeof fault.reason !== 'string') throw new TypeError('reason must be a string')
    this.faults.push({ spec: { ...fault }, remaining: times })
  }

  clearFaults(): void {
    this.faults = []
    this.errorRates.length = 0
  }

  /** A fraction of the matching requests fail with `status`, at random (for soak runs and benchmarks). */
  setErrorRate(route: Route | 'any', status: number, rate: number): void {
    if (!(rate >= 0 && rate <= 1)) throw new TypeError('rate must be between 0 and 1')
    if (!Number.isInteger(status) || status < 400 || status > 599) throw new TypeError('status must be an HTTP error status')
    const i = this.errorRates.findIndex((r) => r.route === route && r.status === status)
    if (i !== -1) this.errorRates.splice(i, 1)
    if (rate > 0) this.errorRates.push({ route, status, rate })
  }

  /** Readings reach Google `ms` after they end, for one user or (without googleId) everyone. */
  setUploadDelay(ms: number, googleId?: string): void {
    if (!(Number.isFinite(ms) && ms >= 0)) throw new TypeError('upload delay must be a non-negative number of ms')
    this.uploadDelays.set(googleId ?? '*', ms)
  }

  /**
   * Readings that arrive after the fact: they are added to the user's data of that raw type, so a
   * bucket read before changes when read again (values follow the raw type's fields, e.g. [steps]).
   */
  addLateSamples(googleId: string, dataTypeName: string, samples: readonly RawSample[]): void {
    if (!this.users.has(googleId)) throw new Error(`no user ${googleId}`)
    const key = `${googleId}|${dataTypeName}`
    this.lateSamples.set(key, [...(this.lateSamples.get(key) ?? []), ...samples])
  }

  setLatency(ms: number): void {
    if (!(Number.isFinite(ms) && ms >= 0)) throw new TypeError('latency must be a non-negative number of ms')
    this.latencyMs = ms
  }
  /**
   * The exercise types a user's workouts (their runs) are recorded as, taking turns by the hour each
   * starts in: Google's names (HEALTH_EXERCISE_TYPES) or any other, as Google adds types. Running
   * until set.
   */
  setExerciseTypes(googleId: string, types: readonly string[]): void {
    if (types.length === 0 || types.some((type) => typeof type !== 'string' || type === '')) throw new RangeError('exercise types must be non-empty names')
    this.exerciseTypes.set(googleId, [...types])
  }

  /** How a user's nights are recorded: with stages (the default), or as classic sleep (asleep, restless, awake). */
  setSleepType(googleId: string, sleepType: HealthSleepType): void {
    if (sleepType !== 'STAGES' && sleepType !== 'CLASSIC') throw new RangeError('sleepType must be STAGES or CLASSIC')
    this.sleepTypes.set(googleId, sleepType)
  }

  /** How long a night stays listed as still being staged once it has reached Google (see FakeGoogleOptions.sleepStagingMs). */
  setSleepStaging(ms: number): void {
    if (!(Number.isFinite(ms) && ms >= 0)) throw new RangeError('sleepStagingMs must be a non-negative number')
    this.sleepStagingMs = ms
  }

  /** A snapshot; read it again to see later requests. */
  get stats(): FakeGoogleStats {
    return { ...this.counters, aggregateRequestsByUser: { ...this.counters.aggregateRequestsByUser } }
  }

  resetStats(): void {
    const { inFlight } = this.counters
    this.counters = emptyStats()
    this.counters.inFlight = inFlight
    this.counters.maxInFlight = inFlight
  }

  listUsers(): FakeUser[] {
    const tokens = new Map<string, string>()
    for (const [token, googleId] of this.refreshTokens) if (!tokens.has(googleId)) tokens.set(googleId, token)
    return [...this.users.values()].map((u) => ({
      googleId: u.googleId,
      seed: u.seed,
      refreshToken: tokens.get(u.googleId) ?? '',
      scopes: [...u.scopes],
      timeZone: u.timeZone,
    }))
  }

  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      for (const s of this.sleepers) {
        clearTimeout(s.timer)
        s.resolve()
      }
      this.sleepers.clear()
      this.server.close(() => resolve())
      // Let replies released from their latency wait flush before dropping keep-alive sockets.
      setImmediate(() => this.server.closeAllConnections())
    })
    return this.closing
  }

  // ------------------------------------------------------------------------------------------
  // Routing

  private handle(req: IncomingMessage, res: ServerResponse): void {
    this.route(req, res).catch((err: unknown) => {
      if (res.headersSent) {
        res.destroy()
        return
      }
      const message = `Internal error in fake: ${err instanceof Error ? err.message : String(err)}`
      const health = (req.url ?? '').startsWith('/v4/')
      send(res, { status: 500, body: health ? new HealthApiError(500, message).toBody() : new FitApiError(500, message).toBody(), pretty: true })
    })
  }

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let url: URL
    let path: string
    try {
      url = new URL(req.url ?? '/', 'http://fake-google.invalid')
      path = decodeURIComponent(url.pathname)
    } catch {
      send(res, { status: 400, body: badRequest('Malformed request URL.').toBody(), pretty: true })
      return
    }
    if (path.startsWith('/__fake/')) return this.admin(req, res, path.slice('/__fake/'.length))
    if (path === '/token') return send(res, await this.token(req))
    if (path === '/revoke') return send(res, await this.revoke(req, url))
    if (path === '/o/oauth2/v2/auth') return this.consent.authorize(req, res, url)
    if (path === '/oauth2/v3/certs') return send(res, this.consent.certs())
    const fit = /^\/fitness\/v1\/users\/([^/]+)\/(dataset:aggregate|dataSources)(?:\/(.+))?$/.exec(path)
    if (fit !== null && !(fit[2] === 'dataset:aggregate' && fit[3] !== undefined)) {
      const route: Route = fit[2] === 'dataset:aggregate' ? 'aggregate' : 'dataSources'
      return this.serveApi(res, url, route, () => this.fitness(req, url, route, fit[1] ?? '', fit[3]))
    }
    const health = /^\/v4\/users\/([^/]+)\/dataTypes\/([^/]+)\/dataPoints:(rollUp|dailyRollUp)$/.exec(path)
    if (health !== null) {
      const rpc: HealthRpc = health[3] === 'rollUp' ? 'RollUpDataPoints' : 'DailyRollUpDataPoints'
      return this.serveApi(res, url, 'rollUp', () => this.rollUp(req, url, rpc, health[1] ?? '', health[2] ?? ''))
    }
    const settings = /^\/v4\/users\/([^/]+)\/settings$/.exec(path)
    if (settings !== null) return this.serveApi(res, url, 'settings', () => Promise.resolve(this.settings(req, url, settings[1] ?? '')))
    const list = /^\/v4\/users\/([^/]+)\/dataTypes\/([^/]+)\/dataPoints(:reconcile)?$/.exec(path)
    if (list !== null) {
      const method: ListMethod = list[3] === undefined ? 'list' : 'reconcile'
      return this.serveApi(res, url, 'list', () => this.list(req, url, method, list[1] ?? '', list[2] ?? ''))
    }
    const notFound = `The requested URL ${path} was not found on this server.`
    const body = path.startsWith('/v4/') ? new HealthApiError(404, notFound).toBody() : new FitApiError(404, notFound).toBody()
    send(res, { status: 404, body, pretty: true })
  }

  /** Counts, delays and sends a Fit or Health API answer. */
  private async serveApi(res: ServerResponse, url: URL, route: Route, answer: () => Promise<Reply>): Promise<void> {
    this.counters.inFlight++
    this.counters.maxInFlight = Math.max(this.counters.maxInFlight, this.counters.inFlight)
    try {
      const reply = await answer()
      reply.pretty = url.searchParams.get('prettyPrint') !== 'false'
      if (reply.status >= 400 && route === 'aggregate') this.counters.aggregateErrors++
      if (reply.status >= 400 && route === 'rollUp') this.counters.rollUpErrors++
      if (reply.status >= 400 && route === 'list') this.counters.listErrors++
      if (reply.status === 401) this.counters.unauthorized++
      await this.sleep(this.latencyMs)
      send(res, reply)
    } finally {
      this.counters.inFlight--
    }
  }

  private sleep(ms: number): Promise<void> {
    if (ms <= 0 || this.closing !== undefined) return Promise.resolve()
    return new Promise((resolve) => {
      const sleeper = {
        timer: setTimeout(() => {
          this.sleepers.delete(sleeper)
          resolve()
        }, ms),
        resolve,
      }
      this.sleepers.add(sleeper)
    })
  }

  private takeFault(route: Route): FaultSpec | undefined {
    const random = this.errorRates.find((r) => (r.route === route || r.route === 'any') && Math.random() < r.rate)
    if (random !== undefined) return { route, status: random.status }
    const i = this.faults.findIndex((f) => f.spec.route === route || f.spec.route === 'any')
    if (i < 0) return undefined
    const fault = this.faults[i] as ActiveFault
    fault.remaining--
    if (fault.remaining <= 0) this.faults.splice(i, 1)
    this.counters.faultsServed++
    return fault.spec
  }

  /** The fault's configured answer, or else `errorBody`: the route's own error dialect. */
  private faultReply(f: FaultSpec, errorBody: (status: number, reason: string | undefined) => unknown): Reply {
    const headers: Record<string, string> = {}
    if (f.retryAfterSeconds !== undefined) headers['retry-after'] = String(f.retryAfterSeconds)
    if (f.rawBody !== undefined) return { status: f.status, body: undefined, raw: f.rawBody, headers }
    if (f.body !== undefined) return { status: f.status, body: f.body, headers }
    return { status: f.status, body: errorBody(f.status, f.reason), headers }
  }

  // ------------------------------------------------------------------------------------------
  // OAuth

  private async token(req: IncomingMessage): Promise<Reply> {
    this.counters.tokenRequests++
    const reply = await this.tokenReply(req)
    if (reply.status >= 400) this.counters.tokenErrors++
    reply.headers = {
      'cache-control': 'no-cache, no-store, max-age=0, must-revalidate',
      pragma: 'no-cache',
      ...reply.headers,
    }
    return reply
  }

  private async tokenReply(req: IncomingMessage): Promise<Reply> {
    const fault = this.takeFault('token')
    if (fault !== undefined) return this.faultReply(fault, tokenFaultBody)
    if (req.method !== 'POST') {
      return {
        status: 405,
        body: { error: 'invalid_request', error_description: `Invalid request method: ${req.method ?? ''}` },
        headers: { allow: 'POST' },
      }
    }
    try {
      const form = await readForm(req)
      const grantType = form.get('grant_type')
      if (grantType === undefined) throw new OAuthError(400, 'invalid_request', 'Missing required parameter: grant_type')
      const client = clientCredentials(req, form)
      if (client.id === undefined) throw new OAuthError(400, 'invalid_request', 'Could not determine client ID from request.')
      if (client.id !== this.clientId || client.secret !== this.clientSecret) {
        throw new OAuthError(401, 'invalid_client', 'Unauthorized')
      }
      if (grantType === 'authorization_code') return this.consent.exchange(form, client.id)
      if (grantType !== 'refresh_token') throw new OAuthError(400, 'unsupported_grant_type', `Invalid grant_type: ${grantType}`)
      const refreshToken = form.get('refresh_token')
      if (refreshToken === undefined || refreshToken === '') {
        throw new OAuthError(400, 'invalid_request', 'Missing required parameter: refresh_token')
      }
      const googleId = this.refreshTokens.get(refreshToken)
      const user = googleId === undefined ? undefined : this.users.get(googleId)
      if (user === undefined) throw new OAuthError(400, 'invalid_grant', 'Token has been expired or revoked.')
      return { status: 200, body: this.issueAccessToken(user, refreshToken) }
    } catch (err) {
      if (err instanceof OAuthError) return { status: err.httpStatus, body: err.toBody() }
      if (err instanceof BodyTooLargeError) {
        return {
          status: 413,
          body: { error: 'invalid_request', error_description: err.message },
          headers: { connection: 'close' },
        }
      }
      throw err
    }
  }

  private issueAccessToken(user: UserState, refreshToken: string): Record<string, unknown> {
    if (this.accessTokens.size > 10_000) this.sweepAccessTokens()
    const accessToken = `ya29.${randomBytes(96).toString('base64url')}`
    this.accessTokens.set(accessToken, {
      googleId: user.googleId,
      refreshToken,
      scopes: user.scopes,
      expiresAtMs: this.now() + this.ttlSeconds * 1000,
    })
    this.counters.tokensIssued++
    return {
      access_token: accessToken,
      expires_in: Math.max(1, this.ttlSeconds - 1),
      scope: user.scopes.join(' '),
      token_type: 'Bearer',
    }
  }

  // A consent on the authorize page: a new account is created; an existing one gets a further refresh token.
  private grantConsent(seed: string, scopes: readonly string[], merge: boolean): { googleId: string; refreshToken: string } {
    const googleId = googleIdForSeed(seed)
    const existing = this.users.get(googleId)
    if (existing === undefined) return this.addUser({ seed, scopes: [...scopes] })
    const granted = merge ? [...new Set([...existing.scopes, ...scopes])] : [...scopes]
    this.users.set(googleId, { ...existing, scopes: granted })
    const refreshToken = `1//09${randomBytes(60).toString('base64url')}`
    this.refreshTokens.set(refreshToken, googleId)
    return { googleId, refreshToken }
  }

  private sweepAccessTokens(): void {
    const now = this.now()
    for (const [token, grant] of this.accessTokens) if (grant.expiresAtMs <= now) this.accessTokens.delete(token)
  }

  // Google's https://oauth2.googleapis.com/revoke: revoking either token ends the whole grant.
  private async revoke(req: IncomingMessage, url: URL): Promise<Reply> {
    if (req.method !== 'POST' && req.method !== 'GET') {
      return {
        status: 405,
        body: { error: 'invalid_request', error_description: 'Invalid request method' },
        headers: { allow: 'POST' },
      }
    }
    let token = url.searchParams.get('token') ?? undefined
    try {
      if (token === undefined) token = (await readForm(req)).get('token')
    } catch (err) {
      if (err instanceof OAuthError) return { status: err.httpStatus, body: err.toBody() }
      if (err instanceof BodyTooLargeError) return { status: 413, body: { error: 'invalid_request' }, headers: { connection: 'close' } }
      throw err
    }
    const refreshToken = token === undefined ? undefined : this.refreshTokens.has(token) ? token : this.accessTokens.get(token)?.refreshToken
    if (token === undefined || refreshToken === undefined) {
      return { status: 400, body: { error: 'invalid_token', error_description: 'Token expired or revoked' } }
    }
    this.revokeRefreshToken(refreshToken)
    return { status: 200, body: {} }
  }

  // ------------------------------------------------------------------------------------------
  // Fitness API

  private async fitness(req: IncomingMessage, url: URL, route: Route, userId: string, sourceId: string | undefined): Promise<Reply> {
    if (route === 'aggregate') this.counters.aggregateRequests++
    else this.counters.dataSourcesRequests++
    const fault = this.takeFault(route)
    if (fault !== undefined) return this.faultReply(fault, fitFaultBody)
    try {
      const expectedMethod = route === 'aggregate' ? 'POST' : 'GET'
      if (req.method !== expectedMethod) throw new FitApiError(404, 'Method not found.')
      const user = this.authenticate(req, url)
      if (userId !== 'me' && userId !== user.googleId) {
        throw new FitApiError(403, `Unable to access data for user ${userId}: only "me" is supported.`)
      }
      if (route === 'dataSources') return { status: 200, body: this.dataSources(user, url, sourceId) }

      const text = (await readBody(req)).toString('utf8')
      let body: unknown
      try {
        body = JSON.parse(text)
      } catch {
        throw badRequest(`Invalid JSON payload received. Unexpected token.\n${text.slice(0, 40)}\n^`, 'parseError')
      }
      const request = parseAggregateRequest(body, user.seed)
      for (const entry of request.entries) {
        if (!canRead(user.scopes, entry.type.scope)) {
          const id = entry.dataSourceId ?? mergedDataSourceId(entry.type)
          throw new FitApiError(403, `No permission to read data for this private data source: ${id}. Requires ${FITNESS_SCOPE_PREFIX}${entry.type.scope}.read`)
        }
      }
      const response = buildAggregateResponse(user.seed, request, this.now(), this.dataArrival(user.googleId))
      this.counters.bucketsServed += response.bucket.length
      for (const b of response.bucket) for (const d of b.dataset) this.counters.pointsServed += d.point.length
      this.countSuccess(user.googleId)
      return { status: 200, body: response }
    } catch (err) {
      if (err instanceof FitApiError) return { status: err.code, body: err.toBody(), headers: { ...err.headers } }
      if (err instanceof BodyTooLargeError) {
        return { status: 413, body: new FitApiError(413, err.message).toBody(), headers: { connection: 'close' } }
      }
      throw err
    }
  }

  /** The user behind the request's access token, with the scopes that token carries. */
  private authenticate(req: IncomingMessage, url: URL): UserState {
    const caller = this.caller(req, url)
    if (typeof caller === 'string') throw unauthenticated()
    return caller
  }

  /** The user behind the request's access token (with that token's scopes), or why there is none. */
  private caller(req: IncomingMessage, url: URL): UserState | CredentialProblem {
    const header = req.headers.authorization
    const m = header === undefined ? null : /^Bearer\s+(\S+)\s*$/i.exec(header)
    const token = m?.[1] ?? url.searchParams.get('access_token') ?? undefined
    if (token === undefined) return 'missing'
    const grant = this.accessTokens.get(token)
    const user = grant === undefined ? undefined : this.users.get(grant.googleId)
    if (grant === undefined || user === undefined) return 'invalid'
    if (grant.expiresAtMs <= this.now()) return 'expired'
    return { ...user, scopes: grant.scopes }
  }

  /** What of a user's data has reached Google: the same for the Fit and the Health API. */
  private dataArrival(googleId: string): DataArrival {
    return {
      uploadDelayMs: this.uploadDelays.get(googleId) ?? this.uploadDelays.get('*') ?? 0,
      lateSamples: (type) => this.lateSamples.get(`${googleId}|${type}`) ?? [],
    }
  }

  private countSuccess(googleId: string): void {
    const byUser = this.counters.aggregateRequestsByUser
    byUser[googleId] = (byUser[googleId] ?? 0) + 1
  }

  // ------------------------------------------------------------------------------------------
  // Health API

  /**
   * The steps every Health data-point request shares, in Google's order: count it, serve any injected
   * fault, then the HTTP method (404), the credentials (401), `users/me` (403), the data type (400,
   * from `dataType`), its read scope (403), and only then `answer`, counted as a success. Errors
   * become google.rpc.Status replies.
   */
  private async healthRequest<T extends { readonly scope: HealthScopeGroup }>(
    req: IncomingMessage,
    url: URL,
    route: 'rollUp' | 'list',
    rpc: HealthRpc,
    userId: string,
    steps: {
      /** The HTTP method the RPC is bound to; any other is not found. */
      readonly httpMethod: 'GET' | 'POST'
      /** The data type asked for, or the HealthApiError (400) saying why it cannot be. */
      readonly dataType: () => T
      /** The answer, once the caller may read the type; context() reads the server's clock when called. */
      readonly answer: (type: T, user: UserState, context: () => RollUpContext) => Promise<unknown>
    },
  ): Promise<Reply> {
    this.counters[route === 'rollUp' ? 'rollUpRequests' : 'listRequests']++
    const fault = this.takeFault(route)
    if (fault !== undefined) return this.faultReply(fault, (status, reason) => healthFault(status, reason, rpc).toBody())
    try {
      if (req.method !== steps.httpMethod) throw new HealthApiError(404, 'Method not found.')
      const user = this.caller(req, url)
      if (typeof user === 'string') throw healthUnauthenticated(user, rpc)
      if (userId !== 'me') throw new HealthApiError(403, `The caller does not have permission to access users/${userId}; use users/me.`)
      const type = steps.dataType()
      if (!canReadHealth(user.scopes, type.scope)) throw healthScopeInsufficient(rpc, healthReadScope(type.scope))
      const context = (): RollUpContext => ({
        seed: user.seed,
        googleId: user.googleId,
        nowMs: this.now(),
        arrival: this.dataArrival(user.googleId),
        sleepStagingMs: this.sleepStagingMs,
        exerciseTypes: this.exerciseTypes.get(user.googleId),
        sleepType: this.sleepTypes.get(user.googleId),
      })
      const response = await steps.answer(type, user, context)
      this.countSuccess(user.googleId)
      return { status: 200, body: response }
    } catch (err) {
      if (err instanceof HealthApiError) return { status: err.code, body: err.toBody(), headers: { ...err.headers } }
      if (err instanceof BodyTooLargeError) {
        return { status: 413, body: new HealthApiError(413, err.message).toBody(), headers: { connection: 'close' } }
      }
      throw err
    }
  }

  /** users.dataTypes.dataPoints.rollUp and .dailyRollUp (POST, the request in a JSON body). */
  private rollUp(req: IncomingMessage, url: URL, rpc: HealthRpc, userId: string, dataType: string): Promise<Reply> {
    return this.healthRequest(req, url, 'rollUp', rpc, userId, {
      httpMethod: 'POST',
      dataType: () => {
        if (healthSessionType(dataType) !== undefined) {
          throw healthBadRequest(`Data type "${dataType}" is a session type and is not rolled up; list its data points instead.`, 'parent')
        }
        const type = healthType(dataType)
        if (type === undefined && (healthSampleType(dataType) ?? healthDailyType(dataType)) !== undefined) {
          throw healthBadRequest(`Data type "${dataType}" does not support roll-ups; list its data points instead.`, 'parent')
        }
        if (type === undefined) {
          throw healthBadRequest(`Data type "${dataType}" cannot be rolled up; supported: ${HEALTH_TYPES.map((t) => t.name).join(', ')}.`, 'parent')
        }
        return type
      },
      answer: async (type, user, context) => {
        const text = (await readBody(req)).toString('utf8')
        let body: unknown = {}
        try {
          // An empty body is an empty message, which validation then finds wanting.
          if (text.trim() !== '') body = JSON.parse(text)
        } catch {
          throw healthBadRequest(`Invalid JSON payload received. Unexpected token.\n${text.slice(0, 40)}\n^`)
        }
        const ctx = context()
        return rpc === 'RollUpDataPoints'
          ? buildRollUpResponse(type, parseRollUpRequest(body, type), ctx)
          : buildDailyRollUpResponse(type, parseDailyRollUpRequest(body, type), user.timeZone, ctx)
      },
    })
  }

  /**
   * users.dataTypes.dataPoints.list and .reconcile: sleep and exercise sessions, the daily summaries, height, SpO2,
   * weight and body fat samples (GET, the filter and paging in the query). They share the route, its faults and its counters.
   */
  private list(req: IncomingMessage, url: URL, method: ListMethod, userId: string, dataType: string): Promise<Reply> {
    if (method === 'reconcile') this.counters.reconcileRequests++
    return this.healthRequest(req, url, 'list', method === 'list' ? 'ListDataPoints' : 'ReconcileDataPoints', userId, {
      httpMethod: 'GET',
      dataType: () => {
        const type = healthSessionType(dataType) ?? healthSampleType(dataType) ?? healthDailyType(dataType)
        if (type === undefined) {
          const listed = [...HEALTH_SESSION_TYPES, ...HEALTH_SAMPLE_TYPES, ...HEALTH_DAILY_TYPES].map((t) => t.name)
          const [verb, done] = method === 'list' ? ['lists', 'listed'] : ['reconciles', 'reconciled']
          throw healthBadRequest(
            `This fake ${verb} only ${listed.slice(0, -1).join(', ')} and ${listed.at(-1) ?? ''} data points; data type "${dataType}" cannot be ${done}.`,
            'parent',
          )
        }
        return type
      },
      answer: (type, user, context) => {
        const query = url.searchParams
        if ('filterName' in type && isDailyType(type)) {
          return Promise.resolve(buildDailyListResponse(type, parseDailyListRequest(query, type, method), user.timeZone, context()))
        }
        if ('filterName' in type) return Promise.resolve(buildSampleListResponse(type, parseSampleListRequest(query, type, method), user.timeZone, context()))
        if (type.name === 'exercise') {
          return Promise.resolve(buildExerciseListResponse(type, parseExerciseListRequest(query, type, method), user.timeZone, context()))
        }
        return Promise.resolve(buildListResponse(type, parseListRequest(query, type, method), user.timeZone, context()))
      },
    })
  }

  /**
   * users.getSettings (GET users/me/settings), behind googlehealth.settings.readonly: the person's
   * time zone as it is now (setUserTimeZone moves it), with its offset from UTC at the server's now.
   */
  private settings(req: IncomingMessage, url: URL, userId: string): Reply {
    this.counters.settingsRequests++
    const fault = this.takeFault('settings')
    if (fault !== undefined) return this.faultReply(fault, (status, reason) => healthFault(status, reason, 'GetSettings').toBody())
    try {
      if (req.method !== 'GET') throw new HealthApiError(404, 'Method not found.')
      const user = this.caller(req, url)
      if (typeof user === 'string') throw healthUnauthenticated(user, 'GetSettings')
      if (userId !== 'me') throw new HealthApiError(403, `The caller does not have permission to access users/${userId}; use users/me.`)
      if (!canReadHealth(user.scopes, 'settings')) throw healthScopeInsufficient('GetSettings', healthReadScope('settings'))
      return { status: 200, body: buildSettingsResponse(user.googleId, user.timeZone, this.now()) }
    } catch (err) {
      if (err instanceof HealthApiError) return { status: err.code, body: err.toBody(), headers: { ...err.headers } }
      throw err
    }
  }

  private dataSources(user: UserState, url: URL, sourceId: string | undefined): unknown {
    const filter = url.searchParams.getAll('dataTypeName')
    const visible = FIT_TYPES.filter((t) => canRead(user.scopes, t.scope) && (filter.length === 0 || filter.includes(t.name)))
    const sources = visible.flatMap((t) => [rawSource(user.seed, t), derivedSource(t)])
    if (sourceId === undefined) return { dataSource: sources }
    const found = sources.find((s) => s.dataStreamId === sourceId)
    if (found === undefined) throw new FitApiError(404, `DataSourceId not found: ${sourceId}`)
    return found
  }

  // ------------------------------------------------------------------------------------------
  // Admin surface, for a fake running in another process. Not Google; never faulted or delayed.

  private async admin(req: IncomingMessage, res: ServerResponse, action: string): Promise<void> {
    const reply = (status: number, body?: unknown): void => send(res, { status, body, pretty: false })
    try {
      const key = `${req.method ?? ''} ${action}`
      const body = req.method === 'POST' ? await readJson(req) : {}
      switch (key) {
        case 'POST users':
          return reply(201, this.addUser(body as AddUserOptions))
        case 'GET users':
          return reply(200, { users: this.listUsers() })
        case 'POST faults':
          this.injectFault(body as unknown as FaultSpec)
          return reply(204)
        case 'DELETE faults':
          this.clearFaults()
          return reply(204)
        case 'POST latency':
          this.setLatency(Number(body['ms']))
          return reply(204)
        case 'POST error-rate':
          this.setErrorRate(body['route'] as Route | 'any', Number(body['status']), Number(body['rate']))
          return reply(204)
        case 'POST user-time-zone':
          this.setUserTimeZone(String(body['googleId']), String(body['timeZone']))
          return reply(204)
        case 'POST upload-delay':
          this.setUploadDelay(Number(body['ms']), typeof body['googleId'] === 'string' ? body['googleId'] : undefined)
          return reply(204)
        case 'POST late-samples':
          this.addLateSamples(String(body['googleId']), String(body['dataTypeName']), body['samples'] as RawSample[])
          return reply(204)
        case 'GET stats':
          return reply(200, this.stats)
        case 'POST stats/reset':
          this.resetStats()
          return reply(204)
        case 'POST revoke':
          if (typeof body['refreshToken'] !== 'string') throw new TypeError('refreshToken must be a string')
          this.revokeRefreshToken(body['refreshToken'])
          return reply(204)
        case 'POST expire-access-tokens':
          if (body['googleId'] !== undefined && typeof body['googleId'] !== 'string') throw new TypeError('googleId must be a string')
          this.expireAccessTokens(body['googleId'] as string | undefined)
          return reply(204)
        default:
          return reply(404, { error: `No admin route ${key}` })
      }
    } catch (err) {
      if (err instanceof BodyTooLargeError) return reply(413, { error: err.message })
      return reply(400, { error: err instanceof Error ? err.message : String(err) })
    }
  }
}

async function readForm(req: IncomingMessage): Promise<Map<string, string>> {
  const text = (await readBody(req, MAX_BODY_BYTES)).toString('utf8')
  const type = (req.headers['content-type'] ?? '').toLowerCase()
  const form = new Map<string, string>()
  if (type.includes('application/json')) {
    let parsed: unknown
    try {
      parsed = JSON.parse(text)
    } catch {
      throw new OAuthError(400, 'invalid_request', 'Invalid JSON body')
    }
    if (!isPlainObject(parsed)) throw new OAuthError(400, 'invalid_request', 'Invalid JSON body')
    for (const [k, v] of Object.entries(parsed)) if (typeof v === 'string') form.set(k, v)
    return form
  }
  if (type !== '' && !type.includes('application/x-www-form-urlencoded')) {
    throw new OAuthError(400, 'invalid_request', `Unsupported content type: ${type}`)
  }
  for (const [k, v] of new URLSearchParams(text)) if (!form.has(k)) form.set(k, v)
  return form
}

/** client_secret_post or client_secret_basic, as Google accepts both. */
function clientCredentials(req: IncomingMessage, form: Map<string, string>): { id?: string; secret?: string } {
  const header = req.headers.authorization
  const m = header === undefined ? null : /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header)
  if (m !== null) {
    const decoded = Buffer.from(m[1] ?? '', 'base64').toString('utf8')
    const colon = decoded.indexOf(':')
    if (colon > 0) {
      try {
        return {
          id: decodeURIComponent(decoded.slice(0, colon).replace(/\+/g, ' ')),
          secret: decodeURIComponent(decoded.slice(colon + 1).replace(/\+/g, ' ')),
        }
      } catch {
        return {}
      }
    }
  }
  const id = form.get('client_id')
  const secret = form.get('client_secret')
  return { ...(id === undefined ? {} : { id }), ...(secret === undefined ? {} : { secret }) }
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const text = (await readBody(req)).toString('utf8')
  if (text.trim() === '') return {}
  const parsed: unknown = JSON.parse(text)
  if (!isPlainObject(parsed)) throw new TypeError('body must be a JSON object')
  return parsed
}

function fieldsOf(t: FitTypeSpec): { name: string; format: string; optional?: boolean }[] {
  return t.fields.map((f) => ({ ...f }))
}

function rawSource(seed: string, t: FitTypeSpec): Record<string, unknown> {
  const d = userProfile(seed).devices[t.device]
  return {
    dataStreamId: rawDataSourceId(seed, t),
    dataStreamName: t.rawStreamName,
    type: 'raw',
    dataType: { name: t.name, field: fieldsOf(t) },
    device: { uid: d.uid, type: d.type, manufacturer: d.manufacturer, model: d.model, version: d.version },
    application: { packageName: d.packageName },
    dataQualityStandard: [],
  }
}

function derivedSource(t: FitTypeSpec): Record<string, unknown> {
  return {
    dataStreamId: mergedDataSourceId(t),
    dataStreamName: t.mergedStreamName,
    type: 'derived',
    dataType: { name: t.name, field: fieldsOf(t) },
    application: { packageName: GMS_PACKAGE },
    dataQualityStandard: [],
  }
}

/** Whether a listed type is one of the daily summaries (filtered by date) rather than a sample type. */
function isDailyType(type: { readonly name: string }): type is HealthDailyTypeSpec {
  return healthDailyType(type.name) !== undefined
}
