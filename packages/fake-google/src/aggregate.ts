/**
 * users.dataset.aggregate: request validation as strict as Google's (unknown fields, bad int64s and
 * oversized spans are rejected, so client bugs surface here rather than in production), bucketing,
 * and the response, built from the same pure functions tests use to predict it.
 */

import { aggregatedDataSourceId, fitType, GMS_PACKAGE, type FitTypeSpec } from './catalogue.js'
import { badRequest, FitApiError } from './errors.js'
import { aggregateSamples, rawDataSourceId, rawSamples, type AggregatePoint, type RawSample } from './synthetic.js'
import { addCalendarPeriod, isValidTimeZone } from './time-zones.js'

/** Google refuses aggregate requests spanning more than 90 days. */
export const MAX_AGGREGATE_SPAN_MS = 7_776_000_000
/** The fake's own guard against absurd bucket counts (e.g. 1 ms buckets over 90 days). */
export const MAX_BUCKETS = 20_000
const MAX_AGGREGATE_BY = 100

export interface AggregateEntry {
  readonly type: FitTypeSpec
  /** As given in the request, when the entry named a source rather than a type. */
  readonly dataSourceId?: string
}

export interface TimeBucket {
  readonly startMs: number
  readonly endMs: number
}

export interface AggregateRequest {
  readonly entries: readonly AggregateEntry[]
  readonly startMs: number
  readonly endMs: number
  readonly buckets: readonly TimeBucket[]
}

export interface AggregateDataset {
  dataSourceId: string
  point: AggregatePoint[]
}

export interface AggregateBucket {
  startTimeMillis: string
  endTimeMillis: string
  dataset: AggregateDataset[]
}

export interface AggregateResponse {
  bucket: AggregateBucket[]
}

type Json = Record<string, unknown>

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v)

function rejectUnknownFields(obj: Json, allowed: readonly string[], at?: string): void {
  for (const key of Object.keys(obj)) {
    if (!allowed.includes(key)) {
      const where = at === undefined ? '' : ` at '${at}'`
      throw badRequest(`Invalid JSON payload received. Unknown name "${key}"${where}: Cannot find field.`)
    }
  }
}

function expectObject(v: unknown, field: string): Json {
  if (!isObject(v)) {
    throw badRequest(`Invalid value at '${field}', expected an object.`)
  }
  return v
}

/** Proto3 JSON int64: a number or a decimal string. */
export function parseInt64(v: unknown, field: string): number {
  let n: number = Number.NaN
  if (typeof v === 'number') n = v
  else if (typeof v === 'string' && /^-?\d{1,19}$/.test(v)) n = Number(v)
  if (!Number.isSafeInteger(n)) {
    throw badRequest(`Invalid value at '${field}' (TYPE_INT64), ${JSON.stringify(v) ?? String(v)}`)
  }
  return n
}

function parseInt32(v: unknown, field: string): number {
  const n = parseInt64(v, field)
  if (n > 2_147_483_647 || n < -2_147_483_648) {
    throw badRequest(`Invalid value at '${field}' (TYPE_INT32), ${JSON.stringify(v)}`)
  }
  return n
}

function parseEntry(v: unknown, index: number, seed: string | undefined): AggregateEntry {
  const at = `aggregate_by[${index}]`
  const entry = expectObject(v, at)
  rejectUnknownFields(entry, ['dataTypeName', 'dataSourceId'], at)
  const { dataTypeName, dataSourceId } = entry
  if ((dataTypeName === undefined) === (dataSourceId === undefined)) {
    throw badRequest(`Exactly one of dataTypeName or dataSourceId must be set in aggregateBy[${index}].`)
  }
  if (dataTypeName !== undefined) {
    if (typeof dataTypeName !== 'string') throw badRequest(`Invalid value at '${at}.data_type_name' (TYPE_STRING)`)
    const type = fitType(dataTypeName)
    if (type === undefined) throw badRequest(`Unknown data type name: ${dataTypeName}`)
    return { type }
  }
  if (typeof dataSourceId !== 'string') throw badRequest(`Invalid value at '${at}.data_source_id' (TYPE_STRING)`)
  const parts = dataSourceId.split(':')
  const kind = parts[0]
  const typeName = parts[1] ?? ''
  if (parts.length < 3 || (kind !== 'raw' && kind !== 'derived') || (parts[2] ?? '') === '') {
    throw badRequest(`Invalid data source id: ${dataSourceId}`)
  }
  const type = fitType(typeName)
  if (type === undefined) throw badRequest(`Unknown data type name: ${typeName}`)
  // Derived streams are Google's own merges and exist for every user; raw streams belong to devices.
  if (kind === 'raw' && seed !== undefined && dataSourceId !== rawDataSourceId(seed, type)) {
    throw new FitApiError(403, `datasource not found or not readable: ${dataSourceId}`)
  }
  if (kind === 'derived' && parts[2] !== GMS_PACKAGE) {
    throw new FitApiError(403, `datasource not found or not readable: ${dataSourceId}`)
  }
  return { type, dataSourceId }
}

