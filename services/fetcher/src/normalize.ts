import { UpstreamError, dataType, type DataTypeKey, type FitnessSample, type TimeWindow } from '@fitstream/shared'

export interface NormalizeResult {
  readonly samples: FitnessSample[]
  /** Points that could not be used, by reason (logged and counted, never fatal on their own). */
  readonly rejected: Readonly<Record<string, number>>
  readonly buckets: number
}

/**
 * Turns a `dataset:aggregate` response into FitnessSamples. Google's shapes are checked, not trusted:
 * int64 fields arrive as strings, datasets are matched to the requested types by position, and a
 * point that is malformed, of the wrong type, non-finite or outside the window is set aside and
 * counted while the rest is used. A response with no bucket list at all is unusable.
 */
export function normalizeAggregate(response: unknown, dataTypes: readonly DataTypeKey[], window: TimeWindow): NormalizeResult {
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
      const points = (dataset as { point?: unknown })?.point
      if (key === undefined) return reject('unrequested dataset')
      if (points === undefined) return // an empty bucket may omit the list
      if (!Array.isArray(points)) return reject('malformed dataset')
      let used = 0
      for (const point of points) {
        const sample = toSample(point, key, bucketStart, bucketEnd)
        if (typeof sample === 'string') {
          reject(sample)
        } else if (used > 0) {
          reject('extra point in bucket')
        } else {
          samples.push(sample)
          used++
        }
      }
    })
  }
  return { samples, rejected, buckets: buckets.length }
}

function toSample(point: unknown, key: DataTypeKey, bucketStart: number, bucketEnd: number): FitnessSample | string {
  if (point === null || typeof point !== 'object') return 'malformed point'
  const p = point as { dataTypeName?: unknown; startTimeNanos?: unknown; endTimeNanos?: unknown; value?: unknown; originDataSourceId?: unknown }
  const spec = dataType(key)
  if (p.dataTypeName !== spec.aggregateDataType) return 'unexpected data type'
  const startNanos = int64(p.startTimeNanos, 1_000_000)
  const endNanos = int64(p.endTimeNanos, 1_000_000)
  if (startNanos === undefined || endNanos === undefined) return 'malformed time'
  // A point spans the readings it was built from: it starts in its bucket but may end a little after.
  if (startNanos < bucketStart || startNanos >= bucketEnd || startNanos > endNanos) return 'point outside bucket'
  if (!Array.isArray(p.value) || p.value.length < spec.fields.length) return 'missing values'
  const values: Record<string, number> = {}
  for (const [i, field] of spec.fields.entries()) {
    const raw = (p.value[i] as { intVal?: unknown; fpVal?: unknown } | undefined) ?? {}
    const value = field.format === 'int' ? raw.intVal : raw.fpVal
    const number = typeof value === 'number' ? value : typeof value === 'string' ? Number(value) : Number.NaN
    if (!Number.isFinite(number)) return 'non-finite value'
    if (field.format === 'int' && !Number.isInteger(number)) return 'non-integer value'
    values[field.name] = number
  }
  return {
    type: key,
    startMs: bucketStart,
    endMs: bucketEnd,
    values,
    unit: spec.unit,
    revision: 0,
    ...(typeof p.originDataSourceId === 'string' ? { origin: p.originDataSourceId } : {}),
  }
}

/** An int64 as Google sends it (a decimal string, sometimes a number), divided down to ms. */
function int64(value: unknown, divisor = 1): number | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) ? Math.floor(value / divisor) : undefined
  if (typeof value !== 'string' || !/^-?\d{1,25}$/.test(value)) return undefined
  const result = Number(BigInt(value) / BigInt(divisor))
  return Number.isSafeInteger(result) ? result : undefined
}
