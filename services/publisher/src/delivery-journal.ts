import { createHash, randomBytes } from 'node:crypto'
import type { RedisConnection } from '@fitstream/shared'

/**
 * What the publisher remembers about a publish job in Redis, so that a retry, even after a crash,
 * neither skips nor repeats a message:
 *
 * - The job's **message chain** (a Streamr msgChainId leased from a small pool) and its **base
 *   timestamp**. Message i of the job is always published as (chain, base + i, sequence 0), so a
 *   retry republishes a message with exactly the identity it had. Streamr nodes drop a message whose
 *   identity they have already seen, so a message that went out just before a crash, but whose
 *   note below was never written, does not reach a subscriber a second time.
 * - The **delivery keys** (`recordId:revision`) of what has been published, written after each
 *   message: a retry in the same process skips those messages without publishing them at all.
 * - The packing (`maxBytes`), pinned at the first attempt so that a retry packs identically.
 *
 * A process that takes over the open lease of a crashed one republishes the messages noted under
 * it, in order and with their identities: `publish()` resolves once the local node has a message,
 * so a process killed a moment later may have noted messages that never left it. Subscribers'
 * nodes drop those they already have and take the rest, because per stream partition the replay
 * starts at the job's first message there and so passes through the last one they saw.
 *
 * A chain is held by one job until it completes or is dead-lettered, so no other job's messages can
 * move the chain past a message the crashed job has yet to send. Chains then go back to the pool of
 * the process that closed the lease: subscribers keep a little state per chain, so their number
 * stays near the publishing concurrency. A dead-lettered job's replay leases a new chain; what its
 * earlier leases published is kept apart (`earlier`) and only ever skipped, since republishing it on
 * the new chain would repeat it.
 *
 * **Several publisher processes** share the queue. The Streamr client links each message to the one
 * it last sent on the same chain and stream partition, and subscribers' nodes refuse a message whose
 * link skips one they have seen. So a process only ever leases chains from its own pool (or new
 * ones), never one another process used since it last did. A lease names the process holding it
 * (`owner`). A process that takes over the lease of one that stopped answering (BullMQ hands on a job
 * whose lock was not renewed) becomes its owner; the process it was taken from is refused its next
 * note or close (`LeaseLostError`), and the chain it used is stale in its client from then on.
 */
export interface JobJournal {
  readonly jobId: string
  /** `done`: an earlier run of this job id published everything. */
  readonly state: 'open' | 'done'
  readonly chain: string
  readonly baseTimestamp: number
  readonly maxMessageBytes: number
  /** Delivery keys already published under this lease (this chain). */
  readonly published: ReadonlySet<string>
  /** Delivery keys published under earlier leases of a dead-lettered job's runs (other chains). */
  readonly earlier: ReadonlySet<string>
  /** The lease was already open: an earlier attempt, in this process or a crashed one, holds it. */
  readonly resumed: boolean
  /** The open lease was held by another process (one that crashed, stalled, or an earlier version). */
  readonly takenOver: boolean
}

/**
 * The lease of a job this process was publishing is now held by another process: this one stalled
 * past its job lock and the job was handed on. Its client's link on the lease's chain is stale.
 */
export class LeaseLostError extends Error {
  constructor(
    readonly jobId: string,
    readonly chain: string,
  ) {
    super(`job ${jobId} is now published by another publisher process, which took its lease over on chain ${chain}`)
    this.name = 'LeaseLostError'
  }
}

export interface DeliveryJournalOptions {
  /** This process's name in leases and its pool of chains (random unless given). */
  readonly instance?: string
  /** What day it is, for the done markers' buckets. */
  readonly clock?: () => number
}

/** How long a job's journal is kept: longer than any retry schedule and a dead letter's replay. */
const JOURNAL_TTL_SECONDS = 7 * 86_400
const DAY_MS = 86_400_000

