import {
  ACTIVITY_GROUP_FIELDS,
  SLEEP_STAGE_FIELDS,
  UpstreamError,
  dataType,
  type DataTypeKey,
  type DataTypeSpec,
  type FitSource,
  type FitnessSample,
  type TimeWindow,
} from '@fitstream/shared'

export interface NormalizeResult {
  readonly samples: FitnessSample[]
  /** Points that could not be used, by reason (logged and counted, never fatal on their own). */
  readonly rejected: Readonly<Record<string, number>>
  readonly buckets: number
}

interface Point {
  readonly startMs: number
  readonly endMs: number
  readonly value: readonly unknown[]
  readonly origin: string | undefined
}

/**
 * Turns a `dataset:aggregate` response into FitnessSamples, one per type and bucket, over the
 * bucket's interval. Google's shapes are checked, not trusted: int64 fields arrive as strings,
 * datasets are matched to the requested types by position, and a point that is malformed, of the
 * wrong type, non-finite or outside its bucket is set aside and counted while the rest is used. A
 * response with no bucket list at all is unusable.
 */
export function normalizeAggregate(response: unknown, dataTypes: readonly DataTypeKey[], window: TimeWindow): NormalizeResult {
  // The client hands over the text itself when the body does not parse (an HTML error page, a cut-off answer).
  if (typeof response === 'string') {
    throw new UpstreamError('FST_ERR_GOOGLE_MALFORMED', `Google aggregate response is not a JSON object but ${response.length} characters of text`, {
      permanent: true,
    })
  }
  const buckets = (response as { bucket?: unknown } | null)?.bucket
  if (!Array.isArray(buckets)) {
    throw new UpstreamError('FST_ERR_GOOGLE_MALFORMED', 'Google aggregate response has no bucket list', { permanent: true })
  }
  const samples: FitnessSample[] = []
  const rejected: Record<string, number> = {}
  const reject = (reason: string): void => {
    rejected[reason] = (rejected[reason] ?? 0) + 1
  }

  for (const bucket of buckets) {
    const bucketStart = int64((bucket as { startTimeMillis?: unknown })?.startTimeMillis)
    const bucketEnd = int64((bucket as { endTimeMillis?: unknown })?.endTimeMillis)
    const datasets = (bucket as { dataset?: unknown })?.dataset
    if (bucketStart === undefined || bucketEnd === undefined || bucketStart >= bucketEnd || !Array.isArray(datasets)) {
      reject('malformed bucket')
      continue
    }
    if (bucketStart < window.startMs || bucketEnd > window.endMs) {
      reject('bucket outside window')
      continue
    }
    datasets.forEach((dataset: unknown, index) => {
      const key = dataTypes[index]
      const rawPoints = (dataset as { point?: unknown })?.point
      if (key === undefined) return reject('unrequested dataset')
      if (rawPoints === undefined) return // an empty bucket may omit the list
      if (!Array.isArray(rawPoints)) return reject('malformed dataset')
      const spec = dataType(key)
      const fit = spec.fit
      if (fit === undefined) return reject('unrequested dataset')
      const points: Point[] = []
      for (const raw of rawPoints) {
        const point = readPoint(raw, fit, bucketStart, bucketEnd)
        if (typeof point === 'string') reject(point)
        else points.push(point)
      }
      if (points.length === 0) return
      const values = extract(spec, fit, points, reject)
      if (values === undefined) return
      samples.push({
        type: key,
        startMs: bucketStart,
        endMs: bucketEnd,
        values,
        unit: spec.unit,
        revision: 0,
        ...(points[0]!.origin === undefined ? {} : { origin: points[0]!.origin }),
      })
    })
  }
  return { samples, rejected, buckets: buckets.length }
}

