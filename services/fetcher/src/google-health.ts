// Only the Health API: the googleapis index loads every Google API (about 100 MB more per process).
import { health, type health_v4 } from 'googleapis/build/src/apis/health/index.js'
import { GOOGLE_DATA_API_NAMES, UpstreamError, civilTime, dataType, type DataTypeKey } from '@fitstream/shared'
import { classifyGoogleError, type AggregateRequest, type ReserveGoogleRequests, type SendToGoogle } from './google-fit.js'
import type { HealthReadResult } from './health-read.js'
import { googleFetch } from './google-transport.js'
import { LONGEST_WORKOUT_MS, reduceReadings } from './normalize-health.js'
import { DAY_MS, localDayZone, splitWindow } from './windows.js'

/** Google caps a roll-up's range at 14 days for these data types and at 90 days for the rest. */
const SHORT_RANGE_TYPES = new Set(['heart-rate', 'active-minutes', 'total-calories', 'calories-in-heart-rate-zone'])
const SHORT_RANGE_MS = 14 * DAY_MS
const LONG_RANGE_MS = 90 * DAY_MS
const MAX_PAGE_SIZE = 10_000
/** Roll-up pages per range: more than its windows could fill. */
const MAX_PAGES_PER_RANGE = 20
/** Google lists at most 25 sleep sessions or workouts a page. */
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
/** A sleep longer than a day is not one: a session with a segment in a window ends at most this long after it. */
const LONGEST_SESSION_MS = DAY_MS
/** A person's local time is at most 14 hours from UTC (UTC-12 to UTC+14). */
const WIDEST_UTC_OFFSET_MS = 14 * 3_600_000
/** More workouts a day than anyone records: an answer that keeps offering pages past that is not followed. */
const MAX_WORKOUTS_PER_DAY = 50

export interface GoogleHealthClientOptions {
  /** Root of the Health API, e.g. https://health.googleapis.com/ */
  readonly rootUrl: string
  readonly timeoutMs: number
  /** How each request goes out (rate limit, metrics); directly unless given. */
  readonly send?: SendToGoogle
  /** How a fetch's requests, one per type, take their share of the rate limit at once; each through `send` unless given. */
  readonly reserve?: ReserveGoogleRequests
}

/**
 * The Google Health API (v4), successor of the Fitness REST API, through the googleapis client.
 * Each data type is its own request, made side by side: `rollUp` over fixed windows of the bucket
 * size, or, for whole-day buckets in a person's own time zone, `dailyRollUp` over their local days
 * (Google applies the time zone the person is in). Daily summaries (resting heart rate, heart-rate
 * variability, VO2 max, breathing rate) are listed by calendar date. Sleep, workouts, height and blood oxygen are
 * not rolled up by Google, and weight and body fat only to an average: their sessions or readings
 * are listed, reconciled across the person's devices and apps into one stream (`reconcile`, as
 * Fit's merged sources and the roll-ups are), and `normalizeHealth` puts them into buckets, with
 * each bucket's highest and lowest reading. A window longer than Google allows for the type is
 * read in parts, and every page is followed. googleapis' retries are off; errors come back
 * classified, as from the Fitness API.
 */
export class GoogleHealthClient {
  private readonly health: health_v4.Health
  private readonly send: SendToGoogle

  constructor(private readonly options: GoogleHealthClientOptions) {
    this.health = health({ version: 'v4', rootUrl: options.rootUrl, fetchImplementation: googleFetch })
    this.send = options.send ?? ((call) => call())
  }

  async read(request: AggregateRequest): Promise<HealthReadResult> {
    const zone = localDayZone(request.bucketMs, request.timeZone)
    // One request per type goes out at once; further pages and parts of a long window take theirs as they go.
    const send = this.options.reserve === undefined ? this.send : await this.options.reserve(request.dataTypes.length)
    const entries = await Promise.all(request.dataTypes.map(async (key) => [key, await this.readType(key, request, zone, send)] as const))
    return { pages: new Map(entries), daily: zone !== undefined, bucketMs: request.bucketMs }
  }

