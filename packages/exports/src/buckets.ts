import { DATA_TYPE_KEYS, dataType, type DataTypeKey, type FitnessSample } from '@fitstream/shared'
import { ImportError } from './errors.js'

const SUMMARY = ['avg', 'max', 'min'] as const
const TYPE_INDEX = new Map<DataTypeKey, number>(DATA_TYPE_KEYS.map((key, i) => [key, i]))
const TYPE_SLOTS = 32

/** What an import found for one type: how many records went into how many buckets, over which period. */
export interface TypeSummary {
  readonly records: number
  readonly buckets: number
  readonly firstMs: number
  readonly lastMs: number
}

/**
 * Readings from an export gathered into the buckets the fetcher uses for API data (`bucketMs`, on
 * UTC boundaries), so an imported hour and a fetched hour are the same interval. A type whose values
 * add up (steps, energy, distance, minutes) has its amounts shared among the buckets a record
 * overlaps, in proportion to the overlap; a type of readings (heart rate, weight) keeps each bucket's
 * average, highest and lowest. Only numbers are kept: nothing else of a record reaches a bucket.
 * Memory grows with the hours an export covers (some 60 bytes per type and hour), not with its size.
 */
export class BucketAccumulator {
  /** Cell key (bucket index * 32 + type index) -> offset of its values in the pool. */
  private readonly index = new Map<number, number>()
  /** Cells' values, in pages so that growing never copies (a cell never straddles two pages). */
  private readonly pages: Float64Array[] = []
  private used = PAGE_SIZE
  private readonly counts = new Map<DataTypeKey, { records: number; firstMs: number; lastMs: number }>()

  constructor(
    private readonly bucketMs: number,
    private readonly maxBuckets: number,
  ) {}

  /** Buckets filled so far, across types. */
  get size(): number {
    return this.index.size
  }

  /** An amount over [startMs, endMs), e.g. 532 steps. */
  addAmount(type: DataTypeKey, field: string, startMs: number, endMs: number, amount: number): void {
    this.count(type, startMs, endMs)
    const slot = this.fieldSlot(type, field)
    if (endMs <= startMs) {
      this.add(type, this.bucketOf(startMs), slot, amount)
      return
    }
    for (let bucket = this.bucketOf(startMs); bucket < endMs; bucket += this.bucketMs) {
      const overlap = Math.min(endMs, bucket + this.bucketMs) - Math.max(startMs, bucket)
      if (overlap > 0) this.add(type, bucket, slot, (amount * overlap) / (endMs - startMs))
    }
  }

  /** Time spent in a state over [startMs, endMs), as minutes in each bucket it overlaps (sleep stages, workouts). */
  addMinutes(type: DataTypeKey, field: string, startMs: number, endMs: number): void {
    this.count(type, startMs, endMs)
    const slot = this.fieldSlot(type, field)
    for (let bucket = this.bucketOf(startMs); bucket < endMs; bucket += this.bucketMs) {
      const overlap = Math.min(endMs, bucket + this.bucketMs) - Math.max(startMs, bucket)
      if (overlap > 0) this.add(type, bucket, slot, overlap / 60_000)
    }
  }

  /** One reading at an instant (heart rate, weight): the bucket keeps its sum, count, highest and lowest. */
  addReading(type: DataTypeKey, atMs: number, value: number): void {
    this.count(type, atMs, atMs)
    const [page, at] = this.cell(type, this.bucketOf(atMs))
    if (page[at + 1] === 0) {
      page[at + 2] = value
      page[at + 3] = value
    } else {
      page[at + 2] = Math.max(page[at + 2]!, value)
      page[at + 3] = Math.min(page[at + 3]!, value)
    }
    page[at]! += value
    page[at + 1]! += 1
  }

