/**
 * The Google Health API (v4) data types this fake rolls up or lists, as the API names them, and the
 * OAuth scopes that guard them. Each type is built from the Fit raw type that measures the same thing,
 * so one synthetic user reads the same through both APIs (up to units).
 */

import type { DeviceRole } from './catalogue.js'

export const HEALTH_SCOPE_PREFIX = 'https://www.googleapis.com/auth/googlehealth.'

/** The Health API scope groups that have a read-only scope (`googlehealth.<group>.readonly`). */
export type HealthScopeGroup = 'activity_and_fitness' | 'health_metrics_and_measurements' | 'sleep' | 'location' | 'profile' | 'settings' | 'ecg' | 'irn'

export const HEALTH_SCOPE_GROUPS: readonly HealthScopeGroup[] = [
  'activity_and_fitness',
  'health_metrics_and_measurements',
  'sleep',
  'location',
  'profile',
  'settings',
  'ecg',
  'irn',
]

export function healthReadScope(group: HealthScopeGroup): string {
  return `${HEALTH_SCOPE_PREFIX}${group}.readonly`
}

/** Every Health API read-only scope. Not part of a user's default grant, which stays Fit-only. */
export const ALL_HEALTH_READ_SCOPES: readonly string[] = HEALTH_SCOPE_GROUPS.map(healthReadScope)

/**
 * Whether a token's scopes let it read a group: the read-only scope or the group's full-access
 * scope (`googlehealth.<group>`); a write-only scope does not.
 */
export function canReadHealth(scopes: readonly string[], group: HealthScopeGroup): boolean {
  return scopes.includes(healthReadScope(group)) || scopes.includes(`${HEALTH_SCOPE_PREFIX}${group}`)
}

export type HealthDataType =
  'steps' | 'total-calories' | 'heart-rate' | 'distance' | 'active-minutes' | 'active-zone-minutes' | 'weight' | 'body-fat' | 'floors'

export interface HealthTypeSpec {
  /** The data type as it appears in the request path (`users/me/dataTypes/<name>`). */
  readonly name: HealthDataType
  /** The field of a rollup data point that carries the type's value. */
  readonly valueField: string
  /** The Fit raw data type whose synthetic samples the values are built from. */
  readonly fitType: string
  readonly scope: HealthScopeGroup
  /** Google refuses roll-ups over a longer range for this type. */
  readonly maxRangeDays: number
}

export const HEALTH_TYPES: readonly HealthTypeSpec[] = [
  { name: 'steps', valueField: 'steps', fitType: 'com.google.step_count.delta', scope: 'activity_and_fitness', maxRangeDays: 90 },
  { name: 'total-calories', valueField: 'totalCalories', fitType: 'com.google.calories.expended', scope: 'activity_and_fitness', maxRangeDays: 14 },
  { name: 'heart-rate', valueField: 'heartRate', fitType: 'com.google.heart_rate.bpm', scope: 'health_metrics_and_measurements', maxRangeDays: 14 },
  { name: 'distance', valueField: 'distance', fitType: 'com.google.distance.delta', scope: 'activity_and_fitness', maxRangeDays: 90 },
  { name: 'active-minutes', valueField: 'activeMinutes', fitType: 'com.google.active_minutes', scope: 'activity_and_fitness', maxRangeDays: 14 },
  {
    name: 'active-zone-minutes',
    valueField: 'activeZoneMinutes',
    fitType: 'com.google.heart_minutes',
    scope: 'activity_and_fitness',
    maxRangeDays: 90,
  },
  { name: 'weight', valueField: 'weight', fitType: 'com.google.weight', scope: 'health_metrics_and_measurements', maxRangeDays: 90 },
  { name: 'body-fat', valueField: 'bodyFat', fitType: 'com.google.body.fat.percentage', scope: 'health_metrics_and_measurements', maxRangeDays: 90 },
  // Fit has no floors: they are climbed within the user's step bouts (rollup.ts), so they come from the steps' samples.
  { name: 'floors', valueField: 'floors', fitType: 'com.google.step_count.delta', scope: 'activity_and_fitness', maxRangeDays: 90 },
]

