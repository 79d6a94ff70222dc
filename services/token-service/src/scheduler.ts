import { createHmac } from 'node:crypto'
import type { RedisConnection } from '@fitstream/shared'
import type { Logger, StageQueues } from '@fitstream/shared'

// Moves a dispatched user to their next slot, unless their schedule changed meanwhile (unscheduled,
// or scheduled again by another replica's dispatch).
const ADVANCE = `
local moved = 0
for i = 1, #ARGV, 3 do
  if redis.call('ZSCORE', KEYS[1], ARGV[i]) == ARGV[i + 1] then
    redis.call('ZADD', KEYS[1], 'XX', ARGV[i + 2], ARGV[i])
    moved = moved + 1
  end
end
return moved
`

/**
 * Per-user sync schedules in one Redis sorted set, user id → next run: no timer per user in any
 * process, and about 100 bytes of Redis per user (a BullMQ job scheduler per user took 1.9 KB).
 * Every token-service replica dispatches due users each second; a sync job's id names the user and
 * the slot, so replicas dispatching the same slot make one job. Each user gets an offset within the
 * period, a keyed hash of their id and the UTC month, so syncs are spread evenly instead of all
 * firing on the hour, and a person's sync time in one month says nothing of it in the next.
 */
export class SyncScheduler {
  private timer: NodeJS.Timeout | undefined
  private dispatching: Promise<unknown> | undefined

  constructor(
    private readonly queues: StageQueues,
    private readonly redis: RedisConnection,
    private readonly prefix: string,
    private readonly intervalMs: number,
    /** Keys the offsets (see spreadOffset); unkeyed, anyone who knows a user id can compute them. */
    private readonly offsetKey = '',
  ) {}

  private get key(): string {
    return `${this.prefix}:schedule:sync`
  }

  /** The user's next slot strictly after `now`, at their offset for the month of `now`. */
  nextSlot(userId: string, now: number): number {
    const offset = spreadOffset(userId, this.intervalMs, now, this.offsetKey)
    return Math.floor((now - offset) / this.intervalMs) * this.intervalMs + offset + this.intervalMs
  }

  async schedule(userId: string, now = Date.now()): Promise<void> {
    await this.redis.zadd(this.key, this.nextSlot(userId, now), userId)
  }

  async unschedule(userId: string): Promise<boolean> {
    return (await this.redis.zrem(this.key, userId)) > 0
  }

  async nextRunAt(userId: string): Promise<number | undefined> {
    const score = await this.redis.zscore(this.key, userId)
    return score === null ? undefined : Number(score)
  }

  /** Runs a sync now, in addition to the schedule. */
  async syncNow(userId: string, reason: 'manual' | 'onboarding'): Promise<string> {
    const job = await this.queues.add('sync', { userId, reason }, { jobId: `${reason}-${userId}-${Date.now()}` })
    return job.id ?? ''
  }

  /**
   * Adds a sync job for every user whose slot has come, then moves them to their next slot. Jobs
   * first: a crash in between dispatches the slot again under the same job id, never skips it.
   */
  async dispatchDue(now = Date.now(), limit = 5_000): Promise<number> {
    const due = await this.redis.zrangebyscore(this.key, '-inf', now, 'WITHSCORES', 'LIMIT', 0, limit)
    if (due.length === 0) return 0
    const entries = Array.from({ length: due.length / 2 }, (_, i) => ({ userId: due[2 * i]!, slot: due[2 * i + 1]! }))
    await this.queues.addBulk(
      'sync',
      entries.map(({ userId, slot }) => ({ data: { userId, reason: 'schedule' as const }, options: { jobId: `schedule-${userId}-${slot}` } })),
    )
    const args = entries.flatMap(({ userId, slot }) => [userId, slot, String(this.nextSlot(userId, Math.max(now, Number(slot))))])
    return Number(await this.redis.eval(ADVANCE, 1, this.key, ...args))
  }

  /** Dispatches due users every `everyMs` until stop(). */
  start(logger: Logger, everyMs = 1_000): void {
    this.timer = setInterval(() => {
      if (this.dispatching !== undefined) return
      this.dispatching = this.dispatchDue()
        .then((count) => {
          if (count > 0) logger.debug({ count }, 'scheduled syncs dispatched')
        })
        .catch((err: unknown) => logger.warn({ err }, 'could not dispatch scheduled syncs; trying again shortly'))
        .finally(() => (this.dispatching = undefined))
    }, everyMs)
  }

  async stop(): Promise<void> {
    clearInterval(this.timer)
    await this.dispatching
  }

  /**
   * Moves schedules kept by BullMQ job schedulers (one per user, as earlier versions did) into the
   * sorted set; returns how many. Safe to run on every start and on several replicas at once.
   */
  async adoptJobSchedulers(now = Date.now()): Promise<number> {
    const queue = this.queues.queue('sync')
    let adopted = 0
    for (let start = 0; ;) {
      const page = await queue.getJobSchedulers(start, start + 499)
      if (page.length === 0) return adopted
      for (const { key } of page) {
        if (!key.startsWith(SCHEDULER_PREFIX)) {
          start++
          continue
        }
        const userId = key.slice(SCHEDULER_PREFIX.length)
        await this.redis.zadd(this.key, 'NX', this.nextSlot(userId, now), userId)
        await queue.removeJobScheduler(key)
        adopted++
      }
    }
  }
}

const SCHEDULER_PREFIX = 'user-'

/**
 * The user's offset in [0, intervalMs) for the UTC month holding `at`: an HMAC of the user id and
 * the month, so it is stable within a month (the pseudonym epoch) and unrelated across months.
 */
export function spreadOffset(userId: string, intervalMs: number, at: number, key = ''): number {
  const month = new Date(at).toISOString().slice(0, 7)
  return createHmac('sha256', `fitstream/sync-offset/v1|${key}`).update(`${month}|${userId}`).digest().readUInt32BE(0) % intervalMs
}