/**
 * Completed jobs are remembered in day buckets, each split into this many sets of 64-bit digests.
 * Redis keeps a set of at most 512 integers (set-max-intset-entries) as a packed array of 8 bytes
 * each, where a key per job with its expiry took about 160 bytes: so at hourly syncs a person's
 * week of markers takes about 1.5 KB instead of 27 KB. Up to some 2 million jobs a day (85,000
 * people syncing hourly) the shards stay under 512; past that Redis turns them into ordinary sets,
 * which still work, at about 70 bytes a job.
 */
const DONE_SHARDS = 4_096

// Resumes the journal of a job, taking its lease over if another process holds it, or starts one
// by leasing a chain from this process's pool (KEYS[2], members "<chain> <last timestamp>") or a new
// one. A job whose earlier run was dead-lettered ('failed') leases anew, and what it published under
// its earlier leases moves from KEYS[4] (this lease's notes) to KEYS[5] (earlier leases').
// Returns { job hash fields, this lease's notes, earlier leases' notes, 1 if the lease was open,
// 1 if another process held it }.
const OPEN_SCRIPT = `
if redis.call('EXISTS', KEYS[3]) == 1 then return {{'state', 'done'}, {}, {}, 0, 0} end
for i = 6, #KEYS do
  if redis.call('SISMEMBER', KEYS[i], ARGV[5]) == 1 then return {{'state', 'done'}, {}, {}, 0, 0} end
end
local state = redis.call('HGET', KEYS[1], 'state')
if state == 'done' then return {{'state', 'done'}, {}, {}, 0, 0} end
local resumed = 0
local takenOver = 0
if state == 'open' then
  resumed = 1
  if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[6] then
    takenOver = 1
    redis.call('HSET', KEYS[1], 'owner', ARGV[6])
  end
else
  if state == 'failed' and redis.call('EXISTS', KEYS[4]) == 1 then
    redis.call('SUNIONSTORE', KEYS[5], KEYS[5], KEYS[4])
    redis.call('DEL', KEYS[4])
    redis.call('EXPIRE', KEYS[5], ARGV[4])
  end
  local chain = ARGV[1]
  local last = 0
  local pooled = redis.call('SPOP', KEYS[2])
  if pooled then
    local space = string.find(pooled, ' ', 1, true)
    chain = string.sub(pooled, 1, space - 1)
    last = tonumber(string.sub(pooled, space + 1))
  end
  local base = math.max(tonumber(ARGV[2]), last + 1)
  local maxBytes = redis.call('HGET', KEYS[1], 'maxBytes') or ARGV[3]
  redis.call('HSET', KEYS[1], 'state', 'open', 'chain', chain, 'base', string.format('%.0f', base), 'maxBytes', maxBytes, 'owner', ARGV[6])
  redis.call('EXPIRE', KEYS[1], ARGV[4])
end
return {redis.call('HGETALL', KEYS[1]), redis.call('SMEMBERS', KEYS[4]), redis.call('SMEMBERS', KEYS[5]), resumed, takenOver}
`

// Notes delivery keys under the job's lease, while this process holds it; 0 when it does not.
const NOTE_SCRIPT = `
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return 0 end
redis.call('SADD', KEYS[2], unpack(ARGV, 3))
redis.call('EXPIRE', KEYS[2], ARGV[2])
return 1
`

// Ends a job's lease: the chain goes back to this process's pool with the last timestamp used.
// Only an open lease this process holds is released (0 otherwise: it was closed or taken over).
const CLOSE_SCRIPT = `
local lease = redis.call('HMGET', KEYS[1], 'state', 'chain', 'owner')
if lease[1] ~= 'open' or lease[2] ~= ARGV[1] or lease[3] ~= ARGV[7] then return 0 end
redis.call('SADD', KEYS[3], ARGV[1] .. ' ' .. ARGV[2])
redis.call('EXPIRE', KEYS[3], ARGV[4])
if ARGV[3] == 'done' then
  redis.call('SADD', KEYS[4], ARGV[5])
  redis.call('EXPIREAT', KEYS[4], ARGV[6])
  redis.call('DEL', KEYS[1], KEYS[2], KEYS[5])
else
  redis.call('HSET', KEYS[1], 'state', ARGV[3])
  redis.call('EXPIRE', KEYS[1], ARGV[4])
  redis.call('EXPIRE', KEYS[2], ARGV[4])
  redis.call('EXPIRE', KEYS[5], ARGV[4])
end
return 1
`

