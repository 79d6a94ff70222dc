import { describe, expect, it } from 'vitest'
import type { health_v4 } from 'googleapis/build/src/apis/health/index.js'
import type { FollowsSchema } from '../src/health-schema.js'
import { HEALTH_EXERCISE_TYPES, syntheticRollup, type ActiveZoneMinutesRollupValue, type SleepJson } from '../src/index.js'
import { DAY, HOUR, NOW, iso, useFakeGoogle } from './health-support.js'

/** The check the fake's answer types go through (health-schema.ts) catches what it is there to catch. */
type Holds<Check extends true> = Check
type Fails<Check extends false> = Check

export type SchemaCheckCatches = [
  Holds<FollowsSchema<{ sumInCardioHeartZone?: string }, health_v4.Schema$ActiveZoneMinutesRollupValue>>,
  // A zone sum as a number (Google's int64 is a string), and a misspelt field.
  Fails<FollowsSchema<{ sumInCardioHeartZone?: number }, health_v4.Schema$ActiveZoneMinutesRollupValue>>,
  Fails<FollowsSchema<{ sumInCardioZone?: string }, health_v4.Schema$ActiveZoneMinutesRollupValue>>,
  // Deep inside a data point, and inside a list.
  Fails<FollowsSchema<{ sleep: { metadata: { procesed: true } } }, health_v4.Schema$DataPoint>>,
  Fails<FollowsSchema<{ sleep: { stages: { start: string }[] } }, health_v4.Schema$DataPoint>>,
  Holds<FollowsSchema<{ sleep: { stages: { startTime: string; type: 'DEEP' }[] } }, health_v4.Schema$DataPoint>>,
  Holds<FollowsSchema<SleepJson, health_v4.Schema$Sleep>>,
]

const FIRST_DAY = Date.UTC(2026, 2, 2)
const google = useFakeGoogle({ seed: 'health-runner-7' })

describe('the fake’s Health API answers mean what Google documents', () => {
  it('writes active zone minutes weighted: cardio and peak sums are even (2 a minute), fat burn counts 1 a minute', () => {
    const hours = Array.from({ length: 72 }, (_, i) => FIRST_DAY + i * HOUR)
    const values = hours.map((h) => syntheticRollup(google.user.seed, 'active-zone-minutes', h, h + HOUR, NOW) as ActiveZoneMinutesRollupValue | undefined)
    const high = values.filter((v) => v?.sumInCardioHeartZone !== undefined || v?.sumInPeakHeartZone !== undefined)
    expect(high.length).toBeGreaterThan(0)
    for (const v of high) for (const sum of [v!.sumInCardioHeartZone, v!.sumInPeakHeartZone]) if (sum !== undefined) expect(Number(sum) % 2).toBe(0)
  })

  it('leaves out zero and false fields and empty lists, as proto3 JSON does', async () => {
    // A night hour has no steps: the window is left out; an hour of basal burn only has no zero fields.
    const { data } = await google.rollUp('active-zone-minutes', { range: { startTime: iso(FIRST_DAY), endTime: iso(FIRST_DAY + DAY) }, windowSize: '3600s' })
    for (const point of data.rollupDataPoints ?? []) {
      for (const value of Object.values(point.activeZoneMinutes ?? {})) expect(value).not.toBe('0')
    }
    const json = JSON.stringify(data)
    expect(json).not.toMatch(/:false|:0[,}]|:"0"|:\[\]/)
  })

  it('pages newest first, as Google lists data points', async () => {
    const { data } = await google.list('exercise', {
      filter: `exercise.interval.civil_start_time >= "2026-03-02" AND exercise.interval.civil_start_time < "2026-03-09"`,
    })
    const starts = (data.dataPoints ?? []).map((p) => Date.parse(p.exercise!.interval!.startTime!))
    expect(starts.length).toBeGreaterThan(1)
    expect(starts).toEqual([...starts].sort((a, b) => b - a))
  })

  it('names its exercise types as Google does: upper-case words joined by underscores', () => {
    for (const type of HEALTH_EXERCISE_TYPES) expect(type).toMatch(/^[A-Z]+(?:_[A-Z]+)*$/)
  })
})
