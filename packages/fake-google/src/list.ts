/**
 * What every type users.dataTypes.dataPoints.list serves shares: the query parameters, the
 * AIP-160 filter subset (comparisons on an instant field and a civil-time field, or on the
 * civil-time field alone, >= and <, joined by AND), and the way a data point writes an instant (UTC
 * offset and civil time in the user's zone). The types themselves (sleep.ts, exercise.ts,
 * samples.ts) decide what the bounds select.
 *
 * users.dataTypes.dataPoints.reconcile takes the same query plus a data source family, and merges
 * the user's sources of the type into one stream. A synthetic user has one source per type (the
 * device that records its Fit raw type), so reconciling gives list's points, order and pages, each
 * point named by `dataPointName` and without its `dataSource`; a family leaving that device out
 * leaves out every point.
 */

import { createHash } from 'node:crypto'
import { healthBadRequest } from './errors.js'
import type { DataSourceFamily } from './health-catalogue.js'
import {
  ceilMs,
  civilJson,
  decodePageToken,
  encodePageToken,
  fingerprint,
  formatTimestamp,
  parseDataSourceFamily,
  parseInt32,
  parseTimestamp,
  sourceInFamily,
  type CivilDateTime,
  type RollUpContext,
} from './rollup.js'
import { DAY_MS } from './synthetic.js'
import { daysInMonth, offsetAt, wallAsUtc, wallTime } from './time-zones.js'

const NS_PER_MS = 1_000_000n

/** A list answer: a page of data points of one type (sleep.ts, exercise.ts and samples.ts say which). */
export interface ListDataPointsResponse<P> {
  /** Left out when nothing matches, as proto3 JSON leaves out empty lists. */
  dataPoints?: P[]
  nextPageToken?: string
}

/** A list data point as reconcile writes it: named by `dataPointName` instead of `name`, without `dataSource`. */
export type ReconciledDataPoint<P> = P extends { name: string } ? { dataPointName: string } & Omit<P, 'name' | 'dataSource'> : never

/** A reconcile answer: a page of reconciled data points of one type. */
export interface ReconcileDataPointsResponse<P> {
  /** Left out when nothing matches, as proto3 JSON leaves out empty lists. */
  dataPoints?: P[]
  nextPageToken?: string
}

/** A page of a type's data points as list writes them, or as reconcile does. */
export type DataPointsPage<P> = ListDataPointsResponse<P> | ReconcileDataPointsResponse<ReconciledDataPoint<P>>

// ---------------------------------------------------------------------------------------------
// The filter

/** The fields a type's list can be filtered by: an instant and a civil time, or a civil time alone. */
export interface TimeFilterFields {
  /** The data type as the URL names it (`oxygen-saturation`), for messages. */
  readonly dataType: string
  /** The data type as filters name it (`oxygen_saturation`): every field of the type starts `<prefix>.`. */
  readonly prefix: string
  /**
   * The instant field, compared with RFC 3339 literals, e.g. `sleep.interval.end_time`; absent for
   * a type Google filters by civil time alone (sessions other than sleep), whose instant fields are a 400.
   */
  readonly physical?: string
  /** The civil-time field, compared with `YYYY-MM-DD[THH:mm:ss]` in the user's zone. */
  readonly civil: string
}

export interface TimeFilter {
  /** Bounds on the instant in ms: fromMs <= t < beforeMs (infinite when not given). */
  readonly fromMs: number
  readonly beforeMs: number
  /** Bounds on the civil time in the user's zone, as wall-clock ms (see wallAsUtc). */
  readonly civilFrom: number
  readonly civilBefore: number
}

function filterError(message: string): never {
  throw healthBadRequest(`Invalid filter: ${message}`, 'filter')
}

