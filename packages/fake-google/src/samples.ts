/**
 * The Google Health API's sample data types the fake lists: users.dataTypes.dataPoints.list on
 * `height`, `oxygen-saturation`, `weight` and `body-fat`. Each data point is one raw sample of the Fit type that measures
 * the same thing (com.google.height, com.google.oxygen_saturation), so one user reads the same
 * readings at the same instants through either API: height in millimetres, SpO2 in percent.
 *
 * A sample is listed once it has reached Google, by the rule (and with the late samples and upload
 * delay) of the Fit aggregate's raw samples: arrivedSamples. The filter bounds the sample time
 * (`<type>.sample_time.physical_time`, or `civil_time` in the user's zone); the answer runs newest
 * first, 1440 to a page by default and at most 10000. The synthetic history starts at the Unix
 * epoch, as the Fit aggregate's does, so a list without a lower bound ends there. Samples are
 * generated backwards from the upper bound a week at a time and the walk stops once the page is
 * full, so a page costs about what it holds; only a sparse type listed back to the epoch walks the
 * whole history (about 490,000 hours of cheap generator calls for height).
 */

import { arrivedSamples } from './aggregate.js'
import { healthSampleType, type HealthSampleDataType, type HealthSampleTypeSpec } from './health-catalogue.js'
import {
  civilAt,
  dataPointId,
  iso,
  listPage,
  parseTimeListQuery,
  requireFiniteRange,
  utcOffset,
  type DataPointsPage,
  type ListMethod,
  type PageQuery,
  type TimeFilterFields,
  type TimeListRequest,
} from './list.js'
import type { CivilDateTime, RollUpContext } from './rollup.js'
import { DAY_MS, rawSamples, recordingDevice, type DeviceInfo, type RawSample } from './synthetic.js'

const NS_PER_MS = 1_000_000n

/** A sample as the fake lists it: its instant and its value in the API's units (mm, percent). */
export interface HealthSample {
  readonly timeMs: number
  readonly value: number
}

// ---------------------------------------------------------------------------------------------
// The answer's JSON, as the Health API writes a sample DataPoint.

/** google.devicesandservices.health.v4.ObservationSampleTime. */
export interface ObservationSampleTimeJson {
  physicalTime: string
  /** google.protobuf.Duration JSON, e.g. "-18000s": the user's offset from UTC at that instant. */
  utcOffset: string
  /** The user's wall clock at that instant (output only, as Google fills it in). */
  civilTime: CivilDateTime
}

export interface HeightJson {
  /** int64 millimetres as a decimal string; a "0" is left out, as proto3 JSON does. */
  heightMillimeters?: string
  sampleTime: ObservationSampleTimeJson
}

export interface OxygenSaturationJson {
  /** 0-100; a 0 is left out, as proto3 JSON does. */
  percentage?: number
  sampleTime: ObservationSampleTimeJson
}

/** Where the sample came from: the user's own device that recorded the Fit raw type. */
export interface SampleDataSourceJson {
  recordingMethod: 'ACTIVELY_MEASURED' | 'PASSIVELY_MEASURED'
  /** formFactor is left out for a device Fit calls 'unknown'. */
  device: { formFactor?: 'PHONE' | 'WATCH' | 'SCALE'; manufacturer: string; displayName: string }
  application: { packageName: string }
  platform: 'FIT' | 'FITBIT' | 'HEALTH_CONNECT'
}

export interface HeightDataPoint {
  /** `users/<googleId>/dataTypes/height/dataPoints/<id>`; the id is stable for a user's sample. */
  name: string
  dataSource: SampleDataSourceJson
  height: HeightJson
}

export interface OxygenSaturationDataPoint {
  /** `users/<googleId>/dataTypes/oxygen-saturation/dataPoints/<id>`. */
  name: string
  dataSource: SampleDataSourceJson
  oxygenSaturation: OxygenSaturationJson
}

export interface WeightJson {
  /** Grams (a double); a 0 is left out, as proto3 JSON does. */
  weightGrams?: number
  sampleTime: ObservationSampleTimeJson
}

export interface BodyFatJson {
  /** 0-100; a 0 is left out, as proto3 JSON does. */
  percentage?: number
  sampleTime: ObservationSampleTimeJson
}

export interface WeightDataPoint {
  /** `users/<googleId>/dataTypes/weight/dataPoints/<id>`. */
  name: string
  dataSource: SampleDataSourceJson
  weight: WeightJson
}

