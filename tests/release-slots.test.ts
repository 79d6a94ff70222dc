import { createHash } from 'node:crypto'
import { beforeAll, describe, expect, inject, it } from 'vitest'
import { recordsOf, type ServiceProcess, type Subscriber } from '@fitstream/devstack'
import type { ReleasableRecord } from '@fitstream/shared'
import { usePublisherHarness } from './system.js'

/**
 * The publisher in shared release slots, as a separate process on a local Streamr network, seen by
 * a buyer's subscriber: people's syncs that straddle a month boundary (both months' pseudonyms in
 * one job) arrive in slots, every message of a slot under the slot's time, many people's records to
 * a message, and no message chain carrying two epochs or two slots. Then the publisher is killed
 * (SIGKILL, PUBLISH_CRASH_AT) at each point of holding and releasing, and restarted: the buyer still
 * gets every record exactly once.
 */
const SLOT_MS = 2_000
const HOUR = 3_600_000
let subscriber: Subscriber
let publisher: ServiceProcess
const system = usePublisherHarness('release-slots', {
  provision: (harness) => ['--types', 'steps', '--partitions', '2', '--grant-subscribe', harness.buyer.address],
  failureLog: () => `publisher log:\n${publisher?.tail(30)}\nsubscriber errors:\n${subscriber?.errors.slice(-20).join('\n')}\n`,
})
const { queues } = system
const publisherEnv = system.publisherEnv({
  PUBLISH_SLOT_MS: String(SLOT_MS),
  // Small messages, so that a slot is several messages per epoch.
  MAX_MESSAGE_BYTES: '2048',
  STREAMR_JOIN_TIMEOUT_MS: '30000',
  // A killed process's job and slot are taken over within seconds rather than minutes.
  PUBLISH_LOCK_MS: '2000',
  STALLED_CHECK_MS: '1000',
  RETRY_BACKOFF_MS: '200',
})

beforeAll(async () => {
  subscriber = await system.harness.startSubscriber(system.harness.buyer.privateKey, [system.harness.streamId('steps')])
  publisher = await system.harness.startPublisher(publisherEnv)
})

const hex = (seed: string): string => createHash('sha256').update(seed).digest('hex').slice(0, 32)

/** A sync just after midnight on 1 December: its look-back holds November's hours and December's. */
function straddlingSync(person: string): ReleasableRecord[] {
  return Array.from({ length: 6 }, (_, i) => {
    const start = Date.UTC(2026, 10, 30, 21) + i * HOUR
    const epoch = new Date(start).toISOString().slice(0, 7)
    return {
      id: hex(`${person}|${start}`),
      type: 'steps' as const,
      pseudonym: hex(`${person}|${epoch}`),
      epoch,
      start: new Date(start).toISOString(),
      end: new Date(start + HOUR).toISOString(),
      values: { count: 100 + i },
      unit: 'steps',
      revision: 0,
    }
  })
}

describe('shared release slots', () => {
  it('deliver every record once, each slot’s messages under its time, many people to a message, one epoch per chain', async () => {
    const people = Array.from({ length: 12 }, (_, i) => `slot-system-${i}`)
    const jobs = people.map((person) => ({ syncId: person, records: straddlingSync(person), cohorts: [] }))
    await queues.addBulk(
      'publish',
      jobs.map((data) => ({ data, options: { jobId: data.syncId } })),
    )
    const expected = jobs.flatMap((job) => job.records.map((r) => `${r.id}:${r.revision}`))
    const delivered = (): string[] => subscriber.messages.flatMap((m) => recordsOf(m.content).map((r) => `${r.id}:${r.revision}`))
    await subscriber.waitFor(() => expected.every((key) => delivered().includes(key)), 60_000)
    // Give any duplicate time to arrive before checking that none did.
    await new Promise((resolve) => setTimeout(resolve, SLOT_MS + 1_000))
    expect(delivered().sort()).toEqual([...expected].sort())

    const messages = subscriber.messages.filter((m) => recordsOf(m.content).length > 0)
    // Every message is a slot's: its time is a slot's, and it is in the slot format.
    for (const m of messages) {
      expect(m.timestamp % SLOT_MS).toBe(0)
      expect((m.content as { schema: string }).schema).toBe('fitstream.records/2')
      expect(new Set(recordsOf(m.content).map((r) => r.epoch)).size).toBe(1)
    }
    // The jobs were added at once: a slot or two carries them all.
    expect(new Set(messages.map((m) => m.timestamp)).size).toBeLessThanOrEqual(2)
    // No chain carries two epochs, or runs from one slot into another.
    const byChain = new Map<string, { epochs: Set<string>; times: Set<number> }>()
    for (const m of messages) {
      const chain = byChain.get(m.msgChainId) ?? { epochs: new Set(), times: new Set() }
      byChain.set(m.msgChainId, chain)
      for (const r of recordsOf(m.content)) chain.epochs.add(r.epoch)
      chain.times.add(m.timestamp)
    }
    expect([...byChain.values()].map((c) => [c.epochs.size, c.times.size])).toEqual([...byChain.values()].map(() => [1, 1]))
    // A message holds many people's records, not one person's.
    expect(Math.max(...messages.map((m) => new Set(recordsOf(m.content).map((r) => r.pseudonym)).size))).toBeGreaterThan(1)
    expect(publisher.lines.some((l) => l.includes('release slot published'))).toBe(true)
  }, 120_000)
})