const byName = new Map<string, HealthTypeSpec>(HEALTH_TYPES.map((t) => [t.name, t]))

export function healthType(name: string): HealthTypeSpec | undefined {
  return byName.get(name)
}

/** The Health API session data types this fake lists (users.dataTypes.dataPoints.list); never rolled up. */
export type HealthSessionDataType = 'sleep' | 'exercise'

export interface HealthSessionTypeSpec {
  /** The data type as it appears in the request path (`users/me/dataTypes/<name>`). */
  readonly name: HealthSessionDataType
  /** The field of a data point that carries the session. */
  readonly valueField: string
  /**
   * The Fit raw data type whose synthetic segments the sessions are built from: its recording device
   * is the sessions' source, which a reconcile's data source family keeps or leaves out.
   */
  readonly fitType: string
  readonly scope: HealthScopeGroup
  /** list's page size when a request gives none (or 0); larger ones are cut down to maxPageSize. */
  readonly defaultPageSize: number
  readonly maxPageSize: number
}

export const HEALTH_SESSION_TYPES: readonly HealthSessionTypeSpec[] = [
  { name: 'sleep', valueField: 'sleep', fitType: 'com.google.sleep.segment', scope: 'sleep', defaultPageSize: 25, maxPageSize: 25 },
  // Workouts are the running bouts, which Fit shows as activity segments of type 8.
  { name: 'exercise', valueField: 'exercise', fitType: 'com.google.activity.segment', scope: 'activity_and_fitness', defaultPageSize: 25, maxPageSize: 25 },
]

const sessionByName = new Map<string, HealthSessionTypeSpec>(HEALTH_SESSION_TYPES.map((t) => [t.name, t]))

export function healthSessionType(name: string): HealthSessionTypeSpec | undefined {
  return sessionByName.get(name)
}

/**
 * The Health API sample data types this fake lists (users.dataTypes.dataPoints.list). Height and
 * blood oxygen are never rolled up, as at Google; weight and body fat are also rolled up (to an
 * average only), and their single readings are listed here.
 */
export type HealthSampleDataType = 'height' | 'oxygen-saturation' | 'weight' | 'body-fat'

export interface HealthSampleTypeSpec {
  /** The data type as it appears in the request path (`users/me/dataTypes/<name>`). */
  readonly name: HealthSampleDataType
  /** The type as list filters name it (snake_case): `<filterName>.sample_time.physical_time`. */
  readonly filterName: string
  /** The field of a data point that carries the sample. */
  readonly valueField: 'height' | 'oxygenSaturation' | 'weight' | 'bodyFat'
  /** The Fit raw data type whose synthetic samples the data points are, one for one. */
  readonly fitType: string
  readonly scope: HealthScopeGroup
  /** list's page size when a request gives none (or 0); larger ones are cut down to maxPageSize. */
  readonly defaultPageSize: number
  readonly maxPageSize: number
}

export const HEALTH_SAMPLE_TYPES: readonly HealthSampleTypeSpec[] = [
  {
    name: 'height',
    filterName: 'height',
    valueField: 'height',
    fitType: 'com.google.height',
    scope: 'health_metrics_and_measurements',
    defaultPageSize: 1440,
    maxPageSize: 10_000,
  },
  {
    name: 'oxygen-saturation',
    filterName: 'oxygen_saturation',
    valueField: 'oxygenSaturation',
    fitType: 'com.google.oxygen_saturation',
    scope: 'health_metrics_and_measurements',
    defaultPageSize: 1440,
    maxPageSize: 10_000,
  },
  {
    name: 'weight',
    filterName: 'weight',
    valueField: 'weight',
    fitType: 'com.google.weight',
    scope: 'health_metrics_and_measurements',
    defaultPageSize: 1440,
    maxPageSize: 10_000,
  },
  {
    name: 'body-fat',
    filterName: 'body_fat',
    valueField: 'bodyFat',
    fitType: 'com.google.body.fat.percentage',
    scope: 'health_metrics_and_measurements',
    defaultPageSize: 1440,
    maxPageSize: 10_000,
  },
]