export interface BodyFatDataPoint {
  /** `users/<googleId>/dataTypes/body-fat/dataPoints/<id>`. */
  name: string
  dataSource: SampleDataSourceJson
  bodyFat: BodyFatJson
}

export type SampleDataPoint = HeightDataPoint | OxygenSaturationDataPoint | WeightDataPoint | BodyFatDataPoint

// ---------------------------------------------------------------------------------------------
// Samples

function requireSampleType(name: string): HealthSampleTypeSpec {
  const type = healthSampleType(name)
  if (type === undefined) throw new Error(`Unknown Health sample data type ${name}`)
  return type
}

/** The sample's value in the API's units: Fit's metres as whole millimetres, kilograms as grams; percentages as they are. */
function sampleValue(type: HealthSampleTypeSpec, sample: RawSample): number {
  const v = sample.values[0] ?? 0
  // Grams to the microgram, as the weight roll-up gives them.
  return type.name === 'height' ? Math.round(v * 1000) : type.name === 'weight' ? Math.round(v * 1e9) / 1e6 : v
}

/**
 * Exactly the samples the fake lists for a user with this seed whose time lies in [startMs, endMs),
 * newest first (the list's own order), when the server's clock reads nowMs: the Fit raw samples of
 * the same type (rawSamples), one for one, in millimetres (height) or percent (oxygen-saturation).
 * Times before the Unix epoch hold none, as in the list. Late samples and upload delays are the
 * server's, not the seed's, so they are not in here.
 */
export function healthSamples(
  seed: string,
  type: HealthSampleDataType,
  startMs: number,
  endMs: number,
  nowMs: number = Number.POSITIVE_INFINITY,
): HealthSample[] {
  requireFiniteRange(startMs, endMs)
  const spec = requireSampleType(type)
  return rawSamples(seed, spec.fitType, Math.max(0, startMs), endMs, nowMs)
    .reverse()
    .map((s) => ({ timeMs: s.startMs, value: sampleValue(spec, s) }))
}

/** A sample found for a page, and its place among the samples at its very instant (in arrival order). */
interface Listed {
  readonly sample: RawSample
  readonly tie: number
}

/** Where a page left off: its last sample's instant, and how many at that instant it served. */
interface Cursor {
  readonly timeMs: number
  readonly tie: number
}

/** Samples are generated backwards this much at a time, until a page is full. */
const CHUNK_MS = 7 * DAY_MS

/**
 * The samples matching the query, newest first: those at [fromMs, beforeMs) whose time the query
 * accepts and, after a page token, that come after its cursor (the instant of the last sample
 * served, and how many at that instant were, in the nanoseconds an instant of whole milliseconds
 * leaves free). Those at one instant (only late samples can share one) come in the order they
 * arrived, so one arriving between pages is neither repeated nor skipped.
 */
function samplesNewestFirst(type: HealthSampleTypeSpec, ctx: RollUpContext, q: PageQuery): Listed[] {
  const found: Listed[] = []
  const after: Cursor | undefined = q.cursorNs === undefined ? undefined : { timeMs: Number(q.cursorNs / NS_PER_MS), tie: Number(q.cursorNs % NS_PER_MS) }
  let hi = after === undefined ? q.beforeMs : Math.min(q.beforeMs, after.timeMs + 1)
  while (hi > q.fromMs && found.length < q.limit) {
    const lo = Math.max(q.fromMs, Math.floor((hi - 1) / CHUNK_MS) * CHUNK_MS)
    const chunk = arrivedSamples(ctx.seed, type.fitType, lo, hi, ctx.nowMs, ctx.arrival)
    for (let end = chunk.length; end > 0 && found.length < q.limit;) {
      const timeMs = (chunk[end - 1] as RawSample).startMs
      let start = end - 1
      while (start > 0 && (chunk[start - 1] as RawSample).startMs === timeMs) start--
      for (let i = start; i < end && found.length < q.limit; i++) {
        const tie = i - start
        if (after !== undefined && timeMs === after.timeMs && tie < after.tie) continue
        const sample = chunk[i] as RawSample
        if (q.accept === undefined || q.accept(sample.startMs)) found.push({ sample, tie })
      }
      end = start
    }
    hi = lo
  }
  return found
}

// ---------------------------------------------------------------------------------------------
// Request and answer

export type SampleListRequest = TimeListRequest

