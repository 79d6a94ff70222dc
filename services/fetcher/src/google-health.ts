// Only the Health API: the googleapis index loads every Google API (about 100 MB more per process).
import { health, type health_v4 } from 'googleapis/build/src/apis/health/index.js'
import { GOOGLE_DATA_API_NAMES, UpstreamError, civilTime, dataType, type DataTypeKey, type TimeWindow } from '@fitstream/shared'
import { classifyGoogleError, type AggregateRequest } from './google-fit.js'
import { reduceReadings } from './normalize-health.js'
import { DAY_MS, splitWindow } from './windows.js'

/** Google caps a roll-up's range at 14 days for these data types and at 90 days for the rest. */
const SHORT_RANGE_TYPES = new Set(['heart-rate', 'active-minutes', 'total-calories', 'calories-in-heart-rate-zone'])
const SHORT_RANGE_MS = 14 * DAY_MS
const LONG_RANGE_MS = 90 * DAY_MS
const MAX_PAGE_SIZE = 10_000
/** An answer that keeps offering further pages past anything its windows could fill is not followed for ever. */
const MAX_PAGES_PER_RANGE = 20
/** Google lists at most 25 sleep sessions a page. */
const SESSION_PAGE_SIZE = 25
/** 2,500 sessions in one window: far more than any person sleeps in the 90 days a window may cover. */
const MAX_SESSION_PAGES = 100
/** Google lists up to 10,000 readings a page. */
const SAMPLE_PAGE_SIZE = 10_000
/**
 * Readings are taken at most every half minute (blood oxygen during sleep is every few minutes); an
 * answer that keeps offering pages past that for its window is not followed.
 */
const MAX_READINGS_PER_MINUTE = 2
/**
 * Sessions are found by when they end (Google filters sleep by end time only). One that has a
 * segment in the window ends at most this long after the window: a sleep longer than a day is not
 * one.
 */
const LONGEST_SESSION_MS = DAY_MS

export interface GoogleHealthClientOptions {
  /** Root of the Health API, e.g. https://health.googleapis.com/ */
  readonly rootUrl: string
  readonly timeoutMs: number
}

/** What one fetch read from the Health API, for `normalizeHealth`. */
export interface HealthReadResult {
  /**
   * Per requested type, every page Google answered with, as it came: roll-ups, or for a session
   * type (sleep) the sessions that end in or after the window.
   */
  readonly pages: ReadonlyMap<DataTypeKey, readonly unknown[]>
  /** Whole local days (`dailyRollUp`, civil times in the answer) rather than fixed windows (`rollUp`). */
  readonly daily: boolean
  /** The bucket size, which sessions' segments are put into. */
  readonly bucketMs: number
}

/**
 * The Google Health API (v4), successor of the Fitness REST API, through the googleapis client.
 * Each data type is its own request, made side by side: `rollUp` over fixed windows of the bucket
 * size, or, for whole-day buckets in a person's own time zone, `dailyRollUp` over their local days
 * (Google applies the time zone of their Health profile). Sleep, height and blood oxygen are not
 * rolled up by Google: their sessions or readings are listed, reconciled across the person's
 * devices and apps into one stream (`reconcile`, as Fit's merged sources and the roll-ups are), and
 * `normalizeHealth` puts them into buckets. A window longer than
 * Google allows for the type is read in parts, and every page is followed. googleapis' retries are
 * off; errors come back classified, as from the Fitness API.
 */
export class GoogleHealthClient {
  private readonly health: health_v4.Health

  constructor(private readonly options: GoogleHealthClientOptions) {
    this.health = health({ version: 'v4', rootUrl: options.rootUrl })
  }

  async read(request: AggregateRequest): Promise<HealthReadResult> {
    const daily = request.bucketMs % DAY_MS === 0 && request.timeZone !== undefined && request.timeZone !== 'UTC'
    const entries = await Promise.all(request.dataTypes.map(async (key) => [key, await this.readType(key, request, daily)] as const))
    return { pages: new Map(entries), daily, bucketMs: request.bucketMs }
  }