// A word may hold hyphens after its first character, so `oxygen-saturation.…` reads as one field name.
const TOKEN = /\s*(?:("[^"]*"|'[^']*')|(>=|<=|!=|=|>|<|:)|([()])|([A-Za-z_][A-Za-z0-9_.-]*)|([^\s"'()<>=!:]+|\S))/y

type Token = { kind: 'string'; text: string } | { kind: 'operator'; text: string } | { kind: 'word'; text: string } | { kind: 'other'; text: string }

function tokenize(filter: string): Token[] {
  const tokens: Token[] = []
  TOKEN.lastIndex = 0
  while (TOKEN.lastIndex < filter.length) {
    const m = TOKEN.exec(filter)
    if (m === null) break // only trailing whitespace is left
    const [, string, operator, paren, word, other] = m
    if (string !== undefined) tokens.push({ kind: 'string', text: string.slice(1, -1) })
    else if (operator !== undefined) tokens.push({ kind: 'operator', text: operator })
    else if (word !== undefined) tokens.push({ kind: 'word', text: word })
    else tokens.push({ kind: 'other', text: paren ?? other ?? '' })
  }
  return tokens
}

const CIVIL = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2}):(\d{2}))?$/

/** A `YYYY-MM-DD[THH:mm:ss]` literal as wall-clock ms. */
function parseCivilLiteral(text: string, field: string): number {
  const m = CIVIL.exec(text)
  const [year, month, day, hour, minute, second] = [1, 2, 3, 4, 5, 6].map((i) => Number(m?.[i] ?? 0)) as [number, number, number, number, number, number]
  const valid =
    m !== null && year >= 1 && month >= 1 && month <= 12 && day >= 1 && day <= daysInMonth(year, month) && hour <= 23 && minute <= 59 && second <= 59
  if (!valid) filterError(`"${text}" is not a civil date or date-time (YYYY-MM-DD or YYYY-MM-DDTHH:mm:ss) for ${field}.`)
  return wallAsUtc({ year, month, day, hour, minute, second, millisecond: 0 })
}

function parseTimestampLiteral(text: string, field: string): number {
  let ns: bigint | undefined
  try {
    ns = parseTimestamp(text, 'filter')
  } catch {
    filterError(`"${text}" is not an RFC 3339 timestamp (e.g. "2026-03-20T00:00:00Z") for ${field}.`)
  }
  // t >= ns and t < ns hold for a whole-millisecond t exactly when they hold for ceil(ns).
  return ceilMs(ns as bigint)
}

/** Why a field name is not one of the type's: another type's field, or one of its own it cannot be filtered by. */
function unsupportedField(name: string, fields: TimeFilterFields, supported: string): never {
  if (name.startsWith(`${fields.prefix}.`)) filterError(`${fields.dataType} data points cannot be filtered by "${name}"; supported: ${supported}.`)
  if (fields.prefix !== fields.dataType && name.startsWith(`${fields.dataType}.`)) {
    filterError(`field "${name}" does not belong to data type ${fields.dataType}: filters name the type "${fields.prefix}"; supported: ${supported}.`)
  }
  filterError(`field "${name}" does not belong to data type ${fields.dataType}; supported: ${supported}.`)
}

/**
 * Parses a list filter: comparisons `<field> >= "<literal>"` or `<field> < "<literal>"` on the
 * type's instant field (RFC 3339), if it has one, or its civil-time field (YYYY-MM-DD[THH:mm:ss]),
 * joined by AND. Anything else is a 400 naming what is wrong.
 */