/** The sample-time fields of a sample type, named the way filters name the type (`oxygen_saturation`). */
function filterFields(type: HealthSampleTypeSpec): TimeFilterFields {
  return {
    dataType: type.name,
    prefix: type.filterName,
    physical: `${type.filterName}.sample_time.physical_time`,
    civil: `${type.filterName}.sample_time.civil_time`,
  }
}

/**
 * Validates a list (or reconcile) request on a sample type the way Google does; throws
 * HealthApiError (400). The filter takes `<type>.sample_time.physical_time` (RFC 3339) and
 * `<type>.sample_time.civil_time` (YYYY-MM-DD[THH:mm:ss], the user's zone) with >= and <, joined by AND.
 */
export function parseSampleListRequest(query: URLSearchParams, type: HealthSampleTypeSpec, method: ListMethod = 'list'): SampleListRequest {
  return parseTimeListQuery(query, type, filterFields(type), method)
}

const FORM_FACTORS: Readonly<Record<DeviceInfo['type'], SampleDataSourceJson['device']['formFactor']>> = {
  phone: 'PHONE',
  watch: 'WATCH',
  scale: 'SCALE',
  unknown: undefined,
}

/** The user's device that records the type: Fit's raw data source for it, in the Health API's words. */
function dataSource(seed: string, type: HealthSampleTypeSpec): SampleDataSourceJson {
  const d = recordingDevice(seed, type.fitType)
  const formFactor = FORM_FACTORS[d.type]
  return {
    // Height, weight and body fat are taken by stepping on the scale; SpO2 is read by the watch while the user sleeps.
    recordingMethod: type.name === 'oxygen-saturation' ? 'PASSIVELY_MEASURED' : 'ACTIVELY_MEASURED',
    device: { ...(formFactor === undefined ? {} : { formFactor }), manufacturer: d.manufacturer, displayName: d.model },
    application: { packageName: d.packageName },
    platform: d.packageName === 'com.google.android.apps.fitness' ? 'FIT' : d.manufacturer === 'Fitbit' ? 'FITBIT' : 'HEALTH_CONNECT',
  }
}

/**
 * One listed sample as the Health API's DataPoint, its offset and civil time in the user's zone;
 * source is the type's dataSource for the user, the same for every sample on a page.
 */
function sampleDataPoint(type: HealthSampleTypeSpec, ctx: RollUpContext, source: SampleDataSourceJson, listed: Listed, timeZone: string): SampleDataPoint {
  const t = listed.sample.startMs
  const value = sampleValue(type, listed.sample)
  const sampleTime = { physicalTime: iso(t), utcOffset: utcOffset(t, timeZone), civilTime: civilAt(t, timeZone) }
  const base = {
    name: `users/${ctx.googleId}/dataTypes/${type.name}/dataPoints/${dataPointId([ctx.seed, type.name, t, listed.tie])}`,
    dataSource: source,
  }
  switch (type.name) {
    case 'height':
      return { ...base, height: { ...(value === 0 ? {} : { heightMillimeters: String(value) }), sampleTime } }
    case 'weight':
      return { ...base, weight: { ...(value === 0 ? {} : { weightGrams: value }), sampleTime } }
    case 'body-fat':
      return { ...base, bodyFat: { ...(value === 0 ? {} : { percentage: value }), sampleTime } }
    case 'oxygen-saturation':
      return { ...base, oxygenSaturation: { ...(value === 0 ? {} : { percentage: value }), sampleTime } }
  }
}

/**
 * The list (or reconcile) answer: the user's samples that match the filter and have reached Google,
 * newest first, one page of them. A page token holds where the last page stopped (the instant of its
 * last sample, and how many at that instant it served, carried in the nanoseconds an instant of whole
 * milliseconds leaves free), so a sample can neither repeat nor be skipped when one arrives between
 * pages. A reconcile whose family leaves out the device recording the type (for google-wearables:
 * the scale, always; the watch, unless a Google or Fitbit one) finds none.
 */
export function buildSampleListResponse(
  type: HealthSampleTypeSpec,
  request: SampleListRequest,
  timeZone: string,
  ctx: RollUpContext,
): DataPointsPage<SampleDataPoint> {
  const source = dataSource(ctx.seed, type)
  return listPage(type, request, timeZone, ctx, {
    find: (q) => samplesNewestFirst(type, ctx, q),
    dataPoint: (listed) => sampleDataPoint(type, ctx, source, listed, timeZone),
    cursorNs: (last) => BigInt(last.sample.startMs) * NS_PER_MS + BigInt(last.tie + 1),
  })
}
