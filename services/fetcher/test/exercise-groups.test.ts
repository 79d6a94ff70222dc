import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ALL_HEALTH_READ_SCOPES, FakeGoogle, HEALTH_EXERCISE_TYPES, healthExerciseSessions, userProfile, type FakeUser } from '@fitstream/fake-google'
import { dataType } from '@fitstream/shared'
import { EXERCISE_TYPE_GROUPS, exerciseGroup } from '../src/exercise-groups.js'
import { GoogleHealthClient } from '../src/google-health.js'
import { normalizeHealth } from '../src/normalize-health.js'

const HOUR = 3_600_000
const DAY = 24 * HOUR

/** What each published name means, group by group; every name not named here is other. */
const MEANING: Record<string, readonly string[]> = {
  walking_min: [
    'WALKING',
    'HIKING',
    'BACKPACKING',
    'INCLINE_WALK',
    'NORDIC_WALKING',
    'POWER_WALKING',
    'RUCKING',
    'SNOWSHOEING',
    'STROLLER_WALK',
    'TREADMILL_WALK',
    'WALK_WITH_WEIGHTS',
  ],
  running_min: ['RUNNING', 'INCLINE_RUN', 'TRAIL_RUN', 'TREADMILL'],
  cycling_min: ['BIKING', 'ASSAULT_BIKE', 'ELECTRIC_BIKE', 'HAND_CYCLING', 'MOUNTAIN_BIKE', 'OUTDOOR_BIKE', 'SPINNING', 'STATIONARY_BIKE', 'UNICYCLING'],
  swimming_min: ['SWIMMING', 'SWIMMING_OPEN_WATER', 'SWIMMING_POOL', 'SYNCHRONIZED_SWIMMING'],
  strength_min: [
    'STRENGTH_TRAINING',
    'BODY_WEIGHT',
    'CALISTHENICS',
    'CORE_TRAINING',
    'FREE_WEIGHTS',
    'FUNCTIONAL_STRENGTH_TRAINING',
    'POWERLIFTING',
    'RESISTANCE_BANDS',
    'TRX',
    'WEIGHTLIFTING',
    'WEIGHT_MACHINES',
    'WEIGHTS',
  ],
}

describe('exerciseGroup', () => {
  it('knows each of the 181 exercise types Google publishes, and no other', () => {
    expect(HEALTH_EXERCISE_TYPES).toHaveLength(181)
    expect(new Set(HEALTH_EXERCISE_TYPES).size).toBe(181)
    // health/v4's own list is part of it.
    const v4 = ['RUNNING', 'WALKING', 'BIKING', 'SWIMMING', 'HIKING', 'YOGA', 'PILATES', 'WORKOUT', 'HIIT', 'WEIGHTLIFTING', 'STRENGTH_TRAINING', 'OTHER']
    expect(HEALTH_EXERCISE_TYPES).toEqual(expect.arrayContaining(v4))
    expect([...EXERCISE_TYPE_GROUPS.keys()].sort()).toEqual([...HEALTH_EXERCISE_TYPES].sort())
    const fields = new Set(dataType('workouts').fields.map((f) => f.name))
    for (const type of HEALTH_EXERCISE_TYPES) {
      const { group, known } = exerciseGroup(type)
      expect(known, type).toBe(true)
      expect(fields.has(group), type).toBe(true)
    }
  })

  it('puts every published type in the group its meaning says', () => {
    const expected = new Map<string, string>(HEALTH_EXERCISE_TYPES.map((type) => [type, 'other_min']))
    for (const [group, types] of Object.entries(MEANING)) {
      for (const type of types) {
        expect(expected.has(type), `${type} is a published name`).toBe(true)
        expected.set(type, group)
      }
    }
    const got = new Map(HEALTH_EXERCISE_TYPES.map((type) => [type, exerciseGroup(type).group]))
    expect(Object.fromEntries(got)).toEqual(Object.fromEntries(expected))
    expect([...got.values()].filter((group) => group === 'other_min')).toHaveLength(141)
  })

  it('agrees with the words of the names where they decide: every swim, walk, run and bike is one, yoga and water sports are not', () => {
    const words = (type: string) => type.split('_')
    for (const type of HEALTH_EXERCISE_TYPES) {
      const { group } = exerciseGroup(type)
      if (words(type).some((w) => w === 'SWIMMING')) expect(group, type).toBe('swimming_min')
      if (words(type).some((w) => w === 'WALK' || w === 'WALKING')) expect(group, type).toBe('walking_min')
      if (words(type).some((w) => w === 'RUN' || w === 'RUNNING')) expect(group, type).toBe('running_min')
      if (words(type).some((w) => w === 'BIKE' || w === 'BIKING' || w === 'CYCLING')) expect(group, type).toBe('cycling_min')
      if (words(type).some((w) => w === 'WEIGHT' || w === 'WEIGHTS' || w === 'STRENGTH')) {
        // Walking with weights is a walk first.
        expect(group, type).toBe(type === 'WALK_WITH_WEIGHTS' ? 'walking_min' : 'strength_min')
      }
      if (words(type)[0] === 'YOGA' || words(type)[0] === 'WATER') expect(group, type).toBe('other_min')
    }
  })

  it('puts a name Google has not published, and the unspecified type proto3 leaves out, in other as unknown', () => {
    expect(exerciseGroup('UNDERWATER_HOCKEY')).toEqual({ group: 'other_min', known: false })
    // Words are not guessed at: a name Google adds later is counted, whatever it sounds like.
    expect(exerciseGroup('BEACH_RUN')).toEqual({ group: 'other_min', known: false })
    expect(exerciseGroup('EXERCISE_TYPE_UNSPECIFIED')).toEqual({ group: 'other_min', known: false })
    expect(exerciseGroup(undefined)).toEqual({ group: 'other_min', known: false })
    expect(exerciseGroup('__proto__')).toEqual({ group: 'other_min', known: false })
    expect(exerciseGroup('')).toEqual({ group: 'other_min', known: false })
    expect(exerciseGroup('running')).toEqual({ group: 'other_min', known: false })
  })
})

