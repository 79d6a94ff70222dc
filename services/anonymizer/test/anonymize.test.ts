import { randomBytes } from 'node:crypto'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { DATA_TYPES, dataType, releasableRecordSchema, type DataTypeKey, type FitnessSample } from '@fitstream/shared'
import { bandFloor, deriveKeys, epochOf, gridUnitOf, planRelease, pseudonym } from '../src/anonymize.js'
import { geohash, geohashCentre } from '../src/geohash.js'
import { periodEndOf } from '../src/time-windows.js'
import type { PrivacyPolicy } from '../src/policy.js'
import { DAY, HOUR, defaultPolicy, optedInPolicy, policyFrom, policyOf, sample, t0, testKeys } from './support.js'

/** Most tests here look at what individual records hold: everyone opted in. */
const policy = optedInPolicy()
const keys = testKeys()
const RECORD_KEYS = ['end', 'epoch', 'id', 'pseudonym', 'revision', 'start', 'type', 'unit', 'values']
const origin = 'raw:com.google.step_count.delta:com.sec.android.app.shealth:Samsung:SM-G991B:1a2b3c4d:step_counter'

/** Location released both ways, with a privacy zone around a made-up clinic. */
const locationPolicy: PrivacyPolicy = policyFrom({
  version: 1,
  pseudonym: { scheme: 'hmac-sha256', epoch: 'month' },
  budget: { period: 'month', epsilon: 10 },
  cohorts: { k: 5 },
  location: { geohashPrecision: 5, privacyZones: [{ name: 'clinic', lat: 52.52, lng: 13.405, radiusMetres: 2000 }] },
  types: { location: { release: 'both', individual: { consent: 'with-type' }, cohort: { window: 'day' } } },
})

// Identifiers carry characters no output alphabet (hex, ISO dates, field names) can produce by chance.
const userIdArb = fc.stringMatching(/^[A-Za-z0-9_-]{6,40}$/).map((s) => `u_${s}~`.replace('~', 'Z_'))
const secretArb = fc.stringMatching(/^[A-Za-z0-9:._-]{6,30}$/).map((s) => `SECRET@${s}`)
const extraFieldArb = fc.constantFrom('email', 'googleId', 'deviceSerial', 'originDataSourceId', 'appPackage', 'note')

const sampleArb = (secrets: fc.Arbitrary<string>): fc.Arbitrary<FitnessSample> =>
  fc
    .record({
      type: fc.constantFrom(...DATA_TYPES.map((t) => t.key as DataTypeKey)),
      offsetMinutes: fc.integer({ min: -60 * 24 * 40, max: 60 * 24 * 40 }),
      lengthMinutes: fc.integer({ min: 0, max: 180 }),
      numbers: fc.array(fc.double({ min: -1e6, max: 1e6, noNaN: true, noDefaultInfinity: true }), { minLength: 6, maxLength: 6 }),
      extras: fc.dictionary(extraFieldArb, fc.double({ min: -1e6, max: 1e6, noNaN: true, noDefaultInfinity: true })),
      origin: fc.option(secrets, { nil: undefined }),
      revision: fc.integer({ min: 0, max: 5 }),
    })
    .map(({ type, offsetMinutes, lengthMinutes, numbers, extras, origin, revision }) => {
      const startMs = t0 + offsetMinutes * 60_000
      const values: Record<string, number> = { ...extras }
      dataType(type).fields.forEach((field, i) => (values[field.name] = type === 'location' ? (numbers[i % 6]! % 90) / 2 : numbers[i % 6]!))
      return { type, startMs, endMs: startMs + lengthMinutes * 60_000, values, unit: 'unit', revision, ...(origin === undefined ? {} : { origin }) }
    })