const sampleByName = new Map<string, HealthSampleTypeSpec>(HEALTH_SAMPLE_TYPES.map((t) => [t.name, t]))

export function healthSampleType(name: string): HealthSampleTypeSpec | undefined {
  return sampleByName.get(name)
}

/**
 * The Health API daily data types this fake lists (users.dataTypes.dataPoints.list and reconcile):
 * one value per calendar day in the user's zone, filtered by `<filterName>.date`. Never rolled up
 * (Google rolls them up only to a personal range).
 */
export type HealthDailyDataType = 'daily-resting-heart-rate' | 'daily-heart-rate-variability' | 'daily-vo2-max' | 'daily-respiratory-rate'

export interface HealthDailyTypeSpec {
  /** The data type as it appears in the request path (`users/me/dataTypes/<name>`). */
  readonly name: HealthDailyDataType
  /** The type as list filters name it (snake_case): `<filterName>.date`. */
  readonly filterName: string
  /** The field of a data point that carries the day's value. */
  readonly valueField: 'dailyRestingHeartRate' | 'dailyHeartRateVariability' | 'dailyVo2Max' | 'dailyRespiratoryRate'
  /** The Fit raw type whose recording device (the watch) works the day out: a data source family without it has none. */
  readonly fitType: string
  readonly scope: HealthScopeGroup
  readonly defaultPageSize: number
  readonly maxPageSize: number
}

const daily = (name: HealthDailyDataType, valueField: HealthDailyTypeSpec['valueField'], scope: HealthScopeGroup): HealthDailyTypeSpec => ({
  name,
  filterName: name.replaceAll('-', '_'),
  valueField,
  fitType: 'com.google.heart_rate.bpm',
  scope,
  defaultPageSize: 1440,
  maxPageSize: 10_000,
})

export const HEALTH_DAILY_TYPES: readonly HealthDailyTypeSpec[] = [
  daily('daily-resting-heart-rate', 'dailyRestingHeartRate', 'health_metrics_and_measurements'),
  daily('daily-heart-rate-variability', 'dailyHeartRateVariability', 'health_metrics_and_measurements'),
  daily('daily-vo2-max', 'dailyVo2Max', 'activity_and_fitness'),
  daily('daily-respiratory-rate', 'dailyRespiratoryRate', 'health_metrics_and_measurements'),
]

const dailyByName = new Map<string, HealthDailyTypeSpec>(HEALTH_DAILY_TYPES.map((t) => [t.name, t]))

export function healthDailyType(name: string): HealthDailyTypeSpec | undefined {
  return dailyByName.get(name)
}

/** The `dataSourceFamily` values Google accepts; empty means all sources. */
export const DATA_SOURCE_FAMILIES = [
  'users/me/dataSourceFamilies/all-sources',
  'users/me/dataSourceFamilies/google-wearables',
  'users/me/dataSourceFamilies/google-sources',
] as const

export type DataSourceFamily = (typeof DATA_SOURCE_FAMILIES)[number]

/**
 * Whether data recorded by a device belongs to a family. Every synthetic device syncs through
 * Google, so only google-wearables narrows anything: it keeps Google and Fitbit trackers (a Pixel
 * Watch, a Fitbit), not phones, scales or other makers' watches.
 */
export function inFamily(family: DataSourceFamily, device: { readonly role: DeviceRole; readonly manufacturer: string }): boolean {
  if (family !== 'users/me/dataSourceFamilies/google-wearables') return true
  return device.role === 'watch' && (device.manufacturer === 'Google' || device.manufacturer === 'Fitbit')
}
