/**
 * The Health API's exercise types, grouped as coarsely as Fit's activities were (the exact type can
 * be revealing): walking and hiking, running, cycling, swimming, strength training, and other.
 */

/** The `workouts` fields a workout's minutes can go to. */
export type ExerciseGroup = 'walking_min' | 'running_min' | 'cycling_min' | 'swimming_min' | 'strength_min' | 'other_min'

const [WALKING, RUNNING, CYCLING, SWIMMING, STRENGTH, OTHER] = [
  'walking_min',
  'running_min',
  'cycling_min',
  'swimming_min',
  'strength_min',
  'other_min',
] as const satisfies readonly ExerciseGroup[]

/**
 * The exercise types Google publishes (google.devicesandservices.health.v4 Exercise.ExerciseType,
 * its v4beta list and Google's workouts guide), each with its group. Team sports, dance, yoga,
 * classes, HIIT, general workouts and chores are other.
 */
export const EXERCISE_TYPE_GROUPS: ReadonlyMap<string, ExerciseGroup> = new Map([
  // health/v4
  ['RUNNING', RUNNING],
  ['WALKING', WALKING],
  ['BIKING', CYCLING],
  ['SWIMMING', SWIMMING],
  ['HIKING', WALKING],
  ['PILATES', OTHER],
  ['WORKOUT', OTHER],
  ['HIIT', OTHER],
  ['WEIGHTLIFTING', STRENGTH],
  ['STRENGTH_TRAINING', STRENGTH],
  ['OTHER', OTHER],
  ['YOGA', OTHER],
  // health/v4beta and the workouts guide
  ['AEROBIC_WORKOUT', OTHER],
  ['ARCHERY', OTHER],
  ['ASSAULT_BIKE', CYCLING],
  ['BACKPACKING', WALKING],
  ['BADMINTON', OTHER],
  ['BALLET', OTHER],
  ['BALLROOM_DANCE', OTHER],
  ['BARRE_CLASS', OTHER],
  ['BASEBALL', OTHER],
  ['BASKETBALL', OTHER],
  ['BILLIARDS', OTHER],
  ['BODY_WEIGHT', STRENGTH],
  ['BOOTCAMP', OTHER],
  ['BOWLING', OTHER],
  ['BOXING', OTHER],
  ['BREAKDANCING', OTHER],
  ['CALISTHENICS', STRENGTH],
  ['CANOEING', OTHER],
  ['CARDIO_SCULPT', OTHER],
  ['CARDIO_WORKOUT', OTHER],
  ['CARPENTRY', OTHER],
  ['CHEERLEADING', OTHER],
  ['CIRCUIT_TRAINING', OTHER],
  ['CLEANING', OTHER],
  ['CLIMBING', OTHER],
  ['CORE_TRAINING', STRENGTH],
  ['CRICKET', OTHER],
  ['CROQUET', OTHER],
  ['CROSS_COUNTRY_SKI', OTHER],
  ['CROSS_TRAINING', OTHER],
  ['CROSSFIT', OTHER],
  ['CURLING', OTHER],
  ['DANCING', OTHER],
  ['DIVING', OTHER],
  ['OUTDOOR_BIKE', CYCLING],
  ['TREADMILL', RUNNING],
  ['SWIMMING_POOL', SWIMMING],
  ['WEIGHTS', STRENGTH],
])

/**
 * Words that place a type Google lists but the table above does not name (OPEN_WATER_SWIMMING,
 * MOUNTAIN_BIKE, TRAIL_RUN ...), in this order: a treadmill walk is a walk, not a run.
 */
const GROUP_WORDS: readonly (readonly [ExerciseGroup, ReadonlySet<string>])[] = [
  [SWIMMING, new Set(['SWIM', 'SWIMMING'])],
  [CYCLING, new Set(['BIKE', 'BIKING', 'CYCLE', 'CYCLING', 'SPINNING'])],
  [WALKING, new Set(['WALK', 'WALKING', 'HIKE', 'HIKING'])],
  [RUNNING, new Set(['RUN', 'RUNNING', 'JOG', 'JOGGING', 'TREADMILL'])],
  [STRENGTH, new Set(['WEIGHTS', 'WEIGHTLIFTING', 'POWERLIFTING', 'STRENGTH', 'KETTLEBELL'])],
]

/**
 * The group of an exercise type, and whether FitStream knows the type: one Google lists is placed
 * by the table or by the words of its name; any other (one Google adds later, or
 * EXERCISE_TYPE_UNSPECIFIED, which proto3 JSON leaves out) goes to other and is not known.
 */
export function exerciseGroup(exerciseType: string | undefined): { readonly group: ExerciseGroup; readonly known: boolean } {
  if (exerciseType === undefined) return { group: OTHER, known: false }
  const listed = EXERCISE_TYPE_GROUPS.get(exerciseType)
  if (listed !== undefined) return { group: listed, known: true }
  const words = exerciseType.split('_')
  for (const [group, groupWords] of GROUP_WORDS) if (words.some((word) => groupWords.has(word))) return { group, known: true }
  return { group: OTHER, known: false }
}
