import { describe, expect, it } from 'vitest'
import type { ReleasableRecord } from '@fitstream/shared'
import { MESSAGE_SCHEMA, packMessages } from '../src/messages.js'

const record = (i: number, pseudonym = 'a'.repeat(32), type: ReleasableRecord['type'] = 'steps'): ReleasableRecord => ({
  id: i.toString(16).padStart(32, '0'),
  type,
  pseudonym,
  epoch: '2026-11',
  start: new Date(Date.UTC(2026, 10, 1) + i * 3_600_000).toISOString(),
  end: new Date(Date.UTC(2026, 10, 1) + (i + 1) * 3_600_000).toISOString(),
  values: { count: i },
  unit: 'steps',
  revision: 0,
})

describe('packMessages', () => {
  it('groups records by type and pseudonym, one message each', () => {
    const messages = packMessages([record(1), record(2, 'b'.repeat(32)), record(3), record(4, 'a'.repeat(32), 'calories')], 256 * 1024)
    expect(messages).toHaveLength(3)
    const steps = messages.find((m) => m.type === 'steps' && m.pseudonym === 'a'.repeat(32))!
    expect(steps.schema).toBe(MESSAGE_SCHEMA)
    expect(steps.records.map((r) => r.values.count)).toEqual([1, 3])
    // The pseudonym is on the message, not repeated per record.
    expect(Object.keys(steps.records[0]!).sort()).toEqual(['end', 'id', 'revision', 'start', 'unit', 'values'])
  })

  it('splits a group so that no message exceeds the size limit, losing no record', () => {
    const records = Array.from({ length: 500 }, (_, i) => record(i))
    const messages = packMessages(records, 4096)
    expect(messages.length).toBeGreaterThan(1)
    for (const message of messages) expect(Buffer.byteLength(JSON.stringify(message))).toBeLessThanOrEqual(4096)
    expect(messages.flatMap((m) => m.records.map((r) => r.id))).toEqual(records.map((r) => r.id))
  })
})