function buildBuckets(body: Json, startMs: number, endMs: number): TimeBucket[] {
  const others = ['bucketBySession', 'bucketByActivityType', 'bucketByActivitySegment'].filter((k) => body[k] !== undefined)
  const byTime = body['bucketByTime']
  if ((byTime === undefined ? 0 : 1) + others.length !== 1) {
    throw badRequest('Exactly one bucketing strategy must be specified.')
  }
  if (byTime === undefined) {
    throw badRequest(`${others[0] ?? 'This bucketing strategy'} is not supported by this fake; use bucketByTime.`)
  }
  const spec = expectObject(byTime, 'bucket_by_time')
  rejectUnknownFields(spec, ['durationMillis', 'period'], 'bucket_by_time')
  const hasDuration = spec['durationMillis'] !== undefined
  const hasPeriod = spec['period'] !== undefined
  if (hasDuration === hasPeriod) {
    throw badRequest('bucketByTime must specify exactly one of durationMillis or period.')
  }

  const buckets: TimeBucket[] = []
  const push = (s: number, e: number): void => {
    if (buckets.length >= MAX_BUCKETS) {
      throw badRequest(`Too many buckets requested; at most ${MAX_BUCKETS} are allowed.`)
    }
    buckets.push({ startMs: s, endMs: Math.min(e, endMs) })
  }

  if (hasDuration) {
    const duration = parseInt64(spec['durationMillis'], 'bucket_by_time.duration_millis')
    if (duration <= 0) throw badRequest('bucketByTime.durationMillis must be positive.')
    if (Math.ceil((endMs - startMs) / duration) > MAX_BUCKETS) {
      throw badRequest(`Too many buckets requested; at most ${MAX_BUCKETS} are allowed.`)
    }
    for (let s = startMs; s < endMs; s += duration) push(s, s + duration)
    return buckets
  }

  const period = expectObject(spec['period'], 'bucket_by_time.period')
  rejectUnknownFields(period, ['type', 'value', 'timeZoneId'], 'bucket_by_time.period')
  const unit = period['type']
  if (unit !== 'day' && unit !== 'week' && unit !== 'month') {
    throw badRequest(
      `Invalid value at 'bucket_by_time.period.type' (type.googleapis.com/fitness.BucketByTimePeriod.Type), ${JSON.stringify(unit) ?? 'undefined'}`,
    )
  }
  const value = period['value'] === undefined ? 1 : parseInt32(period['value'], 'bucket_by_time.period.value')
  if (value <= 0) throw badRequest('bucketByTime.period.value must be positive.')
  const zone = period['timeZoneId'] === undefined ? 'UTC' : period['timeZoneId']
  if (typeof zone !== 'string' || !isValidTimeZone(zone)) {
    throw badRequest(`Invalid time zone id: ${String(zone)}`)
  }
  // Anchored at the start (not chained), so month buckets from Jan 31 end on Feb 28, Mar 31, Apr 30.
  for (let k = 0, s = startMs; s < endMs; k++) {
    const next = addCalendarPeriod(startMs, unit, value * (k + 1), zone)
    // Cannot happen with a sane zone database, but an endless loop would hang the fake.
    if (!(next > s)) throw new FitApiError(500, 'Internal error computing calendar buckets.')
    push(s, next)
    s = next
  }
  return buckets
}

/**
 * Validates an aggregate request body the way Google does. With a seed, raw dataSourceIds are also
 * checked against that user's devices. Throws FitApiError (400/403).
 */
