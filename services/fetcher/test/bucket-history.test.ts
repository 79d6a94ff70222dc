import { createHash } from 'node:crypto'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { DATA_TYPE_KEYS, type FitnessSample } from '@fitstream/shared'
import { classifySamples, decodeHistory, encodeHistory, type BucketHistory } from '../src/bucket-history.js'

const HOUR = 3_600_000
const DAY_START = Date.UTC(2026, 10, 23)

/** A day of hourly buckets in each of five types, as a user's history holds after a sync (`revised`: some buckets revised). */
function dayOfHourlyBuckets(revised = true): BucketHistory {
  const history: BucketHistory = new Map()
  for (const type of DATA_TYPE_KEYS.slice(0, 5)) {
    for (let h = 0; h < 24; h++) history.set(`${type}|${DAY_START + h * HOUR}`, { revision: revised ? h % 3 : 0, fingerprint: (h * 2_654_435_761) >>> 0 })
  }
  return history
}

/** The format before the current one, as it was written: 0xf1, then per type its index, count, first start and per bucket a delta, revision and fingerprint. */
function deltaFormat(history: BucketHistory): Buffer {
  const varint = (n: number): number[] => (n < 128 ? [n] : [(n % 128) | 0x80, ...varint(Math.floor(n / 128))])
  const uint32 = (n: number): number[] => [(n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff]
  const byType = new Map<number, { start: number; revision: number; fingerprint: number }[]>()
  for (const [key, { revision, fingerprint }] of history) {
    const [type, start] = key.split('|') as [string, string]
    const index = DATA_TYPE_KEYS.indexOf(type as (typeof DATA_TYPE_KEYS)[number])
    byType.set(index, [...(byType.get(index) ?? []), { start: Number(start) / 60_000, revision, fingerprint }])
  }
  const bytes: number[] = [0xf1]
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

/** The format before the packed one: 10 bytes a bucket. */
function fixedFormat(history: BucketHistory): Buffer {
  const buffer = Buffer.alloc(history.size * 10)
  let offset = 0
  for (const [key, { revision, fingerprint }] of history) {
    const [type, start] = key.split('|') as [string, string]
    buffer.writeUInt8(DATA_TYPE_KEYS.indexOf(type as (typeof DATA_TYPE_KEYS)[number]), offset)
    buffer.writeUInt8(revision, offset + 1)
    buffer.writeUInt32BE(Number(start) / 60_000, offset + 2)
    buffer.writeUInt32BE(fingerprint, offset + 6)
    offset += 10
  }
  return buffer
}

const histories = fc
  .array(
    fc.record({
      type: fc.constantFrom(...DATA_TYPE_KEYS),
      // Minute-aligned starts anywhere from 2000 to 2100, so gaps range from a minute to decades.
      minute: fc.integer({ min: 15_778_080, max: 68_374_080 }),
      revision: fc.integer({ min: 0, max: 255 }),
      fingerprint: fc.integer({ min: 0, max: 0xffff_ffff }),
    }),
    { maxLength: 300 },
  )
  .map((entries): BucketHistory => new Map(entries.map((e) => [`${e.type}|${e.minute * 60_000}`, { revision: e.revision, fingerprint: e.fingerprint }])))

/** Buckets of one size with gaps, as a type's history holds when some hours had nothing recorded. */
const regularHistories = fc
  .array(
    fc.record({
      type: fc.constantFrom(...DATA_TYPE_KEYS),
      firstMinute: fc.integer({ min: 15_778_080, max: 68_374_080 }),
      stepMinutes: fc.constantFrom(1, 15, 60, 1_440),
      steps: fc.uniqueArray(fc.integer({ min: 0, max: 500 }), { minLength: 1, maxLength: 60 }),
      revised: fc.array(fc.integer({ min: 0, max: 255 }), { maxLength: 60 }),
    }),
    { maxLength: 4 },
  )
  .map((types): BucketHistory => {
    const history: BucketHistory = new Map()
    for (const { type, firstMinute, stepMinutes, steps, revised } of types) {
      steps.forEach((step, i) =>
        history.set(`${type}|${(firstMinute + step * stepMinutes) * 60_000}`, { revision: revised[i] ?? 0, fingerprint: (step * 2_654_435_761) >>> 0 }),
      )
    }
    return history
  })

describe('bucket history in Redis', () => {
  it('reads back every bucket with its revision and fingerprint', () => {
    fc.assert(
      fc.property(histories, (history) => {
        expect(decodeHistory(encodeHistory(history))).toEqual(history)
      }),
    )
    fc.assert(
      fc.property(regularHistories, (history) => {
        expect(decodeHistory(encodeHistory(history))).toEqual(history)
      }),
    )
  })

  it('reads back local days, whose starts are not all a day apart across a clock change', () => {
    const history: BucketHistory = new Map()
    // Helsinki's midnights around the end of summer time: 24, 25 and 24 hours apart.
    for (const start of [Date.UTC(2026, 9, 23, 21), Date.UTC(2026, 9, 24, 21), Date.UTC(2026, 9, 25, 22), Date.UTC(2026, 9, 26, 22)]) {
      history.set(`steps|${start}`, { revision: 0, fingerprint: start % 0xffff_ffff })
    }
    expect(decodeHistory(encodeHistory(history))).toEqual(history)
  })

  it('takes about 4 bytes a bucket for a day of hourly buckets, where the format before took 6 and the fixed one 10', () => {
    const history = dayOfHourlyBuckets(false)
    expect(encodeHistory(history).length).toBeLessThanOrEqual(history.size * 4 + 5 * 9 + 1)
    expect(deltaFormat(history).length).toBe(1 + 5 * 5 + history.size * 6)
    expect(fixedFormat(history).length).toBe(history.size * 10)
    // A revised bucket takes two more bytes.
    const revised = dayOfHourlyBuckets(true)
    expect(encodeHistory(revised).length).toBeLessThanOrEqual(revised.size * 4 + 80 * 2 + 5 * 9 + 1)
  })

  it('still reads a history written in the format before', () => {
    fc.assert(
      fc.property(histories, (history) => {
        expect(decodeHistory(deltaFormat(history))).toEqual(history)
      }),
    )
  })

  it('finds unchanged the buckets a history written before this version remembers, and passes on only what changed', () => {
    const sample = (startMs: number, values: Record<string, number>): FitnessSample => ({
      type: 'heart_rate',
      startMs,
      endMs: startMs + HOUR,
      values,
      unit: 'bpm',
      revision: 0,
    })
    const samples = [sample(DAY_START, { min: 55, avg: 71.5, max: 120 }), sample(DAY_START + HOUR, { avg: 64, max: 90, min: 58 })]
    // How the fingerprints were made: the first 4 bytes of SHA-256 over the end and the values by name.
    const before = (s: FitnessSample): number =>
      createHash('sha256')
        .update(
          `${s.endMs}|${Object.keys(s.values)
            .sort()
            .map((k) => `${k}=${s.values[k]}`)
            .join('&')}`,
        )
        .digest()
        .readUInt32BE(0)
    const stored: BucketHistory = new Map(samples.map((s) => [`heart_rate|${s.startMs}`, { revision: 1, fingerprint: before(s) }]))
    const read = classifySamples(samples, decodeHistory(deltaFormat(stored)), DAY_START)
    expect(read).toMatchObject({ changed: [], unchanged: 2 })
    const later = classifySamples([samples[0]!, sample(DAY_START + HOUR, { avg: 65, max: 90, min: 58 })], decodeHistory(deltaFormat(stored)), DAY_START)
    expect(later.changed).toEqual([{ ...samples[1]!, values: { avg: 65, max: 90, min: 58 }, revision: 2 }])
    expect(decodeHistory(encodeHistory(later.next)).get(`heart_rate|${DAY_START + HOUR}`)).toEqual({ revision: 2, fingerprint: later.fingerprints[0] })
  })

  it('still reads a history written in the fixed format by an earlier version', () => {
    fc.assert(
      fc.property(histories, (history) => {
        expect(decodeHistory(fixedFormat(history))).toEqual(history)
      }),
    )
  })

  it('reads the types a stored history names by index as they were when it was written, whatever types came later', () => {
    const start = Date.UTC(2026, 10, 23, 10)
    // One bucket each of the types at index 0, 10, 11, 13 and 14 when this format was made, written byte by byte.
    const stored = Buffer.concat([
      Buffer.from([0xf1]),
      ...[0, 10, 11, 13, 14].map((index) => {
        const bucket = Buffer.alloc(11)
        bucket.writeUInt8(index, 0)
        bucket.writeUInt8(1, 1) // one bucket
        bucket.writeUInt32BE(start / 60_000, 2)
        bucket.writeUInt8(2, 6) // revision
        bucket.writeUInt32BE(0xdeadbeef + index, 7)
        return bucket
      }),
    ])
    const read = decodeHistory(stored)
    expect([...read.keys()]).toEqual(['steps', 'activity', 'speed', 'oxygen_saturation', 'location'].map((type) => `${type}|${start}`))
    expect(read.get(`speed|${start}`)).toEqual({ revision: 2, fingerprint: 0xdeadbeef + 11 })
  })

  it('reads a cut-off value without throwing, keeping only whole buckets', () => {
    const packed = encodeHistory(dayOfHourlyBuckets())
    for (let length = 0; length < packed.length; length += 7) {
      const read = decodeHistory(packed.subarray(0, length))
      for (const [key, entry] of read) expect(dayOfHourlyBuckets().get(key)).toEqual(entry)
    }
    expect(decodeHistory(null).size).toBe(0)
  })
})
