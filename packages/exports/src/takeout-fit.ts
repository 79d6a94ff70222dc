import { SLEEP_STAGE_FIELDS, type DataTypeKey } from '@fitstream/shared/data-types'
import type { DateRange } from './apple-health.js'
import type { BucketAccumulator } from './buckets.js'
import { ImportError } from './errors.js'
import { PLAUSIBLE } from './limits.js'

/**
 * A Takeout archive's Fit data points: `<Takeout>/Fit/<All Data>/<file>.json`. The folder names are
 * localised (`Alle Daten`, `Toutes les données`) and file names truncated, so any JSON file two
 * levels under `Fit/` is read, and files that are not data-point files (sessions) are skipped by
 * their content.
 */
export const TAKEOUT_FIT_ENTRY = /^[^/]+\/Fit\/[^/]+\/[^/]+\.json$/

/** How one Fit data type becomes a FitStream type. */
interface FitRule {
  readonly type: DataTypeKey
  readonly kind: 'amount' | 'reading' | 'sleep'
  readonly field?: string
  readonly format: 'intVal' | 'fpVal'
  /** Added up: read only from Google's merged source, or the phone's and the watch's copies would count twice. */
  readonly merged?: boolean
}

const FIT_TYPES: Readonly<Record<string, FitRule>> = {
  'com.google.step_count.delta': { type: 'steps', kind: 'amount', field: 'count', format: 'intVal', merged: true },
  'com.google.calories.expended': { type: 'calories', kind: 'amount', field: 'kcal', format: 'fpVal', merged: true },
  'com.google.distance.delta': { type: 'distance', kind: 'amount', field: 'metres', format: 'fpVal', merged: true },
  'com.google.active_minutes': { type: 'active_minutes', kind: 'amount', field: 'minutes', format: 'intVal', merged: true },
  'com.google.heart_rate.bpm': { type: 'heart_rate', kind: 'reading', format: 'fpVal' },
  'com.google.weight': { type: 'weight', kind: 'reading', format: 'fpVal' },
  'com.google.height': { type: 'height', kind: 'reading', format: 'fpVal' },
  'com.google.body.fat.percentage': { type: 'body_fat', kind: 'reading', format: 'fpVal' },
  'com.google.oxygen_saturation': { type: 'oxygen_saturation', kind: 'reading', format: 'fpVal' },
  'com.google.sleep.segment': { type: 'sleep', kind: 'sleep', format: 'intVal', merged: true },
}

const MAX_RECORD_MS = 2 * 86_400_000

/** Google's merged streams, the ones the Fit app's totals come from (`derived:<type>:com.google.android.gms:merge_*`). */
function isMergedSource(id: string): boolean {
  return id.startsWith('derived:') && /:com\.google\.android\.gms:(merge|merged|estimated_steps)/.test(id)
}

interface FitPoint {
  readonly startTimeNanos: unknown
  readonly endTimeNanos: unknown
  readonly dataTypeName: unknown
  readonly fitValue: unknown
}

/** Counts of what a Takeout file held beyond what FitStream takes. */
export interface TakeoutParseStats {
  records: number
  skipped: number
}

/**
 * Reads one Takeout Fit JSON file as it streams in. The file is scanned, not parsed whole: only each
 * element of the top-level `Data Points` array is parsed (each bounded in size), and the top-level
 * `Data Source` string decides whether summed types are taken from it. `originDataSourceId` and every
 * other field naming an app or a device are never read into a sample. A file that fails part way
 * fails the whole import, so what it added to `into` is never released.
 */