export function parseTimeFilter(filter: string, fields: TimeFilterFields): TimeFilter {
  const supported = `${fields.physical === undefined ? fields.civil : `${fields.physical} or ${fields.civil}`} with >= or <, joined by AND`
  let fromMs = Number.NEGATIVE_INFINITY
  let beforeMs = Number.POSITIVE_INFINITY
  let civilFrom = Number.NEGATIVE_INFINITY
  let civilBefore = Number.POSITIVE_INFINITY
  const tokens = tokenize(filter)
  if (tokens.length === 0) return { fromMs, beforeMs, civilFrom, civilBefore }
  for (let i = 0; ;) {
    const [field, operator, literal] = [tokens[i], tokens[i + 1], tokens[i + 2]]
    if (field?.kind !== 'word' || field.text === 'AND' || field.text === 'OR' || field.text === 'NOT') {
      filterError(`expected a field name at "${field?.text ?? 'end of filter'}"; supported: ${supported}.`)
    }
    const name = (field as Token).text
    if (name !== fields.physical && name !== fields.civil) unsupportedField(name, fields, supported)
    if (operator?.kind !== 'operator' || (operator.text !== '>=' && operator.text !== '<')) {
      filterError(`operator "${operator?.text ?? 'end of filter'}" is not supported for ${name}; use >= or <.`)
    }
    if (literal?.kind !== 'string')
      filterError(`expected a quoted literal after "${name} ${(operator as Token).text}", found "${literal?.text ?? 'end of filter'}".`)
    const text = (literal as Token).text
    const lower = (operator as Token).text === '>='
    if (name === fields.physical) {
      const ms = parseTimestampLiteral(text, name)
      if (lower) fromMs = Math.max(fromMs, ms)
      else beforeMs = Math.min(beforeMs, ms)
    } else {
      const wall = parseCivilLiteral(text, name)
      if (lower) civilFrom = Math.max(civilFrom, wall)
      else civilBefore = Math.min(civilBefore, wall)
    }
    i += 3
    const next = tokens[i]
    if (next === undefined) break
    if (next.kind === 'word' && next.text === 'OR') filterError(`OR is not supported by this fake; join comparisons with AND.`)
    if (next.kind !== 'word' || next.text !== 'AND') filterError(`expected AND or the end of the filter at "${next.text}".`)
    i++
  }
  return { fromMs, beforeMs, civilFrom, civilBefore }
}

/** Whether a filter bounds the civil time at all (else no instant needs its wall clock worked out). */
const civilBounded = (f: TimeFilter): boolean => f.civilFrom > Number.NEGATIVE_INFINITY || f.civilBefore < Number.POSITIVE_INFINITY

// ---------------------------------------------------------------------------------------------
// The query

/** The standard query parameters every Google API accepts besides a method's own. */
const SYSTEM_PARAMETERS = new Set([
  'access_token',
  'alt',
  'callback',
  'fields',
  'key',
  'oauth_token',
  'prettyPrint',
  'quotaUser',
  'upload_protocol',
  'uploadType',
  '$.xgafv',
])

/** The two methods that read a type's data points by the same query: list, and reconcile. */
export type ListMethod = 'list' | 'reconcile'

/** The query parameters of each method, by their names in the URL, and the request fields they set. */
const PARAMETERS: Readonly<Record<ListMethod, Readonly<Record<string, string>>>> = {
  list: { filter: 'filter', pageSize: 'page_size', pageToken: 'page_token' },
  reconcile: { filter: 'filter', pageSize: 'page_size', pageToken: 'page_token', dataSourceFamily: 'data_source_family' },
}

export interface ListRequest<F> {
  readonly method: ListMethod
  /** As given (trimmed): a page token continues only the same filter. */
  readonly filter: string
  readonly parsed: F
  /** After the default and the cap. */
  readonly pageSize: number
  /** '' for the first page. */
  readonly pageToken: string
  /** reconcile's `dataSourceFamily` (all sources when not given); list takes none and reads every source. */
  readonly family: DataSourceFamily
}

export interface PageSizes {
  /** The page size when a request gives none (or 0); larger ones are cut down to maxPageSize. */
  readonly defaultPageSize: number
  readonly maxPageSize: number
}

/** Validates a list (or reconcile) request's query parameters the way Google does; throws HealthApiError (400). */
export function parseListQuery<F>(query: URLSearchParams, sizes: PageSizes, parseFilter: (filter: string) => F, method: ListMethod = 'list'): ListRequest<F> {
  const values = new Map<string, string>()
  for (const [key, value] of query) {
    if (SYSTEM_PARAMETERS.has(key)) continue
    const field = PARAMETERS[method][key]
    if (field === undefined) {
      throw healthBadRequest(
        `Invalid JSON payload received. Unknown name "${key}": Cannot bind query parameter. Field '${key}' could not be found in request message.`,
      )
    }
    if (values.has(key)) throw healthBadRequest(`Invalid value at '${field}': the query parameter is repeated, but the field is not.`, field)
    values.set(key, value)
  }
  const size = values.has('pageSize') ? parseInt32(values.get('pageSize'), 'page_size') : 0
  if (size < 0) throw healthBadRequest('page_size must not be negative.', 'page_size')
  const filter = (values.get('filter') ?? '').trim()
  return {
    method,
    filter,
    parsed: parseFilter(filter),
    pageSize: size === 0 ? sizes.defaultPageSize : Math.min(size, sizes.maxPageSize),
    pageToken: values.get('pageToken') ?? '',
    family: parseDataSourceFamily(values.get('dataSourceFamily') ?? ''),
  }
}