/** Every delivery of a record of `keys` the buyer got (`id:revision`), copies included. */
function deliveriesOf(keys: ReadonlySet<string>): string[] {
  return subscriber.messages.flatMap((m) => recordsOf(m.content).map((r) => `${r.id}:${r.revision}`)).filter((key) => keys.has(key))
}

describe('a publisher killed (SIGKILL) while holding or releasing a slot, then restarted', () => {
  beforeAll(async () => {
    // Only the processes each case starts publish from here on.
    await publisher.stop()
  })

  // Each point in the order it comes: a job's hold, then a slot's release. A slot here is some ten
  // messages (two epochs, several messages each), so the second message is part way through it.
  // The unit tests of the slot store kill a release at every point; here the default tier kills a
  // real process at a hold, in the middle of a note and after the journal, the soak tier at all six.
  const allPoints = [
    ['held', 'after a job is held, before the journal marks it done'],
    ['planned', "after the slot's plan is kept, before its first message"],
    ['published:2', 'after a message is published, before its note'],
    ['noting:2', 'while the note of a published message is on its way to Redis'],
    ['noted:2', 'between two messages of the slot'],
    ['completed', "after the slot's journal is complete, before the slot is marked released"],
  ] as const
  const points = inject('soak') === true ? allPoints : allPoints.filter(([point]) => ['held', 'noting:2', 'completed'].includes(point))

  for (const [point, when] of points) {
    it(`${when} (PUBLISH_CRASH_AT=${point}): every record reaches the buyer exactly once`, async () => {
      const people = Array.from({ length: 8 }, (_, i) => `crash-${point.replace(':', '-')}-${i}`)
      const jobs = people.map((person) => ({ syncId: person, records: straddlingSync(person), cohorts: [] }))
      const expected = jobs.flatMap((job) => job.records.map((r) => `${r.id}:${r.revision}`))
      const keys = new Set(expected)
      const errorsBefore = subscriber.errors.length
      const allDelivered = (): boolean => expected.every((key) => deliveriesOf(keys).includes(key))
      // The buyer asked the killed process for the slot's key and got no answer: see below.
      const keyLost = (): boolean => subscriber.errors.slice(errorsBefore).some((line) => /decrypt/i.test(line))
      // The restarted process keeps the killed one's key store, as a restarted container does.
      const env = { ...publisherEnv, XDG_DATA_HOME: system.harness.dataDir() }
      const crashing = await system.harness.startPublisher({ ...env, PUBLISH_CRASH_AT: point }, `publisher-${point}`)
      publisher = crashing
      await queues.addBulk(
        'publish',
        jobs.map((data) => ({ data, options: { jobId: data.syncId } })),
      )
      // It dies at the point (nothing else ends it).
      await expect.poll(() => crashing.running, { timeout: 60_000, interval: 100 }).toBe(false)
      const restarted = await system.harness.startPublisher(env, `publisher-${point}-restarted`)
      publisher = restarted
      try {
        if (point === 'completed') {
          await subscriber.waitFor(() => allDelivered() || keyLost(), 90_000)
        } else {
          await subscriber.waitFor(allDelivered, 90_000)
        }
        // Long enough for a copy to show: a slot and the lock of the killed process's jobs and slots.
        await new Promise((resolve) => setTimeout(resolve, 2 * SLOT_MS + 4_000))
        const delivered = deliveriesOf(keys)
        if (point === 'completed' && !allDelivered()) {
          // Killed right after a slot's last messages on a partition, the publisher could not answer
          // the buyer's key request, and nothing later on the partition makes the buyer ask the
          // restarted one: those records are lost to this buyer, never repeated (docs/messages.md).
          expect(keyLost()).toBe(true)
          expect(new Set(delivered).size).toBe(delivered.length)
        } else {
          expect(delivered.sort()).toEqual([...expected].sort())
        }
      } finally {
        await restarted.stop()
      }
    }, 180_000)
  }
})
