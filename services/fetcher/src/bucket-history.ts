import { hash } from 'node:crypto'
import { DATA_TYPE_KEYS, type DataTypeKey, type FitnessSample } from '@fitstream/shared'

/**
 * What was last passed on for each recent bucket of one user, so a re-read of the trailing window
 * passes on only what changed. Kept compact because it is held for every user (see encodeHistory).
 */
export type BucketHistory = Map<string, { revision: number; fingerprint: number }>

/** The first byte of the current format; the format before it starts with 0xf1, the one before that with a data type's index. */
const FORMAT = 0xf2
const DELTA_FORMAT = 0xf1
/** The first format: type index (1), revision (1), start in minutes (4), fingerprint (4) a bucket. */
const FIXED_ENTRY_BYTES = 10
const MINUTE = 60_000
const TYPE_INDEX: ReadonlyMap<string, number> = new Map(DATA_TYPE_KEYS.map((key, i) => [key, i]))

export interface Classification {
  /** New buckets (revision 0) and changed ones (revision n+1), ready to pass on. */
  readonly changed: FitnessSample[]
  /** The content fingerprint of each of `changed`, in the same order. */
  readonly fingerprints: number[]
  readonly unchanged: number
  /** The history to keep: everything passed on that starts at or after `horizonMs`. */
  readonly next: BucketHistory
}

export function classifySamples(samples: readonly FitnessSample[], previous: BucketHistory, horizonMs: number): Classification {
  const next: BucketHistory = new Map()
  for (const [key, entry] of previous) if (startOf(key) >= horizonMs) next.set(key, entry)
  const changed: FitnessSample[] = []
  const fingerprints: number[] = []
  let unchanged = 0
  for (const sample of samples) {
    const key = bucketKey(sample.type, sample.startMs)
    const fingerprint = fingerprintOf(sample)
    const before = previous.get(key)
    if (before !== undefined && before.fingerprint === fingerprint) {
      unchanged++
      continue
    }
    const revision = before === undefined ? 0 : Math.min(before.revision + 1, 255)
    changed.push(sample.revision === revision ? sample : { ...sample, revision })
    fingerprints.push(fingerprint)
    if (sample.startMs >= horizonMs) next.set(key, { revision, fingerprint })
  }
  return { changed, fingerprints, unchanged, next }
}

/**
 * Packs a history by data type, in start order. Per type: its index, bucket count, first start
 * (minutes since the epoch) and the step between starts (the bucket size, in minutes; 0 when the
 * starts are not all a whole number of steps apart, as local days across a clock change are not);
 * then where the buckets lie (runs of consecutive steps and the steps skipped between them, or
 * else each start's distance from the one before), the revisions that are not 0 (most are), and
 * each bucket's 4-byte content fingerprint. A day of hourly buckets takes about 4 bytes a bucket.
 */
export function encodeHistory(history: BucketHistory): Buffer {
  const byType = new Map<number, { start: number; revision: number; fingerprint: number }[]>()
  for (const [key, { revision, fingerprint }] of history) {
    const bar = key.indexOf('|')
    const type = TYPE_INDEX.get(key.slice(0, bar))
    if (type === undefined) continue
    let entries = byType.get(type)
    if (entries === undefined) byType.set(type, (entries = []))
    entries.push({ start: Math.floor(Number(key.slice(bar + 1)) / MINUTE), revision, fingerprint })
  }
  // Varints take at most 5 bytes for the numbers written here: a type's header takes at most 21, a bucket 20.
  const out = new Writer(1 + byType.size * 21 + history.size * 20)
  out.byte(FORMAT)
  for (const type of [...byType.keys()].sort((a, b) => a - b)) {
    const entries = byType.get(type)!.sort((a, b) => a.start - b.start)
    let step = Infinity
    for (let i = 1; i < entries.length; i++) step = Math.min(step, entries[i]!.start - entries[i - 1]!.start)
    if (step === Infinity) step = 1
    for (let i = 1; i < entries.length && step > 0; i++) if ((entries[i]!.start - entries[i - 1]!.start) % step !== 0) step = 0
    out.byte(type)
    out.varint(entries.length)
    out.varint(entries[0]!.start)
    out.varint(step)
    if (step > 0) {
      // Run lengths, each but the last followed by the steps skipped before the next run.
      let run = 1
      for (let i = 1; i < entries.length; i++) {
        const steps = (entries[i]!.start - entries[i - 1]!.start) / step
        if (steps === 1) run++
        else {
          out.varint(run)
          out.varint(steps - 1)
          run = 1
        }
      }
      out.varint(run)
    } else {
      for (let i = 1; i < entries.length; i++) out.varint(entries[i]!.start - entries[i - 1]!.start)
    }
    let revised = 0
    for (const entry of entries) if (entry.revision !== 0) revised++
    out.varint(revised)
    entries.forEach((entry, i) => {
      if (entry.revision === 0) return
      out.varint(i)
      out.byte(entry.revision)
    })
    for (const entry of entries) out.uint32(entry.fingerprint)
  }
  return out.done()
}

