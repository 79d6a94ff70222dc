import { createHash } from 'node:crypto'
import { afterAll, describe, expect, it } from 'vitest'
import { createLogger, type ReleasableRecord } from '@fitstream/shared'
import type { ReceivedMessage } from '@fitstream/devstack'
import { DeliveryJournal } from '../src/delivery-journal.js'
import type { RandomInt } from '../src/messages.js'
import { createDeliverer, createPublishProcessor, type PublishProcessorDeps } from '../src/publish-processor.js'
import { SlotReleaser } from '../src/slot-releaser.js'
import { SlotStore } from '../src/slot-store.js'
import { jobContext, testRedis, uniquePrefix } from '../../../tests/helpers.js'

/**
 * Write the attacker: a buyer records everything it receives, content and metadata (timestamp,
 * sequence number, msgChainId, partition, publisher, arrival order), and tries to link each
 * person's December pseudonym to their November one. People sync hourly at a time of their own in
 * the hour that never changes (the worst case: the scheduler now moves it monthly too), each sync re-reading
 * the last hours, so the syncs just after midnight carry both months' records, as the look-back does.
 *
 * The same people and syncs go through the publisher twice, through its real code (hold, slot plan,
 * release, delivery journal) against real Redis, with a client that numbers and partitions messages
 * as the SDK does: published as each job comes, the attacker links nearly everyone (which shows the
 * attack works); in shared release slots it does no better than a guess.
 */
const prefix = uniquePrefix('month-linking-attack')
const { redis, cleanup } = testRedis(prefix)
const logger = createLogger('test', 'silent')
const HOUR = 3_600_000
const PEOPLE = 60
const LOOKBACK_HOURS = 3
const PARTITIONS = 4
const FROM = Date.UTC(2026, 10, 30, 20)
const TO = Date.UTC(2026, 11, 1, 4)

afterAll(cleanup)

/** What a buyer's subscriber gets of one message. */
type Observed = Omit<ReceivedMessage, 'receivedAt' | 'content'> & {
  /** Its place in the order of arrival. */
  readonly arrival: number
  readonly content: { readonly epoch?: string; readonly pseudonym?: string; readonly records: readonly { pseudonym?: string }[] }
}

/** A small seeded generator (mulberry32), so that the run and its figures are reproducible. */
function seeded(seed: number): RandomInt {
  let state = seed >>> 0
  return (max) => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4_294_967_296) * max)
  }
}

const hex = (seed: string): string => createHash('sha256').update(seed).digest('hex').slice(0, 32)
const pseudonymOf = (person: number, epoch: string): string => hex(`pseudonym|${person}|${epoch}`)

/** A sync at `at`: the person's hourly records of the last LOOKBACK_HOURS whole hours. */
function syncRecords(person: number, at: number): ReleasableRecord[] {
  const lastHour = Math.floor(at / HOUR) * HOUR
  return Array.from({ length: LOOKBACK_HOURS }, (_, i) => {
    const start = lastHour - (LOOKBACK_HOURS - i) * HOUR
    const epoch = new Date(start).toISOString().slice(0, 7)
    return {
      id: hex(`record|${person}|${start}`),
      type: 'steps' as const,
      pseudonym: pseudonymOf(person, epoch),
      epoch,
      start: new Date(start).toISOString(),
      end: new Date(start + HOUR).toISOString(),
      values: { count: 100 + ((person * 7 + i) % 50) },
      unit: 'steps',
      revision: 0,
    }
  })
}

/** Runs every person's syncs over [FROM, TO) through a publisher and returns what a buyer saw. */
async function buyerView(mode: 'per-job' | 'slots', random: RandomInt, run = 0): Promise<Observed[]> {
  const keys = `${prefix}:${mode}-${run}`
  const seen: Observed[] = []
  const sequence = new Map<string, { timestamp: number; sequenceNumber: number }>()
  const client = {
    publish: async (streamId: string, content: Observed['content'], metadata: { partitionKey: string; msgChainId: string; timestamp: number }) => {
      // As the SDK does: the partition from the key's hash, numbers per chain and stream partition.
      const partition = createHash('md5').update(metadata.partitionKey).digest().readUInt32BE(0) % PARTITIONS
      const key = `${streamId}#${partition}|${metadata.msgChainId}`
      const last = sequence.get(key)
      const sequenceNumber = last?.timestamp === metadata.timestamp ? last.sequenceNumber + 1 : 0
      sequence.set(key, { timestamp: metadata.timestamp, sequenceNumber })
      const publisherId = `0x${'5'.repeat(40)}`
      seen.push({
        arrival: seen.length,
        streamId,
        partition,
        publisherId,
        timestamp: metadata.timestamp,
        sequenceNumber,
        msgChainId: metadata.msgChainId,
        content,
      })
      return undefined
    },
  }
  let now = FROM
  const store = new SlotStore(redis, keys, { slotMs: HOUR, offsetMs: 0 })
  const deps: PublishProcessorDeps = {
    client: client as unknown as PublishProcessorDeps['client'],
    naming: { owner: `0x${'5'.repeat(40)}`, pathPrefix: '/fitness/' },
    journal: new DeliveryJournal(redis, keys, { instance: mode }),
    maxMessageBytes: 4_096,
    now: () => now,
    ...(mode === 'slots' ? { slots: { store } } : {}),
  }
  const publish = createPublishProcessor(deps)
  const releaser = new SlotReleaser({ store, deliver: createDeliverer(deps), maxMessageBytes: 4_096, instance: mode, lockMs: 60_000, logger, random })
  // Each person's offset in the hour, fixed for good (the worst case for the defence).
  const offset = Array.from({ length: PEOPLE }, () => random(HOUR))
  const syncs = Array.from({ length: (TO - FROM) / HOUR }, (_, h) =>
    Array.from({ length: PEOPLE }, (_, person) => ({ person, at: FROM + h * HOUR + offset[person]! })),
  )
    .flat()
    .sort((a, b) => a.at - b.at)
  for (const { person, at } of syncs) {
    now = at
    if (mode === 'slots') await releaser.releaseDue(at)
    await publish({ syncId: `sync-${person}-${at}`, records: syncRecords(person, at), cohorts: [] }, jobContext(logger, { jobId: `${mode}-${person}-${at}` }))
  }
  if (mode === 'slots') await releaser.releaseDue(TO + HOUR)
  return seen
}

