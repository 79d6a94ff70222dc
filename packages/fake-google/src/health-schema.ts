/**
 * The fake's Health API answers checked against Google's own definition: googleapis' generated
 * health/v4 types (from Google's discovery document). Each `Holds<FollowsSchema<Fake, Google>>` below
 * holds only when every field the fake writes, at every depth, is a field of Google's type with
 * a value of the type Google gives it (int64 as a string, a double as a number, enums as strings),
 * so a misnamed field or a number where Google sends a string is a build error, not a passing test.
 */
import type { health_v4 } from 'googleapis/build/src/apis/health/index.js'
import type { DailyHeartRateVariabilityDataPoint, DailyRespiratoryRateDataPoint, DailyRestingHeartRateDataPoint, DailyVO2MaxDataPoint } from './daily.js'
import type { ExerciseDataPoint } from './exercise.js'
import type { ReconciledDataPoint } from './list.js'
import type {
  ActiveMinutesRollupValue,
  ActiveZoneMinutesRollupValue,
  BodyFatRollupValue,
  CivilDateTime,
  DistanceRollupValue,
  FloorsRollupValue,
  HeartRateRollupValue,
  StepsRollupValue,
  TotalCaloriesRollupValue,
  WeightRollupValue,
} from './rollup.js'
import type { BodyFatDataPoint, HeightDataPoint, OxygenSaturationDataPoint, WeightDataPoint } from './samples.js'
import type { SettingsJson } from './settings.js'
import type { SleepDataPoint } from './sleep.js'

/** T with every field Google's S lacks turned to `never` (so T no longer fits it), at every depth. */
export type WithinSchema<T, S> = T extends readonly (infer E)[]
  ? NonNullable<S> extends readonly (infer F)[]
    ? readonly WithinSchema<E, F>[]
    : never
  : T extends object
    ? NonNullable<S> extends object
      ? { [K in keyof T]: K extends keyof NonNullable<S> ? WithinSchema<T[K], NonNullable<S>[K]> : never }
      : never
    : T extends NonNullable<S>
      ? T
      : never

/** Whether T follows Google's type S: every field of T is one of S's, with a value S allows. */
export type FollowsSchema<T, S> = [T] extends [WithinSchema<T, S>] ? true : false

/** Compiles only for `true`. */
type Holds<Check extends true> = Check

/** The answers of rollUp and dailyRollUp: each type's value, and the civil times of a day. */
export type RollupValuesFollowSchema = [
  Holds<FollowsSchema<StepsRollupValue, health_v4.Schema$StepsRollupValue>>,
  Holds<FollowsSchema<TotalCaloriesRollupValue, health_v4.Schema$TotalCaloriesRollupValue>>,
  Holds<FollowsSchema<HeartRateRollupValue, health_v4.Schema$HeartRateRollupValue>>,
  Holds<FollowsSchema<DistanceRollupValue, health_v4.Schema$DistanceRollupValue>>,
  Holds<FollowsSchema<ActiveMinutesRollupValue, health_v4.Schema$ActiveMinutesRollupValue>>,
  Holds<FollowsSchema<ActiveZoneMinutesRollupValue, health_v4.Schema$ActiveZoneMinutesRollupValue>>,
  Holds<FollowsSchema<WeightRollupValue, health_v4.Schema$WeightRollupValue>>,
  Holds<FollowsSchema<BodyFatRollupValue, health_v4.Schema$BodyFatRollupValue>>,
  Holds<FollowsSchema<FloorsRollupValue, health_v4.Schema$FloorsRollupValue>>,
  Holds<FollowsSchema<{ floors?: FloorsRollupValue }, health_v4.Schema$RollupDataPoint>>,
  Holds<FollowsSchema<{ floors?: FloorsRollupValue }, health_v4.Schema$DailyRollupDataPoint>>,
  Holds<FollowsSchema<CivilDateTime, health_v4.Schema$CivilDateTime>>,
]

/** The data points of list and reconcile: sessions and samples, as list writes them and as reconcile does. */
export type DataPointsFollowSchema = [
  Holds<FollowsSchema<SleepDataPoint, health_v4.Schema$DataPoint>>,
  Holds<FollowsSchema<ExerciseDataPoint, health_v4.Schema$DataPoint>>,
  Holds<FollowsSchema<HeightDataPoint, health_v4.Schema$DataPoint>>,
  Holds<FollowsSchema<OxygenSaturationDataPoint, health_v4.Schema$DataPoint>>,
  Holds<FollowsSchema<WeightDataPoint, health_v4.Schema$DataPoint>>,
  Holds<FollowsSchema<BodyFatDataPoint, health_v4.Schema$DataPoint>>,
  Holds<FollowsSchema<DailyRestingHeartRateDataPoint, health_v4.Schema$DataPoint>>,
  Holds<FollowsSchema<DailyHeartRateVariabilityDataPoint, health_v4.Schema$DataPoint>>,
  Holds<FollowsSchema<DailyVO2MaxDataPoint, health_v4.Schema$DataPoint>>,
  Holds<FollowsSchema<DailyRespiratoryRateDataPoint, health_v4.Schema$DataPoint>>,
  Holds<
    FollowsSchema<
      ReconciledDataPoint<DailyRestingHeartRateDataPoint | DailyHeartRateVariabilityDataPoint | DailyVO2MaxDataPoint | DailyRespiratoryRateDataPoint>,
      health_v4.Schema$ReconciledDataPoint
    >
  >,
  Holds<FollowsSchema<ReconciledDataPoint<SleepDataPoint>, health_v4.Schema$ReconciledDataPoint>>,
  Holds<FollowsSchema<ReconciledDataPoint<ExerciseDataPoint>, health_v4.Schema$ReconciledDataPoint>>,
  Holds<
    FollowsSchema<ReconciledDataPoint<HeightDataPoint | OxygenSaturationDataPoint | WeightDataPoint | BodyFatDataPoint>, health_v4.Schema$ReconciledDataPoint>
  >,
]

/** users.getSettings' answer. */
export type SettingsFollowSchema = [Holds<FollowsSchema<SettingsJson, health_v4.Schema$Settings>>]
