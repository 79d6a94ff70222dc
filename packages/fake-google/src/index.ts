import type { ExerciseDataPoint } from './exercise.js'
import type { ListDataPointsResponse as ListAnswer, ReconcileDataPointsResponse as ReconcileAnswer, ReconciledDataPoint as Reconciled } from './list.js'
import type { DailyDataPoint } from './daily.js'
import type { SampleDataPoint } from './samples.js'
import type { SleepDataPoint } from './sleep.js'

export { FakeGoogle, type AddUserOptions, type FakeGoogleOptions, type FakeGoogleStats, type FakeUser, type FaultRoute, type FaultSpec } from './fake-google.js'
export {
  ALL_READ_SCOPES,
  FAKE_FIT_CLOSES_AT,
  FIT_TYPES,
  FITNESS_SCOPE_PREFIX,
  SCOPE_GROUPS,
  aggregatedDataSourceId,
  fitType,
  mergedDataSourceId,
  readScope,
  type FitTypeSpec,
  type ScopeGroup,
} from './catalogue.js'
export {
  DAY_MS,
  HOUR_MS,
  MINUTE_MS,
  aggregateSamples,
  googleIdForSeed,
  originDataSourceId,
  quantize,
  rawDataSourceId,
  rawSamples,
  sleepNight,
  stepBouts,
  syntheticBucket,
  userProfile,
  type AggregatePoint,
  type DeviceInfo,
  type FitValue,
  type RawSample,
  type SleepNight,
  type StepBout,
  type UserProfile,
} from './synthetic.js'
export {
  MAX_AGGREGATE_SPAN_MS,
  MAX_BUCKETS,
  buildAggregateResponse,
  expectedAggregateResponse,
  parseAggregateRequest,
  type AggregateBucket,
  type AggregateDataset,
  type AggregateRequest,
  type AggregateResponse,
} from './aggregate.js'
export {
  ALL_HEALTH_READ_SCOPES,
  DATA_SOURCE_FAMILIES,
  HEALTH_SCOPE_GROUPS,
  HEALTH_SAMPLE_TYPES,
  HEALTH_SCOPE_PREFIX,
  HEALTH_SESSION_TYPES,
  HEALTH_DAILY_TYPES,
  HEALTH_TYPES,
  canReadHealth,
  healthDailyType,
  healthReadScope,
  healthSampleType,
  healthSessionType,
  healthType,
  type DataSourceFamily,
  type HealthDailyDataType,
  type HealthDailyTypeSpec,
  type HealthDataType,
  type HealthSampleDataType,
  type HealthSampleTypeSpec,
  type HealthScopeGroup,
  type HealthSessionDataType,
  type HealthSessionTypeSpec,
  type HealthTypeSpec,
} from './health-catalogue.js'
export {
  DEFAULT_ROLLUP_PAGE_SIZE,
  MAX_ROLLUP_PAGE_SIZE,
  syntheticRollup,
  type ActiveMinutesRollupValue,
  type ActiveZoneMinutesRollupValue,
  type BodyFatRollupValue,
  type CivilDateTime,
  type DailyRollUpResponse,
  type DailyRollupDataPoint,
  type DistanceRollupValue,
  type FloorsRollupValue,
  type HealthRollupValue,
  type HeartRateRollupValue,
  type RollUpResponse,
  type RollupDataPoint,
  type StepsRollupValue,
  type TotalCaloriesRollupValue,
  type WeightRollupValue,
} from './rollup.js'
export {
  healthSleepSessions,
  type HealthSleepSession,
  type HealthSleepStage,
  type HealthSleepStageType,
  type HealthSleepType,
  type SleepDataPoint,
  type SleepJson,
  type SleepStageJson,
} from './sleep.js'
export {
  healthExerciseSessions,
  type ExerciseDataPoint,
  type ExerciseEventJson,
  type ExerciseJson,
  type HealthExerciseEventType,
  type HealthExerciseSession,
} from './exercise.js'
export { HEALTH_EXERCISE_TYPES, exerciseDisplayName, type HealthExerciseType } from './exercise-types.js'
export { buildSettingsResponse, type SettingsJson } from './settings.js'
export {
  healthSamples,
  type HealthSample,
  type BodyFatDataPoint,
  type BodyFatJson,
  type HeightDataPoint,
  type HeightJson,
  type ObservationSampleTimeJson,
  type OxygenSaturationDataPoint,
  type OxygenSaturationJson,
  type SampleDataPoint,
  type SampleDataSourceJson,
  type WeightDataPoint,
  type WeightJson,
} from './samples.js'
export {
  CARDIO_FITNESS_LEVELS,
  DAY_READY_HOURS,
  dailyValues,
  healthDailyValues,
  type CalculationMethod,
  type CardioFitnessLevel,
  type DailyDataPoint,
  type DailyHeartRateVariabilityJson,
  type DailyRespiratoryRateJson,
  type DailyRestingHeartRateJson,
  type DailyValues,
  type DailyVO2MaxJson,
  type DateJson,
} from './daily.js'
export { FitApiError, HealthApiError, type GoogleErrorBody, type HealthErrorBody, type OAuthErrorBody } from './errors.js'

/** Any data point the fake lists: a sleep or exercise session, a sample, or a day's summary. */
export type ListedDataPoint = SleepDataPoint | ExerciseDataPoint | SampleDataPoint | DailyDataPoint
/** A list answer on any type the fake lists, or on one of them. */
export type ListDataPointsResponse<P = ListedDataPoint> = ListAnswer<P>
/** A listed data point as reconcile writes it. */
export type ReconciledDataPoint<P = ListedDataPoint> = Reconciled<P>
/** A reconcile answer on any type the fake lists, or on one of them. */
export type ReconcileDataPointsResponse<P = ReconciledDataPoint> = ReconcileAnswer<P>