  /**
   * The person's Health settings (users.getSettings; needs googlehealth.settings.readonly), as
   * Google answers them: of these FitStream reads the zone they are in now (see zoneFromSettings).
   */
  async settings(accessToken: string): Promise<unknown> {
    const options = { headers: { Authorization: `Bearer ${accessToken}` }, retry: false, timeout: this.options.timeoutMs }
    return this.call(this.send, () => this.health.users.getSettings({ name: 'users/me/settings' }, options))
  }

  /** Every page of one type's answer; `zone` when the buckets are local days there. */
  private async readType(key: DataTypeKey, request: AggregateRequest, zone: string | undefined, send: SendToGoogle): Promise<unknown[]> {
    const source = dataType(key).health
    if (source === undefined) {
      throw new UpstreamError('FST_ERR_GOOGLE_UNSUPPORTED', `the Google Health API has no ${key} data`, { permanent: true })
    }
    const parent = `users/me/dataTypes/${source.dataType}`
    const options = { headers: { Authorization: `Bearer ${request.accessToken}` }, retry: false, timeout: this.options.timeoutMs }
    const { startMs, endMs } = request.window
    // Filters name a type in snake case: `oxygen-saturation` → `oxygen_saturation`.
    const field = source.dataType.replaceAll('-', '_')
    const reconcile = (params: health_v4.Params$Resource$Users$Datatypes$Datapoints$Reconcile) => (pageToken: string | undefined) =>
      this.call(send, () => this.health.users.dataTypes.dataPoints.reconcile({ parent, ...params, ...(pageToken === undefined ? {} : { pageToken }) }, options))

    if (source.read === 'sessions') {
      // Google filters sleep by when it ends; a session with a segment in the window ends at most a day after it.
      const filter = `${field}.interval.end_time >= "${iso(startMs)}" AND ${field}.interval.end_time < "${iso(endMs + LONGEST_SESSION_MS)}"`
      return this.followPages(`${key} sessions`, MAX_SESSION_PAGES, reconcile({ filter, pageSize: SESSION_PAGE_SIZE }))
    }
    if (source.read === 'exercises') {
      // Google filters workouts only by their local start time, in whatever zone the person was in:
      // the bounds take in every zone (UTC-12 to UTC+14), and workouts that started up to a day before
      // the window, and normalizeHealth keeps what overlaps the window.
      const from = civilLiteral(startMs - LONGEST_WORKOUT_MS - WIDEST_UTC_OFFSET_MS)
      const before = civilLiteral(endMs + WIDEST_UTC_OFFSET_MS)
      const filter = `${field}.interval.civil_start_time >= "${from}" AND ${field}.interval.civil_start_time < "${before}"`
      const maxPages = 1 + Math.ceil(((endMs - startMs + LONGEST_WORKOUT_MS + 2 * WIDEST_UTC_OFFSET_MS) / DAY_MS) * (MAX_WORKOUTS_PER_DAY / SESSION_PAGE_SIZE))
      return this.followPages(`${key} workouts`, maxPages, reconcile({ filter, pageSize: SESSION_PAGE_SIZE }))
    }
    if (source.read === 'daily') {
      // Google files a daily value under the person's calendar date: every date from the one the
      // window starts in to the one it ends in, and normalizeHealth keeps those whose midnight lies in it.
      const zone = request.timeZone ?? 'UTC'
      const from = civilDate(startMs, zone)
      const before = civilDate(endMs - 1, zone, 1)
      const filter = `${field}.date >= "${from}" AND ${field}.date < "${before}"`
      const maxPages = 1 + Math.ceil((endMs - startMs) / DAY_MS / SAMPLE_PAGE_SIZE)
      return this.followPages(`${key} days`, maxPages, reconcile({ filter, pageSize: SAMPLE_PAGE_SIZE }))
    }
    if (source.read === 'samples') {
      const filter = `${field}.sample_time.physical_time >= "${iso(startMs)}" AND ${field}.sample_time.physical_time < "${iso(endMs)}"`
      const maxPages = 1 + Math.ceil((MAX_READINGS_PER_MINUTE * (endMs - startMs)) / 60_000 / SAMPLE_PAGE_SIZE)
      // Each page is reduced to times and values as it comes, rather than held as Google's JSON.
      return this.followPages(`${key} readings`, maxPages, reconcile({ filter, pageSize: SAMPLE_PAGE_SIZE }), (page) => reduceReadings(key, page))
    }

    const maxRangeMs = SHORT_RANGE_TYPES.has(source.dataType) ? SHORT_RANGE_MS : LONG_RANGE_MS
    const pages: unknown[] = []
    for (const range of splitWindow(request.window, request.bucketMs, maxRangeMs, zone)) {
      const windows = Math.ceil((range.endMs - range.startMs) / request.bucketMs)
      if (zone !== undefined) {
        // The daily answer has no further pages: a range holds at most 90 windows.
        const requestBody: health_v4.Schema$DailyRollUpDataPointsRequest = {
          range: { start: civilDateTime(range.startMs, zone), end: civilDateTime(range.endMs, zone) },
          windowSizeDays: request.bucketMs / DAY_MS,
          pageSize: Math.min(windows, MAX_PAGE_SIZE),
        }
        pages.push(await this.call(send, () => this.health.users.dataTypes.dataPoints.dailyRollUp({ parent, requestBody }, options)))
        continue
      }
      const rollUp = (pageToken: string | undefined) => {
        const requestBody: health_v4.Schema$RollUpDataPointsRequest = {
          range: { startTime: iso(range.startMs), endTime: iso(range.endMs) },
          windowSize: `${request.bucketMs / 1000}s`,
          pageSize: Math.min(windows, MAX_PAGE_SIZE),
          ...(pageToken === undefined ? {} : { pageToken }),
        }
        return this.call(send, () => this.health.users.dataTypes.dataPoints.rollUp({ parent, requestBody }, options))
      }
      pages.push(...(await this.followPages(`${key} roll-ups`, MAX_PAGES_PER_RANGE, rollUp)))
    }
    return pages
  }

