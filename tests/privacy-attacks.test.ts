import { createHmac } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { releaseThreshold } from '../services/anonymizer/src/accounting.js'
import { deriveKeys, planRelease } from '../services/anonymizer/src/anonymize.js'
import { aggregateCell, encodeBuckets, type ClosedCell } from '../services/anonymizer/src/cohort-aggregate.js'
import { discreteLaplace, prfRandomSource } from '../services/anonymizer/src/noise.js'
import { DEFAULT_POLICY_FILE, loadPolicy, type PrivacyPolicy } from '../services/anonymizer/src/policy.js'
import { hmacHex, timeZoneOffsetMs, type DataTypeKey, type FitnessSample, type ReleasableRecord } from '@fitstream/shared'
import { reportFigures } from './helpers.js'

/**
 * Attacks on FitStream's privacy promises, written as a buyer would run them. Each must fail: the
 * assertions bound what the attacker learns, and the printed figures go to PRIVACY.md.
 */

const WEEK = 7 * 86_400_000
/** Monday 2026-01-05, 00:00 UTC: trial i attacks the weight cell of week i after it. */
const FIRST_WEEK = Date.UTC(2026, 0, 5)
const keys = deriveKeys(Buffer.alloc(32, 7))
const defaultPolicy = loadPolicy(DEFAULT_POLICY_FILE)
/** A person who opted in to individual records of the types the default policy offers them for. */
const OPTED_IN = new Set<DataTypeKey>(['steps', 'calories', 'heart_rate', 'active_minutes', 'heart_minutes'])

/** One week's weight cell: `fakes` Sybil accounts at 60 kg, plus the target at 61 kg if present. */
function weightCell(trial: number, fakes: number, withTarget: boolean): ClosedCell {
  const startMs = FIRST_WEEK + trial * WEEK
  const entries: Record<string, string> = {}
  const add = (member: string, kg: number): void => {
    entries[member] = encodeBuckets('weight', startMs, [{ bucket: `${startMs}-${startMs + 3_600_000}`, revision: 0, values: { avg: kg, max: kg, min: kg } }])
  }
  for (let i = 0; i < fakes; i++) add(createHmac('sha256', 'fake').update(`${trial}|${i}`).digest('hex').slice(0, 32), 60)
  if (withTarget) add(createHmac('sha256', 'target').update(String(trial)).digest('hex').slice(0, 32), 61)
  return { type: 'weight', startMs, endMs: startMs + WEEK, entries }
}

/** How often the cell appears over `trials` independent weeks (independent noise: each cell's noise is keyed by its id). */
function releaseRate(policy: PrivacyPolicy, trials: number, fakes: number, withTarget: boolean): number {
  let released = 0
  for (let trial = 0; trial < trials; trial++) if (aggregateCell(weightCell(trial, fakes, withTarget), policy, keys).released.length > 0) released++
  return released / trials
}

/** The rule cells were released by before partition selection: true count >= k and noisy count >= k. */
function legacyReleaseRate(policy: PrivacyPolicy, trials: number, fakes: number, withTarget: boolean): number {
  const k = policy.cohorts.k
  const rule = policy.types.weight!.cohort!
  const countEpsilon = rule.epsilon! / (Object.keys(rule.fields).length + 1)
  let released = 0
  for (let trial = 0; trial < trials; trial++) {
    const n = fakes + (withTarget ? 1 : 0)
    const rng = prfRandomSource(keys.noise, `legacy|${trial}`)
    if (n >= k && n + discreteLaplace(Math.floor(countEpsilon * 1e6), 1e6, rng) >= k) released++
  }
  return released / trials
}

describe('attack (b): Sybil a cohort cell with k − 1 fake users', () => {
  const k = defaultPolicy.cohorts.k
  const TRIALS = 4_000

  it('under the default policy, the cell appears with the target at most delta more often than without', () => {
    const before = { withTarget: legacyReleaseRate(defaultPolicy, TRIALS, k - 1, true), without: legacyReleaseRate(defaultPolicy, TRIALS, k - 1, false) }
    const after = { withTarget: releaseRate(defaultPolicy, TRIALS, k - 1, true), without: releaseRate(defaultPolicy, TRIALS, k - 1, false) }
    reportFigures('sybil k-1 (default policy, weekly weight cell)', {
      trials: TRIALS,
      delta: defaultPolicy.cohorts.delta,
      threshold: releaseThreshold(defaultPolicy, defaultPolicy.types.weight!.cohort!).threshold,
      before,
      after,
    })
    // The rule this replaces gave the target away about half the time.
    expect(before.withTarget).toBeGreaterThan(0.45)
    expect(before.without).toBe(0)
    // Now neither world releases the cell: P ≤ 1e-9 per trial, so one release in 4,000 would already be a failure.
    expect(after).toEqual({ withTarget: 0, without: 0 })
  })

  it('with a delta large enough to measure, the release rate with the target stays within delta', () => {
    // delta = 0.02 and a cell epsilon of 1: the margin is small, so the tail can be counted.
    // Built past validation, which keeps delta at 1e-3 or below for real policies.
    const measurable: PrivacyPolicy = {
      ...defaultPolicy,
      cohorts: { ...defaultPolicy.cohorts, delta: 0.02 },
      types: { weight: { release: 'cohort', cohort: { window: 'week', epsilon: 1, fields: { avg: { clamp: [30, 200], round: 0.5 } } } } },
    }
    const trials = 10_000
    const withTarget = releaseRate(measurable, trials, k - 1, true)
    const without = releaseRate(measurable, trials, k - 1, false)
    reportFigures('sybil k-1 (delta 0.02)', {
      trials,
      withTarget,
      without,
      threshold: releaseThreshold(measurable, measurable.types.weight!.cohort!).threshold,
    })
    expect(without).toBe(0)
    // Binomial(10,000, p ≤ 0.02): four standard deviations above delta is 0.0256.
    expect(withTarget).toBeLessThanOrEqual(0.02 + 4 * Math.sqrt((0.02 * 0.98) / trials))
    // And the margin is not wasted: the tail is close to delta, not far below it.
    expect(withTarget).toBeGreaterThan(0.005)
  })
})

