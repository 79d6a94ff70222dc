import { createHash } from 'node:crypto'
import { afterAll, describe, expect, it } from 'vitest'
import { createLogger, type PublishJobData, type ReleasableRecord } from '@fitstream/shared'
import { loadConfig } from '../src/config.js'
import { DeliveryJournal } from '../src/delivery-journal.js'
import { SLOT_MESSAGE_SCHEMA, planSlot, type SlotRecordMessage } from '../src/messages.js'
import { crashPointFor, createDeliverer, createPublishProcessor, type PublishProcessorDeps } from '../src/publish-processor.js'
import { SlotReleaser } from '../src/slot-releaser.js'
import { SlotStore, nextSlot } from '../src/slot-store.js'
import { jobContext, testRedis, uniquePrefix } from '../../../tests/helpers.js'

/**
 * Release slots against real Redis and a recording stand-in for the Streamr client that numbers
 * messages as the SDK does (per chain and stream, from 0 in a new process): what a buyer would see
 * of a slot, and that a slot released by a process that crashed or stalled part way is finished by
 * another with every message once, under the identity it had.
 */
const prefix = uniquePrefix('slot-release')
const { redis, cleanup } = testRedis(prefix)
const SLOT_MS = 3_600_000
const schedule = { slotMs: SLOT_MS, offsetMs: 5 * 60_000 }
const MAX_BYTES = 2_048
const logger = createLogger('test', 'silent')
const NOV_30_2250 = Date.UTC(2026, 10, 30, 22, 50)

afterAll(cleanup)

export interface Seen {
  readonly streamId: string
  readonly content: SlotRecordMessage
  readonly msgChainId: string
  readonly timestamp: number
  readonly sequenceNumber: number
}

class Crash extends Error {}

/** One publisher process: a hold processor, a releaser, and what its "client" sent. */
function publisherProcess(options: {
  instance: string
  stallAfter?: { count: number; until: Promise<void> }
  failAt?: number
  sink?: Seen[]
  joined?: PublishProcessorDeps['joined']
  canPublish?: (streamId: string) => Promise<boolean>
  /** A PUBLISH_CRASH_AT setting: the process stops dead there (a thrown Crash, nothing after it runs). */
  crashAt?: string
}) {
  const sent = options.sink ?? []
  const lastSequence = new Map<string, { timestamp: number; sequenceNumber: number }>()
  let count = 0
  const client = {
    publish: async (streamId: string, content: SlotRecordMessage, metadata: { msgChainId: string; timestamp: number }) => {
      if (options.stallAfter !== undefined && count === options.stallAfter.count) await options.stallAfter.until
      if (count === options.failAt) {
        count++
        // Refused before the SDK numbered it, as a permission or stream lookup is.
        throw Object.assign(new Error('stream not found'), { code: 'STREAM_NOT_FOUND' })
      }
      count++
      // What the SDK does: the next number on this chain and stream when the timestamp repeats.
      const key = `${streamId}|${metadata.msgChainId}`
      const last = lastSequence.get(key)
      const sequenceNumber = last !== undefined && last.timestamp === metadata.timestamp ? last.sequenceNumber + 1 : 0
      lastSequence.set(key, { timestamp: metadata.timestamp, sequenceNumber })
      sent.push({ streamId, content, msgChainId: metadata.msgChainId, timestamp: metadata.timestamp, sequenceNumber })
      return undefined
    },
  }
  const store = new SlotStore(redis, prefix, schedule)
  const journal = new DeliveryJournal(redis, prefix, { instance: options.instance })
  let now = 0
  const deps: PublishProcessorDeps = {
    client: client as unknown as PublishProcessorDeps['client'],
    naming: { owner: `0x${'5'.repeat(40)}`, pathPrefix: '/fitness/' },
    journal,
    maxMessageBytes: MAX_BYTES,
    now: () => now,
    ...(options.joined === undefined ? {} : { joined: options.joined }),
    slots: { store, ...(options.canPublish === undefined ? {} : { canPublish: options.canPublish }) },
    crashPoint: crashPointFor(options.crashAt, () => {
      throw new Crash()
    }),
  }
  const hold = createPublishProcessor(deps)
  const releaser = new SlotReleaser({
    store,
    deliver: createDeliverer(deps),
    maxMessageBytes: MAX_BYTES,
    instance: options.instance,
    lockMs: 500,
    logger,
    ...(deps.crashPoint === undefined ? {} : { crashPoint: deps.crashPoint }),
  })
  return {
    sent,
    store,
    releaser,
    hold: (jobId: string, job: PublishJobData, at: number) => {
      now = at
      return hold(job, jobContext(logger, { jobId, attempt: 1, maxAttempts: 5 }))
    },
  }
}

