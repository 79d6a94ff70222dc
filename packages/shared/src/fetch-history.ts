import type { RedisConnection } from './redis.js'
import { RedisLock } from './redis-lock.js'

/** One user's history is updated by one fetch at a time; a holder that dies lets go after this. */
const HISTORY_LOCK_MS = 60_000

/** Tries to take a user's history lock this many times, a random 10-25 ms apart (updates take milliseconds). */
const LOCK_ATTEMPTS = 20

// The history of a user erased a moment ago must not be written back (erasure deleted it).
const SET_IF_USER_EXISTS = "if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2]) end return 0"

// Takes the lock (KEYS[1]) for ARGV[1] and answers the history (KEYS[2]; empty when there is none),
// or 0 when another holder has the lock: one round trip where a fetch would make two.
const LOCK_AND_READ = `
if not redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2], 'NX') then return 0 end
return redis.call('GET', KEYS[2]) or ''`

// Keeps the new history (ARGV[2], PX ARGV[3]) while the user exists (KEYS[3]), or deletes it when
// there is none left (ARGV[2] empty), and lets go of the lock if ARGV[1] still holds it. Answers 1
// when a history was kept.
const KEEP_AND_RELEASE = `
local kept = 0
if ARGV[2] == '' then
  redis.call('DEL', KEYS[2])
elseif redis.call('EXISTS', KEYS[3]) == 1 then
  redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
  kept = 1
end
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return kept`

/** ioredis' binary-safe EVAL (every command has a `…Buffer` form; its typings leave this one out). */
interface EvalBuffer {
  evalBuffer(script: string, numKeys: number, ...args: (string | number)[]): Promise<Buffer | number>
}

/** A user's history lock, held, and the history as it was when it was taken. */
export interface HeldFetchHistory {
  /** The encoded history, or null when there is none. */
  readonly history: Buffer | null
  /**
   * Keeps `history` for `ttlMs` (deletes the user's when null), only while the user exists, and
   * lets go of the lock, in one round trip. Answers whether a history was kept.
   */
  keep(history: Buffer | null, ttlMs: number): Promise<boolean>
  /** Lets go of the lock, the history left as it was. */
  release(): Promise<void>
}

/**
 * What the fetcher last passed on for each user's recent buckets (encoded by the fetcher's
 * bucket-history module), and the lock one fetch holds while it updates them. The fetcher owns it;
 * the token service's erasure asks it to erase a user's.
 *
 * - `<prefix>:seen:<userId>`: the encoded history, expiring some days after its last write.
 * - `<prefix>:lock:fetch:<userId>`: held by the fetch updating that history.
 */
export class FetchHistoryStore {
  constructor(
    private readonly redis: RedisConnection,
    private readonly prefix: string,
    /** The user record's existence key (UserRecordStore.existenceKey): history is kept only while it exists. */
    private readonly userExists: (userId: string) => string,
  ) {}

  /**
   * Takes the user's history lock for `holder` and reads their history with it, waiting a little
   * for another fetch's lock (updates take milliseconds). Undefined when another fetch still holds it.
   */
  async lock(userId: string, holder: string): Promise<HeldFetchHistory | undefined> {
    const [lockKey, historyKey] = [this.lockKey(userId), this.historyKey(userId)]
    for (let attempt = 0; attempt < LOCK_ATTEMPTS; attempt++) {
      if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, 10 + Math.random() * 15))
      const read = await (this.redis as unknown as EvalBuffer).evalBuffer(LOCK_AND_READ, 2, lockKey, historyKey, holder, HISTORY_LOCK_MS)
      if (typeof read === 'number') continue
      return {
        history: read.length === 0 ? null : read,
        keep: async (history, ttlMs) =>
          (await this.redis.eval(KEEP_AND_RELEASE, 3, lockKey, historyKey, this.userExists(userId), holder, history ?? '', String(ttlMs))) === 1,
        release: () => this.lockOf(userId).release(holder),
      }
    }
    return undefined
  }

  async read(userId: string): Promise<Buffer | null> {
    return this.redis.getBuffer(this.historyKey(userId))
  }

  /** Keeps `history` for `ttlMs`, only while the user exists; false when they are gone. */
  async save(userId: string, history: Buffer, ttlMs: number): Promise<boolean> {
    return (await this.redis.eval(SET_IF_USER_EXISTS, 2, this.userExists(userId), this.historyKey(userId), history, String(ttlMs))) !== 0
  }

  /** Deletes the user's history (none left to keep, or the user is being erased); answers how many keys. */
  async erase(userId: string): Promise<number> {
    return this.redis.del(this.historyKey(userId))
  }

  private historyKey(userId: string): string {
    return `${this.prefix}:seen:${userId}`
  }

  private lockKey(userId: string): string {
    return `${this.prefix}:lock:fetch:${userId}`
  }

  private lockOf(userId: string): RedisLock {
    return new RedisLock(this.redis, this.lockKey(userId), HISTORY_LOCK_MS)
  }
}
