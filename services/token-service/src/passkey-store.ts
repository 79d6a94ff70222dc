import type { RedisConnection } from '@fitstream/shared'
import type { DataTypeKey } from '@fitstream/shared'

/** A challenge handed to a browser, and what it was for. */
export type PasskeyChallenge =
  | {
      readonly purpose: 'register'
      /** The browser session it was handed to: only that session may answer it. */
      readonly sessionId: string
      /** The WebAuthn user handle the new passkey is made for (random, base64url). */
      readonly handle: string
      readonly dataTypes: readonly DataTypeKey[]
      readonly individualTypes: readonly DataTypeKey[]
      readonly timeZone?: string
    }
  | { readonly purpose: 'sign-in'; readonly sessionId: string }

/** A registered passkey: its public key, its last signature counter, and whose it is. */
export interface StoredPasskey {
  /** The credential id (base64url), as authenticators name it. */
  readonly id: string
  readonly userId: string
  /** The WebAuthn user handle the authenticator stores with the passkey (base64url). */
  readonly handle: string
  /** COSE public key. */
  readonly publicKey: Uint8Array
  readonly counter: number
  readonly transports: readonly string[]
  readonly createdAt: number
}

/** How long a browser has to answer a challenge. */
export const CHALLENGE_TTL_S = 5 * 60

/**
 * The token service's passkeys in Redis: challenges (each taken once, gone after CHALLENGE_TTL_S),
 * the credentials, and each user's list of them, so erasure removes every one.
 */
export class PasskeyStore {
  constructor(
    private readonly redis: RedisConnection,
    private readonly prefix: string,
  ) {}

  async saveChallenge(challenge: string, record: PasskeyChallenge): Promise<void> {
    await this.redis.set(this.challengeKey(challenge), JSON.stringify(record), 'EX', CHALLENGE_TTL_S)
  }

  /** The challenge's record, removed as it is read, so no response can be accepted twice. */
  async takeChallenge(challenge: string): Promise<PasskeyChallenge | undefined> {
    if (!/^[A-Za-z0-9_-]{16,128}$/.test(challenge)) return undefined
    const raw = await this.redis.getdel(this.challengeKey(challenge))
    return raw === null ? undefined : (JSON.parse(raw) as PasskeyChallenge)
  }

  async get(credentialId: string): Promise<StoredPasskey | undefined> {
    if (!/^[A-Za-z0-9_-]{1,1366}$/.test(credentialId)) return undefined
    const fields = await this.redis.hgetall(this.credentialKey(credentialId))
    if (fields['userId'] === undefined || fields['publicKey'] === undefined) return undefined
    return {
      id: credentialId,
      userId: fields['userId'],
      handle: fields['handle'] ?? '',
      publicKey: new Uint8Array(Buffer.from(fields['publicKey'], 'base64url')),
      counter: Number(fields['counter'] ?? 0),
      transports: (fields['transports'] ?? '').split(',').filter((t) => t !== ''),
      createdAt: Number(fields['createdAt'] ?? 0),
    }
  }

  /** Stores a new passkey; false, and nothing written, when the credential id is already registered. */
  async add(passkey: StoredPasskey): Promise<boolean> {
    const added = await this.redis.eval(
      ADD_IF_NEW,
      2,
      this.credentialKey(passkey.id),
      this.userKey(passkey.userId),
      passkey.id,
      'userId',
      passkey.userId,
      'handle',
      passkey.handle,
      'publicKey',
      Buffer.from(passkey.publicKey).toString('base64url'),
      'counter',
      String(passkey.counter),
      'transports',
      passkey.transports.join(','),
      'createdAt',
      String(passkey.createdAt),
    )
    return added === 1
  }

  /**
   * Moves the stored counter from `from` to `to`, only if it still is `from`: two sign-ins with the
   * same counter value can't both pass, however close together they come.
   */
  async advanceCounter(credentialId: string, from: number, to: number): Promise<boolean> {
    const moved = await this.redis.eval(ADVANCE_COUNTER, 1, this.credentialKey(credentialId), String(from), String(to))
    return moved === 1
  }

  /** Removes every passkey of a user (erasure); answers how many there were. */
  async eraseAllOf(userId: string): Promise<number> {
    const ids = await this.redis.smembers(this.userKey(userId))
    const removed = ids.length === 0 ? 0 : await this.redis.del(...ids.map((id) => this.credentialKey(id)))
    await this.redis.del(this.userKey(userId))
    return removed
  }

  private challengeKey(challenge: string): string {
    return `${this.prefix}:passkey:challenge:${challenge}`
  }

  private credentialKey(credentialId: string): string {
    return `${this.prefix}:passkey:credential:${credentialId}`
  }

  private userKey(userId: string): string {
    return `${this.prefix}:passkey:user:${userId}`
  }
}

// KEYS: the credential, the user's list. ARGV: the credential id, then field/value pairs.
const ADD_IF_NEW = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('SADD', KEYS[2], ARGV[1])
return 1`

// KEYS: the credential. ARGV: the counter read, the new counter.
const ADVANCE_COUNTER = `
if redis.call('HGET', KEYS[1], 'counter') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'counter', ARGV[2])
return 1`
