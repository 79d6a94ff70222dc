/**
 * The Google Fit data types this fake serves, as Google defines them: the raw type an app writes,
 * the summary type aggregation turns it into, the fields of each, and the OAuth scope group that
 * guards it. Kept independent of @fitstream/shared on purpose: the fake models Google, not FitStream,
 * so a mistake in the project's own table cannot be mirrored here and hidden.
 */

export type ScopeGroup = 'activity' | 'location' | 'heart_rate' | 'body' | 'sleep' | 'blood_pressure' | 'oxygen_saturation'

export const SCOPE_GROUPS: readonly ScopeGroup[] = ['activity', 'location', 'heart_rate', 'body', 'sleep', 'blood_pressure', 'oxygen_saturation']

export const FITNESS_SCOPE_PREFIX = 'https://www.googleapis.com/auth/fitness.'

export function readScope(group: ScopeGroup): string {
  return `${FITNESS_SCOPE_PREFIX}${group}.read`
}

/**
 * Google closes its Fitness API at the end of 2026; this fake serves it much longer, so that what is
 * built against Fit can still be tested. Deployments run against the fake say so with this date.
 */
export const FAKE_FIT_CLOSES_AT = '2100-01-01T00:00:00Z'

/** Every fitness read scope; what a user grants unless told otherwise. */
export const ALL_READ_SCOPES: readonly string[] = SCOPE_GROUPS.map(readScope)

/** Google's field formats, as they appear in dataSource.dataType.field[].format. */
export type FieldFormat = 'integer' | 'floatPoint'

export interface FieldSpec {
  readonly name: string
  readonly format: FieldFormat
  readonly optional?: boolean
}

/** Which of the user's devices records a type; decides the originDataSourceId. */
export type DeviceRole = 'phone' | 'watch' | 'scale' | 'bpMonitor'

export interface FitTypeSpec {
  /** The raw data type, as written by apps and named in aggregateBy. */
  readonly name: string
  readonly fields: readonly FieldSpec[]
  /** The data type of the points in aggregate buckets. */
  readonly aggregateName: string
  readonly aggregateFields: readonly FieldSpec[]
  readonly scope: ScopeGroup
  readonly device: DeviceRole
  /** The stream name of the raw source on the device (last part of its id; may be empty). */
  readonly rawStreamName: string
  /** The merged source Google maintains for the type (the derived id a client may aggregate by). */
  readonly mergedStreamName: string
}

const f = (name: string, format: FieldFormat, optional?: boolean): FieldSpec => (optional === true ? { name, format, optional } : { name, format })

const summaryFields = (base: string): FieldSpec[] =>
  [f('average', 'floatPoint'), f('max', 'floatPoint'), f('min', 'floatPoint')].map((field) =>
    base === '' ? field : { ...field, name: `${base}_${field.name}` },
  )

