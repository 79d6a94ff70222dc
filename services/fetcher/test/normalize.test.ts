import { describe, expect, it } from 'vitest'
import { normalizeAggregate } from '../src/normalize.js'

const HOUR = 3_600_000
const t0 = Date.UTC(2026, 10, 23, 10)
const window = { startMs: t0, endMs: t0 + 2 * HOUR }
const ns = (ms: number) => `${ms}000000`

const stepsPoint = (start: number, count: unknown) => ({
  startTimeNanos: ns(start + 60_000),
  endTimeNanos: ns(start + 50 * 60_000),
  dataTypeName: 'com.google.step_count.delta',
  originDataSourceId: 'raw:com.google.step_count.delta:com.example:Phone:abc123',
  value: [{ intVal: count, mapVal: [] }],
})
const hrPoint = (start: number) => ({
  startTimeNanos: ns(start),
  endTimeNanos: ns(start + HOUR),
  dataTypeName: 'com.google.heart_rate.summary',
  originDataSourceId: 'derived:com.google.heart_rate.bpm:com.google.android.gms:merge_heart_rate_bpm',
  value: [
    { fpVal: 71.5, mapVal: [] },
    { fpVal: 110, mapVal: [] },
    { fpVal: 52, mapVal: [] },
  ],
})
const bucket = (start: number, datasets: unknown[]) => ({
  startTimeMillis: String(start),
  endTimeMillis: String(start + HOUR),
  dataset: datasets.map((point) => ({ dataSourceId: 'derived:x:com.google.android.gms:aggregated', point })),
})

describe('normalizeAggregate', () => {
  it('reads int64 strings and named values, one sample per type and bucket, over the bucket interval', () => {
    const response = { bucket: [bucket(t0, [[stepsPoint(t0, 532)], [hrPoint(t0)]]), bucket(t0 + HOUR, [[], []])] }
    const { samples, rejected, buckets } = normalizeAggregate(response, ['steps', 'heart_rate'], window)
    expect(buckets).toBe(2)
    expect(rejected).toEqual({})
    expect(samples).toEqual([
      {
        type: 'steps',
        startMs: t0,
        endMs: t0 + HOUR,
        values: { count: 532 },
        unit: 'steps',
        revision: 0,
        origin: 'raw:com.google.step_count.delta:com.example:Phone:abc123',
      },
      { type: 'heart_rate', startMs: t0, endMs: t0 + HOUR, values: { avg: 71.5, max: 110, min: 52 }, unit: 'bpm', revision: 0, origin: expect.any(String) },
    ])
  })

  it('sets aside malformed, mistyped, non-finite and out-of-window points, counting each reason, and keeps the rest', () => {
    const response = {
      bucket: [
        bucket(t0, [[stepsPoint(t0, 'NaN'), stepsPoint(t0, 10)]]),
        bucket(t0 + HOUR, [[{ ...stepsPoint(t0 + HOUR, 5), dataTypeName: 'com.google.weight.summary' }]]),
        bucket(t0 + 5 * HOUR, [[stepsPoint(t0 + 5 * HOUR, 7)]]),
        { startTimeMillis: 'soon', dataset: [] },
      ],
    }
    const { samples, rejected } = normalizeAggregate(response, ['steps'], window)
    expect(samples.map((s) => s.values.count)).toEqual([10])
    expect(rejected).toEqual({ 'non-finite value': 1, 'unexpected data type': 1, 'bucket outside window': 1, 'malformed bucket': 1 })
  })

  it('refuses a response with no bucket list', () => {
    expect(() => normalizeAggregate({ error: 'surprise' }, ['steps'], window)).toThrow(/no bucket list/)
    expect(() => normalizeAggregate(null, ['steps'], window)).toThrow(/no bucket list/)
  })
})
