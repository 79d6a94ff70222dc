// Only the Fitness API: the googleapis index loads every Google API (about 100 MB more per process).
import { fitness, type fitness_v1 } from 'googleapis/build/src/apis/fitness/index.js'
import { GOOGLE_DATA_API_NAMES, UpstreamError, dataType, type DataTypeKey, type TimeWindow } from '@fitstream/shared'
import { googleFetch } from './google-transport.js'
import { DAY_MS, localDayZone } from './windows.js'

/** How a Google client sends each of its requests (GoogleRequestGate: through the project's rate limit, timed and counted). */
export type SendToGoogle = <T>(request: () => Promise<T>) => Promise<T>
/**
 * Takes `count` requests of the project's rate limit at once, for requests about to go out together
 * (GoogleRequestGate.reserve), and answers how to send them: those beyond what it took go as `send` sends them.
 */
export type ReserveGoogleRequests = (count: number) => Promise<SendToGoogle>

/** Google rejected the access token (401): it must be refreshed before the call can succeed. */
export class AccessTokenRejectedError extends UpstreamError {
  constructor(message: string) {
    super('FST_ERR_GOOGLE_TOKEN_REJECTED', message, { status: 401 })
  }
}

/** Google asks us to slow down (429, or 403 with a rate-limit reason). */
export class GoogleRateLimitError extends UpstreamError {
  constructor(
    message: string,
    readonly retryAfterMs: number | undefined,
    status: number,
  ) {
    super('FST_ERR_GOOGLE_RATE_LIMITED', message, { status })
  }
}

export interface AggregateRequest {
  readonly accessToken: string
  readonly dataTypes: readonly DataTypeKey[]
  readonly window: TimeWindow
  readonly bucketMs: number
  /** IANA zone: whole-day buckets follow the user's local days (DST included). */
  readonly timeZone?: string
}

export interface GoogleFitClientOptions {
  /** Root of the Fitness API, e.g. https://fitness.googleapis.com/ */
  readonly rootUrl: string
  readonly timeoutMs: number
  /** How each request goes out (rate limit, metrics); directly unless given. */
  readonly send?: SendToGoogle
}

const RATE_LIMIT_REASONS = new Set(['rateLimitExceeded', 'userRateLimitExceeded', 'quotaExceeded', 'dailyLimitExceeded'])

/**
 * The Fitness REST API through the googleapis client. One aggregate request covers every requested
 * type (one `aggregateBy` entry each) in time buckets. googleapis' own retries are off: BullMQ owns
 * retries, and errors come back classified, with Google's message and never the request.
 */
export class GoogleFitClient {
  private readonly fitness: fitness_v1.Fitness
  private readonly send: SendToGoogle

  constructor(private readonly options: GoogleFitClientOptions) {
    this.fitness = fitness({ version: 'v1', rootUrl: options.rootUrl, fetchImplementation: googleFetch })
    this.send = options.send ?? ((call) => call())
  }

  async aggregate(request: AggregateRequest): Promise<unknown> {
    const requestBody: fitness_v1.Schema$AggregateRequest = {
      aggregateBy: request.dataTypes.map((key) => {
        const fit = dataType(key).fit
        if (fit === undefined) {
          throw new UpstreamError('FST_ERR_GOOGLE_UNSUPPORTED', `the ${GOOGLE_DATA_API_NAMES.fit} has no ${key} data`, { permanent: true })
        }
        return fit.dataSourceId === undefined ? { dataTypeName: fit.dataType } : { dataSourceId: fit.dataSourceId }
      }),
      bucketByTime:
        localDayZone(request.bucketMs, request.timeZone) === undefined
          ? { durationMillis: String(request.bucketMs) }
          : { period: { type: 'day', value: request.bucketMs / DAY_MS, timeZoneId: request.timeZone } },
      startTimeMillis: String(request.window.startMs),
      endTimeMillis: String(request.window.endMs),
    }
    // Only Google's own failures are classified; the gate's (Redis down, say) are not Google's.
    const response = await this.send(() =>
      this.fitness.users.dataset
        .aggregate(
          { userId: 'me', requestBody },
          { headers: { Authorization: `Bearer ${request.accessToken}` }, retry: false, timeout: this.options.timeoutMs },
        )
        .catch((error: unknown) => {
          throw classifyGoogleError(error)
        }),
    )
    return response.data
  }
}

interface GaxiosLikeError {
  readonly code?: string | number
  readonly status?: number
  readonly response?: { readonly status?: number; readonly data?: unknown; readonly headers?: unknown }
}

/**
 * A googleapis failure as an UpstreamError: 401 to refresh the token, 429 (or a 403 rate-limit
 * reason) to wait, other 4xx permanent, 5xx and network errors transient. `api` names the API in
 * the message; the message carries Google's own words, never the request.
 */
export function classifyGoogleError(error: unknown, api = GOOGLE_DATA_API_NAMES.fit): UpstreamError {
  if (error instanceof UpstreamError) return error
  const e = (error ?? {}) as GaxiosLikeError
  const status = e.response?.status ?? (typeof e.status === 'number' ? e.status : undefined)
  if (status === undefined) {
    const code = typeof e.code === 'string' ? e.code : 'no response'
    return new UpstreamError('FST_ERR_GOOGLE_UNREACHABLE', `${api} unreachable (${code})`)
  }
  const { message, reason } = googleErrorBody(e.response?.data)
  const text = `${api} answered ${status}${reason === undefined ? '' : ` ${reason}`}: ${message ?? 'no message'}`
  if (status === 401) return new AccessTokenRejectedError(text)
  if (status === 429 || (status === 403 && reason !== undefined && RATE_LIMIT_REASONS.has(reason))) {
    return new GoogleRateLimitError(text, retryAfterMs(e.response?.headers), status)
  }
  const permanent = status >= 400 && status < 500 && status !== 408
  return new UpstreamError(permanent ? 'FST_ERR_GOOGLE_REJECTED' : 'FST_ERR_GOOGLE_UNAVAILABLE', text, { permanent, status })
}

/**
 * Google's message and reason: the Fitness API puts the reason in `errors[]`, the Health API (as
 * google.rpc.Status) in an ErrorInfo among `details[]`, with the status name as a fallback.
 */
function googleErrorBody(data: unknown): { message?: string; reason?: string } {
  const error = (data as { error?: { message?: unknown; status?: unknown; errors?: unknown; details?: unknown } } | undefined)?.error
  if (error === undefined || error === null || typeof error !== 'object') return {}
  const reasonIn = (list: unknown): unknown =>
    Array.isArray(list) ? (list as ({ reason?: unknown } | null)[]).find((e) => typeof e?.reason === 'string')?.reason : undefined
  const reason = reasonIn(error.errors) ?? reasonIn(error.details) ?? error.status
  return {
    message: typeof error.message === 'string' ? error.message.slice(0, 500) : undefined,
    reason: typeof reason === 'string' ? reason : undefined,
  }
}

function retryAfterMs(headers: unknown): number | undefined {
  let value: unknown
  // gaxios hands over a fetch-style Headers object (not always the global class) or a plain record.
  const get = (headers as { get?: unknown } | null)?.get
  if (typeof get === 'function') value = (get as (name: string) => unknown).call(headers, 'retry-after')
  else if (headers !== null && typeof headers === 'object') value = (headers as Record<string, unknown>)['retry-after']
  if (typeof value !== 'string') return undefined
  const seconds = Number(value)
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000
  const date = Date.parse(value)
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now())
}
