/**
 * The catalogue of data types FitStream knows: where each comes from in the Google Fit REST API and
 * in its successor, the Google Health API; what values it has, its unit and the OAuth scope it needs.
 * Every other part of the pipeline (consent, fetching, anonymising, stream names) is driven from
 * this table.
 */

export const FIT_SCOPE_PREFIX = 'https://www.googleapis.com/auth/fitness.'
export const HEALTH_SCOPE_PREFIX = 'https://www.googleapis.com/auth/googlehealth.'
/**
 * Reads the person's Health settings, of which FitStream uses only the time zone they are in now
 * (their daily buckets are their local days there). Asked for beside the data scopes, and optional:
 * someone who withholds it is read in the zone FitStream already has for them.
 */
export const HEALTH_SETTINGS_SCOPE = `${HEALTH_SCOPE_PREFIX}settings.readonly`

/**
 * Which Google API a person's data is read from: the Fitness REST API (`fit`, supported by Google
 * until the end of 2026) or the Google Health API v4 (`health`). A grant holds the scopes of one.
 */
export const GOOGLE_DATA_APIS = ['fit', 'health'] as const
export type GoogleDataApi = (typeof GOOGLE_DATA_APIS)[number]

/**
 * When Google shuts the Fitness REST API down: Google supports it "until the end of 2026". The
 * default of GOOGLE_FIT_CLOSES_AT, which operators move if Google's date moves.
 */
export const FIT_CLOSES_AT = '2027-01-01T00:00:00Z'

/** Whether people read from `api` can no longer be read at `now`: the Fitness API, once it has closed. */
export function isClosed(api: GoogleDataApi, now: number, fitClosesAt: number): boolean {
  return api === 'fit' && now >= fitClosesAt
}

/** How messages and errors name each API. */
export const GOOGLE_DATA_API_NAMES: Readonly<Record<GoogleDataApi, string>> = { fit: 'Google Fitness API', health: 'Google Health API' }

/** The Health API's scope groups FitStream reads (each as `<prefix><group>.readonly`). */
export type HealthScopeGroup = 'activity_and_fitness' | 'health_metrics_and_measurements' | 'sleep'

/**
 * Where a type comes from in the Health API: the data type it is read from, its scope, and how it is
 * read: `rollUp` (Google sums or averages per window), `sessions` (whole sleep sessions are listed,
 * and FitStream puts their segments into buckets as the Fitness API's aggregate does), `samples`
 * (single readings are listed, and FitStream takes each bucket's average, highest and lowest),
 * `exercises` (workouts are listed, and FitStream shares each one's active minutes among the buckets
 * it overlaps) or `daily` (Google's one value per day of the person's calendar is listed, and
 * FitStream puts it in the bucket holding that day's local midnight).
 */
export interface HealthSource {
  /** The data type's id in Health API URLs (`users/me/dataTypes/<id>`). */
  readonly dataType: string
  readonly scope: HealthScopeGroup
  readonly read?: 'rollUp' | 'sessions' | 'samples' | 'exercises' | 'daily'
}

export type ScopeGroup = 'activity' | 'location' | 'heart_rate' | 'body' | 'sleep' | 'blood_pressure' | 'oxygen_saturation'

export interface ValueField {
  /** The field name in FitStream records. */
  readonly name: string
  /** How Google encodes it in `value[]` (ignored for derived fields). */
  readonly format: 'int' | 'float'
  /** How values of one field combine when intervals merge: added up, averaged, or the extreme kept. */
  readonly combine: 'sum' | 'mean' | 'max' | 'min'
}

/**
 * How a bucket's points become values:
 * - `point`: one point per bucket; `fields` read in order from its `value[]`.
 * - `stage-minutes`: sleep segments; minutes spent in each stage within the bucket.
 * - `activity-minutes`: activity summaries; minutes spent in each activity group within the bucket.
 */
export type Extraction = 'point' | 'stage-minutes' | 'activity-minutes'

/** Where a type comes from in the Fitness REST API. */
export interface FitSource {
  /** The raw Google Fit data type. */
  readonly dataType: string
  /** The merged source to aggregate by, where one exists (so totals match the Fit app). */
  readonly dataSourceId?: string
  /** The data type Google returns in aggregate buckets (summary types for instantaneous readings). */
  readonly aggregateDataType: string
  readonly extraction: Extraction
}

