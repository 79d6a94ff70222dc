import { beforeAll, describe, expect, it } from 'vitest'
import { recordsOf } from '@fitstream/devstack'
import { useStack } from './system.js'

/**
 * The whole FitStream (every service a process, the fake Google, a local Streamr network) with the
 * publisher in 1.5-second release slots: a buyer receives exactly each person's data, once, and all
 * of it in slots: every message under a slot's time, in the slot format, a chain per epoch and slot.
 */
const SLOT_MS = 1_500
const USERS = 6
const system = useStack('release-slots-pipeline', { backfillDays: 1, googleLatencyMs: 20, serviceEnv: { publisher: { PUBLISH_SLOT_MS: String(SLOT_MS) } } })

beforeAll(async () => {
  for (let i = 0; i < USERS; i++) system.check.add(await system.stack.registerUser({ seed: `release-slots-${i}`, dataTypes: ['steps', 'heart_rate'] }))
})

describe('the pipeline with shared release slots', () => {
  it("delivers exactly each person's records once, all in slots", async () => {
    const report = await system.check.waitComplete(120_000, SLOT_MS * 2)
    expect(report).toMatchObject({ users: USERS, usersComplete: USERS, duplicates: 0, unexpected: 0 })

    const messages = system.subscriber.messages.filter((m) => recordsOf(m.content).length > 0)
    expect(messages.every((m) => m.timestamp % SLOT_MS === 0 && (m.content as { schema: string }).schema === 'fitstream.records/2')).toBe(true)
    const byChain = new Map<string, Set<string>>()
    for (const m of messages) {
      const chain = byChain.get(m.msgChainId) ?? new Set<string>()
      byChain.set(m.msgChainId, chain)
      for (const r of recordsOf(m.content)) chain.add(`${r.epoch}@${m.timestamp}`)
    }
    // One epoch and one slot per chain.
    expect([...byChain.values()].filter((slots) => slots.size > 1)).toEqual([])
    // Everyone's backfill went out in few slots: messages hold many people each.
    expect(Math.max(...messages.map((m) => new Set(recordsOf(m.content).map((r) => r.pseudonym)).size))).toBeGreaterThan(1)
  }, 180_000)
})
