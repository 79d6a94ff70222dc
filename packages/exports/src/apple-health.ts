import { SaxesParser, type SaxesTagPlain } from 'saxes'
import type { DataTypeKey } from '@fitstream/shared'
import type { BucketAccumulator } from './buckets.js'
import { ImportError } from './errors.js'
import { PLAUSIBLE } from './limits.js'

/** Where an Apple Health export keeps its records inside `export.zip`. */
export const APPLE_EXPORT_ENTRY = /^(?:[^/]+\/)?export\.xml$/

/** Times an imported record may have: before `notBeforeMs` or after `notAfterMs` the whole import is refused. */
export interface DateRange {
  readonly notBeforeMs: number
  readonly notAfterMs: number
}

/** How one Apple quantity type becomes a FitStream type: its field, how it combines, and its units with their factors. */
interface QuantityRule {
  readonly type: DataTypeKey
  readonly field?: string
  readonly kind: 'amount' | 'reading'
  /** Apple unit string -> factor to FitStream's unit. Any other unit refuses the import. */
  readonly units: Readonly<Record<string, number>>
}

const QUANTITIES: Readonly<Record<string, QuantityRule>> = {
  HKQuantityTypeIdentifierStepCount: { type: 'steps', field: 'count', kind: 'amount', units: { count: 1 } },
  // Google's "energy expended" counts resting energy too: Apple's active and basal energy together are that total.
  HKQuantityTypeIdentifierActiveEnergyBurned: { type: 'calories', field: 'kcal', kind: 'amount', units: { kcal: 1, Cal: 1, kJ: 1 / 4.184 } },
  HKQuantityTypeIdentifierBasalEnergyBurned: { type: 'calories', field: 'kcal', kind: 'amount', units: { kcal: 1, Cal: 1, kJ: 1 / 4.184 } },
  HKQuantityTypeIdentifierDistanceWalkingRunning: { type: 'distance', field: 'metres', kind: 'amount', units: { m: 1, km: 1000, mi: 1609.344 } },
  HKQuantityTypeIdentifierDistanceCycling: { type: 'distance', field: 'metres', kind: 'amount', units: { m: 1, km: 1000, mi: 1609.344 } },
  HKQuantityTypeIdentifierAppleExerciseTime: { type: 'active_minutes', field: 'minutes', kind: 'amount', units: { min: 1 } },
  HKQuantityTypeIdentifierHeartRate: { type: 'heart_rate', kind: 'reading', units: { 'count/min': 1 } },
  HKQuantityTypeIdentifierBodyMass: { type: 'weight', kind: 'reading', units: { kg: 1, g: 0.001, lb: 0.45359237 } },
  HKQuantityTypeIdentifierHeight: { type: 'height', kind: 'reading', units: { m: 1, cm: 0.01, ft: 0.3048, in: 0.0254 } },
  // Apple stores percentages as fractions (0.21 for 21 %).
  HKQuantityTypeIdentifierBodyFatPercentage: { type: 'body_fat', kind: 'reading', units: { '%': 100 } },
  HKQuantityTypeIdentifierOxygenSaturation: { type: 'oxygen_saturation', kind: 'reading', units: { '%': 100 } },
}

/** Apple's sleep states and the FitStream field of each; time "in bed" overlaps the asleep states and is not counted. */
const SLEEP_STATES: Readonly<Record<string, string | null>> = {
  HKCategoryValueSleepAnalysisInBed: null,
  HKCategoryValueSleepAnalysisAsleep: 'sleep_min',
  HKCategoryValueSleepAnalysisAsleepUnspecified: 'sleep_min',
  HKCategoryValueSleepAnalysisAsleepCore: 'light_min',
  HKCategoryValueSleepAnalysisAsleepDeep: 'deep_min',
  HKCategoryValueSleepAnalysisAsleepREM: 'rem_min',
  HKCategoryValueSleepAnalysisAwake: 'awake_min',
}

/** Workout activities by group (the exact activity can be revealing); any other is `other_min`. */
const WORKOUT_GROUPS: Readonly<Record<string, string>> = {
  HKWorkoutActivityTypeWalking: 'walking_min',
  HKWorkoutActivityTypeHiking: 'walking_min',
  HKWorkoutActivityTypeRunning: 'running_min',
  HKWorkoutActivityTypeCycling: 'cycling_min',
  HKWorkoutActivityTypeSwimming: 'swimming_min',
  HKWorkoutActivityTypeTraditionalStrengthTraining: 'strength_min',
  HKWorkoutActivityTypeFunctionalStrengthTraining: 'strength_min',
}

