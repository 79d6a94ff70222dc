import type { RedisConnection } from '@fitstream/shared'
import type { CohortRecord, ReleasableRecord } from '@fitstream/shared'
import type { SlotMessage } from './messages.js'

/** How long held records and a slot's plan are kept if nothing releases them: a week, as the journal. */
const SLOT_TTL_SECONDS = 7 * 86_400

/** What a slot holds: the records and cohorts that became ready before it. */
export interface HeldRelease {
  readonly records: ReleasableRecord[]
  readonly cohorts: CohortRecord[]
}

/** When the release slots fall: every `slotMs`, `offsetMs` after the epoch (e.g. hourly at :05). */
export interface SlotSchedule {
  readonly slotMs: number
  readonly offsetMs: number
}

/** The first slot strictly after `now`: what becomes ready now is released then. */
export function nextSlot(schedule: SlotSchedule, now: number): number {
  const { slotMs, offsetMs } = schedule
  return Math.floor((now - offsetMs) / slotMs) * slotMs + offsetMs + slotMs
}

// Holds entries (ARGV[5..]: delivery key, JSON, ...) for slot ARGV[1], or for the first later slot
// whose release has not been planned yet (a hold that raced a slot's release, or came late), and
// notes the slot under the job (KEYS[2]) in the same step. A job already held is not held again.
// Returns the slot used.
const HOLD_SCRIPT = `
local already = redis.call('GET', KEYS[2])
if already then return tonumber(already) end
local slot = tonumber(ARGV[1])
while redis.call('EXISTS', ARGV[2] .. slot .. ':plan') == 1 do slot = slot + tonumber(ARGV[3]) end
local held = ARGV[2] .. slot .. ':held'
-- One HSET for many entries (each a command inside the script); chunked, as unpack is bounded.
for i = 5, #ARGV, 1000 do redis.call('HSET', held, unpack(ARGV, i, math.min(i + 999, #ARGV))) end
redis.call('EXPIRE', held, ARGV[4])
redis.call('ZADD', KEYS[1], slot, slot)
redis.call('SET', KEYS[2], slot, 'EX', ARGV[4])
return slot
`

/**
 * What a slot's plan key holds between the moment it stops taking holds and the moment its plan is
 * kept: holds already go to a later slot, and what it held is read without anything joining it.
 */
const CLOSED = 'closed'

// Keeps the first plan made for a slot (ARGV[1]) and forgets what the slot held, in one step, so
// that every process releasing the slot publishes the same messages. Returns the plan another
// process kept first, or nil when this one's was kept (a plan holds every record of the slot: it is
// not sent back).
const PLAN_SCRIPT = `
local plan = redis.call('GET', KEYS[1])
if plan and plan ~= '${CLOSED}' then return plan end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
redis.call('DEL', KEYS[2])
return false
`