describe('every published exercise type, as the fake Google sends it through the googleapis client', () => {
  const now = Date.UTC(2026, 2, 20, 12)
  let fake: FakeGoogle
  let user: FakeUser
  let token: string

  beforeAll(async () => {
    fake = await FakeGoogle.start({ now: () => now })
    let n = 0
    while (!userProfile(`exercise-groups-${n}`).runner) n++
    user = fake.addUser({ seed: `exercise-groups-${n}`, scopes: [...ALL_HEALTH_READ_SCOPES] })
    token = await fake.accessTokenFor(user)
  })
  afterAll(async () => {
    await fake?.close()
  })

  it('reaches the fetcher as the workout minutes of its group, none set aside', async () => {
    // One day holding whole workouts, found from the fake's own data rather than the calendar.
    const day = [...Array(14).keys()]
      .map((i) => ({ startMs: Date.UTC(2026, 2, 5 + i), endMs: Date.UTC(2026, 2, 6 + i) }))
      .find((w) => {
        const runs = healthExerciseSessions(user.seed, w.startMs - DAY, w.endMs, now)
        return runs.some((r) => r.startMs >= w.startMs) && runs.every((r) => (r.startMs >= w.startMs ? r.endMs <= w.endMs : r.endMs <= w.startMs))
      })
    expect(day, 'a day of whole workouts in the fake’s fortnight').toBeDefined()
    const client = new GoogleHealthClient({ rootUrl: fake.rootUrl, timeoutMs: 5_000 })
    const minutes = healthExerciseSessions(user.seed, day!.startMs, day!.endMs, now).reduce((n, r) => n + r.activeMs / 60_000, 0)
    expect(minutes).toBeGreaterThan(0)
    for (const type of HEALTH_EXERCISE_TYPES) {
      fake.setExerciseTypes(user.googleId, [type])
      const read = await client.read({ accessToken: token, dataTypes: ['workouts'], window: day!, bucketMs: DAY, timeZone: 'UTC' })
      const { samples, rejected } = normalizeHealth(read, day!, 'UTC')
      expect(rejected, type).toEqual({})
      const byGroup = (field: string) => samples.reduce((n, s) => n + (s.values[field] ?? 0), 0)
      const group = exerciseGroup(type).group
      expect(byGroup(group), type).toBeCloseTo(minutes, 6)
      for (const field of dataType('workouts').fields.map((f) => f.name)) if (field !== group) expect(byGroup(field), `${type} ${field}`).toBe(0)
    }
  })
})
