import { afterAll, describe, expect, it } from 'vitest'
import {
  decodePrivacyLogEntry,
  encodePrivacyLogEntry,
  privacyBudgetKey,
  privacyKey,
  privacyLogKey,
  privacyPeriodsKey,
  readPrivacyReport,
  type PrivacyLogEntry,
} from '../src/privacy-ledger.js'
import { testRedis, uniquePrefix } from '../../../tests/helpers.js'

const prefix = uniquePrefix('privacy-ledger')
const { redis, cleanup } = testRedis(prefix)

afterAll(cleanup)

const entry: PrivacyLogEntry = {
  at: '2026-11-24T15:32:56.880Z',
  kind: 'cohort',
  type: 'heart_rate',
  start: '2026-11-23T00:00:00.000Z',
  end: '2026-11-25T00:00:00.000Z',
  count: 2,
  epsilon: 0.2,
}

describe('privacy log lines', () => {
  it('round-trip every kind exactly, in a third of the JSON size', () => {
    for (const kind of ['records', 'cohort', 'withheld'] as const) {
      const line = encodePrivacyLogEntry({ ...entry, kind, epsilon: kind === 'records' ? 0 : 0.05 })
      expect(decodePrivacyLogEntry(line)).toEqual({ ...entry, kind, epsilon: kind === 'records' ? 0 : 0.05 })
    }
    expect(encodePrivacyLogEntry(entry).length).toBeLessThan(JSON.stringify(entry).length / 2.5)
  })

  it('still read the lines earlier versions wrote: JSON, and start and end in milliseconds', () => {
    expect(decodePrivacyLogEntry(JSON.stringify(entry))).toEqual(entry)
    const ms = (iso: string): string => Date.parse(iso).toString(36)
    expect(decodePrivacyLogEntry(`${ms(entry.at)}|c|heart_rate|${ms(entry.start)}|${ms(entry.end)}|2|0.2`)).toEqual(entry)
  })

  it('give an interval on whole minutes as its start and length in minutes, and any other in milliseconds', () => {
    expect(encodePrivacyLogEntry(entry)).toBe(
      `${Date.parse(entry.at).toString(36)}|c|heart_rate|${(Date.parse(entry.start) / 60_000).toString(36)}|+${(2 * 1440).toString(36)}|2|0.2`,
    )
    const odd = { ...entry, start: '2026-11-23T00:00:00.500Z' }
    expect(encodePrivacyLogEntry(odd)).not.toMatch(/\|\+/)
    expect(decodePrivacyLogEntry(encodePrivacyLogEntry(odd))).toEqual(odd)
  })

  it('refuse what is neither', () => {
    for (const junk of [
      '',
      '{',
      'a|b',
      `${encodePrivacyLogEntry(entry)}|extra`,
      'zzzzzzzzzzzzz|c|steps|1|2|3|0',
      'mhx2k3a8|x|steps|1|2|3|0',
      'mhx2k3a8|c|steps|1|2|-1|0',
      'mhx2k3a8|c|steps|1|+|3|0',
      'mhx2k3a8|c|steps|1|+-2|3|0',
    ]) {
      expect(decodePrivacyLogEntry(junk), junk).toBeUndefined()
    }
  })
})

describe('readPrivacyReport', () => {
  it('lists the periods recorded in the totals hash and in the older periods set, once each', async () => {
    const userId = 'user-periods'
    await redis.hset(privacyKey(prefix, userId), { recordsReleased: '5', 'period:2026-11': '1', 'period:2026-10': '1' })
    await redis.sadd(privacyPeriodsKey(prefix, userId), '2026-10', '2026-09')
    for (const period of ['2026-09', '2026-10', '2026-11']) {
      await redis.hset(privacyBudgetKey(prefix, userId, period), { budget: '16000000', spent: '100000', 'c|steps|1': '100000' })
    }
    await redis.lpush(
      privacyLogKey(prefix, userId),
      JSON.stringify(entry),
      encodePrivacyLogEntry({ ...entry, kind: 'records', count: 24, epsilon: 0 }),
      'garbage',
    )
    const report = await readPrivacyReport(redis, prefix, userId)
    expect(report.budgets.map((b) => b.period)).toEqual(['2026-09', '2026-10', '2026-11'])
    expect(report.budgets[2]).toMatchObject({ budget: 16, spent: 0.1, remaining: 15.9, charges: 1 })
    expect(report.totals.recordsReleased).toBe(5)
    expect(report.releases).toEqual([{ ...entry, kind: 'records', count: 24, epsilon: 0 }, entry])
  })
})