  private async readType(key: DataTypeKey, request: AggregateRequest, daily: boolean): Promise<unknown[]> {
    const source = dataType(key).health
    if (source === undefined) {
      throw new UpstreamError('FST_ERR_GOOGLE_UNSUPPORTED', `the Google Health API has no ${key} data`, { permanent: true })
    }
    const parent = `users/me/dataTypes/${source.dataType}`
    const options = { headers: { Authorization: `Bearer ${request.accessToken}` }, retry: false, timeout: this.options.timeoutMs }
    if (source.read === 'sessions') return this.listSessions(key, parent, request.window, options)
    if (source.read === 'samples') return this.listSamples(key, parent, request.window, options)
    const maxRangeMs = SHORT_RANGE_TYPES.has(source.dataType) ? SHORT_RANGE_MS : LONG_RANGE_MS
    const pages: unknown[] = []
    for (const range of splitWindow(request.window, request.bucketMs, maxRangeMs, daily ? request.timeZone : undefined)) {
      const windows = Math.ceil((range.endMs - range.startMs) / request.bucketMs)
      if (daily) {
        // The daily answer has no further pages: a range holds at most 90 windows.
        const requestBody: health_v4.Schema$DailyRollUpDataPointsRequest = {
          range: { start: civilDateTime(range.startMs, request.timeZone!), end: civilDateTime(range.endMs, request.timeZone!) },
          windowSizeDays: request.bucketMs / DAY_MS,
          pageSize: Math.min(windows, MAX_PAGE_SIZE),
        }
        pages.push(await this.call(() => this.health.users.dataTypes.dataPoints.dailyRollUp({ parent, requestBody }, options)))
        continue
      }
      let pageToken: string | undefined
      for (let page = 0; page === 0 || pageToken !== undefined; page++) {
        if (page === MAX_PAGES_PER_RANGE) {
          throw new UpstreamError('FST_ERR_GOOGLE_MALFORMED', `Google Health API kept offering pages of ${key} roll-ups past ${MAX_PAGES_PER_RANGE}`, {
            permanent: true,
          })
        }
        const requestBody: health_v4.Schema$RollUpDataPointsRequest = {
          range: { startTime: new Date(range.startMs).toISOString(), endTime: new Date(range.endMs).toISOString() },
          windowSize: `${request.bucketMs / 1000}s`,
          pageSize: Math.min(windows, MAX_PAGE_SIZE),
          ...(pageToken === undefined ? {} : { pageToken }),
        }
        const data = await this.call(() => this.health.users.dataTypes.dataPoints.rollUp({ parent, requestBody }, options))
        pages.push(data)
        const next = (data as { nextPageToken?: unknown } | null)?.nextPageToken
        pageToken = typeof next === 'string' && next !== '' ? next : undefined
      }
    }
    return pages
  }

  /** Every page of the sessions that end in the window or up to a day after it, newest first as Google lists them. */
  private async listSessions(key: DataTypeKey, parent: string, window: TimeWindow, options: object): Promise<unknown[]> {
    const field = `${filterName(parent)}.interval.end_time`
    const filter = `${field} >= "${new Date(window.startMs).toISOString()}" AND ${field} < "${new Date(window.endMs + LONGEST_SESSION_MS).toISOString()}"`
    return this.list(key, 'sessions', { parent, filter, pageSize: SESSION_PAGE_SIZE }, MAX_SESSION_PAGES, options)
  }

  /** Every page of the single readings taken in the window. */
  private async listSamples(key: DataTypeKey, parent: string, window: TimeWindow, options: object): Promise<unknown[]> {
    const field = `${filterName(parent)}.sample_time.physical_time`
    const filter = `${field} >= "${new Date(window.startMs).toISOString()}" AND ${field} < "${new Date(window.endMs).toISOString()}"`
    const maxPages = 1 + Math.ceil((MAX_READINGS_PER_MINUTE * (window.endMs - window.startMs)) / 60_000 / SAMPLE_PAGE_SIZE)
    // Each page is reduced to times and values as it comes, rather than held as Google's JSON.
    return this.list(key, 'readings', { parent, filter, pageSize: SAMPLE_PAGE_SIZE }, maxPages, options, (page) => reduceReadings(key, page))
  }

  private async list(
    key: DataTypeKey,
    what: string,
    params: health_v4.Params$Resource$Users$Datatypes$Datapoints$Reconcile,
    maxPages: number,
    options: object,
    reduce: (page: unknown) => unknown = (page) => page,
  ): Promise<unknown[]> {
    const pages: unknown[] = []
    let pageToken: string | undefined
    for (let page = 0; page === 0 || pageToken !== undefined; page++) {
      if (page === maxPages) {
        throw new UpstreamError('FST_ERR_GOOGLE_MALFORMED', `Google Health API kept offering pages of ${key} ${what} past ${maxPages}`, { permanent: true })
      }
      const query = { ...params, ...(pageToken === undefined ? {} : { pageToken }) }
      const data = await this.call(() => this.health.users.dataTypes.dataPoints.reconcile(query, options))
      const next = (data as { nextPageToken?: unknown } | null)?.nextPageToken
      pages.push(reduce(data))
      pageToken = typeof next === 'string' && next !== '' ? next : undefined
    }
    return pages
  }

  private async call(request: () => Promise<{ data: unknown }>): Promise<unknown> {
    try {
      return (await request()).data
    } catch (error) {
      throw classifyGoogleError(error, GOOGLE_DATA_API_NAMES.health)
    }
  }
}

/** A data type as filters name it: `users/me/dataTypes/oxygen-saturation` → `oxygen_saturation`. */
function filterName(parent: string): string {
  return parent.slice(parent.lastIndexOf('/') + 1).replaceAll('-', '_')
}

function civilDateTime(ms: number, timeZone: string): health_v4.Schema$CivilDateTime {
  const c = civilTime(ms, timeZone)
  const midnight = c.hours === 0 && c.minutes === 0 && c.seconds === 0
  return { date: { year: c.year, month: c.month, day: c.day }, ...(midnight ? {} : { time: { hours: c.hours, minutes: c.minutes, seconds: c.seconds } }) }
}
