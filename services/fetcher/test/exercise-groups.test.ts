import { describe, expect, it } from 'vitest'
import { HEALTH_EXERCISE_TYPES } from '@fitstream/fake-google'
import { dataType } from '@fitstream/shared'
import { EXERCISE_TYPE_GROUPS, exerciseGroup } from '../src/exercise-groups.js'

describe('exerciseGroup', () => {
  it('knows every exercise type Google publishes, and puts each in one of the workouts fields', () => {
    const fields = new Set(dataType('workouts').fields.map((f) => f.name))
    for (const type of HEALTH_EXERCISE_TYPES) {
      const { group, known } = exerciseGroup(type)
      expect(known, type).toBe(true)
      expect(fields.has(group), type).toBe(true)
    }
    expect([...EXERCISE_TYPE_GROUPS.keys()].sort()).toEqual([...HEALTH_EXERCISE_TYPES].sort())
  })

  it('groups as Google’s names say: bikes are cycling, pools swimming, weights strength, treadmills running', () => {
    const groups = Object.fromEntries(
      ['OUTDOOR_BIKE', 'ASSAULT_BIKE', 'SWIMMING_POOL', 'WEIGHTS', 'BODY_WEIGHT', 'TREADMILL', 'BACKPACKING', 'YOGA', 'HIIT'].map((t) => [
        t,
        exerciseGroup(t).group,
      ]),
    )
    expect(groups).toEqual({
      OUTDOOR_BIKE: 'cycling_min',
      ASSAULT_BIKE: 'cycling_min',
      SWIMMING_POOL: 'swimming_min',
      WEIGHTS: 'strength_min',
      BODY_WEIGHT: 'strength_min',
      TREADMILL: 'running_min',
      BACKPACKING: 'walking_min',
      YOGA: 'other_min',
      HIIT: 'other_min',
    })
  })

  it('places a name it does not list by its words, and anything else in other as unknown', () => {
    expect(exerciseGroup('TRAIL_RUN')).toEqual({ group: 'running_min', known: true })
    expect(exerciseGroup('TREADMILL_WALKING')).toEqual({ group: 'walking_min', known: true })
    // A word inside another word is not that word: crunches are not runs.
    expect(exerciseGroup('CRUNCHES')).toEqual({ group: 'other_min', known: false })
    expect(exerciseGroup(undefined)).toEqual({ group: 'other_min', known: false })
    expect(exerciseGroup('__proto__')).toEqual({ group: 'other_min', known: false })
    expect(exerciseGroup('')).toEqual({ group: 'other_min', known: false })
  })
})
