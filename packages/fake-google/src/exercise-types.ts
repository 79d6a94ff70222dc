/**
 * Exercise types as the Health API names them (google.devicesandservices.health.v4
 * Exercise.ExerciseType, the v4beta list and Google's workouts guide). The enum "may receive new
 * values in the future", so the fake writes any name a test gives it, these and others alike.
 */
export const HEALTH_EXERCISE_TYPES = [
  'RUNNING',
  'WALKING',
  'BIKING',
  'SWIMMING',
  'HIKING',
  'YOGA',
  'PILATES',
  'WORKOUT',
  'HIIT',
  'WEIGHTLIFTING',
  'STRENGTH_TRAINING',
  'OTHER',
  'AEROBIC_WORKOUT',
  'ARCHERY',
  'ASSAULT_BIKE',
  'BACKPACKING',
  'BADMINTON',
  'BALLET',
  'BALLROOM_DANCE',
  'BARRE_CLASS',
  'BASEBALL',
  'BASKETBALL',
  'BILLIARDS',
  'BODY_WEIGHT',
  'BOOTCAMP',
  'BOWLING',
  'BOXING',
  'BREAKDANCING',
  'CALISTHENICS',
  'CANOEING',
  'CARDIO_SCULPT',
  'CARDIO_WORKOUT',
  'CARPENTRY',
  'CHEERLEADING',
  'CIRCUIT_TRAINING',
  'CLEANING',
  'CLIMBING',
  'CORE_TRAINING',
  'CRICKET',
  'CROQUET',
  'CROSS_COUNTRY_SKI',
  'CROSS_TRAINING',
  'CROSSFIT',
  'CURLING',
  'DANCING',
  'DIVING',
  'OUTDOOR_BIKE',
  'TREADMILL',
  'SWIMMING_POOL',
  'WEIGHTS',
] as const

export type HealthExerciseType = (typeof HEALTH_EXERCISE_TYPES)[number]

/** Google's own name for a type, as it fills in `displayName` for every type but OTHER: `OUTDOOR_BIKE` → "Outdoor bike". */
export function exerciseDisplayName(exerciseType: string): string {
  const words = exerciseType.toLowerCase().replaceAll('_', ' ')
  return exerciseType === 'HIIT' ? 'HIIT' : words.charAt(0).toUpperCase() + words.slice(1)
}
