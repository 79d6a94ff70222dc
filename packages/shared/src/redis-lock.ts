import type { RedisConnection } from './redis.js'

// Deletes the lock only while it still holds this holder's value: a holder whose lock expired must
// not release the one another holder has taken since.
const RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"

/**
 * A lock in Redis on one key, taken with a value that names its holder and an expiry, so a holder
 * that dies lets go by itself. The store that owns the key decides what it guards.
 */
export class RedisLock {
  constructor(
    private readonly redis: RedisConnection,
    private readonly key: string,
    private readonly ttlMs: number,
  ) {}

  /** Takes the lock if no one holds it; true when taken. */
  async tryTake(holder: string): Promise<boolean> {
    return (await this.redis.set(this.key, holder, 'PX', this.ttlMs, 'NX')) !== null
  }

  /** Tries `attempts` times, a random 10-25 ms apart (for locks held for milliseconds); true when taken. */
  async take(holder: string, attempts = 20): Promise<boolean> {
    for (let attempt = 0; attempt < attempts; attempt++) {
      if (await this.tryTake(holder)) return true
      await new Promise((resolve) => setTimeout(resolve, 10 + Math.random() * 15))
    }
    return false
  }

  /** Whether anyone holds it now. */
  async held(): Promise<boolean> {
    return (await this.redis.exists(this.key)) === 1
  }

  /** Lets go, if `holder` still holds it. */
  async release(holder: string): Promise<void> {
    await this.redis.eval(RELEASE, 1, this.key, holder)
  }

  /** Removes the lock whoever holds it (the guarded state is being erased). Answers how many keys (0 or 1). */
  async remove(): Promise<number> {
    return this.redis.del(this.key)
  }
}