export async function parseTakeoutFitJson(
  input: AsyncIterable<Buffer | string>,
  into: BucketAccumulator,
  options: { readonly dates: DateRange; readonly maxElementBytes: number },
): Promise<TakeoutParseStats> {
  const stats: TakeoutParseStats = { records: 0, skipped: 0 }
  // Google writes `Data Source` before `Data Points`; points seen before it wait for it.
  const waiting: FitPoint[] = []
  let source: string | undefined

  const take = (point: FitPoint): void => {
    const rule = typeof point.dataTypeName === 'string' ? FIT_TYPES[point.dataTypeName] : undefined
    if (rule === undefined || (rule.merged === true && !(source !== undefined && isMergedSource(source)))) {
      stats.skipped++
      return
    }
    const start = nanosToMs(point.startTimeNanos, options.dates)
    const end = nanosToMs(point.endTimeNanos, options.dates)
    if (end < start || end - start > MAX_RECORD_MS)
      throw new ImportError('FST_ERR_IMPORT_MALFORMED', 'a Takeout Fit data point ends before it starts or lasts more than two days')
    const value = firstValue(point.fitValue, rule.format)
    if (rule.kind === 'sleep') {
      const field = SLEEP_STAGE_FIELDS[value]
      if (field === undefined) throw new ImportError('FST_ERR_IMPORT_MALFORMED', 'a Takeout sleep segment has an unknown sleep stage')
      into.addMinutes('sleep', field, start, end)
    } else {
      const [lo, hi] = PLAUSIBLE[rule.type]!
      if (value < lo || value > hi)
        throw new ImportError('FST_ERR_IMPORT_UNIT', `a Takeout ${rule.type} value is outside ${lo}-${hi}: a wrong unit or a broken data point`)
      if (rule.kind === 'amount') into.addAmount(rule.type, rule.field!, start, end, value)
      else into.addReading(rule.type, start, value)
    }
    stats.records++
  }

  const scanner = new TopLevelScanner(options.maxElementBytes, {
    onTopString: (key, value) => {
      if (key === 'Data Source') source = value
    },
    onElement: (key, text) => {
      if (key !== 'Data Points') return
      let point: unknown
      try {
        point = JSON.parse(text)
      } catch {
        throw new ImportError('FST_ERR_IMPORT_MALFORMED', 'a Takeout Fit data point is not valid JSON')
      }
      if (typeof point !== 'object' || point === null || Array.isArray(point))
        throw new ImportError('FST_ERR_IMPORT_MALFORMED', 'a Takeout Fit data point is not an object')
      if (source === undefined) waiting.push(point as FitPoint)
      else take(point as FitPoint)
    },
  })
  const decoder = new TextDecoder('utf-8', { fatal: true })
  try {
    for await (const chunk of input) scanner.write(typeof chunk === 'string' ? chunk : decoder.decode(chunk, { stream: true }))
    scanner.write(decoder.decode())
  } catch (error) {
    if (error instanceof TypeError && /decode|encoded/i.test(error.message))
      throw new ImportError('FST_ERR_IMPORT_MALFORMED', 'a Takeout Fit file is not valid UTF-8')
    throw error
  }
  scanner.end()
  for (const point of waiting) take(point)
  return stats
}

function nanosToMs(value: unknown, dates: DateRange): number {
  const nanos = typeof value === 'string' && /^\d{1,20}$/.test(value) ? Number(value) : value
  if (typeof nanos !== 'number' || !Number.isFinite(nanos) || nanos < 0)
    throw new ImportError('FST_ERR_IMPORT_MALFORMED', 'a Takeout Fit data point has no valid startTimeNanos or endTimeNanos')
  const ms = Math.floor(nanos / 1e6)
  if (ms < dates.notBeforeMs || ms > dates.notAfterMs) {
    throw new ImportError(
      'FST_ERR_IMPORT_DATE_RANGE',
      `a Takeout Fit data point is outside ${new Date(dates.notBeforeMs).toISOString().slice(0, 10)} - ${new Date(dates.notAfterMs).toISOString().slice(0, 10)}`,
    )
  }
  return ms
}

function firstValue(fitValue: unknown, format: 'intVal' | 'fpVal'): number {
  const first = Array.isArray(fitValue) ? (fitValue[0] as { value?: Record<string, unknown> } | undefined) : undefined
  const value = first?.value?.[format]
  if (typeof value !== 'number' || !Number.isFinite(value))
    throw new ImportError('FST_ERR_IMPORT_UNIT', `a Takeout Fit data point has no ${format}: the value is of the wrong kind`)
  return value
}

