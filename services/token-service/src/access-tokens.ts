import type { RedisConnection } from '@fitstream/shared'
import {
  AccessTokenUnavailableError,
  RedisLock,
  UserGoneError,
  USER_FIELDS,
  accessTokenContext,
  encodeScopes,
  readAccessToken,
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

  /** A token valid for at least the refresh margin, refreshing it if needed. */
  async ensureFresh(userId: string, options: { force?: boolean } = {}): Promise<StoredAccessToken> {
    const current = await this.read(userId)
    if (options.force !== true && current !== undefined && this.isFresh(current)) return current

    const lock = this.refreshLock(userId)
    const holder = `${process.pid}-${this.now()}-${Math.random()}`
    if (!(await lock.tryTake(holder))) return (await this.waitForOtherRefresh(userId, current, lock)) ?? this.ensureFresh(userId, options)
    try {
      const fresh = await this.options.refresh(userId)
      const stored = await this.store(userId, fresh)
      return stored
    } finally {
      await lock.release(holder)
    }
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
  private async waitForOtherRefresh(userId: string, before: StoredAccessToken | undefined, lock: RedisLock): Promise<StoredAccessToken | undefined> {
    const deadline = this.now() + LOCK_TTL_MS
    while (this.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, WAIT_STEP_MS))
      // The lock before the token: a holder that has let go has stored whatever it was going to.
      const held = await lock.held()
      const token = await this.read(userId)
      if (token !== undefined && token.token !== before?.token && this.isFresh(token)) return token
      if (!held) return undefined
    }
    throw new AccessTokenUnavailableError(`another replica's token refresh for user ${userId} did not finish in time`)
  }

  private async store(userId: string, fresh: FreshAccessToken): Promise<StoredAccessToken> {
    const { redis, prefix, accessKeys } = this.options
    // Google reports the grant's current scopes with every token; keeping them tells what consent can cover.
    const scopes = fresh.scopes.length > 0 ? [USER_FIELDS.scopes, encodeScopes(fresh.scopes)] : []
    const written = await redis.eval(
      "if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('HSET', KEYS[1], unpack(ARGV)) end return -1",
      1,
      userKey(prefix, userId),
      USER_FIELDS.accessToken,
      accessKeys.encrypt(fresh.accessToken, accessTokenContext(userId)),
      USER_FIELDS.accessTokenExpiresAt,
      String(fresh.expiresAt),
      ...scopes,
    )
    if (written === -1) throw new UserGoneError(`user ${userId} was erased during the token refresh`)
    return { token: fresh.accessToken, expiresAt: fresh.expiresAt }
  }

  private refreshLock(userId: string): RedisLock {
    return new RedisLock(this.options.redis, `${this.options.prefix}:lock:refresh:${userId}`, LOCK_TTL_MS)
  }

  private read(userId: string): Promise<StoredAccessToken | undefined> {
    return readAccessToken(this.options.redis, this.options.prefix, this.options.accessKeys, userId)
  }

  private isFresh(token: StoredAccessToken): boolean {
    return token.expiresAt - this.now() > this.options.refreshMarginMs
  }
}