/** Longest record FitStream takes: a workout or a sleep stage longer than two days is a broken record. */
const MAX_RECORD_MS = 2 * 86_400_000

const APPLE_DATE = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2}) ([+-])(\d{2})(\d{2})$/

/** `2026-11-30 07:12:00 +0100` as epoch ms, or undefined when it is not exactly that shape or not a real time. */
export function parseAppleDate(text: string): number | undefined {
  const m = APPLE_DATE.exec(text)
  if (m === null) return undefined
  const [year, month, day, hour, minute, second, sign, offH, offM] = [m[1], m[2], m[3], m[4], m[5], m[6], m[7], m[8], m[9]].map((s, i) =>
    i === 6 ? s : Number(s),
  ) as [number, number, number, number, number, number, string, number, number]
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 59 || offH > 14 || offM > 59) return undefined
  const local = Date.UTC(year, month - 1, day, hour, minute, second)
  if (new Date(local).getUTCDate() !== day) return undefined
  return local - (sign === '+' ? 1 : -1) * (offH * 60 + offM) * 60_000
}

/** Counts of what an Apple export held beyond what FitStream takes. */
export interface AppleParseStats {
  records: number
  /** Records of types FitStream does not sell (left out, not an error). */
  skipped: number
}

/**
 * Reads an Apple Health `export.xml` as it streams in and adds its records to `into`. The DTD every
 * Apple export starts with is allowed only as element and attribute declarations; an entity
 * declaration, an external DTD or any entity reference beyond XML's five refuses the import, and
 * nothing is ever expanded. Only `type`, `unit`, `value`, `startDate`, `endDate` and a workout's
 * `workoutActivityType` are read: `sourceName`, `device` and metadata are never looked at.
 */