export function parseAggregateRequest(body: unknown, seed?: string): AggregateRequest {
  const b = expectObject(body, 'body')
  rejectUnknownFields(b, [
    'aggregateBy',
    'bucketByTime',
    'bucketBySession',
    'bucketByActivityType',
    'bucketByActivitySegment',
    'startTimeMillis',
    'endTimeMillis',
    'filteredDataQualityStandard',
  ])
  const aggregateBy = b['aggregateBy']
  if (!Array.isArray(aggregateBy) || aggregateBy.length === 0) {
    throw badRequest('aggregateBy must contain at least one entry.')
  }
  if (aggregateBy.length > MAX_AGGREGATE_BY) throw badRequest(`aggregateBy has more than ${MAX_AGGREGATE_BY} entries.`)
  const entries = aggregateBy.map((e, i) => parseEntry(e, i, seed))

  if (b['startTimeMillis'] === undefined) throw badRequest('startTimeMillis must be set.')
  if (b['endTimeMillis'] === undefined) throw badRequest('endTimeMillis must be set.')
  const startMs = parseInt64(b['startTimeMillis'], 'start_time_millis')
  const endMs = parseInt64(b['endTimeMillis'], 'end_time_millis')
  if (startMs < 0) throw badRequest('startTimeMillis must not be negative.')
  if (endMs <= startMs) throw badRequest('endTimeMillis must be greater than startTimeMillis.')
  if (endMs - startMs > MAX_AGGREGATE_SPAN_MS) {
    throw badRequest(`Aggregate duration too large: ${endMs - startMs} ms; the maximum is ${MAX_AGGREGATE_SPAN_MS} ms (90 days).`)
  }
  const quality = b['filteredDataQualityStandard']
  if (quality !== undefined && !(Array.isArray(quality) && quality.every((q) => typeof q === 'string'))) {
    throw badRequest(`Invalid value at 'filtered_data_quality_standard'`)
  }
  return { entries, startMs, endMs, buckets: buildBuckets(b, startMs, endMs) }
}

/** The data a user's aggregate request returns, with the server's clock at nowMs. */
export interface DataArrival {
  /** Readings reach Google this long after they end (phones upload late). */
  readonly uploadDelayMs?: number
  /** Readings that arrived after the fact, per raw data type (they change past buckets). */
  readonly lateSamples?: (dataTypeName: string) => readonly RawSample[]
}

/**
 * The samples of a raw type that a request made at nowMs sees: generated and late ones that start
 * in [startMs, endMs) and have reached Google, in start order. Shared by the Fit aggregate and the
 * Health roll-ups, so both APIs read the same data.
 */
export function arrivedSamples(seed: string, dataTypeName: string, startMs: number, endMs: number, nowMs: number, arrival: DataArrival = {}): RawSample[] {
  const visibleUntil = nowMs - (arrival.uploadDelayMs ?? 0)
  const late = (arrival.lateSamples?.(dataTypeName) ?? []).filter((s) => s.startMs >= startMs && s.startMs < endMs && s.endMs <= visibleUntil)
  const generated = rawSamples(seed, dataTypeName, startMs, endMs, visibleUntil)
  return late.length === 0 ? generated : [...generated, ...late].sort((a, b) => a.startMs - b.startMs)
}

export function buildAggregateResponse(seed: string, request: AggregateRequest, nowMs: number, arrival: DataArrival = {}): AggregateResponse {
  const { buckets } = request
  const datasets = request.entries.map((entry) => {
    // Generate once for the whole span, then hand each bucket the samples starting inside it.
    const samples = arrivedSamples(seed, entry.type.name, request.startMs, request.endMs, nowMs, arrival)
    const perBucket: RawSample[][] = buckets.map(() => [])
    let i = 0
    for (const s of samples) {
      while (i < buckets.length && s.startMs >= (buckets[i] as TimeBucket).endMs) i++
      if (i === buckets.length) break
      perBucket[i]?.push(s)
    }
    return perBucket.map((bucketSamples) => ({
      dataSourceId: aggregatedDataSourceId(entry.type),
      point: aggregateSamples(seed, entry.type.name, bucketSamples),
    }))
  })
  return {
    bucket: buckets.map((bucket, b) => ({
      startTimeMillis: String(bucket.startMs),
      endTimeMillis: String(bucket.endMs),
      dataset: datasets.map((perBucket) => perBucket[b] as AggregateDataset),
    })),
  }
}

/** Validation plus response, for tests that want the whole expected answer to a request body. */
export function expectedAggregateResponse(seed: string, body: unknown, nowMs: number): AggregateResponse {
  return buildAggregateResponse(seed, parseAggregateRequest(body, seed), nowMs)
}