  /** Per type: records read, buckets filled and the period they cover. */
  summary(): Partial<Record<DataTypeKey, TypeSummary>> {
    const buckets = new Map<number, number>()
    for (const key of this.index.keys()) buckets.set(key % TYPE_SLOTS, (buckets.get(key % TYPE_SLOTS) ?? 0) + 1)
    const out: Partial<Record<DataTypeKey, TypeSummary>> = {}
    for (const [type, count] of this.counts) out[type] = { ...count, buckets: buckets.get(TYPE_INDEX.get(type)!) ?? 0 }
    return out
  }

  /**
   * The buckets as samples, one at a time in time order (types in catalogue order within a bucket),
   * so that handing them on never needs them all in memory. Values are rounded, so the same export
   * always gives the same samples.
   */
  *samples(): Generator<FitnessSample> {
    const keys = Float64Array.from(this.index.keys()).sort()
    for (const key of keys) {
      const type = DATA_TYPE_KEYS[key % TYPE_SLOTS]!
      const spec = dataType(type)
      const offset = this.index.get(key)!
      const page = this.pages[Math.floor(offset / PAGE_SIZE)]!
      const at = offset % PAGE_SIZE
      const startMs = Math.floor(key / TYPE_SLOTS) * this.bucketMs
      const values: Record<string, number> = {}
      if (isSummary(type)) {
        values.avg = round(page[at]! / page[at + 1]!)
        values.max = round(page[at + 2]!)
        values.min = round(page[at + 3]!)
      } else {
        spec.fields.forEach((field, i) => {
          const value = page[at + i]!
          if (value !== 0) values[field.name] = field.format === 'int' ? Math.round(value) : round(value)
        })
        if (Object.keys(values).length === 0) continue
      }
      yield { type, startMs, endMs: startMs + this.bucketMs, values, unit: spec.unit, revision: 0 }
    }
  }

  private bucketOf(ms: number): number {
    return Math.floor(ms / this.bucketMs) * this.bucketMs
  }

  private fieldSlot(type: DataTypeKey, field: string): number {
    const slot = dataType(type).fields.findIndex((f) => f.name === field)
    if (slot < 0) throw new Error(`${type} has no field ${field}`)
    return slot
  }

  private add(type: DataTypeKey, bucketStart: number, slot: number, amount: number): void {
    const [page, at] = this.cell(type, bucketStart)
    page[at + slot]! += amount
  }

  private cell(type: DataTypeKey, bucketStart: number): [Float64Array, number] {
    const key = (bucketStart / this.bucketMs) * TYPE_SLOTS + TYPE_INDEX.get(type)!
    let offset = this.index.get(key)
    if (offset === undefined) {
      if (this.index.size >= this.maxBuckets) {
        throw new ImportError(
          'FST_ERR_IMPORT_TOO_LARGE',
          `the export holds more than ${this.maxBuckets} hours of data across its types, more than one import may carry`,
        )
      }
      const width = isSummary(type) ? 4 : dataType(type).fields.length
      if (this.used + width > PAGE_SIZE) {
        this.pages.push(new Float64Array(PAGE_SIZE))
        this.used = 0
      }
      offset = (this.pages.length - 1) * PAGE_SIZE + this.used
      this.used += width
      this.index.set(key, offset)
    }
    return [this.pages[Math.floor(offset / PAGE_SIZE)]!, offset % PAGE_SIZE]
  }

  private count(type: DataTypeKey, startMs: number, endMs: number): void {
    const seen = this.counts.get(type)
    if (seen === undefined) this.counts.set(type, { records: 1, firstMs: startMs, lastMs: endMs })
    else {
      seen.records++
      seen.firstMs = Math.min(seen.firstMs, startMs)
      seen.lastMs = Math.max(seen.lastMs, endMs)
    }
  }
}

/** Values per page of the pool: 512 KiB. */
const PAGE_SIZE = 65_536

function isSummary(type: DataTypeKey): boolean {
  const names = dataType(type).fields.map((f) => f.name)
  return names.length === SUMMARY.length && SUMMARY.every((name, i) => names[i] === name)
}

function round(value: number): number {
  return Math.round(value * 1000) / 1000
}
