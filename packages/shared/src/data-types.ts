/**
 * The catalogue of Google Fit data types FitStream knows: where each comes from, what values it has,
 * its unit and the OAuth scope it needs. Every other part of the pipeline (consent, fetching,
 * anonymising, stream names) is driven from this table.
 */

export const FIT_SCOPE_PREFIX = 'https://www.googleapis.com/auth/fitness.'

export type ScopeGroup = 'activity' | 'location' | 'heart_rate' | 'body' | 'sleep' | 'blood_pressure' | 'oxygen_saturation'

export interface ValueField {
  /** The field name in FitStream records. */
  readonly name: string
  /** How Google encodes it in `value[]` (in this order). */
  readonly format: 'int' | 'float'
}

export interface DataTypeSpec {
  /** FitStream's name for the type; also the last part of its Streamr stream id. */
  readonly key: string
  readonly description: string
  /** The raw Google Fit data type. */
  readonly fitDataType: string
  /** The merged source to aggregate by, where one exists (so totals match the Fit app). */
  readonly fitDataSourceId?: string
  /** The data type Google returns in aggregate buckets (summary types for instantaneous readings). */
  readonly aggregateDataType: string
  readonly fields: readonly ValueField[]
  readonly unit: string
  /** How two samples of the same interval combine: added up, or as avg/max/min summaries. */
  readonly combine: 'sum' | 'summary'
  readonly scope: ScopeGroup
  /** Location-bearing types are never fetched unless a privacy policy enables them explicitly. */
  readonly sensitive?: boolean
}

const summary: readonly ValueField[] = [
  { name: 'avg', format: 'float' },
  { name: 'max', format: 'float' },
  { name: 'min', format: 'float' },
]

export const DATA_TYPES = [
  {
    key: 'steps',
    description: 'Steps taken',
    fitDataType: 'com.google.step_count.delta',
    fitDataSourceId: 'derived:com.google.step_count.delta:com.google.android.gms:estimated_steps',
    aggregateDataType: 'com.google.step_count.delta',
    fields: [{ name: 'count', format: 'int' }],
    unit: 'steps',
    combine: 'sum',
    scope: 'activity',
  },
  {
    key: 'calories',
    description: 'Energy expended',
    fitDataType: 'com.google.calories.expended',
    aggregateDataType: 'com.google.calories.expended',
    fields: [{ name: 'kcal', format: 'float' }],
    unit: 'kcal',
    combine: 'sum',
    scope: 'activity',
  },
  {
    key: 'heart_rate',
    description: 'Heart rate: average, maximum and minimum per bucket',
    fitDataType: 'com.google.heart_rate.bpm',
    aggregateDataType: 'com.google.heart_rate.summary',
    fields: summary,
    unit: 'bpm',
    combine: 'summary',
    scope: 'heart_rate',
  },
  {
    key: 'distance',
    description: 'Distance covered',
    fitDataType: 'com.google.distance.delta',
    aggregateDataType: 'com.google.distance.delta',
    fields: [{ name: 'metres', format: 'float' }],
    unit: 'm',
    combine: 'sum',
    scope: 'location',
  },
  {
    key: 'active_minutes',
    description: 'Move minutes',
    fitDataType: 'com.google.active_minutes',
    aggregateDataType: 'com.google.active_minutes',
    fields: [{ name: 'minutes', format: 'int' }],
    unit: 'min',
    combine: 'sum',
    scope: 'activity',
  },
  {
    key: 'heart_minutes',
    description: 'Heart points',
    fitDataType: 'com.google.heart_minutes',
    aggregateDataType: 'com.google.heart_minutes.summary',
    fields: [
      { name: 'intensity', format: 'float' },
      { name: 'duration_min', format: 'int' },
    ],
    unit: 'points',
    combine: 'sum',
    scope: 'activity',
  },
  {
    key: 'weight',
    description: 'Body weight',
    fitDataType: 'com.google.weight',
    aggregateDataType: 'com.google.weight.summary',
    fields: summary,
    unit: 'kg',
    combine: 'summary',
    scope: 'body',
  },
] as const satisfies readonly DataTypeSpec[]

export type DataTypeKey = (typeof DATA_TYPES)[number]['key']

export const DATA_TYPE_KEYS = DATA_TYPES.map((t) => t.key) as [DataTypeKey, ...DataTypeKey[]]

const byKey = new Map<string, DataTypeSpec>(DATA_TYPES.map((t) => [t.key, t]))
const byAggregateType = new Map<string, DataTypeSpec>(DATA_TYPES.map((t) => [t.aggregateDataType, t]))

export function dataType(key: DataTypeKey): DataTypeSpec {
  const spec = byKey.get(key)
  if (spec === undefined) throw new Error(`Unknown data type ${key}`)
  return spec
}

export function dataTypeByAggregateType(aggregateDataType: string): DataTypeSpec | undefined {
  return byAggregateType.get(aggregateDataType)
}

/** The OAuth scopes to ask a user for, given the data types they consent to sell. */
export function scopesFor(keys: readonly DataTypeKey[]): string[] {
  const groups = new Set(keys.map((key) => dataType(key).scope))
  return [...groups].sort().map((group) => `${FIT_SCOPE_PREFIX}${group}.read`)
}
