import { createHash } from 'node:crypto'
import {
  GOOGLE_DATA_API_NAMES,
  InvalidPayloadError,
  UpstreamError,
  UserGoneError,
  UserPausedError,
  dataApiOfScopes,
  dataType,
  isClosed,
  readableIn,
  type DataTypeKey,
  type FetchHistoryStore,
  type GoogleDataApi,
  type JobContext,
  type StageData,
  type StageQueues,
  type StoredAccessToken,
  type UserRecordStore,
} from '@fitstream/shared'
import { classifySamples, decodeHistory, encodeHistory } from './bucket-history.js'
import { canReadSettings, zoneFromSettings, type CurrentZone } from './current-zone.js'
import { AccessTokenRejectedError, GoogleRateLimitError, type GoogleFitClient } from './google-fit.js'
import type { GoogleHealthClient } from './google-health.js'
import type { GoogleOutageDetector } from './google-outage.js'
import type { FetcherMetrics } from './metrics.js'
import { normalizeAggregate, type NormalizeResult } from './normalize.js'
import { normalizeHealth } from './normalize-health.js'
import type { TokenServiceClient } from './token-service-client.js'
import { DAY_MS, localBucketsBeginningIn } from './windows.js'

export interface FetchResult {
  readonly samples: number
  /** Buckets re-read that had not changed since they were last passed on. */
  readonly unchanged: number
  readonly revised: number
  readonly rejectedPoints: number
  readonly buckets: number
  readonly dataTypes: readonly DataTypeKey[]
  /** The API the data was read from. */
  readonly api: GoogleDataApi
  /** The zone the person's days were laid out in (see CurrentZone). */
  readonly timeZone: string
}

/** The token service's user record, as a fetch reads it and moves its progress (UserRecordStore). */
export type FetchUserRecords = Pick<UserRecordStore, 'forFetch' | 'accessToken' | 'advanceFetchCursor' | 'recordBackfillChunk'>
/** What was last passed on for each user's buckets, and the lock on it (FetchHistoryStore). */
export type FetchHistory = Pick<FetchHistoryStore, 'lock'>

export interface FetchProcessorDeps {
  readonly users: FetchUserRecords
  readonly history: FetchHistory
  readonly google: GoogleFitClient
  readonly health: GoogleHealthClient
  /** The API of a user whose granted scopes are not known yet (see dataApiOfScopes). */
  readonly defaultApi: GoogleDataApi
  /** When Google shuts the Fitness API down (ms): from then on, users still on it are not read. */
  readonly fitClosesAt: number
  readonly tokenService: Pick<TokenServiceClient, 'refreshAccessToken' | 'recordTimeZone'>
  readonly queues: StageQueues
  readonly metrics: FetcherMetrics
  /** Fetch location-bearing types at all (only when the privacy policy releases them). */
  readonly fetchSensitiveTypes: boolean
  /** Pauses the stage, without using attempts, while Google is down for everyone. */
  readonly outage?: GoogleOutageDetector
  readonly now?: () => number
}

/** Tokens closer than this to expiry are refreshed before use rather than sent to Google. */
const MIN_TOKEN_LIFETIME_MS = 60_000
/** Errors that say Google, not this request, is failing. */
const GOOGLE_DOWN_CODES = new Set(['FST_ERR_GOOGLE_UNAVAILABLE', 'FST_ERR_GOOGLE_UNREACHABLE'])
const RATE_LIMIT_DEFAULT_MS = 10_000
const RATE_LIMIT_MAX_MS = 15 * 60_000
/** Windows are planned up to the last complete bucket; a day allows for clocks that differ between hosts. */
const MAX_WINDOW_AHEAD_MS = 86_400_000