/**
 * The attacker: for each December pseudonym, the November one whose messages sit closest to its
 * own in what a buyer sees, most telling first: the same message; the same message chain within a
 * second (one sync's messages); the nearest arrivals; the same time in the hour (a person's sync
 * minute); the same partitions. Ties are broken at random. Returns the share of December
 * pseudonyms linked to the right person.
 */
function linkAcrossMonths(observed: readonly Observed[], random: RandomInt): number {
  const byPseudonym = new Map<string, { epoch: string; messages: Observed[] }>()
  for (const message of observed) {
    for (const record of message.content.records) {
      const pseudonym = record.pseudonym ?? message.content.pseudonym!
      const entry = byPseudonym.get(pseudonym) ?? { epoch: message.content.epoch!, messages: [] }
      byPseudonym.set(pseudonym, entry)
      if (entry.messages.at(-1) !== message) entry.messages.push(message)
    }
  }
  const mean = (values: number[]): number => values.reduce((a, b) => a + b, 0) / Math.max(values.length, 1)
  const minuteGap = (a: number, b: number): number => {
    const gap = Math.abs((a % HOUR) - (b % HOUR))
    return Math.min(gap, HOUR - gap)
  }
  const score = (d: Observed[], n: Observed[]): number[] => [
    d.filter((m) => n.includes(m)).length,
    d.filter((m) => n.some((o) => o.msgChainId === m.msgChainId && Math.abs(o.timestamp - m.timestamp) <= 1_000)).length,
    -mean(d.map((m) => Math.min(...n.map((o) => Math.abs(o.arrival - m.arrival))))),
    -mean(d.map((m) => Math.min(...n.map((o) => minuteGap(o.timestamp, m.timestamp))))),
    d.filter((m) => n.some((o) => o.partition === m.partition)).length,
  ]
  const november = [...byPseudonym].filter(([, e]) => e.epoch === '2026-11')
  const december = [...byPseudonym].filter(([, e]) => e.epoch === '2026-12')
  expect(december).toHaveLength(PEOPLE)
  expect(november).toHaveLength(PEOPLE)
  let right = 0
  for (const [pseudonym, d] of december) {
    const scored = november.map(([candidate, n]) => ({ candidate, score: score(d.messages, n.messages), tie: random(1_000_000) }))
    scored.sort((a, b) => {
      for (let i = 0; i < a.score.length; i++) if (a.score[i] !== b.score[i]) return b.score[i]! - a.score[i]!
      return a.tie - b.tie
    })
    const person = Array.from({ length: PEOPLE }, (_, p) => p).find((p) => pseudonymOf(p, '2026-12') === pseudonym)!
    if (scored[0]!.candidate === pseudonymOf(person, '2026-11')) right++
  }
  return right / december.length
}

describe('linking a person’s pseudonyms across a month boundary from what a buyer receives', () => {
  it('succeeds for nearly everyone when each job is published as it comes (the attack works)', async () => {
    const rate = linkAcrossMonths(await buyerView('per-job', seeded(1)), seeded(2))
    process.stdout.write(`month-linking attack against per-job publishing: ${(rate * 100).toFixed(1)}% linked (chance ${(100 / PEOPLE).toFixed(2)}%)\n`)
    expect(rate).toBeGreaterThan(0.9)
  }, 60_000)

  it('does no better than chance against shared release slots, where every message of a slot has its time, one epoch per chain', async () => {
    const observed = await buyerView('slots', seeded(3))
    // What the defence promises, as the buyer sees it.
    const slots = new Set(observed.map((m) => m.timestamp))
    expect([...slots].every((t) => t % HOUR === 0)).toBe(true)
    const epochsByChain = new Map<string, Set<string>>()
    for (const m of observed) epochsByChain.set(m.msgChainId, (epochsByChain.get(m.msgChainId) ?? new Set()).add(m.content.epoch!))
    expect([...epochsByChain.values()].every((epochs) => epochs.size === 1)).toBe(true)
    const timesByChain = new Map<string, Set<number>>()
    for (const m of observed) timesByChain.set(m.msgChainId, (timesByChain.get(m.msgChainId) ?? new Set()).add(m.timestamp))
    expect([...timesByChain.values()].every((times) => times.size === 1)).toBe(true)

    // Chance is 1 in 60 (1.7%); over 12 independent boundaries the attacker's mean stays near it.
    const rates = [linkAcrossMonths(observed, seeded(4))]
    for (let run = 5; run < 16; run++) rates.push(linkAcrossMonths(await buyerView('slots', seeded(run * 101), run), seeded(run)))
    const mean = rates.reduce((a, b) => a + b, 0) / rates.length
    process.stdout.write(
      `month-linking attack against release slots: ${(mean * 100).toFixed(2)}% linked over ${rates.length} boundaries (chance ${(100 / PEOPLE).toFixed(2)}%)\n`,
    )
    // 12 × 60 guesses at p = 1/60: mean 1.67%, standard deviation 0.48%; 3.5% is near four deviations up.
    expect(mean).toBeLessThan(0.035)
  }, 120_000)
})
