import { createHash } from 'node:crypto'
import { DATA_TYPE_KEYS, type DataTypeKey, type FitnessSample } from '@fitstream/shared'

/**
 * What was last passed on for each recent bucket of one user, so a re-read of the trailing window
 * passes on only what changed. Kept compact because it is held for every user (see encodeHistory).
 */
export type BucketHistory = Map<string, { revision: number; fingerprint: number }>

/** The first byte of the packed format; an earlier format's first byte is a data type's index. */
const FORMAT = 0xf1
/** The earlier format: type index (1), revision (1), start in minutes (4), fingerprint (4) a bucket. */
const FIXED_ENTRY_BYTES = 10
const MINUTE = 60_000

export interface Classification {
  /** New buckets (revision 0) and changed ones (revision n+1), ready to pass on. */
  readonly changed: FitnessSample[]
  readonly unchanged: number
  /** The history to keep: everything passed on that starts at or after `horizonMs`. */
  readonly next: BucketHistory
}

export function classifySamples(samples: readonly FitnessSample[], previous: BucketHistory, horizonMs: number): Classification {
  const next: BucketHistory = new Map([...previous].filter(([key]) => startOf(key) >= horizonMs))
  const changed: FitnessSample[] = []
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
    changed.push({ ...sample, revision })
    if (sample.startMs >= horizonMs) next.set(key, { revision, fingerprint })
  }
  return { changed, unchanged, next }
}

/**
 * Packs a history by data type, in start order: per type its index, bucket count and first start
 * (minutes since the epoch); per bucket the minutes since the previous one (a varint: one byte for
 * hourly buckets), its revision and its 4-byte content fingerprint. About 6 bytes a bucket where the
 * earlier fixed entries took 10.
 */
export function encodeHistory(history: BucketHistory): Buffer {
  const byType = new Map<number, { start: number; revision: number; fingerprint: number }[]>()
  for (const [key, { revision, fingerprint }] of history) {
    const type = DATA_TYPE_KEYS.indexOf(key.slice(0, key.indexOf('|')) as DataTypeKey)
    const entries = byType.get(type) ?? []
    entries.push({ start: startOf(key) / MINUTE, revision, fingerprint })
    byType.set(type, entries)
  }
  const bytes: number[] = [FORMAT]
  for (const [type, entries] of [...byType].sort(([a], [b]) => a - b)) {
    entries.sort((a, b) => a.start - b.start)
    bytes.push(type, ...varint(entries.length), ...uint32(entries[0]!.start))
    entries.forEach((entry, i) => {
      if (i > 0) bytes.push(...varint(entry.start - entries[i - 1]!.start))
      bytes.push(entry.revision, ...uint32(entry.fingerprint))
    })
  }
  return Buffer.from(bytes)
}

/** Reads either format; what can't be read (a truncated or foreign value) is left out, not guessed. */
export function decodeHistory(buffer: Buffer | null): BucketHistory {
  const history: BucketHistory = new Map()
  if (buffer === null || buffer.length === 0) return history
  if (buffer[0] !== FORMAT) {
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
  const reader = { buffer, offset: 1 }
  while (reader.offset < buffer.length) {
    const type = DATA_TYPE_KEYS[buffer[reader.offset++]!]
    const count = readVarint(reader)
    if (type === undefined || reader.offset + 4 > buffer.length) break
    let start = buffer.readUInt32BE(reader.offset)
    reader.offset += 4
    for (let i = 0; i < count; i++) {
      if (i > 0) start += readVarint(reader)
      if (reader.offset + 5 > buffer.length) return history
      history.set(bucketKey(type, start * MINUTE), { revision: buffer[reader.offset]!, fingerprint: buffer.readUInt32BE(reader.offset + 1) })
      reader.offset += 5
    }
  }
  return history
}

function varint(n: number): number[] {
  const out: number[] = []
  for (let rest = n; ; rest = Math.floor(rest / 128)) {
    if (rest < 128) return [...out, rest]
    out.push((rest % 128) | 0x80)
  }
}

function readVarint(reader: { buffer: Buffer; offset: number }): number {
  let value = 0
  for (let shift = 1; reader.offset < reader.buffer.length; shift *= 128) {
    const byte = reader.buffer[reader.offset++]!
    value += (byte & 0x7f) * shift
    if (byte < 0x80) return value
  }
  return value
}

function uint32(n: number): number[] {
  return [(n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff]
}

function bucketKey(type: DataTypeKey, startMs: number): string {
  return `${type}|${startMs}`
}

function startOf(key: string): number {
  return Number(key.slice(key.indexOf('|') + 1))
}

function fingerprintOf(sample: FitnessSample): number {
  const canonical = Object.keys(sample.values)
    .sort()
    .map((k) => `${k}=${sample.values[k]}`)
    .join('&')
  return createHash('sha256').update(`${sample.endMs}|${canonical}`).digest().readUInt32BE(0)
}
