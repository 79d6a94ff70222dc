import { randomBytes } from 'node:crypto'
import type { RedisConnection } from '@fitstream/shared'
import type { DataTypeKey, Keyring } from '@fitstream/shared'

export interface Session {
  readonly id: string
  /** The user this browser connected as; sessions only ever see their own user. */
  readonly userId: string | undefined
  /** Echoed by every form, so a form posted from another site is refused. */
  readonly csrfToken: string
}

/** An authorization in progress: what the person chose, bound to the browser session that started it. */
export interface PendingAuthorization {
  readonly sessionId: string
  readonly codeVerifier: string
  readonly dataTypes: readonly DataTypeKey[]
  /** Set when an existing user re-consents (reconnect, or consent to more data). */
  readonly userId?: string
  readonly timeZone?: string
  /** Types chosen as individual records too; absent: an existing user's choice is left as it is. */
  readonly individualTypes?: readonly DataTypeKey[]
}

const SESSION_TTL_S = 30 * 86_400
/** A session no user is bound to lives as long as the authorization it was made for. */
const UNBOUND_TTL_S = 15 * 60
const PENDING_TTL_S = 15 * 60

/**
 * Browser sessions and pending authorizations in Redis. The cookie carries only the signed session
 * id; the PKCE verifier stays here, encrypted, and each `state` can be taken exactly once.
 */
export class SessionStore {
  constructor(
    private readonly redis: RedisConnection,
    private readonly prefix: string,
    private readonly keys: Keyring,
  ) {}

  /** A new session: short-lived while no user is bound to it. */
  async create(): Promise<Session> {
    const session = { id: randomBytes(32).toString('base64url'), userId: undefined, csrfToken: randomBytes(24).toString('base64url') }
    await this.redis.multi().hset(this.sessionKey(session.id), { csrf: session.csrfToken }).expire(this.sessionKey(session.id), UNBOUND_TTL_S).exec()
    return session
  }

  /**
   * Signs `userId` in: a new session (new id, new CSRF token) bound to them, and the one the browser
   * came with, if any, ended, so an id planted in the browser before sign-in is worth nothing after.
   */
  async signIn(userId: string, previousId: string | undefined): Promise<Session> {
    const session = { id: randomBytes(32).toString('base64url'), userId, csrfToken: randomBytes(24).toString('base64url') }
    const multi = this.redis
      .multi()
      .hset(this.sessionKey(session.id), { csrf: session.csrfToken, userId })
      .expire(this.sessionKey(session.id), SESSION_TTL_S)
      .sadd(this.userSessionsKey(userId), session.id)
      .expire(this.userSessionsKey(userId), SESSION_TTL_S)
    if (previousId !== undefined) multi.del(this.sessionKey(previousId)).srem(this.userSessionsKey(userId), previousId)
    await multi.exec()
    return session
  }

  async get(id: string): Promise<Session | undefined> {
    if (!/^[A-Za-z0-9_-]{43}$/.test(id)) return undefined
    const fields = await this.redis.hgetall(this.sessionKey(id))
    if (fields['csrf'] === undefined) return undefined
    return { id, userId: fields['userId'], csrfToken: fields['csrf'] }
  }

  async destroy(sessionId: string): Promise<void> {
    await this.redis.del(this.sessionKey(sessionId))
  }

  /** Ends every session of a user (erasure); returns how many there were. */
  async destroyAllOf(userId: string): Promise<number> {
    const ids = await this.redis.smembers(this.userSessionsKey(userId))
    const removed = ids.length === 0 ? 0 : await this.redis.del(...ids.map((id) => this.sessionKey(id)))
    await this.redis.del(this.userSessionsKey(userId))
    return removed
  }

  /** Counts one more trip to Google's consent screen for `userId` this hour; answers the hour's count so far. */
  async countReconsent(userId: string): Promise<number> {
    const key = `${this.prefix}:reconsents:${userId}`
    const [[, count] = []] = (await this.redis.multi().incr(key).expire(key, 3600, 'NX').exec()) ?? []
    return Number(count)
  }

  async savePending(state: string, pending: PendingAuthorization): Promise<void> {
    const stored = { ...pending, codeVerifier: this.keys.encrypt(pending.codeVerifier, pkceContext(state)) }
    await this.redis.set(this.pendingKey(state), JSON.stringify(stored), 'EX', PENDING_TTL_S)
  }

  /** The authorization for `state`, removed as it is read, so a callback can't be replayed. */
  async takePending(state: string): Promise<PendingAuthorization | undefined> {
    if (!/^[A-Za-z0-9_-]{16,128}$/.test(state)) return undefined
    const raw = await this.redis.getdel(this.pendingKey(state))
    if (raw === null) return undefined
    const stored = JSON.parse(raw) as PendingAuthorization
    return { ...stored, codeVerifier: this.keys.decrypt(stored.codeVerifier, pkceContext(state)) }
  }

  private sessionKey(id: string): string {
    return `${this.prefix}:session:${id}`
  }

  private userSessionsKey(userId: string): string {
    return `${this.prefix}:user-sessions:${userId}`
  }

  private pendingKey(state: string): string {
    return `${this.prefix}:oauth-state:${state}`
  }
}

const pkceContext = (state: string): string => `pkce-verifier:${state}`