/**
 * Fetches one window of one user's data. The consent is read again here, so a change takes effect
 * on the next fetch. The user is read from the API their grant is for (Fit or Health): every
 * consented type in one Fit aggregate request, or one Health roll-up per type; the access token is
 * refreshed through the token service when it is stale or Google rejects it (once). Buckets that
 * did not change since they were last passed on are dropped, changed ones go on as revisions. Only
 * after the samples are handed to the anonymiser do the bucket history and the cursor move, so a
 * failure anywhere leaves the window to be fetched again.
 */
export function createFetchProcessor(deps: FetchProcessorDeps) {
  const now = deps.now ?? Date.now

  /** A token with at least a minute left: the one already read, or a fresh one from the token service. */
  const accessToken = async (userId: string, known: StoredAccessToken | undefined): Promise<string> => {
    if (known !== undefined && known.expiresAt - now() >= MIN_TOKEN_LIFETIME_MS) return known.token
    await deps.tokenService.refreshAccessToken(userId)
    const token = await deps.users.accessToken(userId)
    if (token === undefined) throw new UserGoneError(`user ${userId} no longer exists`)
    return token.token
  }

  interface UserView {
    /** Consented types still to fetch; `unreadable` are consented ones the user's API does not have. */
    readonly dataTypes: DataTypeKey[]
    readonly unreadable: DataTypeKey[]
    readonly api: GoogleDataApi
    readonly token: StoredAccessToken | undefined
    /** The OAuth scopes of the person's grant. */
    readonly scopes: readonly string[]
  }

  /** The user's state, consent, grant and access token in one read of their record. */
  const readUser = async (data: StageData<'fetch'>): Promise<UserView> => {
    const record = await deps.users.forFetch(data.userId)
    if (record === undefined) throw new UserGoneError(`user ${data.userId} no longer exists`)
    if (record.state !== 'active') throw new UserPausedError(`user ${data.userId} is ${record.state}`)
    const api = dataApiOfScopes(record.scopes, deps.defaultApi)
    // The token service pauses them at their next sync; until then their windows wait at the cursor.
    if (isClosed(api, now(), deps.fitClosesAt)) throw new UserPausedError(`user ${data.userId} is read from ${GOOGLE_DATA_API_NAMES.fit}, which has closed`)
    const consented = data.dataTypes.filter((type) => record.consent.has(type) && (deps.fetchSensitiveTypes || dataType(type).sensitive !== true))
    return {
      dataTypes: consented.filter((type) => readableIn(type, api)),
      unreadable: consented.filter((type) => !readableIn(type, api)),
      api,
      token: record.accessToken,
      scopes: record.scopes,
    }
  }

  /**
   * The zone the person is in, when their days matter to this fetch (buckets of whole days, or
   * Google's daily summaries, which are filed by local date) and their grant may read their Health
   * settings: the settings' zone. Otherwise, and when the settings cannot be read or name no usable
   * zone, the one the sync put in the job. A settings answer set aside is counted as a rejected point.
   */
  const currentZone = async (data: StageData<'fetch'>, user: UserView, token: string, context: JobContext): Promise<CurrentZone> => {
    const recorded: CurrentZone = { timeZone: data.timeZone, source: 'recorded' }
    const daysMatter = data.bucketMs % DAY_MS === 0 || user.dataTypes.some((type) => dataType(type).health?.read === 'daily')
    if (!daysMatter || !canReadSettings(user.scopes)) return recorded
    let settings: unknown
    try {
      settings = await deps.health.settings(token)
    } catch (error) {
      if (error instanceof AccessTokenRejectedError || error instanceof GoogleRateLimitError) throw error
      const code = error instanceof UpstreamError ? error.code : undefined
      context.logger.warn({ code }, 'the person’s Health settings could not be read: their days stay in the zone the sync gave')
      return recorded
    }
    const zone = zoneFromSettings(settings, data.timeZone)
    if (zone.rejected !== undefined) {
      deps.metrics.pointsRejected.inc({ reason: zone.rejected })
      context.logger.warn({ reason: zone.rejected }, 'the person’s Health settings name no usable time zone: their days stay in the zone the sync gave')
    }
    return zone
  }

  /**
   * One read of the window from the user's API; then its answer is checked and turned into samples.
   * From the Health API, in the zone the person is in now: when that is not the zone the window was
   * planned in, buckets of whole days are read as the local days there that begin in the window.
   */
  const read = async (
    data: StageData<'fetch'>,
    user: UserView,
    token: StoredAccessToken | undefined,
    context: JobContext,
  ): Promise<{ normalized: NormalizeResult; zone: CurrentZone }> => {
    const request = {
      dataTypes: user.dataTypes,
      window: data.window,
      bucketMs: data.bucketMs,
      timeZone: data.timeZone,
      accessToken: await accessToken(data.userId, token),
    }
    if (user.api === 'health') {
      const zone = await currentZone(data, user, request.accessToken, context)
      const moved = zone.timeZone !== data.timeZone && data.bucketMs % DAY_MS === 0
      const window = moved ? localBucketsBeginningIn(data.window, data.bucketMs, zone.timeZone, now()) : data.window
      // No day of the new zone begins in the window and is over yet: the next sync's windows read it.
      if (window === undefined) return { normalized: { samples: [], rejected: {}, buckets: 0 }, zone }
      const result = await deps.health.read({ ...request, window, timeZone: zone.timeZone })
      await deps.outage?.succeeded()
      return { normalized: normalizeHealth(result, window, zone.timeZone), zone }
    }
    const response = await deps.google.aggregate(request)
    await deps.outage?.succeeded()
    return { normalized: normalizeAggregate(response, user.dataTypes, data.window), zone: { timeZone: data.timeZone, source: 'recorded' } }
  }

  /** A 5xx, timeout or network error: while Google is down for everyone, wait without using an attempt. */
  const holdBackIfGoogleIsDown = async (error: unknown, context: JobContext): Promise<never> => {
    const transient = error instanceof UpstreamError && !error.permanent && GOOGLE_DOWN_CODES.has(error.code)
    if (!transient || deps.outage === undefined) throw error
    const pauseMs = await deps.outage.failed()
    if (pauseMs <= 0) throw error
    deps.metrics.outageDeferrals.inc()
    context.logger.warn({ pauseMs, code: error.code }, `Google looks down for every fetch (${error.message}): pausing without using an attempt`)
    return context.deferWithoutAttempt(pauseMs, 'queue')
  }

  return async (data: StageData<'fetch'>, context: JobContext): Promise<FetchResult> => {
    // The schema takes any epoch ms; a window in the future has no data and would move the user's
    // cursor past now (past any date at all, for a big enough number).
    if (data.window.endMs > now() + MAX_WINDOW_AHEAD_MS) {
      throw new InvalidPayloadError(`invalid fetch job payload: window.endMs ${data.window.endMs} is in the future; data can only be fetched up to now`)
    }
    const user = await readUser(data)
    const { dataTypes, api } = user
    if (user.unreadable.length > 0) {
      context.logger.info({ api, unreadable: user.unreadable }, 'some consented types are not in the Google API this user is read from: left out')
    }
    if (dataTypes.length === 0) {
      context.logger.info({ requested: data.dataTypes, api }, 'no consented type left in this window: nothing to fetch')
      await deps.users.advanceFetchCursor(data.userId, data.window.endMs)
      return { samples: 0, unchanged: 0, revised: 0, rejectedPoints: 0, buckets: 0, dataTypes, api, timeZone: data.timeZone }
    }

    let normalized: NormalizeResult
    let zone: CurrentZone
    try {
      try {
        ;({ normalized, zone } = await read(data, user, user.token, context))
      } catch (error) {
        if (!(error instanceof AccessTokenRejectedError)) throw error
        context.logger.info('access token rejected by Google; refreshing once')
        ;({ normalized, zone } = await read(data, user, undefined, context))
      }
    } catch (error) {
      if (!(error instanceof GoogleRateLimitError)) return await holdBackIfGoogleIsDown(error, context)
      const delay = Math.min(error.retryAfterMs ?? RATE_LIMIT_DEFAULT_MS, RATE_LIMIT_MAX_MS)
      // A per-user limit holds back this user only; a project quota holds back every fetcher.
      const scope = error.message.includes('userRateLimitExceeded') ? 'job' : 'queue'
      context.logger.warn({ delayMs: delay, scope }, 'Google rate limit: retrying later without using an attempt')
      return context.deferWithoutAttempt(delay, scope)
    }

    if (zone.source === 'settings' && zone.timeZone !== data.timeZone) {
      // The token service keeps the zone; until it has the new one, each fetch finds it again.
      const recorded = await deps.tokenService.recordTimeZone(data.userId, zone.timeZone)
      context.logger.info({ recorded }, 'the person is in another time zone than their sync planned in: read in theirs now, and told the token service')
    }
    const { samples, rejected, buckets } = normalized
    const rejectedPoints = Object.values(rejected).reduce((a, b) => a + b, 0)
    for (const [reason, count] of Object.entries(rejected)) deps.metrics.pointsRejected.inc({ reason }, count)
    if (rejectedPoints > 0) {
      context.logger.warn({ rejected, used: samples.length }, 'some points in the Google response were unusable')
      if (samples.length === 0) {
        throw new UpstreamError('FST_ERR_GOOGLE_MALFORMED', `Google response unusable: ${JSON.stringify(rejected)}`, { permanent: true })
      }
    }

    const held = await deps.history.lock(data.userId, `${context.jobId}-${now()}`)
    if (held === undefined) {
      context.logger.debug('another fetch of this user is updating their history: retrying shortly')
      return context.deferWithoutAttempt(1_000 + Math.floor(Math.random() * 1_000), 'job')
    }
    let released = false
    try {
      const horizon = now() - data.lookbackMs - data.bucketMs
      const { changed, fingerprints, unchanged, next } = classifySamples(samples, decodeHistory(held.history), horizon)
      const revised = changed.filter((s) => s.revision > 0).length
      // First, and only for a user who still exists: someone erased while Google answered gets nothing passed on or remembered.
      if ((await deps.users.advanceFetchCursor(data.userId, data.window.endMs)) === -1) {
        throw new UserGoneError('the user was erased while their data was being fetched')
      }
      if (changed.length > 0) {
        // The id names the content too (each bucket's revision and fingerprint, and its origin where
        // Google names one): the same changes are never queued twice, new changes always are.
        const content = changed.map((s, i) => `${s.type}|${s.startMs}|${s.revision}|${fingerprints[i]}|${s.origin ?? ''}`).join('\n')
        const digest = createHash('sha256').update(content).digest('base64url').slice(0, 16)
        await deps.queues.add(
          'anonymize',
          {
            syncId: data.syncId,
            userId: data.userId,
            window: data.window,
            samples: changed,
            ...(data.individualTypes && { individualTypes: data.individualTypes }),
          },
          { jobId: `anonymize-${data.userId}-${data.window.startMs}-${data.window.endMs}-${digest}` },
        )
      }
      // Kept (or dropped, when nothing is left to remember) and the lock let go in one round trip.
      await held.keep(next.size > 0 ? encodeHistory(next) : null, data.lookbackMs + 7 * 86_400_000)
      released = true
      deps.metrics.bucketsUnchanged.inc(unchanged)
      deps.metrics.bucketsRevised.inc(revised)
      if (data.kind === 'backfill') await deps.users.recordBackfillChunk(data.userId)
      context.logger.info({ syncId: data.syncId, kind: data.kind, api, passedOn: changed.length, revised, unchanged, buckets }, 'window fetched')
      return { samples: changed.length, unchanged, revised, rejectedPoints, buckets, dataTypes, api, timeZone: zone.timeZone }
    } finally {
      if (!released) await held.release()
    }
  }
}