describe('planRelease: the allow-list', () => {
  it.each([
    ['the default policy', policy],
    ['a policy that releases location', locationPolicy],
  ])('under %s, no output ever carries an input identifier or a field outside the allow-list', (_, underTest) => {
    fc.assert(
      fc.property(userIdArb, fc.array(sampleArb(secretArb), { maxLength: 40 }), (userId, samples) => {
        const plan = planRelease(userId, samples, underTest, keys)
        const text = JSON.stringify(plan)
        expect(text).not.toContain(userId)
        expect(text).not.toContain('SECRET@')
        for (const { record } of plan.records) {
          expect(Object.keys(record).sort()).toEqual(RECORD_KEYS)
          releasableRecordSchema.parse(record)
          const rule = underTest.types[record.type]!
          expect(['individual', 'both']).toContain(rule.release)
          const allowed = record.type === 'location' ? ['lat', 'lng'] : Object.keys(rule.individual!.fields)
          for (const field of Object.keys(record.values)) expect(allowed).toContain(field)
        }
        for (const contribution of plan.contributions) {
          const rule = underTest.types[contribution.type]!
          expect(['cohort', 'both']).toContain(rule.release)
          for (const bucket of contribution.buckets) {
            for (const field of Object.keys(bucket.values)) expect(Object.keys(rule.cohort!.fields)).toContain(field)
            if (bucket.band !== undefined) expect(bucket.band).toMatch(/^geohash:[0-9b-hjkmnp-z]{5}$/)
          }
        }
        // Location: never a raw coordinate, only the centre of a truncated geohash cell.
        for (const { record } of plan.records.filter((r) => r.record.type === 'location')) {
          const centre = geohashCentre(geohash(record.values.lat!, record.values.lng!, 5))
          expect(record.values.lat).toBeCloseTo(centre.lat, 4)
          expect(record.values.lng).toBeCloseTo(centre.lng, 4)
        }
      }),
      { numRuns: 300 },
    )
  })

  it('drops types the policy drops or does not list, and says so', () => {
    const plan = planRelease('user-abcdef123456', [sample('location', t0, { low_lat: 52.5, low_lng: 13.4, high_lat: 52.51, high_lng: 13.41 })], policy, keys)
    expect(plan.records).toEqual([])
    expect(plan.contributions).toEqual([])
    expect(plan.dropped).toEqual([{ type: 'location', reason: 'policy', samples: 1 }])
  })

  it('never releases a location inside a privacy zone', () => {
    const inside = sample('location', t0, { low_lat: 52.521, low_lng: 13.404, high_lat: 52.522, high_lng: 13.406 })
    const outside = sample('location', t0 + HOUR, { low_lat: 48.85, low_lng: 2.35, high_lat: 48.86, high_lng: 2.36 })
    const plan = planRelease('user-abcdef123456', [inside, outside], locationPolicy, keys)
    expect(plan.dropped).toEqual([{ type: 'location', reason: 'privacy_zone', samples: 1 }])
    expect(plan.records).toHaveLength(1)
    expect(plan.records[0]!.record.values).toEqual({ lat: expect.any(Number), lng: expect.any(Number) })
    expect(plan.records[0]!.record.values.lat).not.toBe(48.855)
    expect(plan.contributions[0]!.buckets[0]!.band).toBe(`geohash:${geohash(48.855, 2.355, 5)}`)
  })
})

