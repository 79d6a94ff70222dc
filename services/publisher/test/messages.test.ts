import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import type { CohortRecord, ReleasableRecord } from '@fitstream/shared'
import { DEFAULT_TYPES } from '../src/listing.js'
import {
  COHORT_MESSAGE_SCHEMA,
  MESSAGE_SCHEMA,
  SLOT_MESSAGE_SCHEMA,
  deliveryKeys,
  outgoingMessages,
  packMessages,
  planSlot,
  type SlotRecordMessage,
} from '../src/messages.js'

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

const cohort = (i: number, start = i): CohortRecord => ({
  id: (1000 + i).toString(16).padStart(32, '0'),
  type: 'steps',
  start: new Date(Date.UTC(2026, 10, 1) + start * 3_600_000).toISOString(),
  end: new Date(Date.UTC(2026, 10, 1) + (start + 1) * 3_600_000).toISOString(),
  band: 'weight:70-80',
  contributors: 15,
  values: { count: i },
  unit: 'steps',
})

describe('outgoingMessages', () => {
  it('keeps a window’s history cell apart from its live cell, marked with its batch, in the message and in a slot', () => {
    const history: CohortRecord = { ...cohort(2, 5), release: 'history', batch: '2026-12-07' }
    const job = { records: [], cohorts: [cohort(1, 5), history] }
    const direct = outgoingMessages(job, 256 * 1024)
    const slot = planSlot(job, 256 * 1024).map((planned) => planned.message)
    for (const messages of [direct, slot]) {
      const rows = messages.map((message) => message.content.records as readonly Partial<CohortRecord>[])
      expect(rows.map((message) => message.map((row) => [row.id, row.release, row.batch]))).toEqual(
        expect.arrayContaining([[[cohort(1).id, undefined, undefined]], [[history.id, 'history', '2026-12-07']]]),
      )
      expect(rows).toHaveLength(2)
    }
  })

  it('packs records by pseudonym and cohorts by window, in a fixed order, with their delivery keys', () => {
    const job = { records: [record(1), record(2, 'b'.repeat(32))], cohorts: [cohort(1, 5), cohort(2, 5), cohort(3, 6)] }
    const messages = outgoingMessages(job, 256 * 1024)
    expect(messages.map((m) => [m.kind, m.partitionKey])).toEqual([
      ['records', 'a'.repeat(32)],
      ['records', 'b'.repeat(32)],
      ['cohorts', cohort(1, 5).start],
      ['cohorts', cohort(3, 6).start],
    ])
    const cohorts = messages[2]!.content
    expect(cohorts).toMatchObject({ schema: COHORT_MESSAGE_SCHEMA, type: 'steps' })
    expect(cohorts).not.toHaveProperty('pseudonym')
    expect(cohorts.records[0]).toEqual({
      id: cohort(1).id,
      start: cohort(1, 5).start,
      end: cohort(1, 5).end,
      band: 'weight:70-80',
      contributors: 15,
      values: { count: 1 },
      unit: 'steps',
    })
    expect(deliveryKeys(messages[0]!)).toEqual([`${record(1).id}:0`])
    expect(deliveryKeys(messages[2]!)).toEqual([`c:${cohort(1).id}`, `c:${cohort(2).id}`])
    expect(outgoingMessages(job, 256 * 1024)).toEqual(messages)
  })
})

describe('planSlot', () => {
  const people = Array.from({ length: 40 }, (_, p) => p.toString(16).padStart(32, '0'))
  const held = {
    records: people.flatMap((pseudonym, p) => [
      record(p * 10, pseudonym),
      { ...record(p * 10 + 1, pseudonym), epoch: '2026-12' },
      record(p * 10 + 2, pseudonym, 'heart_rate'),
    ]),
    cohorts: [],
  }

  it('packs every record once, one type and epoch to a message and to a chain, many people to a message', () => {
    const plan = planSlot(held, 1024)
    const sent = plan.flatMap(({ message }) => deliveryKeys(message))
    expect(sent.sort()).toEqual(held.records.map((r) => `${r.id}:0`).sort())
    const chains = new Map<string, Set<string>>()
    for (const { message, msgChainId } of plan) {
      const content = message.content as SlotRecordMessage
      expect(content.schema).toBe(SLOT_MESSAGE_SCHEMA)
      for (const r of content.records)
        expect(held.records.find((h) => h.id === r.id)).toMatchObject({ epoch: content.epoch, type: content.type, pseudonym: r.pseudonym })
      expect(Buffer.byteLength(JSON.stringify(content))).toBeLessThanOrEqual(1024)
      chains.set(msgChainId, (chains.get(msgChainId) ?? new Set()).add(content.epoch))
    }
    expect([...chains.values()].map((epochs) => epochs.size)).toEqual([1, 1])
    expect(Math.min(...plan.map(({ message }) => new Set((message.content as SlotRecordMessage).records.map((r) => r.pseudonym)).size))).toBeGreaterThan(1)
  })

  it('orders people at random: two plans of the same records differ, in order, chains and partition keys', () => {
    const a = planSlot(held, 1024)
    const b = planSlot(held, 1024)
    const order = (plan: typeof a): string[] => plan.flatMap(({ message }) => deliveryKeys(message))
    expect(order(a)).not.toEqual(order(b))
    expect(a.map((m) => m.msgChainId).filter((chain) => b.some((other) => other.msgChainId === chain))).toEqual([])
    expect(a.map((m) => m.message.partitionKey).filter((key) => b.some((other) => other.message.partitionKey === key))).toEqual([])
  })
})

describe('docs/message-schema.json', () => {
  it('names the formats and the data types the publisher sends', () => {
    const schema = JSON.parse(readFileSync(new URL('../../../docs/message-schema.json', import.meta.url), 'utf8')) as {
      $defs: {
        dataType: { enum: string[] }
        records: { properties: { schema: { const: string } } }
        slotRecords: { required: string[]; properties: { schema: { const: string }; records: { items: { required: string[] } } } }
        cohorts: { properties: { schema: { const: string } } }
      }
    }
    expect(schema.$defs.records.properties.schema.const).toBe(MESSAGE_SCHEMA)
    expect(schema.$defs.slotRecords.properties.schema.const).toBe(SLOT_MESSAGE_SCHEMA)
    const [slot] = planSlot({ records: [record(1)], cohorts: [] }, 1024)
    expect(Object.keys(slot!.message.content).sort()).toEqual([...schema.$defs.slotRecords.required].sort())
    expect(Object.keys(slot!.message.content.records[0]!).sort()).toEqual([...schema.$defs.slotRecords.properties.records.items.required].sort())
    expect(schema.$defs.cohorts.properties.schema.const).toBe(COHORT_MESSAGE_SCHEMA)
    expect(schema.$defs.dataType.enum).toEqual(DEFAULT_TYPES)
  })
})
