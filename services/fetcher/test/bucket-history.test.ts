import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { DATA_TYPE_KEYS } from '@fitstream/shared'
import { decodeHistory, encodeHistory, type BucketHistory } from '../src/bucket-history.js'

const HOUR = 3_600_000
const DAY_START = Date.UTC(2026, 10, 23)

/** A day of hourly buckets in each of five types, as a user's history holds after a sync. */
function dayOfHourlyBuckets(): BucketHistory {
  const history: BucketHistory = new Map()
  for (const type of DATA_TYPE_KEYS.slice(0, 5)) {
    for (let h = 0; h < 24; h++) history.set(`${type}|${DAY_START + h * HOUR}`, { revision: h % 3, fingerprint: (h * 2_654_435_761) >>> 0 })
  }
  return history
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

describe('bucket history in Redis', () => {
  it('reads back every bucket with its revision and fingerprint', () => {
    fc.assert(
      fc.property(histories, (history) => {
        expect(decodeHistory(encodeHistory(history))).toEqual(history)
      }),
    )
  })

  it('takes about 6 bytes a bucket for a day of hourly buckets, where the fixed format took 10', () => {
    const history = dayOfHourlyBuckets()
    const packed = encodeHistory(history)
    expect(packed.length).toBeLessThanOrEqual(history.size * 6 + 5 * 6 + 1)
    expect(fixedFormat(history).length).toBe(history.size * 10)
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