export interface DataTypeSpec {
  /** FitStream's name for the type; also the last part of its Streamr stream id. */
  readonly key: string
  readonly description: string
  readonly fields: readonly ValueField[]
  readonly unit: string
  readonly scope: ScopeGroup
  /** Location-bearing: never fetched unless the user consents and the privacy policy enables it. */
  readonly sensitive?: boolean
  /** Its Fitness API aggregate; absent, the type is read from the Health API only. */
  readonly fit?: FitSource
  /** Its Health API source, where one carries the same values; absent, the type is read from Fit only. */
  readonly health?: HealthSource
}

const int = (name: string, combine: ValueField['combine'] = 'sum'): ValueField => ({ name, format: 'int', combine })
const float = (name: string, combine: ValueField['combine'] = 'sum'): ValueField => ({ name, format: 'float', combine })
const summary = (prefix = ''): ValueField[] => [float(`${prefix}avg`, 'mean'), float(`${prefix}max`, 'max'), float(`${prefix}min`, 'min')]

/** Sleep stages as Google numbers them, and the field each one's minutes go to. */
export const SLEEP_STAGE_FIELDS: Readonly<Record<number, string>> = {
  1: 'awake_min',
  2: 'sleep_min',
  3: 'out_of_bed_min',
  4: 'light_min',
  5: 'deep_min',
  6: 'rem_min',
}

/** Google activity types grouped coarsely (the exact type can be revealing); unlisted types count as other. */
export const ACTIVITY_GROUP_FIELDS: Readonly<Record<number, string>> = {
  3: 'still_min',
  7: 'walking_min',
  93: 'walking_min',
  94: 'walking_min',
  8: 'running_min',
  56: 'running_min',
  57: 'running_min',
  58: 'running_min',
  1: 'cycling_min',
  14: 'cycling_min',
  15: 'cycling_min',
  16: 'cycling_min',
  17: 'cycling_min',
  18: 'cycling_min',
  19: 'cycling_min',
  72: 'sleeping_min',
}

/**
 * The catalogue. A type's place in it is stored (the fetcher's bucket history writes a type as its
 * index), so new types go at the end and none is ever removed or moved.
 */