describe('the release threshold decides only whether a cell appears', () => {
  it('leaves a released cell’s values as the noise made them: noisy sum over noisy count, from the cell’s keyed stream', () => {
    const rule = defaultPolicy.types.weight!.cohort!
    const share = rule.epsilon! / 2
    for (let trial = 0; trial < 20; trial++) {
      // 600 people, far above the weekly threshold of 412: the cell always appears.
      const cell = weightCell(trial, 600, true)
      const [record] = aggregateCell(cell, defaultPolicy, keys).released
      const id = hmacHex(keys.pseudonym, `fitstream/cohort/v1|weight|${cell.startMs}|${cell.endMs}|avg:50-70`).slice(0, 32)
      const rng = prfRandomSource(keys.noise, `cohort|${id}`)
      const count = 601 + discreteLaplace(Math.floor(share * 1e6), 1e6, rng)
      // Weights on the 0.5 kg grid: 600 × 60 kg and one 61 kg, clamp [30, 200] → sensitivity 400 units.
      const sum = 600 * 120 + 122 + discreteLaplace(Math.floor(share * 1e6), 400 * 1e6, rng)
      expect(record).toMatchObject({ id, band: 'avg:50-70', contributors: count, values: { avg: Math.min(400, Math.max(60, Math.round(sum / count))) / 2 } })
    }
  })
})

describe('attack (c): tell a half-hour time zone from record boundaries', () => {
  const HOUR = 3_600_000
  const HALF_HOUR_ZONES = ['Asia/Kolkata', 'Asia/Tehran', 'America/St_Johns', 'Australia/Adelaide', 'Asia/Kathmandu']
  const WHOLE_HOUR_ZONES = ['UTC', 'Europe/Berlin', 'America/New_York', 'Asia/Tokyo', 'Australia/Sydney']
  /** 2026-03-02 00:00 UTC: three days of hourly buckets from here. */
  const FROM = Date.UTC(2026, 2, 2)

  /** Hourly buckets laid out in the person's local time, as a sync plans them for their zone. */
  function localHourBuckets(zone: string, seed: number): FitnessSample[] {
    const offset = timeZoneOffsetMs(FROM, zone)
    const first = Math.floor((FROM + offset) / HOUR) * HOUR - offset
    return Array.from({ length: 72 }, (_, h): FitnessSample[] => {
      const startMs = first + h * HOUR
      const count = (seed * 7919 + h * 104_729) % 3_000
      const values: Record<string, number>[] = [{ count }, { avg: 60 + (count % 40), max: 90, min: 55 }]
      return (['steps', 'heart_rate'] as const).map((type, i) => ({ type, startMs, endMs: startMs + HOUR, values: values[i]!, unit: 'x', revision: 0 }))
    }).flat()
  }

  /** The attacker's features: every record's start within its UTC hour and its length, and whether two of one type overlap. */
  function boundaryFeatures(records: readonly ReleasableRecord[]): string {
    const features = new Set<string>()
    const byType = new Map<string, [number, number][]>()
    for (const record of records) {
      const [start, end] = [Date.parse(record.start), Date.parse(record.end)]
      features.add(`${start % HOUR}/${end - start}`)
      byType.set(record.type, [...(byType.get(record.type) ?? []), [start, end]])
    }
    for (const spans of byType.values()) {
      spans.sort((a, b) => a[0] - b[0])
      if (spans.some(([start], i) => i > 0 && start < spans[i - 1]![1])) features.add('overlap')
    }
    return [...features].sort().join(',')
  }

  it('finds every person’s records on whole UTC hours, the same in every zone, so the attacker does no better than chance', () => {
    const people = [...HALF_HOUR_ZONES, ...WHOLE_HOUR_ZONES].flatMap((zone, z) =>
      Array.from({ length: 20 }, (_, i) => ({ zone, halfHour: z < HALF_HOUR_ZONES.length, seed: z * 100 + i })),
    )
    // The attacker learns what whole-hour zones' records look like, and calls anyone who differs a half-hour zone.
    const wholeHourLook = boundaryFeatures(planRelease('calibration', localHourBuckets('UTC', 1), defaultPolicy, keys, OPTED_IN).records.map((c) => c.record))
    let correct = 0
    for (const person of people) {
      const records = planRelease(`user-${person.seed}`, localHourBuckets(person.zone, person.seed), defaultPolicy, keys, OPTED_IN).records.map((c) => c.record)
      expect(records.length).toBeGreaterThan(0)
      const guessHalfHour = boundaryFeatures(records) !== wholeHourLook
      if (guessHalfHour === person.halfHour) correct++
    }
    const successRate = correct / people.length
    reportFigures('half-hour zone from record boundaries', { people: people.length, successRate })
    expect(wholeHourLook).toBe(`0/${HOUR}`)
    // Chance is 0.5: the classifier calls everyone a whole-hour zone.
    expect(successRate).toBe(0.5)
  })
})