// Whether a job is done: marked by an earlier version (KEYS[1]), its lease closed as done (KEYS[2]),
// or its marker (ARGV[1]) in one of the day buckets (KEYS[3..]). One script rather than a MULTI: a
// publish job asks this first, and a script is one command and one round trip.
const IS_DONE_SCRIPT = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 1 end
if redis.call('HGET', KEYS[2], 'state') == 'done' then return 1 end
for i = 3, #KEYS do
  if redis.call('SISMEMBER', KEYS[i], ARGV[1]) == 1 then return 1 end
end
return 0
`

// Adds a done marker (ARGV[1]) to its day bucket and sets when the bucket goes (ARGV[2]), together.
const MARK_DONE_SCRIPT = `
redis.call('SADD', KEYS[1], ARGV[1])
redis.call('EXPIREAT', KEYS[1], ARGV[2])
return 1
`

export class DeliveryJournal {
  /** This process's name in the leases it holds and in its pool of chains. */
  readonly instance: string
  private readonly clock: () => number

  constructor(
    private readonly redis: RedisConnection,
    /** QUEUE_PREFIX */
    private readonly prefix: string,
    options: DeliveryJournalOptions = {},
  ) {
    this.instance = options.instance ?? randomBytes(8).toString('hex')
    this.clock = options.clock ?? Date.now
  }

  async open(jobId: string, maxMessageBytes: number, now = Date.now()): Promise<JobJournal> {
    const marker = doneMarker(jobId)
    const doneKeys = this.doneKeysToRead(marker.shard)
    const [fields, published, earlier, resumed, takenOver] = (await this.redis.eval(
      OPEN_SCRIPT,
      5 + doneKeys.length,
      this.jobKey(jobId),
      this.chainPoolKey,
      this.legacyDoneKey(jobId),
      this.publishedKey(jobId),
      this.earlierKey(jobId),
      ...doneKeys,
      randomBytes(10).toString('hex'),
      String(now),
      String(maxMessageBytes),
      String(JOURNAL_TTL_SECONDS),
      marker.member,
      this.instance,
    )) as [string[], string[], string[], number, number]
    const hash = Object.fromEntries(Array.from({ length: fields.length / 2 }, (_, i) => [fields[2 * i]!, fields[2 * i + 1]!]))
    const state = hash.state === 'done' ? 'done' : 'open'
    return {
      jobId,
      state,
      chain: hash.chain ?? '',
      baseTimestamp: Number(hash.base),
      maxMessageBytes: Number(hash.maxBytes),
      published: new Set(published),
      earlier: new Set(earlier),
      resumed: resumed === 1,
      takenOver: takenOver === 1,
    }
  }

  /** Whether every message of the job went out, in this run or an earlier one (kept 7 to 8 days). */
  async isDone(jobId: string): Promise<boolean> {
    const marker = doneMarker(jobId)
    const doneKeys = this.doneKeysToRead(marker.shard)
    const done = await this.redis.eval(IS_DONE_SCRIPT, 2 + doneKeys.length, this.legacyDoneKey(jobId), this.jobKey(jobId), ...doneKeys, marker.member)
    return done === 1
  }

  /**
   * Marks a job done without a lease: a job whose records were handed on whole (held for a release
   * slot) rather than published here. Remembered as a completed job is, 7 to 8 days.
   */
  async markDone(jobId: string): Promise<void> {
    const marker = doneMarker(jobId)
    const today = Math.floor(this.clock() / DAY_MS)
    const key = this.doneKey(today, marker.shard)
    await this.redis.eval(MARK_DONE_SCRIPT, 1, key, marker.member, String(((today + 1) * DAY_MS) / 1000 + JOURNAL_TTL_SECONDS))
  }

  /**
   * Notes that a message went out; written right after its publish resolved. Throws LeaseLostError
   * when another process holds the job's lease now.
   */
  async notePublished(journal: JobJournal, deliveryKeys: readonly string[]): Promise<void> {
    const noted = await this.redis.eval(
      NOTE_SCRIPT,
      2,
      this.jobKey(journal.jobId),
      this.publishedKey(journal.jobId),
      this.instance,
      String(JOURNAL_TTL_SECONDS),
      ...deliveryKeys,
    )
    if (noted !== 1) throw new LeaseLostError(journal.jobId, journal.chain)
  }

  /**
   * Everything went out: forget the journal, keep a small "done" marker, give the chain back.
   * Throws LeaseLostError when this process no longer holds the lease (another took it over).
   */
  complete(journal: JobJournal, messageCount: number): Promise<void> {
    return this.close(journal, messageCount, 'done')
  }

  /** The job is being dead-lettered: give the chain back, but keep what was published for a replay. */
  abandon(journal: JobJournal, messageCount: number): Promise<void> {
    return this.close(journal, messageCount, 'failed')
  }

  private async close(journal: JobJournal, messageCount: number, state: 'done' | 'failed'): Promise<void> {
    const lastTimestamp = journal.baseTimestamp + Math.max(messageCount, 1) - 1
    const marker = doneMarker(journal.jobId)
    const today = Math.floor(this.clock() / DAY_MS)
    const closed = await this.redis.eval(
      CLOSE_SCRIPT,
      5,
      this.jobKey(journal.jobId),
      this.publishedKey(journal.jobId),
      this.chainPoolKey,
      this.doneKey(today, marker.shard),
      this.earlierKey(journal.jobId),
      journal.chain,
      String(lastTimestamp),
      state,
      String(JOURNAL_TTL_SECONDS),
      marker.member,
      // The day's bucket goes 7 days after the day ends: every marker lives 7 to 8 days.
      String(((today + 1) * DAY_MS) / 1000 + JOURNAL_TTL_SECONDS),
      this.instance,
    )
    if (closed !== 1) throw new LeaseLostError(journal.jobId, journal.chain)
  }

  /** The buckets a marker written in the last 7 days can be in: today's and the 7 before. */
  private doneKeysToRead(shard: number): string[] {
    const today = Math.floor(this.clock() / DAY_MS)
    return Array.from({ length: (JOURNAL_TTL_SECONDS * 1000) / DAY_MS + 1 }, (_, i) => this.doneKey(today - i, shard))
  }

  private jobKey(jobId: string): string {
    return `${this.prefix}:publisher:job:${jobId}`
  }

  /** The only trace a completed job leaves: its digest in a set of the day (see DONE_SHARDS). */
  private doneKey(day: number, shard: number): string {
    return `${this.prefix}:publisher:done:${day}:${shard}`
  }

  /** Where an earlier version marked a completed job, read until its 7 days are over. */
  private legacyDoneKey(jobId: string): string {
    return `${this.prefix}:publisher:done:${jobId}`
  }

  private publishedKey(jobId: string): string {
    return `${this.prefix}:publisher:job:${jobId}:published`
  }

  private earlierKey(jobId: string): string {
    return `${this.prefix}:publisher:job:${jobId}:published-earlier`
  }

  /**
   * This process's free chains, each with the last timestamp used on it. It expires a week after
   * the process last gave a chain back, so a stopped process's pool goes with it.
   */
  private get chainPoolKey(): string {
    return `${this.prefix}:publisher:chains:${this.instance}`
  }
}

/** A job id's shard, and its member there: 64 bits of its SHA-256, as the integer Redis packs. */
function doneMarker(jobId: string): { shard: number; member: string } {
  const digest = createHash('sha256').update(jobId).digest()
  return { shard: digest.readUInt16BE(0) % DONE_SHARDS, member: digest.readBigInt64BE(8).toString() }
}