/** Reads any of the formats; what can't be read (a truncated or foreign value) is left out, not guessed. */
export function decodeHistory(buffer: Buffer | null): BucketHistory {
  const history: BucketHistory = new Map()
  if (buffer === null || buffer.length === 0) return history
  if (buffer[0] === FORMAT) return readPacked(buffer, history)
  if (buffer[0] === DELTA_FORMAT) return readDeltas(buffer, history)
  for (let offset = 0; offset + FIXED_ENTRY_BYTES <= buffer.length; offset += FIXED_ENTRY_BYTES) {
    const type = DATA_TYPE_KEYS[buffer.readUInt8(offset)]
    if (type === undefined) continue
    history.set(bucketKey(type, buffer.readUInt32BE(offset + 2) * MINUTE), {
      revision: buffer.readUInt8(offset + 1),
      fingerprint: buffer.readUInt32BE(offset + 6),
    })
  }
  return history
}

function readPacked(buffer: Buffer, history: BucketHistory): BucketHistory {
  const reader = { buffer, offset: 1 }
  while (reader.offset < buffer.length) {
    const type = DATA_TYPE_KEYS[buffer[reader.offset++]!]
    const count = readVarint(reader)
    const first = readVarint(reader)
    const step = readVarint(reader)
    if (type === undefined || count === undefined || first === undefined || step === undefined) break
    // Every bucket ends with its 4-byte fingerprint: a count the rest of the value cannot hold is not read.
    if (count * 4 > buffer.length - reader.offset) break
    const starts: number[] = []
    if (step > 0) {
      let start = first
      while (starts.length < count) {
        const run = readVarint(reader)
        if (run === undefined || run === 0) return history
        for (let i = 0; i < run && starts.length < count; i++) {
          if (starts.length > 0) start += step
          starts.push(start)
        }
        if (starts.length === count) break
        const skipped = readVarint(reader)
        if (skipped === undefined) return history
        start += skipped * step
      }
    } else {
      for (let start = first; starts.length < count;) {
        if (starts.length > 0) {
          const delta = readVarint(reader)
          if (delta === undefined) return history
          start += delta
        }
        starts.push(start)
      }
    }
    if (starts.length < count) return history
    const revisions = new Map<number, number>()
    const revised = readVarint(reader)
    if (revised === undefined) return history
    for (let i = 0; i < revised; i++) {
      const index = readVarint(reader)
      if (index === undefined || reader.offset >= buffer.length) return history
      revisions.set(index, buffer[reader.offset++]!)
    }
    for (let i = 0; i < count; i++) {
      if (reader.offset + 4 > buffer.length) return history
      history.set(bucketKey(type, starts[i]! * MINUTE), { revision: revisions.get(i) ?? 0, fingerprint: buffer.readUInt32BE(reader.offset) })
      reader.offset += 4
    }
  }
  return history
}

/** The format before: per type its index, count and first start (4 bytes); per bucket the minutes since the one before, its revision and fingerprint. */
function readDeltas(buffer: Buffer, history: BucketHistory): BucketHistory {
  const reader = { buffer, offset: 1 }
  while (reader.offset < buffer.length) {
    const type = DATA_TYPE_KEYS[buffer[reader.offset++]!]
    const count = readVarint(reader) ?? 0
    if (type === undefined || reader.offset + 4 > buffer.length) break
    let start = buffer.readUInt32BE(reader.offset)
    reader.offset += 4
    for (let i = 0; i < count; i++) {
      if (i > 0) start += readVarint(reader) ?? 0
      if (reader.offset + 5 > buffer.length) return history
      history.set(bucketKey(type, start * MINUTE), { revision: buffer[reader.offset]!, fingerprint: buffer.readUInt32BE(reader.offset + 1) })
      reader.offset += 5
    }
  }
  return history
}

/** Bytes into a buffer sized up front. */
class Writer {
  private readonly buffer: Buffer
  private offset = 0

  constructor(size: number) {
    this.buffer = Buffer.allocUnsafe(size)
  }

  byte(n: number): void {
    this.buffer[this.offset++] = n
  }

  varint(n: number): void {
    let rest = n
    while (rest >= 128) {
      this.buffer[this.offset++] = (rest % 128) | 0x80
      rest = Math.floor(rest / 128)
    }
    this.buffer[this.offset++] = rest
  }

  uint32(n: number): void {
    this.offset = this.buffer.writeUInt32BE(n >>> 0, this.offset)
  }

  done(): Buffer {
    return this.buffer.subarray(0, this.offset)
  }
}

/** A varint, or undefined when the value ends inside it. */
function readVarint(reader: { buffer: Buffer; offset: number }): number | undefined {
  let value = 0
  for (let shift = 1; reader.offset < reader.buffer.length; shift *= 128) {
    const byte = reader.buffer[reader.offset++]!
    value += (byte & 0x7f) * shift
    if (byte < 0x80) return value
  }
  return undefined
}

function bucketKey(type: DataTypeKey, startMs: number): string {
  return `${type}|${startMs}`
}

function startOf(key: string): number {
  return Number(key.slice(key.indexOf('|') + 1))
}

/** The first 4 bytes of the SHA-256 of the bucket's end and values, by name. */
function fingerprintOf(sample: FitnessSample): number {
  const names = Object.keys(sample.values)
  if (names.length > 1) names.sort()
  let canonical = `${sample.endMs}|`
  for (let i = 0; i < names.length; i++) canonical += `${i === 0 ? '' : '&'}${names[i]}=${sample.values[names[i]!]}`
  return Number.parseInt(hash('sha256', canonical, 'hex').slice(0, 8), 16)
}