export const DATA_TYPES = [
  {
    key: 'steps',
    description: 'Steps taken',
    fields: [int('count')],
    unit: 'steps',
    scope: 'activity',
    fit: {
      dataType: 'com.google.step_count.delta',
      dataSourceId: 'derived:com.google.step_count.delta:com.google.android.gms:estimated_steps',
      aggregateDataType: 'com.google.step_count.delta',
      extraction: 'point',
    },
    health: { dataType: 'steps', scope: 'activity_and_fitness' },
  },
  {
    key: 'calories',
    description: 'Energy expended',
    fields: [float('kcal')],
    unit: 'kcal',
    scope: 'activity',
    fit: { dataType: 'com.google.calories.expended', aggregateDataType: 'com.google.calories.expended', extraction: 'point' },
    health: { dataType: 'total-calories', scope: 'activity_and_fitness' },
  },
  {
    key: 'heart_rate',
    description: 'Heart rate: average, maximum and minimum per bucket',
    fields: summary(),
    unit: 'bpm',
    scope: 'heart_rate',
    fit: { dataType: 'com.google.heart_rate.bpm', aggregateDataType: 'com.google.heart_rate.summary', extraction: 'point' },
    health: { dataType: 'heart-rate', scope: 'health_metrics_and_measurements' },
  },
  {
    key: 'distance',
    description: 'Distance covered',
    fields: [float('metres')],
    unit: 'm',
    scope: 'location',
    fit: { dataType: 'com.google.distance.delta', aggregateDataType: 'com.google.distance.delta', extraction: 'point' },
    health: { dataType: 'distance', scope: 'activity_and_fitness' },
  },
  {
    key: 'active_minutes',
    description: 'Move minutes',
    fields: [int('minutes')],
    unit: 'min',
    scope: 'activity',
    fit: { dataType: 'com.google.active_minutes', aggregateDataType: 'com.google.active_minutes', extraction: 'point' },
    health: { dataType: 'active-minutes', scope: 'activity_and_fitness' },
  },
  {
    key: 'heart_minutes',
    description: 'Heart points',
    fields: [float('intensity'), int('duration_min')],
    unit: 'points',
    scope: 'activity',
    fit: { dataType: 'com.google.heart_minutes', aggregateDataType: 'com.google.heart_minutes.summary', extraction: 'point' },
    health: { dataType: 'active-zone-minutes', scope: 'activity_and_fitness' },
  },
  {
    key: 'weight',
    description: 'Body weight',
    fields: summary(),
    unit: 'kg',
    scope: 'body',
    fit: { dataType: 'com.google.weight', aggregateDataType: 'com.google.weight.summary', extraction: 'point' },
    health: { dataType: 'weight', scope: 'health_metrics_and_measurements', read: 'samples' },
  },
  {
    key: 'height',
    description: 'Body height',
    fields: summary(),
    unit: 'm',
    scope: 'body',
    fit: { dataType: 'com.google.height', aggregateDataType: 'com.google.height.summary', extraction: 'point' },
    health: { dataType: 'height', scope: 'health_metrics_and_measurements', read: 'samples' },
  },
  {
    key: 'body_fat',
    description: 'Body fat percentage',
    fields: summary(),
    unit: '%',
    scope: 'body',
    fit: { dataType: 'com.google.body.fat.percentage', aggregateDataType: 'com.google.body.fat.percentage.summary', extraction: 'point' },
    health: { dataType: 'body-fat', scope: 'health_metrics_and_measurements', read: 'samples' },
  },
  {
    key: 'sleep',
    description: 'Sleep: minutes in each stage',
    fields: ['awake_min', 'sleep_min', 'out_of_bed_min', 'light_min', 'deep_min', 'rem_min'].map((name) => float(name)),
    unit: 'min',
    scope: 'sleep',
    fit: { dataType: 'com.google.sleep.segment', aggregateDataType: 'com.google.sleep.segment', extraction: 'stage-minutes' },
    health: { dataType: 'sleep', scope: 'sleep', read: 'sessions' },
  },
  {
    key: 'activity',
    description: 'Minutes spent still, walking, running, cycling, sleeping or in other activities',
    fields: ['still_min', 'walking_min', 'running_min', 'cycling_min', 'sleeping_min', 'other_min'].map((name) => float(name)),
    unit: 'min',
    scope: 'activity',
    fit: { dataType: 'com.google.activity.segment', aggregateDataType: 'com.google.activity.summary', extraction: 'activity-minutes' },
  },
  {
    key: 'speed',
    description: 'Speed: average, maximum and minimum per bucket',
    fields: summary(),
    unit: 'm/s',
    scope: 'location',
    fit: { dataType: 'com.google.speed', aggregateDataType: 'com.google.speed.summary', extraction: 'point' },
  },
  {
    key: 'blood_pressure',
    description: 'Blood pressure: systolic and diastolic average, maximum and minimum',
    fields: [...summary('systolic_'), ...summary('diastolic_')],
    unit: 'mmHg',
    scope: 'blood_pressure',
    fit: { dataType: 'com.google.blood_pressure', aggregateDataType: 'com.google.blood_pressure.summary', extraction: 'point' },
  },
  {
    key: 'oxygen_saturation',
    description: 'Blood oxygen saturation: average, maximum and minimum',
    fields: summary(),
    unit: '%',
    scope: 'oxygen_saturation',
    fit: { dataType: 'com.google.oxygen_saturation', aggregateDataType: 'com.google.oxygen_saturation.summary', extraction: 'point' },
    health: { dataType: 'oxygen-saturation', scope: 'health_metrics_and_measurements', read: 'samples' },
  },
  {
    key: 'location',
    description: 'Bounding box of the places visited in a bucket (off unless the privacy policy enables it)',
    fields: [float('low_lat', 'min'), float('low_lng', 'min'), float('high_lat', 'max'), float('high_lng', 'max')],
    unit: 'deg',
    scope: 'location',
    sensitive: true,
    fit: { dataType: 'com.google.location.sample', aggregateDataType: 'com.google.location.bounding_box', extraction: 'point' },
  },
  {
    key: 'workouts',
    description: 'Minutes of recorded workouts: walking or hiking, running, cycling, swimming, strength training and other',
    fields: ['walking_min', 'running_min', 'cycling_min', 'swimming_min', 'strength_min', 'other_min'].map((name) => float(name)),
    unit: 'min',
    scope: 'activity',
    health: { dataType: 'exercise', scope: 'activity_and_fitness', read: 'exercises' },
  },
  // Google's daily summaries, one value per calendar day in the person's time zone (Health API only).
  {
    key: 'resting_heart_rate',
    description: 'Resting heart rate, one value a day as Google works it out from the day’s heart rate',
    fields: [int('bpm', 'mean')],
    unit: 'bpm',
    scope: 'heart_rate',
    health: { dataType: 'daily-resting-heart-rate', scope: 'health_metrics_and_measurements', read: 'daily' },
  },
  {
    key: 'heart_rate_variability',
    description: 'Heart-rate variability (RMSSD between heartbeats), one value a day from the main sleep',
    fields: [float('rmssd_ms', 'mean')],
    unit: 'ms',
    scope: 'heart_rate',
    health: { dataType: 'daily-heart-rate-variability', scope: 'health_metrics_and_measurements', read: 'daily' },
  },
  {
    key: 'vo2_max',
    description: 'VO2 max (cardio fitness score), one value a day',
    fields: [float('ml_per_kg_min', 'mean')],
    unit: 'ml/kg/min',
    scope: 'activity',
    health: { dataType: 'daily-vo2-max', scope: 'activity_and_fitness', read: 'daily' },
  },
  {
    key: 'respiratory_rate',
    description: 'Breathing rate during the main sleep, one value a day',
    fields: [float('breaths_per_min', 'mean')],
    unit: 'breaths/min',
    scope: 'heart_rate',
    health: { dataType: 'daily-respiratory-rate', scope: 'health_metrics_and_measurements', read: 'daily' },
  },
  {
    key: 'floors',
    description: 'Floors climbed',
    fields: [int('count')],
    unit: 'floors',
    scope: 'activity',
    health: { dataType: 'floors', scope: 'activity_and_fitness' },
  },
] as const satisfies readonly DataTypeSpec[]