  /**
   * Every page of one answer, following `nextPageToken`, each passed through `reduce` as it comes.
   * An answer that keeps offering pages past `maxPages` is not followed for ever.
   */
  private async followPages(
    what: string,
    maxPages: number,
    fetchPage: (pageToken: string | undefined) => Promise<unknown>,
    reduce: (page: unknown) => unknown = (page) => page,
  ): Promise<unknown[]> {
    const pages: unknown[] = []
    let pageToken: string | undefined
    for (let page = 0; page === 0 || pageToken !== undefined; page++) {
      if (page === maxPages) {
        throw new UpstreamError('FST_ERR_GOOGLE_MALFORMED', `Google Health API kept offering pages of ${what} past ${maxPages}`, { permanent: true })
      }
      const data = await fetchPage(pageToken)
      const next = (data as { nextPageToken?: unknown } | null)?.nextPageToken
      pages.push(reduce(data))
      pageToken = typeof next === 'string' && next !== '' ? next : undefined
    }
    return pages
  }

  /** One request, through the gate; only Google's own failures are classified (the gate's are not Google's). */
  private async call(send: SendToGoogle, request: () => Promise<{ data: unknown }>): Promise<unknown> {
    const response = await send(() =>
      request().catch((error: unknown) => {
        throw classifyGoogleError(error, GOOGLE_DATA_API_NAMES.health)
      }),
    )
    return response.data
  }
}

const iso = (ms: number): string => new Date(ms).toISOString()

/** An instant as a civil date-time literal (`YYYY-MM-DDTHH:mm:ss`), read as UTC's wall clock. */
const civilLiteral = (ms: number): string => new Date(ms).toISOString().slice(0, 19)

/** The calendar date at an instant in a time zone, `daysLater` days on, as a date literal (`YYYY-MM-DD`). */
function civilDate(ms: number, timeZone: string, daysLater = 0): string {
  const c = civilTime(ms, timeZone)
  return new Date(Date.UTC(c.year, c.month - 1, c.day + daysLater)).toISOString().slice(0, 10)
}

function civilDateTime(ms: number, timeZone: string): health_v4.Schema$CivilDateTime {
  const c = civilTime(ms, timeZone)
  const midnight = c.hours === 0 && c.minutes === 0 && c.seconds === 0
  return { date: { year: c.year, month: c.month, day: c.day }, ...(midnight ? {} : { time: { hours: c.hours, minutes: c.minutes, seconds: c.seconds } }) }
}