export const FIT_TYPES: readonly FitTypeSpec[] = [
  {
    name: 'com.google.step_count.delta',
    fields: [f('steps', 'integer')],
    aggregateName: 'com.google.step_count.delta',
    aggregateFields: [f('steps', 'integer')],
    scope: 'activity',
    device: 'phone',
    rawStreamName: 'step_counter',
    mergedStreamName: 'estimated_steps',
  },
  {
    name: 'com.google.calories.expended',
    fields: [f('calories', 'floatPoint')],
    aggregateName: 'com.google.calories.expended',
    aggregateFields: [f('calories', 'floatPoint')],
    scope: 'activity',
    device: 'phone',
    rawStreamName: 'calories',
    mergedStreamName: 'merge_calories_expended',
  },
  {
    name: 'com.google.distance.delta',
    fields: [f('distance', 'floatPoint')],
    aggregateName: 'com.google.distance.delta',
    aggregateFields: [f('distance', 'floatPoint')],
    scope: 'location',
    device: 'phone',
    rawStreamName: 'distance',
    mergedStreamName: 'merge_distance_delta',
  },
  {
    name: 'com.google.active_minutes',
    fields: [f('duration', 'integer')],
    aggregateName: 'com.google.active_minutes',
    aggregateFields: [f('duration', 'integer')],
    scope: 'activity',
    device: 'phone',
    rawStreamName: 'active_minutes',
    mergedStreamName: 'merge_active_minutes',
  },
  {
    name: 'com.google.heart_minutes',
    fields: [f('intensity', 'floatPoint')],
    aggregateName: 'com.google.heart_minutes.summary',
    aggregateFields: [f('intensity', 'floatPoint'), f('duration', 'integer')],
    scope: 'activity',
    device: 'watch',
    rawStreamName: 'heart_minutes',
    mergedStreamName: 'merge_heart_minutes',
  },
  {
    name: 'com.google.heart_rate.bpm',
    fields: [f('bpm', 'floatPoint')],
    aggregateName: 'com.google.heart_rate.summary',
    aggregateFields: summaryFields(''),
    scope: 'heart_rate',
    device: 'watch',
    rawStreamName: 'heart_rate',
    mergedStreamName: 'merge_heart_rate_bpm',
  },
  {
    name: 'com.google.weight',
    fields: [f('weight', 'floatPoint')],
    aggregateName: 'com.google.weight.summary',
    aggregateFields: summaryFields(''),
    scope: 'body',
    device: 'scale',
    rawStreamName: 'weight',
    mergedStreamName: 'merge_weight',
  },
  {
    name: 'com.google.height',
    fields: [f('height', 'floatPoint')],
    aggregateName: 'com.google.height.summary',
    aggregateFields: summaryFields(''),
    scope: 'body',
    device: 'scale',
    rawStreamName: 'height',
    mergedStreamName: 'merge_height',
  },
  {
    name: 'com.google.body.fat.percentage',
    fields: [f('percentage', 'floatPoint')],
    aggregateName: 'com.google.body.fat.percentage.summary',
    aggregateFields: summaryFields(''),
    scope: 'body',
    device: 'scale',
    rawStreamName: 'body_fat',
    mergedStreamName: 'merged',
  },
  {
    name: 'com.google.speed',
    fields: [f('speed', 'floatPoint')],
    aggregateName: 'com.google.speed.summary',
    aggregateFields: summaryFields(''),
    scope: 'location',
    device: 'phone',
    rawStreamName: 'speed',
    mergedStreamName: 'merge_speed',
  },
  {
    name: 'com.google.activity.segment',
    fields: [f('activity', 'integer')],
    aggregateName: 'com.google.activity.summary',
    aggregateFields: [f('activity', 'integer'), f('duration', 'integer'), f('num_segments', 'integer')],
    scope: 'activity',
    device: 'phone',
    rawStreamName: 'activity_segment',
    mergedStreamName: 'merge_activity_segments',
  },
  {
    name: 'com.google.sleep.segment',
    fields: [f('sleep_segment_type', 'integer')],
    aggregateName: 'com.google.sleep.segment',
    aggregateFields: [f('sleep_segment_type', 'integer')],
    scope: 'sleep',
    device: 'watch',
    rawStreamName: 'sleep',
    mergedStreamName: 'merged',
  },
  {
    name: 'com.google.blood_pressure',
    fields: [
      f('blood_pressure_systolic', 'floatPoint'),
      f('blood_pressure_diastolic', 'floatPoint'),
      f('body_position', 'integer', true),
      f('blood_pressure_measurement_location', 'integer', true),
    ],
    aggregateName: 'com.google.blood_pressure.summary',
    aggregateFields: [
      ...summaryFields('blood_pressure_systolic'),
      ...summaryFields('blood_pressure_diastolic'),
      f('body_position', 'integer', true),
      f('blood_pressure_measurement_location', 'integer', true),
    ],
    scope: 'blood_pressure',
    device: 'bpMonitor',
    rawStreamName: 'blood_pressure',
    mergedStreamName: 'merged',
  },
  {
    name: 'com.google.oxygen_saturation',
    fields: [f('oxygen_saturation', 'floatPoint'), f('supplemental_oxygen_flow_rate', 'floatPoint')],
    aggregateName: 'com.google.oxygen_saturation.summary',
    aggregateFields: summaryFields('oxygen_saturation'),
    scope: 'oxygen_saturation',
    device: 'watch',
    rawStreamName: 'spo2',
    mergedStreamName: 'merged',
  },
  {
    name: 'com.google.location.sample',
    fields: [f('latitude', 'floatPoint'), f('longitude', 'floatPoint'), f('accuracy', 'floatPoint'), f('altitude', 'floatPoint', true)],
    aggregateName: 'com.google.location.bounding_box',
    aggregateFields: [f('low_latitude', 'floatPoint'), f('low_longitude', 'floatPoint'), f('high_latitude', 'floatPoint'), f('high_longitude', 'floatPoint')],
    scope: 'location',
    device: 'phone',
    rawStreamName: 'location',
    mergedStreamName: 'merge_location_samples',
  },
]

const byName = new Map(FIT_TYPES.map((t) => [t.name, t]))

export function fitType(name: string): FitTypeSpec | undefined {
  return byName.get(name)
}

/** The package Google Play services uses for everything it derives. */
export const GMS_PACKAGE = 'com.google.android.gms'

/** The dataSourceId Google reports on aggregate datasets (named after the output type). */
export function aggregatedDataSourceId(type: FitTypeSpec): string {
  return `derived:${type.aggregateName}:${GMS_PACKAGE}:aggregated`
}

export function mergedDataSourceId(type: FitTypeSpec): string {
  return `derived:${type.name}:${GMS_PACKAGE}:${type.mergedStreamName}`
}