const hex = (seed: string): string => createHash('sha256').update(seed).digest('hex').slice(0, 32)

/**
 * `count` people's syncs of the first 12 hours of `day` (`<label>-<i>`, of person `<label>-person-<i>`),
 * each held by `p` ten minutes after as job `<label>-hold-<i>`: a slot's worth of work for a release test.
 */
async function holdSyncs(p: ReturnType<typeof publisherProcess>, label: string, count: number, day: number) {
  const jobs = Array.from({ length: count }, (_, i) => ({
    syncId: `${label}-${i}`,
    records: personRecords(`${label}-person-${i}`, day, day + 12 * 3_600_000),
    cohorts: [],
  }))
  for (const [i, job] of jobs.entries()) await p.hold(`${label}-hold-${i}`, job, day + 12 * 3_600_000 + 10 * 60_000)
  return jobs
}

/** A person's hourly step records over [from, to), under their pseudonym of each record's month. */
function personRecords(person: string, from: number, to: number): ReleasableRecord[] {
  const out: ReleasableRecord[] = []
  for (let start = from; start < to; start += 3_600_000) {
    const epoch = new Date(start).toISOString().slice(0, 7)
    out.push({
      id: hex(`${person}|${start}`),
      type: 'steps',
      pseudonym: hex(`${person}|${epoch}`),
      epoch,
      start: new Date(start).toISOString(),
      end: new Date(start + 3_600_000).toISOString(),
      values: { count: 100 },
      unit: 'steps',
      revision: 0,
    })
  }
  return out
}

const keysOf = (sent: readonly Seen[]): string[] => sent.flatMap((s) => s.content.records.map((r) => `${r.id}:${r.revision}`))
const identity = (s: Seen): string => `${s.streamId}|${s.msgChainId}|${s.timestamp}|${s.sequenceNumber}|${keysOf([s]).join(',')}`

