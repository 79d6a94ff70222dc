import { randomBytes } from 'node:crypto'
import type { Redis } from 'ioredis'
import { DATA_TYPE_KEYS, USER_FIELDS, refreshTokenContext, userIndexKey, userKey, type DataTypeKey, type Keyring } from '@fitstream/shared'

export type UserState = 'active' | 'reauth_required'

export interface User {
  readonly id: string
  readonly state: UserState
  readonly dataTypes: readonly DataTypeKey[]
  readonly createdAt: number
  /** Data has been fetched up to here (ms since epoch); undefined before the first fetch. */
  readonly fetchedUntil: number | undefined
  readonly lastSyncAt: number | undefined
  readonly lastSyncStatus: string | undefined
  readonly lastError: string | undefined
}

/** The users the token service keeps in Redis, with their encrypted refresh tokens. */
export class UserRepository {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly refreshKeys: Keyring,
  ) {}

  async create(input: { refreshToken: string; dataTypes: readonly DataTypeKey[]; now: number }): Promise<User> {
    const id = randomBytes(16).toString('base64url')
    await this.redis
      .multi()
      .hset(userKey(this.prefix, id), {
        [USER_FIELDS.state]: 'active',
        [USER_FIELDS.dataTypes]: input.dataTypes.join(','),
        [USER_FIELDS.createdAt]: String(input.now),
        [USER_FIELDS.refreshToken]: this.refreshKeys.encrypt(input.refreshToken, refreshTokenContext(id)),
      })
      .sadd(userIndexKey(this.prefix), id)
      .exec()
    return (await this.get(id))!
  }

  async get(id: string): Promise<User | undefined> {
    const fields = await this.redis.hgetall(userKey(this.prefix, id))
    if (fields[USER_FIELDS.state] === undefined) return undefined
    return {
      id,
      state: fields[USER_FIELDS.state] as UserState,
      dataTypes: parseDataTypes(fields[USER_FIELDS.dataTypes]),
      createdAt: Number(fields[USER_FIELDS.createdAt]),
      fetchedUntil: optionalNumber(fields[USER_FIELDS.fetchedUntil]),
      lastSyncAt: optionalNumber(fields[USER_FIELDS.lastSyncAt]),
      lastSyncStatus: fields[USER_FIELDS.lastSyncStatus],
      lastError: fields[USER_FIELDS.lastError],
    }
  }

  async refreshToken(id: string): Promise<string | undefined> {
    const ciphertext = await this.redis.hget(userKey(this.prefix, id), USER_FIELDS.refreshToken)
    return ciphertext === null ? undefined : this.refreshKeys.decrypt(ciphertext, refreshTokenContext(id))
  }

  async setState(id: string, state: UserState, lastError?: string): Promise<void> {
    await this.updateExisting(id, { [USER_FIELDS.state]: state, ...(lastError === undefined ? {} : { [USER_FIELDS.lastError]: lastError }) })
  }

  async recordSync(id: string, at: number, status: string): Promise<void> {
    await this.updateExisting(id, { [USER_FIELDS.lastSyncAt]: String(at), [USER_FIELDS.lastSyncStatus]: status })
  }

  /** Removes the user and every secret of theirs; returns whether there was anything to remove. */
  async delete(id: string): Promise<boolean> {
    const [[, removed] = []] = (await this.redis.multi().del(userKey(this.prefix, id)).srem(userIndexKey(this.prefix), id).exec()) ?? []
    return removed === 1
  }

  async count(): Promise<number> {
    return this.redis.scard(userIndexKey(this.prefix))
  }

  /** Writes fields only if the user still exists, so a late write never resurrects an erased user. */
  private async updateExisting(id: string, fields: Record<string, string>): Promise<void> {
    const args = Object.entries(fields).flat()
    await this.redis.eval(
      "if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('HSET', KEYS[1], unpack(ARGV)) end return -1",
      1,
      userKey(this.prefix, id),
      ...args,
    )
  }
}

function parseDataTypes(value: string | undefined): DataTypeKey[] {
  const known = new Set<string>(DATA_TYPE_KEYS)
  return (value ?? '').split(',').filter((key): key is DataTypeKey => known.has(key))
}

function optionalNumber(value: string | undefined): number | undefined {
  return value === undefined ? undefined : Number(value)
}