describe('planRelease: generalisation under the default policy', () => {
  it('releases steps, calories and heart rate hourly, clamped and rounded', () => {
    const userId = 'user-abcdef123456'
    const plan = planRelease(
      userId,
      [
        sample('steps', t0, { count: 527 }, { origin }),
        sample('steps', t0 + HOUR, { count: 19_999 }),
        sample('calories', t0, { kcal: 97.24 }),
        sample('heart_rate', t0, { avg: 71.6, max: 230, min: 20 }),
      ],
      policy,
      keys,
    )
    const byKey = Object.fromEntries(plan.records.map(({ record }) => [`${record.type}|${record.start}`, record.values]))
    expect(byKey).toEqual({
      'steps|2026-11-23T10:00:00.000Z': { count: 530 },
      'steps|2026-11-23T11:00:00.000Z': { count: 12_000 },
      'calories|2026-11-23T10:00:00.000Z': { kcal: 97 },
      'heart_rate|2026-11-23T10:00:00.000Z': { avg: 72, max: 200, min: 35 },
    })
    for (const { record, epsilon } of plan.records) {
      expect(Date.parse(record.end) - Date.parse(record.start)).toBe(HOUR)
      expect(epsilon).toBe(0)
    }
  })

  it('combines what falls into one hour, and counts a bucket passed on twice only once', () => {
    const a = { ...sample('steps', t0 + 5 * 60_000, { count: 100 }), endMs: t0 + 20 * 60_000 }
    const b = { ...sample('steps', t0 + 40 * 60_000, { count: 50 }), endMs: t0 + 50 * 60_000 }
    const plan = planRelease('user-abcdef123456', [a, b, a, { ...b }], policy, keys)
    expect(plan.records.map((r) => r.record.values)).toEqual([{ count: 150 }])
  })

  it('releases individual records under the default policy only for the types a person opted in to, and no hourly heart-rate extremes', () => {
    const samples = [sample('steps', t0, { count: 527 }), sample('heart_rate', t0, { avg: 71.6, max: 120, min: 50 }), sample('calories', t0, { kcal: 80 })]
    const none = planRelease('user-opt', samples, defaultPolicy(), keys)
    expect(none.records).toEqual([])
    expect(none.contributions.map((c) => c.type).sort()).toEqual(['calories', 'heart_rate', 'steps'])
    const some = planRelease('user-opt', samples, defaultPolicy(), keys, new Set(['heart_rate', 'steps']))
    expect(some.records.map((c) => [c.record.type, c.record.values])).toEqual([
      ['heart_rate', { avg: 72 }],
      ['steps', { count: 530 }],
    ])
    expect(some.contributions).toHaveLength(3)
  })

  it('puts every record on one whole UTC unit, whatever grid its samples came on', () => {
    // Half-hour buckets of a UTC+5:30 day: each goes to the hour holding its midpoint, none to two.
    const kolkata = [0, 1, 2].map((h) => sample('steps', t0 + h * HOUR + HOUR / 2, { count: 100 * (h + 1) }))
    expect(planRelease('user-zone', kolkata, policy, keys).records.map((c) => [c.record.start, c.record.end, c.record.values.count])).toEqual(
      [1, 2, 3].map((h) => [new Date(t0 + h * HOUR).toISOString(), new Date(t0 + (h + 1) * HOUR).toISOString(), 100 * h]),
    )
    // A two-hour bucket fits no hourly record: left out, and said so.
    const long = planRelease('user-zone', [sample('steps', t0, { count: 100 }, { endMs: t0 + 2 * HOUR })], policy, keys)
    expect(long.records).toEqual([])
    expect(long.dropped).toEqual([{ type: 'steps', reason: 'coarser_than_grid', samples: 1 }])
    // A local day 25 hours long (clocks going back) still fits a daily grid.
    expect(gridUnitOf({ startMs: t0 - 10 * HOUR, endMs: t0 + 15 * HOUR }, 'day')).toEqual({ startMs: t0 - 10 * HOUR, endMs: t0 + 14 * HOUR })
  })

  it('lets a later revision of a bucket replace the earlier one', () => {
    const plan = planRelease(
      'user-abcdef123456',
      [sample('steps', t0, { count: 500 }, { revision: 2 }), sample('steps', t0, { count: 300 }, { revision: 1 })],
      policy,
      keys,
    )
    expect(plan.records).toHaveLength(1)
    expect(plan.records[0]!.record).toMatchObject({ values: { count: 500 }, revision: 2 })
    expect(plan.contributions[0]!.buckets).toEqual([{ bucket: `${t0}-${t0 + HOUR}`, revision: 2, values: { count: 500 } }])
  })

  it('sends body measures to cohorts only, with only the allow-listed fields', () => {
    const plan = planRelease('user-abcdef123456', [sample('weight', t0, { avg: 81.37, max: 82, min: 80 })], policy, keys)
    expect(plan.records).toEqual([])
    expect(plan.contributions).toHaveLength(1)
    expect(plan.contributions[0]).toMatchObject({ type: 'weight', startMs: Date.UTC(2026, 10, 23), endMs: Date.UTC(2026, 10, 30), epsilon: 0.1 })
    expect(plan.contributions[0]!.buckets[0]!.values).toEqual({ avg: 81.37 })
  })

  it('sends workouts to daily cohorts only, each person’s day summed and clamped to 8 hours a group', () => {
    const zeros = { walking_min: 0, running_min: 0, cycling_min: 0, swimming_min: 0, strength_min: 0, other_min: 0 }
    const plan = planRelease(
      'user-abcdef123456',
      [sample('workouts', t0, { ...zeros, running_min: 22.5 }), sample('workouts', t0 + HOUR, { ...zeros, running_min: 7.5, swimming_min: 40 })],
      policy,
      keys,
    )
    expect(plan.records).toEqual([])
    expect(plan.contributions).toHaveLength(1)
    expect(plan.contributions[0]).toMatchObject({ type: 'workouts', startMs: Date.UTC(2026, 10, 23), endMs: Date.UTC(2026, 10, 24), epsilon: 0.04 })
    expect(plan.contributions[0]!.buckets.map((b) => b.values)).toEqual([
      { ...zeros, running_min: 22.5 },
      { ...zeros, running_min: 7.5, swimming_min: 40 },
    ])
    expect(policy.types.workouts).toMatchObject({ release: 'cohort', cohort: { fields: { running_min: { clamp: [0, 480], round: 5 } } } })
  })

  it('bands values to their lower edge and bottom-codes below the first', () => {
    expect(bandFloor(73, [50, 70, 90])).toBe(70)
    expect(bandFloor(12, [50, 70, 90])).toBe(50)
    expect(bandFloor(95, [50, 70, 90])).toBe(90)
    const banded = policyOf({
      budget: { epsilon: 1 },
      cohorts: { k: 5 },
      types: {
        weight: {
          release: 'individual',
          individual: { consent: 'with-type', granularity: 'day', fields: { avg: { clamp: [40, 150], bands: [40, 60, 80, 100] } } },
        },
      },
    })
    const plan = planRelease('user-abcdef123456', [sample('weight', t0, { avg: 83.2 }), sample('weight', t0 + HOUR, { avg: 85.9 })], banded, keys)
    expect(plan.records.map((r) => [r.record.values, r.record.start, r.record.end])).toEqual([
      [{ avg: 80 }, '2026-11-23T00:00:00.000Z', '2026-11-24T00:00:00.000Z'],
    ])
  })

  it('adds noise on the grid where the policy asks, the same noise for the same release', () => {
    const noisy = policyOf({
      budget: { epsilon: 10 },
      cohorts: { k: 5 },
      types: {
        steps: { release: 'individual', individual: { consent: 'with-type', fields: { count: { clamp: [0, 10_000], round: 10 } }, noise: { epsilon: 0.5 } } },
      },
    })
    const samples = Array.from({ length: 48 }, (_, h) => sample('steps', t0 + h * HOUR, { count: 5_000 }))
    // A fixed key: with noise twice the clamp range, most draws land on a clamp edge, so a random key
    // now and then leaves five or fewer distinct counts among the 48.
    const fixed = deriveKeys(Buffer.alloc(32, 7))
    const first = planRelease('user-abcdef123456', samples, noisy, fixed)
    const again = planRelease('user-abcdef123456', samples, noisy, fixed)
    expect(again.records.map((r) => r.record.values)).toEqual(first.records.map((r) => r.record.values))
    const counts = first.records.map((r) => r.record.values.count!)
    expect(new Set(counts).size).toBeGreaterThan(5)
    for (const count of counts) {
      expect(count % 10).toBe(0)
      expect(count).toBeGreaterThanOrEqual(0)
      expect(count).toBeLessThanOrEqual(10_000)
    }
    expect(first.records[0]!.epsilon).toBe(0.5)
  })
})

