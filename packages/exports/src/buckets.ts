import type { FitnessSample } from '@fitstream/shared'
// The catalogue alone, not the shared package's index (BullMQ, Fastify, ...): the importer stays small.
import { DATA_TYPE_KEYS, dataType, type DataTypeKey } from '@fitstream/shared/data-types'
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
 * Memory grows with the span of time an export covers (8 bytes per value per hour and type), not with its size.
 */
export class BucketAccumulator {
  /**
   * Per type and block of BLOCK consecutive buckets, the block's values, dense: a bucket's values are
   * at (bucket - block start) * width. An export's buckets cluster in time, so blocks fill well and
   * a bucket costs its values' 8 bytes each, with no per-bucket index entry.
   */
  private readonly blocks = new Map<number, Float64Array>()
  private readonly filled = new Map<DataTypeKey, number>()
  private cells = 0
  private readonly counts = new Map<DataTypeKey, { records: number; firstMs: number; lastMs: number }>()

  constructor(
    private readonly bucketMs: number,
    private readonly maxBuckets: number,
  ) {}

  /** Buckets filled so far, across types. */
  get size(): number {
    return this.cells
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
    const [block, at] = this.cell(type, this.bucketOf(atMs))
    if (block[at + 1] === 0) {
      this.touch(type)
      block[at + 2] = value
      block[at + 3] = value
    } else {
      block[at + 2] = Math.max(block[at + 2]!, value)
      block[at + 3] = Math.min(block[at + 3]!, value)
    }
    block[at]! += value
    block[at + 1]! += 1
  }

  /** Per type: records read, buckets filled and the period they cover. */
  summary(): Partial<Record<DataTypeKey, TypeSummary>> {
    const out: Partial<Record<DataTypeKey, TypeSummary>> = {}
    for (const [type, count] of this.counts) out[type] = { ...count, buckets: this.filled.get(type) ?? 0 }
    return out
  }

  /**
   * The buckets as samples, one at a time in time order (types in catalogue order within a bucket),
   * so that handing them on never needs them all in memory. Values are rounded, so the same export
   * always gives the same samples.
   */
  *samples(): Generator<FitnessSample> {
    const byBlock = new Map<number, number[]>()
    for (const key of this.blocks.keys()) {
      const index = Math.floor(key / TYPE_SLOTS)
      byBlock.set(index, [...(byBlock.get(index) ?? []), key % TYPE_SLOTS])
    }
    for (const index of [...byBlock.keys()].sort((a, b) => a - b)) {
      const types = byBlock.get(index)!.sort((a, b) => a - b)
      for (let i = 0; i < BLOCK; i++) {
        for (const typeIndex of types) {
          const sample = this.sampleAt(DATA_TYPE_KEYS[typeIndex]!, this.blocks.get(index * TYPE_SLOTS + typeIndex)!, index, i)
          if (sample !== undefined) yield sample
        }
      }
    }
  }

  private sampleAt(type: DataTypeKey, block: Float64Array, index: number, i: number): FitnessSample | undefined {
    const spec = dataType(type)
    const width = widthOf(type)
    const at = i * width
    const values: Record<string, number> = {}
    if (isSummary(type)) {
      if (block[at + 1] === 0) return undefined
      values.avg = round(block[at]! / block[at + 1]!)
      values.max = round(block[at + 2]!)
      values.min = round(block[at + 3]!)
    } else {
      spec.fields.forEach((field, f) => {
        const value = block[at + f]!
        if (value !== 0) values[field.name] = field.format === 'int' ? Math.round(value) : round(value)
      })
      if (Object.keys(values).length === 0) return undefined
    }
    const startMs = (index * BLOCK + i) * this.bucketMs
    return { type, startMs, endMs: startMs + this.bucketMs, values, unit: spec.unit, revision: 0 }
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
    const [block, at] = this.cell(type, bucketStart)
    let empty = true
    for (let i = at, end = at + widthOf(type); i < end && empty; i++) empty = block[i] === 0
    if (empty) this.touch(type)
    block[at + slot]! += amount
  }

  /** A bucket newly filled: counted, and refused past the import's limit. */
  private touch(type: DataTypeKey): void {
    if (this.cells >= this.maxBuckets) {
      throw new ImportError(
        'FST_ERR_IMPORT_TOO_LARGE',
        `the export holds more than ${this.maxBuckets} hours of data across its types, more than one import may carry`,
      )
    }
    this.cells++
    this.filled.set(type, (this.filled.get(type) ?? 0) + 1)
  }

  private cell(type: DataTypeKey, bucketStart: number): [Float64Array, number] {
    const bucket = bucketStart / this.bucketMs
    const index = Math.floor(bucket / BLOCK)
    const key = index * TYPE_SLOTS + TYPE_INDEX.get(type)!
    let block = this.blocks.get(key)
    if (block === undefined) {
      block = new Float64Array(BLOCK * widthOf(type))
      this.blocks.set(key, block)
    }
    return [block, (bucket - index * BLOCK) * widthOf(type)]
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

/** Buckets per block: 1,024 hours, some six weeks. */
const BLOCK = 1024

function widthOf(type: DataTypeKey): number {
  return isSummary(type) ? 4 : dataType(type).fields.length
}

function isSummary(type: DataTypeKey): boolean {
  const names = dataType(type).fields.map((f) => f.name)
  return names.length === SUMMARY.length && SUMMARY.every((name, i) => names[i] === name)
}

function round(value: number): number {
  return Math.round(value * 1000) / 1000
}