const RENEW_SCRIPT = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`

const UNLOCK_SCRIPT = `
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
`

/**
 * The publisher's records waiting for their release slot, in Redis (owned by the publisher alone):
 * a publish job's records are held here, durably, until the slot; the slot's release first fixes
 * its plan (which messages, in which order, on which chains) and then publishes it, so that a
 * retry or another process publishes exactly the same messages with the same identities.
 */
export class SlotStore {
  constructor(
    private readonly redis: RedisConnection,
    /** QUEUE_PREFIX */
    private readonly prefix: string,
    private readonly schedule: SlotSchedule,
  ) {}

  /**
   * Holds a job's records and cohorts for the first slot after `now` (or a later one); returns the
   * slot. A job held before (a retry after a crash) is not held again: its slot is returned.
   */
  async hold(jobId: string, release: HeldRelease, now: number): Promise<number> {
    const entries = [
      ...release.records.flatMap((r) => [`${r.id}:${r.revision}`, JSON.stringify({ record: r })]),
      ...release.cohorts.flatMap((c) => [`c:${c.id}`, JSON.stringify({ cohort: c })]),
    ]
    const slot = await this.redis.eval(
      HOLD_SCRIPT,
      2,
      this.slotsKey,
      this.heldJobKey(jobId),
      String(nextSlot(this.schedule, now)),
      `${this.prefix}:publisher:slot:`,
      String(this.schedule.slotMs),
      String(SLOT_TTL_SECONDS),
      ...entries,
    )
    return Number(slot)
  }

  /** The job is marked done in the delivery journal, which answers its retries from now on. */
  async forgetHold(jobId: string): Promise<void> {
    await this.redis.del(this.heldJobKey(jobId))
  }

  /** Slots due at `now` that have something to release, oldest first. */
  async due(now: number): Promise<number[]> {
    return (await this.redis.zrangebyscore(this.slotsKey, '-inf', now)).map(Number)
  }

  /** What the slot holds (nothing once its plan is made). */
  async held(slot: number): Promise<HeldRelease> {
    const values = await this.redis.hvals(this.heldKey(slot))
    const release: HeldRelease = { records: [], cohorts: [] }
    for (const value of values) {
      const entry = JSON.parse(value) as { record?: ReleasableRecord; cohort?: CohortRecord }
      if (entry.record !== undefined) release.records.push(entry.record)
      if (entry.cohort !== undefined) release.cohorts.push(entry.cohort)
    }
    return release
  }

  /**
   * The slot's plan: the one already made, else `make(held)`, kept as the slot's for good. Two
   * processes racing here both get the first plan stored.
   */
  async plan(slot: number, make: (held: HeldRelease) => SlotMessage[]): Promise<SlotMessage[]> {
    const stored = await this.redis.get(this.planKey(slot))
    if (stored !== null && stored !== CLOSED) return JSON.parse(stored) as SlotMessage[]
    // Closed to holds first: a hold landing between reading what is held and keeping the plan would
    // otherwise be forgotten with the rest, and never published.
    if (stored === null) await this.redis.set(this.planKey(slot), CLOSED, 'EX', SLOT_TTL_SECONDS, 'NX')
    const made = make(await this.held(slot))
    const first = (await this.redis.eval(PLAN_SCRIPT, 2, this.planKey(slot), this.heldKey(slot), JSON.stringify(made), String(SLOT_TTL_SECONDS))) as
      string | null
    return first === null ? made : (JSON.parse(first) as SlotMessage[])
  }

  /**
   * The slot is released: its plan shrinks to an empty one, kept as long as a plan would be, so that
   * a late hold still goes to a later slot rather than to this one again.
   */
  async released(slot: number): Promise<void> {
    await this.redis.multi().set(this.planKey(slot), '[]', 'EX', SLOT_TTL_SECONDS).zrem(this.slotsKey, String(slot)).exec()
  }

  /**
   * Takes the right to release a slot for `ms`; false while another process has it. A process that
   * stalls past it loses the slot to another, which takes the journal's lease over.
   */
  async lock(slot: number, owner: string, ms: number): Promise<boolean> {
    return (await this.redis.set(this.lockKey(slot), owner, 'PX', ms, 'NX')) === 'OK'
  }

  /** Extends a slot's lock while `owner` still holds it; false once it has lost it. */
  async renew(slot: number, owner: string, ms: number): Promise<boolean> {
    return (await this.redis.eval(RENEW_SCRIPT, 1, this.lockKey(slot), owner, String(ms))) === 1
  }

  async unlock(slot: number, owner: string): Promise<void> {
    await this.redis.eval(UNLOCK_SCRIPT, 1, this.lockKey(slot), owner)
  }

  /** The slot a job's records were held for, until the journal marks the job done. */
  private heldJobKey(jobId: string): string {
    return `${this.prefix}:publisher:held-job:${jobId}`
  }

  private lockKey(slot: number): string {
    return `${this.prefix}:publisher:slot:${slot}:lock`
  }

  private heldKey(slot: number): string {
    return `${this.prefix}:publisher:slot:${slot}:held`
  }

  private planKey(slot: number): string {
    return `${this.prefix}:publisher:slot:${slot}:plan`
  }

  /** Slots with something held or planned, scored by their time. */
  private get slotsKey(): string {
    return `${this.prefix}:publisher:slots`
  }
}