/** A list (or reconcile) request on a type filtered by its time fields. */
export type TimeListRequest = ListRequest<TimeFilter>

/**
 * Validates a list (or reconcile) request on a type filtered by `fields` the way Google does; throws
 * HealthApiError (400). The filter takes the fields with >= and <, joined by AND.
 */
export function parseTimeListQuery(query: URLSearchParams, sizes: PageSizes, fields: TimeFilterFields, method: ListMethod = 'list'): TimeListRequest {
  return parseListQuery(query, sizes, (filter) => parseTimeFilter(filter, fields), method)
}

// ---------------------------------------------------------------------------------------------
// Pages

/**
 * What a page token is bound to: the user, the type, every other request field and the method, so
 * a list token does not continue a reconcile, nor one of another family, nor the other way round.
 */
function pageFingerprint(googleId: string, dataType: string, request: ListRequest<unknown>): string {
  const fields = [googleId, dataType, request.filter, request.pageSize]
  return fingerprint(request.method === 'list' ? fields : [...fields, request.method, request.family])
}

/** A list data point as reconcile writes it. */
function reconciledDataPoint<P extends { name: string }>(point: P): ReconciledDataPoint<P> {
  const data = Object.fromEntries(Object.entries(point).filter(([key]) => key !== 'name' && key !== 'dataSource'))
  return { dataPointName: point.name, ...data } as ReconciledDataPoint<P>
}

/** One page of the method's answer: the data points as list writes them, or as reconcile does. */
function dataPointsPage<P extends { name: string }>(method: ListMethod, points: readonly P[], nextPageToken: string | undefined): DataPointsPage<P> {
  const token = nextPageToken === undefined ? {} : { nextPageToken }
  if (points.length === 0) return token
  if (method === 'list') return { dataPoints: [...points], ...token }
  return { dataPoints: points.map((point) => reconciledDataPoint(point)), ...token }
}

/**
 * What a type is asked for to fill a page: its points whose instant (a sleep session's end, an
 * exercise's start, a sample's time) lies in [fromMs, beforeMs), in the answer's order, from where
 * the last page left off.
 */
export interface PageQuery {
  readonly fromMs: number
  readonly beforeMs: number
  /**
   * The server's clock less any upload delay: a point ending later has not reached Google. beforeMs
   * is already bounded by it, which is all a type whose instant is its end needs.
   */
  readonly arrivedByMs: number
  /** Where the last page left off, as the type wrote it into the page token; absent for the first page. */
  readonly cursorNs?: bigint
  /** Whether a point's instant lies in the filter's civil bounds; absent when the filter has none. */
  readonly accept?: (t: number) => boolean
  readonly limit: number
}

/** How a type fills a page: what it finds, how it writes one as a data point, and where a page ending with one left off. */
export interface PageSource<T, P> {
  readonly find: (q: PageQuery) => T[]
  readonly dataPoint: (item: T) => P
  readonly cursorNs: (last: T) => bigint
}

/** Where a page ending with a session left off: its start, in ns (a user's sessions never share one). */
export const startCursorNs = (last: { readonly startMs: number }): bigint => BigInt(last.startMs) * NS_PER_MS

/** What the helpers listing a seed's points take: a finite range [startMs, endMs); throws RangeError otherwise. */
export function requireFiniteRange(startMs: number, endMs: number): void {
  if (!Number.isFinite(startMs) || !Number.isFinite(endMs)) throw new RangeError('startMs and endMs must be finite')
}

/**
 * Every point a type finds in [startMs, endMs) once the server's clock reads nowMs, in the list's
 * own order, on no page: what a test compares the list with. Times before the Unix epoch hold none.
 */
export function findAll<T>(find: (q: PageQuery) => T[], startMs: number, endMs: number, nowMs: number): T[] {
  requireFiniteRange(startMs, endMs)
  return find({ fromMs: Math.max(0, startMs), beforeMs: endMs, arrivedByMs: nowMs, limit: Number.POSITIVE_INFINITY })
}