function readPoint(raw: unknown, fit: FitSource, bucketStart: number, bucketEnd: number): Point | string {
  if (raw === null || typeof raw !== 'object') return 'malformed point'
  const p = raw as { dataTypeName?: unknown; startTimeNanos?: unknown; endTimeNanos?: unknown; value?: unknown; originDataSourceId?: unknown }
  if (p.dataTypeName !== fit.aggregateDataType) return 'unexpected data type'
  const startMs = int64(p.startTimeNanos, 1_000_000)
  const endMs = int64(p.endTimeNanos, 1_000_000)
  if (startMs === undefined || endMs === undefined) return 'malformed time'
  // A point spans the readings it was built from: it starts in its bucket but may end a little after.
  if (startMs < bucketStart || startMs >= bucketEnd || startMs > endMs) return 'point outside bucket'
  if (!Array.isArray(p.value)) return 'missing values'
  return { startMs, endMs, value: p.value, origin: typeof p.originDataSourceId === 'string' ? p.originDataSourceId : undefined }
}

function extract(spec: DataTypeSpec, fit: FitSource, points: readonly Point[], reject: (reason: string) => void): Record<string, number> | undefined {
  switch (fit.extraction) {
    case 'point': {
      // One point per bucket: the first usable one counts, anything after it is surprising.
      let values: Record<string, number> | undefined
      for (const point of points) {
        const parsed = pointValues(spec, point)
        if (typeof parsed === 'string') reject(parsed)
        else if (values !== undefined) reject('extra point in bucket')
        else values = parsed
      }
      return values
    }
    case 'stage-minutes':
      return minutesBy(spec, points, SLEEP_STAGE_FIELDS, (p) => p.endMs - p.startMs, reject)
    case 'activity-minutes':
      return minutesBy(spec, points, ACTIVITY_GROUP_FIELDS, (p) => numberAt(p.value, 1, 'int'), reject, 'other_min')
  }
}

function pointValues(spec: DataTypeSpec, point: Point): Record<string, number> | string {
  const values: Record<string, number> = {}
  for (const [i, field] of spec.fields.entries()) {
    const number = numberAt(point.value, i, field.format)
    if (typeof number === 'string') return number
    values[field.name] = number
  }
  return values
}

/** Sums durations into the field their category maps to (sleep stages, activity groups). */
function minutesBy(
  spec: DataTypeSpec,
  points: readonly Point[],
  fields: Readonly<Record<number, string>>,
  durationMs: (point: Point) => number | string,
  reject: (reason: string) => void,
  fallback?: string,
): Record<string, number> | undefined {
  const values: Record<string, number> = Object.fromEntries(spec.fields.map((f) => [f.name, 0]))
  let used = 0
  for (const point of points) {
    const category = numberAt(point.value, 0, 'int')
    const duration = durationMs(point)
    if (typeof category === 'string' || typeof duration === 'string' || duration < 0) {
      reject(typeof category === 'string' ? category : typeof duration === 'string' ? duration : 'negative duration')
      continue
    }
    const field = fields[category] ?? fallback
    if (field === undefined) {
      reject('unknown category')
      continue
    }
    values[field] = (values[field] ?? 0) + duration / 60_000
    used++
  }
  return used === 0 ? undefined : values
}

/**
 * A number as proto3 JSON may quote it. Number() alone would also take '', '  ' or '0x10' for a
 * reading (0, 0 and 16); proto3's 'NaN' and 'Infinity' end up non-finite either way.
 */
const DECIMAL = /^-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/

function numberAt(value: readonly unknown[], index: number, format: 'int' | 'float'): number | string {
  const raw = (value[index] as { intVal?: unknown; fpVal?: unknown } | undefined) ?? {}
  const v = format === 'int' ? raw.intVal : raw.fpVal
  if (v === undefined) return 'missing values'
  const number = typeof v === 'number' ? v : typeof v === 'string' && DECIMAL.test(v) ? Number(v) : Number.NaN
  if (!Number.isFinite(number)) return 'non-finite value'
  if (format === 'int' && !Number.isInteger(number)) return 'non-integer value'
  return number
}

/** An int64 as Google sends it (a decimal string, sometimes a number), divided down to ms. */
function int64(value: unknown, divisor = 1): number | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) ? Math.floor(value / divisor) : undefined
  if (typeof value !== 'string' || !/^-?\d{1,25}$/.test(value)) return undefined
  const result = Number(BigInt(value) / BigInt(divisor))
  return Number.isSafeInteger(result) ? result : undefined
}
