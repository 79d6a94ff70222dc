import type { RedisConnection } from '@fitstream/shared'
import {
  AccessTokenUnavailableError,
  RedisLock,
  UserGoneError,
  USER_FIELDS,
  accessTokenContext,
  encodeScopes,
  userKey,
  type Keyring,
  type StoredAccessToken,
} from '@fitstream/shared'
import type { FreshAccessToken } from './google-oauth.js'

export interface AccessTokenKeeperOptions {
  readonly redis: RedisConnection
  readonly prefix: string
  readonly accessKeys: Keyring
  /** Refresh when less than this is left (ms). */
  readonly refreshMarginMs: number
  /** Performs the refresh at Google for a user (reads their refresh token itself). */
  readonly refresh: (userId: string) => Promise<FreshAccessToken>
  readonly now?: () => number
}

const LOCK_TTL_MS = 15_000
const WAIT_STEP_MS = 100

/**
 * Keeps each user's access token fresh in Redis, where the fetchers read it. A refresh takes a
 * per-user lock in Redis, so however many token-service replicas ask at once, Google's token
 * endpoint sees one refresh per user; the others wait for its result.
 */
export class AccessTokenKeeper {
  private readonly now: () => number

  constructor(private readonly options: AccessTokenKeeperOptions) {
    this.now = options.now ?? Date.now
  }

  /**
   * A token valid for at least the refresh margin, refreshing it if needed. `stale: true` says the
   * caller has just read the stored token's expiry and found it short (isFresh), so it is not read again.
   */
  async ensureFresh(userId: string, options: { force?: boolean; stale?: boolean } = {}): Promise<StoredAccessToken> {
    const current = options.stale === true ? undefined : await this.readStored(userId)
    if (options.force !== true && current !== undefined && this.isFresh(current.expiresAt)) return this.decrypt(userId, current)

    const lock = this.refreshLock(userId)
    const holder = `${process.pid}-${this.now()}-${Math.random()}`
    if (!(await lock.tryTake(holder))) {
      return (await this.waitForOtherRefresh(userId, current, lock)) ?? this.ensureFresh(userId, { ...options, stale: false })
    }
    let stored = false
    try {
      const fresh = await this.options.refresh(userId)
      const token = await this.store(userId, fresh, holder)
      stored = true
      return token
    } finally {
      // The store released the lock with the token it wrote; anything else lets go here.
      if (!stored) await lock.release(holder)
    }
  }

  /** Whether a token expiring at `expiresAt` (ms; undefined: none stored) still has more than the refresh margin left. */
  isFresh(expiresAt: number | undefined): boolean {
    return expiresAt !== undefined && expiresAt - this.now() > this.options.refreshMarginMs
  }

  /** Erasure: removes the user's refresh lock, whoever holds it; answers how many keys. */
  forget(userId: string): Promise<number> {
    return this.refreshLock(userId).remove()
  }

  /** Keeps a token Google has just issued with a new grant, so the first sync needs no refresh. */
  async keep(userId: string, fresh: FreshAccessToken): Promise<StoredAccessToken> {
    return this.store(userId, fresh)
  }

  /** The token the lock holder stored, or undefined when its refresh ended without one (user gone, Google refused). */
  private async waitForOtherRefresh(userId: string, before: StoredCiphertext | undefined, lock: RedisLock): Promise<StoredAccessToken | undefined> {
    const deadline = this.now() + LOCK_TTL_MS
    while (this.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, WAIT_STEP_MS))
      // The lock before the token: a holder that has let go has stored whatever it was going to.
      const held = await lock.held()
      const stored = await this.readStored(userId)
      // Every encryption has its own IV, so a token stored since has another ciphertext.
      if (stored !== undefined && (before === undefined || !stored.ciphertext.equals(before.ciphertext)) && this.isFresh(stored.expiresAt))
        return this.decrypt(userId, stored)
      if (!held) return undefined
    }
    throw new AccessTokenUnavailableError(`another replica's token refresh for user ${userId} did not finish in time`)
  }

  /** Writes the token while the user exists; with `holder`, also lets go of the refresh lock if they still hold it. */
  private async store(userId: string, fresh: FreshAccessToken, holder = ''): Promise<StoredAccessToken> {
    const { redis, prefix, accessKeys } = this.options
    // Google reports the grant's current scopes with every token; keeping them tells what consent can cover.
    const scopes = fresh.scopes.length > 0 ? [USER_FIELDS.scopes, encodeScopes(fresh.scopes)] : []
    const written = await redis.eval(
      STORE,
      2,
      userKey(prefix, userId),
      this.refreshLockKey(userId),
      holder,
      USER_FIELDS.accessToken,
      accessKeys.encryptToBytes(fresh.accessToken, accessTokenContext(userId)),
      USER_FIELDS.accessTokenExpiresAt,
      String(fresh.expiresAt),
      ...scopes,
    )
    if (written === -1) throw new UserGoneError(`user ${userId} was erased during the token refresh`)
    return { token: fresh.accessToken, expiresAt: fresh.expiresAt }
  }

  private refreshLock(userId: string): RedisLock {
    return new RedisLock(this.options.redis, this.refreshLockKey(userId), LOCK_TTL_MS)
  }

  private refreshLockKey(userId: string): string {
    return `${this.options.prefix}:lock:refresh:${userId}`
  }

  /** The stored token as it is kept, encrypted: whether it needs a refresh is known without decrypting it. */
  private async readStored(userId: string): Promise<StoredCiphertext | undefined> {
    const [ciphertext, expiresAt] = await this.options.redis.hmgetBuffer(
      userKey(this.options.prefix, userId),
      USER_FIELDS.accessToken,
      USER_FIELDS.accessTokenExpiresAt,
    )
    return ciphertext === null || ciphertext === undefined || expiresAt === null || expiresAt === undefined
      ? undefined
      : { ciphertext, expiresAt: Number(expiresAt.toString()) }
  }

  private decrypt(userId: string, stored: StoredCiphertext): StoredAccessToken {
    return { token: this.options.accessKeys.decrypt(stored.ciphertext, accessTokenContext(userId)), expiresAt: stored.expiresAt }
  }
}

interface StoredCiphertext {
  readonly ciphertext: Buffer
  readonly expiresAt: number
}

// KEYS: the user, their refresh lock. ARGV: 1 the lock's holder ('' to leave the lock alone), then
// field-value pairs. Writes only while the user exists (-1 otherwise), so a refresh finishing after
// erasure does not bring the record back; releasing the lock in the same step saves a round trip.
const STORE = `
local written = -1
if redis.call('EXISTS', KEYS[1]) == 1 then written = redis.call('HSET', KEYS[1], unpack(ARGV, 2)) end
if ARGV[1] ~= '' and redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
return written`