describe('release slots', () => {
  it('are hourly on the hour unless configured, and refuse an offset outside the period', () => {
    const key = `0x${'11'.repeat(32)}`
    expect(loadConfig({ STREAMR_PRIVATE_KEY: key })).toMatchObject({ PUBLISH_SLOT_MS: 3_600_000, PUBLISH_SLOT_OFFSET_MS: 0 })
    expect(() => loadConfig({ STREAMR_PRIVATE_KEY: key, PUBLISH_SLOT_MS: '60000', PUBLISH_SLOT_OFFSET_MS: '60000' })).toThrow(
      /PUBLISH_SLOT_OFFSET_MS must be less than PUBLISH_SLOT_MS/,
    )
  })

  it('dead-letter the job whose stream is missing or takes no messages from this key, holding none of its records', async () => {
    const job = { syncId: 'no-stream', records: personRecords('no-stream-person', Date.UTC(2026, 11, 7), Date.UTC(2026, 11, 7, 2)), cohorts: [] }
    const missing = publisherProcess({
      instance: 'missing',
      joined: async () => {
        throw Object.assign(new Error('Stream not found'), { code: 'STREAM_NOT_FOUND' })
      },
    })
    await expect(missing.hold('no-stream', job, Date.UTC(2026, 11, 7, 2, 10))).rejects.toMatchObject({
      code: 'FST_ERR_STREAMR_STREAM_NOT_FOUND',
      permanent: true,
      message: expect.stringMatching(/fitness\/steps: the stream does not exist/),
    })
    const refused = publisherProcess({ instance: 'refused', canPublish: async () => false })
    await expect(refused.hold('no-permission', job, Date.UTC(2026, 11, 7, 2, 10))).rejects.toMatchObject({
      code: 'FST_ERR_STREAMR_MISSING_PERMISSION',
      permanent: true,
    })
    expect(await missing.store.held(nextSlot(schedule, Date.UTC(2026, 11, 7, 2, 10)))).toEqual({ records: [], cohorts: [] })
  })

  it('fall every period at the offset, the first strictly after now', () => {
    expect(new Date(nextSlot(schedule, Date.UTC(2026, 10, 30, 22, 50))).toISOString()).toBe('2026-11-30T23:05:00.000Z')
    expect(new Date(nextSlot(schedule, Date.UTC(2026, 10, 30, 23, 5))).toISOString()).toBe('2026-12-01T00:05:00.000Z')
  })

  it("publish everyone's held records at the slot, under its time, each epoch on a chain of its own, fresh each slot", async () => {
    const p = publisherProcess({ instance: 'a' })
    const people = Array.from({ length: 12 }, (_, i) => `slot-person-${i}`)
    // Each person's sync, at their own minute, re-reads 48 hours: both months' records.
    const jobs = people.map((person, i) => ({
      syncId: `sync-${i}`,
      records: personRecords(person, Date.UTC(2026, 10, 30), Date.UTC(2026, 11, 1, 2)),
      cohorts: [],
    }))
    for (const [i, job] of jobs.entries()) expect((await p.hold(`hold-${i}`, job, NOV_30_2250 + i * 60_000)).heldFor).toBe(Date.UTC(2026, 10, 30, 23, 5))
    // A retried job is held once.
    await p.hold('hold-0', jobs[0]!, NOV_30_2250 + 20 * 60_000)
    expect(await p.releaser.releaseDue(Date.UTC(2026, 10, 30, 23, 4))).toBe(0)
    expect(p.sent).toHaveLength(0)

    expect(await p.releaser.releaseDue(Date.UTC(2026, 10, 30, 23, 5, 1))).toBe(1)
    const expected = jobs.flatMap((job) => job.records.map((r) => `${r.id}:${r.revision}`))
    expect(keysOf(p.sent).sort()).toEqual([...expected].sort())
    expect(new Set(p.sent.map((s) => s.timestamp))).toEqual(new Set([Date.UTC(2026, 10, 30, 23, 5)]))
    for (const s of p.sent) {
      expect(s.content.schema).toBe(SLOT_MESSAGE_SCHEMA)
      expect(new Set(s.content.records.map((r) => r.pseudonym)).size).toBeGreaterThan(1)
      expect(s.content.records.every((r) => !('epoch' in r) && s.content.epoch === r.start.slice(0, 7))).toBe(true)
    }
    const epochsByChain = new Map<string, Set<string>>()
    for (const s of p.sent) epochsByChain.set(s.msgChainId, (epochsByChain.get(s.msgChainId) ?? new Set()).add(s.content.epoch))
    expect([...epochsByChain.values()].map((epochs) => epochs.size)).toEqual([1, 1])

    // The next slot: new chains, and nothing of the last one again.
    const next = { syncId: 'sync-next', records: personRecords('slot-person-0', Date.UTC(2026, 11, 1, 2), Date.UTC(2026, 11, 1, 3)), cohorts: [] }
    await p.hold('hold-next', next, Date.UTC(2026, 10, 30, 23, 30))
    const before = p.sent.length
    expect(await p.releaser.releaseDue(Date.UTC(2026, 11, 1, 0, 5))).toBe(1)
    const later = p.sent.slice(before)
    expect(keysOf(later)).toEqual(next.records.map((r) => `${r.id}:0`))
    expect(later.every((s) => !epochsByChain.has(s.msgChainId) && s.timestamp === Date.UTC(2026, 11, 1, 0, 5))).toBe(true)
  })

  it('holds every record of a large job (more than one HSET chunk), each once', async () => {
    // A prefix of its own, so that no other test's release takes this slot.
    const store = new SlotStore(redis, `${prefix}:large`, schedule)
    // 60 days of hourly records: 1,440 records, 2,880 fields and values, three chunks in the script.
    const records = personRecords('large', Date.UTC(2026, 9, 1), Date.UTC(2026, 10, 30))
    const slot = await store.hold('large-job', { records, cohorts: [] }, Date.UTC(2026, 11, 5, 9, 30))
    const held = await store.held(slot)
    expect(held.records.map((r) => r.id).sort()).toEqual(records.map((r) => r.id).sort())
  })

  it('holds records that come once a slot is planned for the next slot, never losing them', async () => {
    const p = publisherProcess({ instance: 'late' })
    const early = { syncId: 'early', records: personRecords('late-a', Date.UTC(2026, 11, 3), Date.UTC(2026, 11, 3, 2)), cohorts: [] }
    const late = { syncId: 'late', records: personRecords('late-b', Date.UTC(2026, 11, 3), Date.UTC(2026, 11, 3, 2)), cohorts: [] }
    await p.hold('early', early, Date.UTC(2026, 11, 3, 2, 50))
    // Another process has begun releasing the 03:05 slot (its plan is fixed).
    await p.store.plan(Date.UTC(2026, 11, 3, 3, 5), (held) => planSlot(held, MAX_BYTES))
    // A process whose clock is behind holds for the slot already planned: it goes to the next.
    expect((await p.hold('late', late, Date.UTC(2026, 11, 3, 2, 59))).heldFor).toBe(Date.UTC(2026, 11, 3, 4, 5))
    expect(await p.releaser.releaseDue(Date.UTC(2026, 11, 3, 4, 6))).toBe(2)
    const at = (time: number): string[] => keysOf(p.sent.filter((s) => s.timestamp === time)).sort()
    expect(at(Date.UTC(2026, 11, 3, 3, 5))).toEqual(early.records.map((r) => `${r.id}:0`).sort())
    expect(at(Date.UTC(2026, 11, 3, 4, 5))).toEqual(late.records.map((r) => `${r.id}:0`).sort())
  })

  it('holds a job that died between holding its records and being marked done once, even when its slot went out meanwhile', async () => {
    const job = { syncId: 'held-crash', records: personRecords('held-crash-person', Date.UTC(2026, 11, 8), Date.UTC(2026, 11, 8, 6)), cohorts: [] }
    const killed = publisherProcess({ instance: 'killed-after-hold', crashAt: 'held' })
    await expect(killed.hold('held-crash', job, Date.UTC(2026, 11, 8, 6, 10))).rejects.toBeInstanceOf(Crash)
    const restarted = publisherProcess({ instance: 'restarted-after-hold' })
    const slotTime = Date.UTC(2026, 11, 8, 7, 5)
    expect(await restarted.releaser.releaseDue(slotTime)).toBe(1)
    // The job's retry comes once its lock lapsed, after the slot: it is answered with that slot.
    expect((await restarted.hold('held-crash', job, slotTime + 60_000)).heldFor).toBe(slotTime)
    await restarted.releaser.releaseDue(slotTime + 3_600_000)
    expect(keysOf(restarted.sent).sort()).toEqual(job.records.map((r) => `${r.id}:0`).sort())
  })

  for (const [n, point] of ['planned', 'published:2', 'noting:2', 'noted:2', 'completed'].entries()) {
    it(`released by a process that dies at ${point} and then by another, reaches a buyer's node once per record`, async () => {
      const sink: Seen[] = []
      const dying = publisherProcess({ instance: `dies-${point}`, sink, crashAt: point })
      const next = publisherProcess({ instance: `after-${point}`, sink })
      const jobs = await holdSyncs(dying, `crash-${n}`, 6, Date.UTC(2026, 11, 10 + n))
      const slotTime = Date.UTC(2026, 11, 10 + n, 13, 5)
      expect(await dying.releaser.release(slotTime, slotTime)).toBe(false)
      const sentBefore = sink.length
      // A dead process renews nothing: its lock runs out.
      await redis.del(`${prefix}:publisher:slot:${slotTime}:lock`)
      expect(await next.releaser.release(slotTime, slotTime + 60_000)).toBe(true)
      // What the first had not sent went out (nothing, when it had finished all but the release).
      if (point !== 'completed') expect(sink.length).toBeGreaterThan(sentBefore)
      // A buyer's node takes a message once per identity; one identity never carries two contents.
      const byIdentity = new Map<string, string>()
      for (const s of sink) {
        const id = `${s.streamId}|${s.msgChainId}|${s.timestamp}|${s.sequenceNumber}`
        expect(byIdentity.get(id) ?? keysOf([s]).join(','), id).toBe(keysOf([s]).join(','))
        byIdentity.set(id, keysOf([s]).join(','))
      }
      const delivered = [...byIdentity.values()].flatMap((keys) => keys.split(','))
      expect(delivered.sort()).toEqual(jobs.flatMap((job) => job.records.map((r) => `${r.id}:0`)).sort())
    })
  }

  it('holds records that come while a slot is being planned for the next slot, never losing them', async () => {
    const p = publisherProcess({ instance: 'racing-hold' })
    const first = { records: personRecords('race-a', Date.UTC(2026, 11, 9), Date.UTC(2026, 11, 9, 2)), cohorts: [] }
    const racing = { records: personRecords('race-b', Date.UTC(2026, 11, 9), Date.UTC(2026, 11, 9, 2)), cohorts: [] }
    await p.hold('race-first', { syncId: 'race-first', ...first }, Date.UTC(2026, 11, 9, 2, 50))
    const slotTime = Date.UTC(2026, 11, 9, 3, 5)
    await p.store.plan(slotTime, (held) => {
      // Another process's hold for this slot, sent between the read of what it holds and the plan.
      void p.store.hold('race-racing', racing, Date.UTC(2026, 11, 9, 2, 59))
      return planSlot(held, MAX_BYTES)
    })
    expect(await p.releaser.releaseDue(Date.UTC(2026, 11, 9, 4, 6))).toBe(2)
    const at = (time: number): string[] => keysOf(p.sent.filter((s) => s.timestamp === time)).sort()
    expect(at(slotTime)).toEqual(first.records.map((r) => `${r.id}:0`).sort())
    expect(at(Date.UTC(2026, 11, 9, 4, 5))).toEqual(racing.records.map((r) => `${r.id}:0`).sort())
  })

  it('after a permanent failure part way, keeps the slot on its chains, so another process finishes it without reusing an identity', async () => {
    const sink: Seen[] = []
    const failing = publisherProcess({ instance: 'fails', failAt: 2, sink })
    const other = publisherProcess({ instance: 'finishes', sink })
    const jobs = await holdSyncs(failing, 'fail', 6, Date.UTC(2026, 11, 6))
    const slotTime = Date.UTC(2026, 11, 6, 13, 5)
    expect(await failing.releaser.releaseDue(slotTime)).toBe(0)
    expect(sink).toHaveLength(2)
    // Backing off: not again at once.
    expect(await failing.releaser.releaseDue(slotTime + 100)).toBe(0)
    // Another process (its client numbers chains from 0) finishes the slot.
    expect(await other.releaser.releaseDue(slotTime + 60_000)).toBe(1)
    const all = jobs.flatMap((job) => job.records.map((r) => `${r.id}:0`))
    expect([...new Set(keysOf(sink))].sort()).toEqual([...all].sort())
    // An identity a buyer's node has seen is never given to other records (it would drop them).
    const recordsByIdentity = new Map<string, Set<string>>()
    for (const s of sink) {
      const id = `${s.streamId}|${s.msgChainId}|${s.timestamp}|${s.sequenceNumber}`
      recordsByIdentity.set(id, (recordsByIdentity.get(id) ?? new Set()).add(keysOf([s]).join(',')))
    }
    expect([...recordsByIdentity.values()].filter((contents) => contents.size > 1)).toEqual([])
  })

  it('taken over from a process that stalled part way, publishes every message once with the identity it had', async () => {
    const sink: Seen[] = []
    let wake = (): void => undefined
    const stalled = publisherProcess({ instance: 'stalls', sink, stallAfter: { count: 3, until: new Promise<void>((resolve) => (wake = resolve)) } })
    const survivor = publisherProcess({ instance: 'survives', sink })
    const jobs = await holdSyncs(stalled, 'stall', 8, Date.UTC(2026, 11, 5))
    const slotTime = Date.UTC(2026, 11, 5, 13, 5)
    const first = stalled.releaser.release(slotTime, slotTime)
    await expect.poll(() => sink.length).toBe(3)
    // While the first holds the slot's lock, another does not release it.
    expect(await survivor.releaser.release(slotTime, slotTime)).toBe(false)
    // The stalled process's lock runs out (a stopped process renews nothing).
    await redis.del(`${prefix}:publisher:slot:${slotTime}:lock`)
    expect(await survivor.releaser.release(slotTime, slotTime)).toBe(true)
    wake()
    expect(await first).toBe(false)
    const all = jobs.flatMap((job) => job.records.map((r) => `${r.id}:0`))
    const byIdentity = new Map<string, number>()
    for (const s of sink) byIdentity.set(identity(s), (byIdentity.get(identity(s)) ?? 0) + 1)
    // The survivor re-sent the stalled process's first messages under the same identities (a
    // buyer's node drops the copies), and every record reached a distinct identity exactly once.
    const distinct = [...byIdentity.keys()]
    expect(distinct.length).toBeLessThan(sink.length)
    const delivered = distinct.flatMap((id) => id.split('|')[4]!.split(','))
    expect(delivered.sort()).toEqual([...all].sort())
  })
})