/**
 * The list (or reconcile) answer on a type: the user's points that match the filter and have
 * reached Google (the server's clock less any upload delay), one page of them, and a page token
 * holding where the page stopped when more follow. A reconcile whose family leaves out the user's
 * only source of the type finds none.
 */
export function listPage<T, P extends { name: string }>(
  type: { readonly name: string; readonly fitType: string },
  request: ListRequest<TimeFilter>,
  timeZone: string,
  ctx: RollUpContext,
  source: PageSource<T, P>,
): DataPointsPage<P> {
  const requestFingerprint = pageFingerprint(ctx.googleId, type.name, request)
  const cursorNs = request.pageToken === '' ? undefined : decodePageToken(request.pageToken, requestFingerprint)
  const f = request.parsed
  const visibleUntil = ctx.nowMs - (ctx.arrival?.uploadDelayMs ?? 0)
  // A zone's offset is within a day of UTC, so these instant bounds hold every civil match.
  const found = source.find({
    fromMs: Math.max(0, f.fromMs, f.civilFrom - DAY_MS),
    beforeMs: Math.min(f.beforeMs, f.civilBefore + DAY_MS, Math.floor(visibleUntil) + 1),
    arrivedByMs: visibleUntil,
    ...(cursorNs === undefined ? {} : { cursorNs }),
    ...(civilBounded(f)
      ? {
          accept: (t: number) => {
            const c = civilMs(t, timeZone)
            return c >= f.civilFrom && c < f.civilBefore
          },
        }
      : {}),
    // A family without the user's only source of the type holds none of it.
    limit: sourceInFamily(ctx.seed, type.fitType, request.family) ? request.pageSize + 1 : 0,
  })
  const page = found.slice(0, request.pageSize)
  const last = page[page.length - 1]
  return dataPointsPage(
    request.method,
    page.map((item) => source.dataPoint(item)),
    found.length > page.length && last !== undefined ? encodePageToken(requestFingerprint, source.cursorNs(last)) : undefined,
  )
}

// ---------------------------------------------------------------------------------------------
// Writing instants

/** google.protobuf.Duration JSON, e.g. "-18000s": the zone's offset from UTC at instant t. */
export const utcOffset = (t: number, timeZone: string): string => `${Math.round(offsetAt(t, timeZone) / 1000)}s`

/** The user's wall clock at instant t, as a google.type civil date and time. */
export function civilAt(t: number, timeZone: string): CivilDateTime {
  const w = wallTime(t, timeZone)
  return civilJson({ year: w.year, month: w.month, day: w.day, hours: w.hour, minutes: w.minute, seconds: w.second, nanos: w.millisecond * 1_000_000 })
}

/** The wall-clock time at instant t in the zone, as ms (see wallAsUtc): what civil bounds compare. */
const civilMs = (t: number, timeZone: string): number => wallAsUtc(wallTime(t, timeZone))

export const iso = (ms: number): string => formatTimestamp(BigInt(ms) * NS_PER_MS)

/** A session's interval as the Health API writes it: its instants, and their offsets and civil times in the user's zone. */
export interface SessionIntervalJson {
  startTime: string
  endTime: string
  startUtcOffset: string
  endUtcOffset: string
  /** The user's wall clock at the start and end (output only, as Google fills them in). */
  civilStartTime: CivilDateTime
  civilEndTime: CivilDateTime
}

export function sessionInterval(startMs: number, endMs: number, timeZone: string): SessionIntervalJson {
  return {
    startTime: iso(startMs),
    endTime: iso(endMs),
    startUtcOffset: utcOffset(startMs, timeZone),
    endUtcOffset: utcOffset(endMs, timeZone),
    civilStartTime: civilAt(startMs, timeZone),
    civilEndTime: civilAt(endMs, timeZone),
  }
}

/** A stable data point id: a lowercase UUID-shaped hash of what identifies the point. */
export function dataPointId(parts: readonly (string | number)[]): string {
  const hex = createHash('sha256').update(JSON.stringify(parts)).digest('hex')
  return [hex.slice(0, 8), hex.slice(8, 12), hex.slice(12, 16), hex.slice(16, 20), hex.slice(20, 32)].join('-')
}