export async function parseAppleHealthXml(
  input: AsyncIterable<Buffer | string>,
  into: BucketAccumulator,
  options: { readonly dates: DateRange; readonly maxElementBytes: number; readonly onRecords?: (count: number) => void },
): Promise<AppleParseStats> {
  const parser = new SaxesParser({ xmlns: false, position: true })
  const stats: AppleParseStats = { records: 0, skipped: 0 }
  let failure: ImportError | undefined
  let rootSeen = false
  let sinceTag = 0

  const fail = (code: ConstructorParameters<typeof ImportError>[0], message: string): never => {
    throw new ImportError(code, `${message} (export.xml line ${parser.line})`)
  }
  const time = (text: string | undefined, what: string): number => {
    const ms = text === undefined ? undefined : parseAppleDate(text)
    if (ms === undefined) return fail('FST_ERR_IMPORT_MALFORMED', `a record's ${what} is not a date like 2026-11-30 07:12:00 +0100`)
    if (ms < options.dates.notBeforeMs || ms > options.dates.notAfterMs) {
      return fail(
        'FST_ERR_IMPORT_DATE_RANGE',
        `a record's ${what} is outside ${new Date(options.dates.notBeforeMs).toISOString().slice(0, 10)} - ${new Date(options.dates.notAfterMs).toISOString().slice(0, 10)}`,
      )
    }
    return ms
  }
  const interval = (attrs: Record<string, string>): [number, number] => {
    const start = time(attrs.startDate, 'startDate')
    const end = time(attrs.endDate, 'endDate')
    if (end < start || end - start > MAX_RECORD_MS) fail('FST_ERR_IMPORT_MALFORMED', 'a record ends before it starts or lasts more than two days')
    return [start, end]
  }

  const onRecord = (attrs: Record<string, string>): void => {
    const type = attrs.type ?? ''
    const rule = QUANTITIES[type]
    if (rule !== undefined) {
      const unit = attrs.unit ?? ''
      const factor = rule.units[unit]
      if (factor === undefined)
        fail(
          'FST_ERR_IMPORT_UNIT',
          `a ${type.replace('HKQuantityTypeIdentifier', '')} record is in "${unit.slice(0, 16)}", not one of ${Object.keys(rule.units).join(', ')}`,
        )
      const raw = attrs.value === undefined || attrs.value.trim() === '' ? NaN : Number(attrs.value)
      if (!Number.isFinite(raw)) fail('FST_ERR_IMPORT_MALFORMED', `a ${type.replace('HKQuantityTypeIdentifier', '')} record has no numeric value`)
      const value = raw * factor!
      const [lo, hi] = PLAUSIBLE[rule.type]!
      if (value < lo || value > hi)
        fail(
          'FST_ERR_IMPORT_UNIT',
          `a ${type.replace('HKQuantityTypeIdentifier', '')} record's value is outside ${lo}-${hi} ${unitName(rule.type)}: a wrong unit or a broken record`,
        )
      const [start, end] = interval(attrs)
      if (rule.kind === 'amount') into.addAmount(rule.type, rule.field!, start, end, value)
      else into.addReading(rule.type, start, value)
      stats.records++
      return
    }
    if (type === 'HKCategoryTypeIdentifierSleepAnalysis') {
      const state = attrs.value ?? ''
      if (!Object.hasOwn(SLEEP_STATES, state)) fail('FST_ERR_IMPORT_MALFORMED', 'a sleep record has an unknown sleep state')
      const [start, end] = interval(attrs)
      const field = SLEEP_STATES[state]
      if (field !== null && field !== undefined) into.addMinutes('sleep', field, start, end)
      stats.records++
      return
    }
    stats.skipped++
  }

  parser.on('doctype', (doctype) => {
    // Apple's DTD declares elements and attributes only: anything that could define or fetch content is refused.
    if (/<!ENTITY|%|\bSYSTEM\b|\bPUBLIC\b/i.test(doctype))
      fail('FST_ERR_IMPORT_XML_ENTITY', 'the XML declares entities or an external DTD, which FitStream never expands')
  })
  parser.on('opentag', (tag: SaxesTagPlain) => {
    sinceTag = 0
    if (!rootSeen) {
      if (tag.name !== 'HealthData') fail('FST_ERR_IMPORT_UNKNOWN_FORMAT', 'export.xml is not an Apple Health export (its root is not HealthData)')
      rootSeen = true
      return
    }
    if (tag.name === 'Record') onRecord(tag.attributes)
    else if (tag.name === 'Workout') {
      const [start, end] = interval(tag.attributes)
      into.addMinutes('workouts', WORKOUT_GROUPS[tag.attributes.workoutActivityType ?? ''] ?? 'other_min', start, end)
      stats.records++
    }
  })
  parser.on('closetag', () => {
    sinceTag = 0
  })
  parser.on('error', (error) => {
    const message = error.message
    if (/entity/i.test(message)) fail('FST_ERR_IMPORT_XML_ENTITY', 'the XML refers to an entity FitStream does not know, and never expands')
    fail('FST_ERR_IMPORT_MALFORMED', `export.xml is not well-formed XML: ${message.replace(/^.*?:\d+:\d+: /, '').slice(0, 120)}`)
  })

  const decoder = new TextDecoder('utf-8', { fatal: true })
  try {
    for await (const chunk of input) {
      const text = typeof chunk === 'string' ? chunk : decoder.decode(chunk, { stream: true })
      sinceTag += text.length
      const before = stats.records
      parser.write(text)
      // saxes keeps an element's text until the element is complete: cap how much that can be.
      if (sinceTag > options.maxElementBytes)
        fail('FST_ERR_IMPORT_MALFORMED', `export.xml has more than ${options.maxElementBytes} bytes without a record boundary`)
      if (stats.records !== before) options.onRecords?.(stats.records)
    }
    parser.write(decoder.decode())
    parser.close()
  } catch (error) {
    if (error instanceof ImportError) failure = error
    else if (error instanceof TypeError && /decode|encoded/i.test(error.message))
      failure = new ImportError('FST_ERR_IMPORT_MALFORMED', 'export.xml is not valid UTF-8')
    else throw error
  }
  if (failure !== undefined) throw failure
  if (!rootSeen) throw new ImportError('FST_ERR_IMPORT_UNKNOWN_FORMAT', 'export.xml holds no HealthData element')
  return stats
}

function unitName(type: DataTypeKey): string {
  return (
    {
      steps: 'steps',
      calories: 'kcal',
      distance: 'm',
      active_minutes: 'min',
      heart_rate: 'bpm',
      weight: 'kg',
      height: 'm',
      body_fat: '%',
      oxygen_saturation: '%',
    }[type as string] ?? ''
  )
}
