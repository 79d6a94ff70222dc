import type { RedisConnection } from './redis.js'
import { RedisLock } from './redis-lock.js'

/** One user's history is updated by one fetch at a time; a holder that dies lets go after this. */
const HISTORY_LOCK_MS = 60_000

// The history of a user erased a moment ago must not be written back (erasure deleted it).
const SET_IF_USER_EXISTS = "if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2]) end return 0"

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
   * Takes the user's history lock for `holder`, waiting a little for another fetch's (updates take
   * milliseconds). Answers its release, or undefined when another fetch still holds it.
   */
  async lock(userId: string, holder: string): Promise<(() => Promise<void>) | undefined> {
    const lock = this.lockOf(userId)
    return (await lock.take(holder)) ? () => lock.release(holder) : undefined
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

  private lockOf(userId: string): RedisLock {
    return new RedisLock(this.redis, `${this.prefix}:lock:fetch:${userId}`, HISTORY_LOCK_MS)
  }
}