interface ScannerEvents {
  onTopString(key: string, value: string): void
  /** The raw text of one element of a top-level array (an object or a scalar). */
  onElement(key: string, text: string): void
}

/**
 * A streaming scan of a JSON document whose root is an object: tracks strings, escapes and nesting
 * so it knows the top-level keys, and hands on the text of each element of a top-level array. Only
 * one element is held at a time, and none may exceed `maxElementBytes`.
 */
class TopLevelScanner {
  private depth = 0
  private inString = false
  private escaped = false
  private string = ''
  private lastTopString: string | undefined
  private key: string | undefined
  private arrayKey: string | undefined
  private element = ''
  private started = false
  private finished = false

  constructor(
    private readonly maxElementBytes: number,
    private readonly events: ScannerEvents,
  ) {}

  write(text: string): void {
    let elementFrom = this.depth >= 3 ? 0 : -1
    for (let i = 0; i < text.length; i++) {
      const c = text[i]!
      if (this.inString) {
        if (this.depth <= 1) {
          if (this.string.length > this.maxElementBytes) this.malformed('a top-level string is too long')
          if (!this.escaped && c !== '\\' && c !== '"') this.string += c
          else if (this.escaped) this.string += c === 'n' ? '\n' : c
        }
        if (this.escaped) this.escaped = false
        else if (c === '\\') this.escaped = true
        else if (c === '"') {
          this.inString = false
          if (this.depth === 1) this.lastTopString = this.string
          if (this.depth === 1 && this.key !== undefined && this.lastTopString !== undefined) {
            this.events.onTopString(this.key, this.lastTopString)
            this.key = undefined
          }
        }
        continue
      }
      if (c === ' ' || c === '\n' || c === '\r' || c === '\t') continue
      if (this.finished) this.malformed('it continues after its root object')
      if (!this.started) {
        if (c !== '{') this.malformed('its root is not an object')
        this.started = true
      }
      if (c === '"') {
        this.inString = true
        this.string = ''
        if (this.depth === 2 && this.arrayKey !== undefined) this.malformed('a data point is not an object')
      } else if (c === ':' && this.depth === 1) {
        this.key = this.lastTopString
        this.lastTopString = undefined
      } else if (c === ',' && this.depth === 1) {
        this.key = undefined
      } else if (c === '{' || c === '[') {
        if (this.depth === 1 && c === '[' && this.key !== undefined) {
          this.arrayKey = this.key
          this.key = undefined
        } else if (this.depth === 2 && this.arrayKey !== undefined) elementFrom = i
        this.depth++
      } else if (c === '}' || c === ']') {
        this.depth--
        if (this.depth < 0) this.malformed('its brackets do not match')
        if (this.depth === 2 && this.arrayKey !== undefined && elementFrom >= 0) {
          this.emit(text.slice(elementFrom, i + 1))
          elementFrom = -1
        } else if (this.depth === 1) this.arrayKey = undefined
        else if (this.depth === 0) this.finished = true
      } else if (this.depth === 2 && this.arrayKey !== undefined && c !== ',') {
        this.malformed('a data point is not an object')
      }
    }
    if (elementFrom >= 0) {
      this.element += text.slice(elementFrom)
      if (this.element.length > this.maxElementBytes) this.malformed(`a data point is over ${this.maxElementBytes} bytes`)
    }
  }

  end(): void {
    if (!this.finished || this.inString) throw new ImportError('FST_ERR_IMPORT_TRUNCATED', 'a Takeout Fit file ends in the middle of its JSON')
  }

  private emit(tail: string): void {
    const text = this.element + tail
    this.element = ''
    if (text.length > this.maxElementBytes) this.malformed(`a data point is over ${this.maxElementBytes} bytes`)
    this.events.onElement(this.arrayKey!, text)
  }

  private malformed(why: string): never {
    throw new ImportError('FST_ERR_IMPORT_MALFORMED', `a Takeout Fit file is not the JSON Google writes: ${why}`)
  }
}