export type DataTypeKey = (typeof DATA_TYPES)[number]['key']

export const DATA_TYPE_KEYS = DATA_TYPES.map((t) => t.key) as [DataTypeKey, ...DataTypeKey[]]

const byKey = new Map<string, DataTypeSpec>(DATA_TYPES.map((t) => [t.key, t]))
const byAggregateType = new Map<string, DataTypeSpec>(DATA_TYPES.flatMap((t: DataTypeSpec) => (t.fit === undefined ? [] : [[t.fit.aggregateDataType, t]])))

export function dataType(key: DataTypeKey): DataTypeSpec {
  const spec = byKey.get(key)
  if (spec === undefined) throw new Error(`Unknown data type ${key}`)
  return spec
}

export function dataTypeByAggregateType(aggregateDataType: string): DataTypeSpec | undefined {
  return byAggregateType.get(aggregateDataType)
}

/** Whether the type can be read from this API. */
export function readableIn(key: DataTypeKey, api: GoogleDataApi): boolean {
  return (api === 'fit' ? dataType(key).fit : dataType(key).health) !== undefined
}

/** The OAuth scope reading this type needs in this API (undefined: the API does not have the type). */
export function scopeFor(key: DataTypeKey, api: GoogleDataApi): string | undefined {
  const spec = dataType(key)
  if (api === 'fit') return spec.fit === undefined ? undefined : `${FIT_SCOPE_PREFIX}${spec.scope}.read`
  return spec.health === undefined ? undefined : `${HEALTH_SCOPE_PREFIX}${spec.health.scope}.readonly`
}

/** The OAuth scopes to ask a user for, given the data types they consent to sell (types the API lacks need none). */
export function scopesFor(keys: readonly DataTypeKey[], api: GoogleDataApi = 'fit'): string[] {
  const scopes = new Set(keys.map((key) => scopeFor(key, api)).filter((scope): scope is string => scope !== undefined))
  return [...scopes].sort()
}

/**
 * The API a grant is for: Health once any Health API scope was granted, else Fit; `fallback` when
 * the scopes are not known yet (a refresh token registered directly, before its first use).
 */
export function dataApiOfScopes(scopes: readonly string[], fallback: GoogleDataApi): GoogleDataApi {
  if (scopes.some((scope) => scope.startsWith(HEALTH_SCOPE_PREFIX))) return 'health'
  return scopes.some((scope) => scope.startsWith(FIT_SCOPE_PREFIX)) ? 'fit' : fallback
}
