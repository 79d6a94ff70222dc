import { createHash } from 'node:crypto'
import { DATA_TYPE_KEYS, type DataTypeKey, type FitnessSample } from '@fitstream/shared'

/**
 * What was last passed on for each recent bucket of one user, so a re-read of the trailing window
 * passes on only what changed. Kept compact (10 bytes a bucket) because it is held for every user:
 * type index (1), revision (1), bucket start in minutes since the epoch (4), content fingerprint (4).
 */
export type BucketHistory = Map<string, { revision: number; fingerprint: number }>

const ENTRY_BYTES = 10
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

export function encodeHistory(history: BucketHistory): Buffer {
  const buffer = Buffer.alloc(history.size * ENTRY_BYTES)
  let offset = 0
  for (const [key, { revision, fingerprint }] of history) {
    const [type, start] = key.split('|') as [string, string]
    buffer.writeUInt8(DATA_TYPE_KEYS.indexOf(type as DataTypeKey), offset)
    buffer.writeUInt8(revision, offset + 1)
    buffer.writeUInt32BE(Number(start) / MINUTE, offset + 2)
    buffer.writeUInt32BE(fingerprint, offset + 6)
    offset += ENTRY_BYTES
  }
  return buffer
}

export function decodeHistory(buffer: Buffer | null): BucketHistory {
  const history: BucketHistory = new Map()
  if (buffer === null) return history
  for (let offset = 0; offset + ENTRY_BYTES <= buffer.length; offset += ENTRY_BYTES) {
    const type = DATA_TYPE_KEYS[buffer.readUInt8(offset)]
    if (type === undefined) continue
    history.set(bucketKey(type, buffer.readUInt32BE(offset + 2) * MINUTE), {
      revision: buffer.readUInt8(offset + 1),
      fingerprint: buffer.readUInt32BE(offset + 6),
    })
  }
  return history
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