describe('pseudonyms', () => {
  it('are stable within an epoch, differ across epochs and between people', () => {
    fc.assert(
      fc.property(userIdArb, userIdArb, fc.integer({ min: 0, max: 27 }), fc.integer({ min: 0, max: 23 }), (a, b, day, hour) => {
        const at = (ms: number, user: string) => planRelease(user, [sample('steps', ms, { count: 10 })], policy, keys).records[0]!.record
        const early = at(Date.UTC(2026, 10, 1 + day, hour), a)
        const later = at(Date.UTC(2026, 10, 1 + ((day + 3) % 28), (hour + 5) % 24), a)
        const nextMonth = at(Date.UTC(2026, 11, 1 + day, hour), a)
        expect(later.pseudonym).toBe(early.pseudonym)
        expect(nextMonth.pseudonym).not.toBe(early.pseudonym)
        expect(nextMonth.epoch).toBe('2026-12')
        if (a !== b) expect(at(Date.UTC(2026, 10, 1 + day, hour), b).pseudonym).not.toBe(early.pseudonym)
      }),
      { numRuns: 200 },
    )
  })

  it('are keyed: without the key the pseudonym cannot be recomputed', () => {
    const key = randomBytes(32)
    const a = pseudonym(key, 'user-abcdef123456', '2026-11')
    expect(pseudonym(randomBytes(32), 'user-abcdef123456', '2026-11')).not.toBe(a)
    expect(a).toMatch(/^[0-9a-f]{32}$/)
    expect(deriveKeys(key).noise).not.toEqual(key)
  })

  it('give a record the same id every time, so subscribers can de-duplicate', () => {
    const first = planRelease('user-abcdef123456', [sample('steps', t0, { count: 10 })], policy, keys).records[0]!
    const again = planRelease('user-abcdef123456', [sample('steps', t0, { count: 20 }, { revision: 1 })], policy, keys).records[0]!
    expect(again.record.id).toBe(first.record.id)
    expect(again.record.revision).toBe(1)
  })

  it('rotate weekly or daily when the policy says so', () => {
    const weekly = policyFrom({ ...structuredClone(policy), pseudonym: { scheme: 'hmac-sha256', epoch: 'week' } })
    const monday = planRelease('user-abcdef123456', [sample('steps', t0, { count: 10 })], weekly, keys).records[0]!.record
    const sunday = planRelease('user-abcdef123456', [sample('steps', t0 + 6 * DAY, { count: 10 })], weekly, keys).records[0]!.record
    const nextMonday = planRelease('user-abcdef123456', [sample('steps', t0 + 7 * DAY, { count: 10 })], weekly, keys).records[0]!.record
    expect(monday.epoch).toBe('2026-W48')
    expect(sunday.pseudonym).toBe(monday.pseudonym)
    expect(nextMonday.pseudonym).not.toBe(monday.pseudonym)
  })
})

describe('epochOf', () => {
  it('labels months, ISO weeks and days in UTC', () => {
    expect(epochOf(Date.UTC(2026, 10, 24), 'month')).toBe('2026-11')
    expect(epochOf(Date.UTC(2026, 10, 24), 'week')).toBe('2026-W48')
    expect(epochOf(Date.UTC(2021, 0, 3), 'week')).toBe('2020-W53')
    expect(epochOf(Date.UTC(2026, 10, 24, 23, 59), 'day')).toBe('2026-11-24')
  })

  it('names periods whose end periodEndOf finds: the first moment of the next one', () => {
    fc.assert(
      fc.property(fc.integer({ min: Date.UTC(2000, 0, 1), max: Date.UTC(2100, 0, 1) }), fc.constantFrom('day', 'week', 'month' as const), (ms, unit) => {
        const label = epochOf(ms, unit)
        const end = periodEndOf(label)!
        expect(end).toBeGreaterThan(ms)
        expect(epochOf(end - 1, unit)).toBe(label)
        expect(epochOf(end, unit)).not.toBe(label)
      }),
    )
    expect(periodEndOf('2026-W53')).toBe(Date.UTC(2027, 0, 4))
    expect(periodEndOf('soon')).toBeUndefined()
  })
})
