import { randomBytes } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import type { FitnessSample } from '@fitstream/shared'
import { anonymizeSamples, epochOf, pseudonym, type AnonymizationPolicy } from '../src/anonymize.js'

const policy: AnonymizationPolicy = { key: randomBytes(32), epoch: 'month', granularityMs: 3_600_000, decimals: 1 }
const HOUR = 3_600_000
const t0 = Date.UTC(2026, 10, 23, 10) // 2026-11-23T10:00Z
const origin = 'raw:com.google.step_count.delta:com.sec.android.app.shealth:Samsung:SM-G991B:1a2b3c4d:step_counter'

const steps = (startMs: number, endMs: number, count: number): FitnessSample => ({
  type: 'steps',
  startMs,
  endMs,
  values: { count },
  unit: 'steps',
  origin,
  revision: 0,
})

describe('anonymizeSamples', () => {
  it('keeps only allow-listed fields: no user id, no source or device id', () => {
    const userId = 'user-abcdef123456'
    const [record] = anonymizeSamples(userId, [steps(t0, t0 + HOUR, 532)], policy)
    expect(Object.keys(record!).sort()).toEqual(['end', 'epoch', 'id', 'pseudonym', 'revision', 'start', 'type', 'unit', 'values'])
    const text = JSON.stringify(record)
    for (const secret of [userId, 'SM-G991B', 'shealth', '1a2b3c4d', 'raw:']) expect(text).not.toContain(secret)
    expect(record).toMatchObject({
      type: 'steps',
      values: { count: 532 },
      unit: 'steps',
      start: '2026-11-23T10:00:00.000Z',
      end: '2026-11-23T11:00:00.000Z',
      epoch: '2026-11',
    })
  })

  it('coarsens time to the hour and combines what falls into one hour', () => {
    const records = anonymizeSamples(
      'user-abcdef123456',
      [steps(t0 + 5 * 60_000, t0 + 20 * 60_000, 100), steps(t0 + 40 * 60_000, t0 + 50 * 60_000, 50)],
      policy,
    )
    expect(records).toHaveLength(1)
    expect(records[0]).toMatchObject({ start: '2026-11-23T10:00:00.000Z', end: '2026-11-23T11:00:00.000Z', values: { count: 150 } })
  })

  it('combines summaries as avg/max/min and rounds fractional values', () => {
    const hr = (avg: number, max: number, min: number): FitnessSample => ({
      type: 'heart_rate',
      startMs: t0,
      endMs: t0 + 30 * 60_000,
      values: { avg, max, min },
      unit: 'bpm',
      revision: 0,
    })
    const [record] = anonymizeSamples(
      'user-abcdef123456',
      [hr(70.04, 90, 60.26), { ...hr(80, 120.55, 58), startMs: t0 + 30 * 60_000, endMs: t0 + HOUR }],
      policy,
    )
    expect(record!.values).toEqual({ avg: 75, max: 120.6, min: 58 })
  })

  it('gives one user one pseudonym within an epoch, a different one in the next, and differs between users', () => {
    const nov = anonymizeSamples('user-abcdef123456', [steps(t0, t0 + HOUR, 1)], policy)[0]!
    const nov2 = anonymizeSamples('user-abcdef123456', [steps(t0 + 24 * HOUR, t0 + 25 * HOUR, 1)], policy)[0]!
    const dec = anonymizeSamples('user-abcdef123456', [steps(Date.UTC(2026, 11, 1), Date.UTC(2026, 11, 1) + HOUR, 1)], policy)[0]!
    const other = anonymizeSamples('user-zyxwvu987654', [steps(t0, t0 + HOUR, 1)], policy)[0]!
    expect(nov.pseudonym).toBe(nov2.pseudonym)
    expect(dec.pseudonym).not.toBe(nov.pseudonym)
    expect(other.pseudonym).not.toBe(nov.pseudonym)
    expect(dec.epoch).toBe('2026-12')
  })

  it('is keyed: without the key the pseudonym cannot be recomputed', () => {
    const a = pseudonym(policy.key, 'user-abcdef123456', '2026-11')
    expect(pseudonym(randomBytes(32), 'user-abcdef123456', '2026-11')).not.toBe(a)
    expect(a).toMatch(/^[0-9a-f]{32}$/)
  })

  it('gives a record the same id every time, so subscribers can de-duplicate', () => {
    const first = anonymizeSamples('user-abcdef123456', [steps(t0, t0 + HOUR, 10)], policy)[0]!
    const again = anonymizeSamples('user-abcdef123456', [steps(t0, t0 + HOUR, 10)], policy)[0]!
    expect(again.id).toBe(first.id)
  })
})

describe('epochOf', () => {
  it('labels months, ISO weeks and days in UTC', () => {
    expect(epochOf(Date.UTC(2026, 10, 24), 'month')).toBe('2026-11')
    expect(epochOf(Date.UTC(2026, 10, 24), 'week')).toBe('2026-W48')
    expect(epochOf(Date.UTC(2021, 0, 3), 'week')).toBe('2020-W53')
    expect(epochOf(Date.UTC(2026, 10, 24, 23, 59), 'day')).toBe('2026-11-24')
  })
})
