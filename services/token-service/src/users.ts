import { randomBytes } from 'node:crypto'
import type { RedisConnection } from '@fitstream/shared'
import {
  DATA_TYPE_KEYS,
  USER_FIELDS,
  decodeScopes,
  encodeScopes,
  refreshTokenContext,
  userIndexKey,
  userKey,
  type DataTypeKey,
  type Keyring,
} from '@fitstream/shared'

/**
 * `active` users are synced. Paused ones are not, until they act: `reauth_required` must reconnect
 * Google (their grant was revoked or expired); `move_required` are still on Google Fit after it
 * closed and must move to the Health API.
 */
export type UserState = 'active' | 'reauth_required' | 'move_required'
export type PausedState = Exclude<UserState, 'active'>
export const USER_STATES: readonly UserState[] = ['active', 'reauth_required', 'move_required']
const PAUSED_STATES = USER_STATES.filter((state): state is PausedState => state !== 'active')

export interface User {
  readonly id: string
  readonly state: UserState
  readonly dataTypes: readonly DataTypeKey[]
  /** Types they opted in to selling as individual (pseudonymised) records; empty: cohorts only. */
  readonly individualTypes: readonly DataTypeKey[]
  readonly createdAt: number
  /** Data has been fetched up to here (ms since epoch); undefined before the first fetch. */
  readonly fetchedUntil: number | undefined
  readonly lastSyncAt: number | undefined
  readonly lastSyncStatus: string | undefined
  readonly lastError: string | undefined
  /** OAuth scopes granted at Google; empty for users registered with a pasted refresh token before scopes were kept. */
  readonly scopes: readonly string[]
  /** IANA zone the user's buckets align to. */
  readonly timeZone: string
  /** When their consent or grant last changed (ms); undefined for users from before it was kept. */
  readonly consentUpdatedAt: number | undefined
  /** Set once the backfill is planned: how many chunks, how many fetched, and where it ends. */
  readonly backfill: { readonly chunks: number; readonly done: number; readonly end: number } | undefined
}

/** The user hash's field with the keyed hash of their Google account's OpenID subject (see AccountIds). */
const ACCOUNT_FIELD = 'acct'

/** What tying a grant's Google account to an existing user found. */
export type AccountBinding =
  /** The user is this account's (bound before, or bound now: a user from before accounts were kept). */
  | 'same'
  /** The user belongs to another Google account, or this account already has another user. */
  | 'other'
  | 'gone'

/** The users the token service keeps in Redis, with their encrypted refresh tokens. */
export class UserRepository {
  constructor(
    private readonly redis: RedisConnection,
    private readonly prefix: string,
    private readonly refreshKeys: Keyring,
  ) {}

  /**
   * Registers a user. With `account` (the hash of their Google account), only if that account has no
   * user yet: then the existing user's id comes back instead (`created: false`), and nothing is written.
   */
  async createForAccount(account: string, input: Parameters<UserRepository['create']>[0]): Promise<{ id: string; created: boolean }> {
    const id = randomBytes(16).toString('base64url')
    const claimed = await this.redis.eval(CLAIM_ACCOUNT, 2, this.accountKey(account), userKey(this.prefix, id), id)
    if (typeof claimed === 'string') return { id: claimed, created: false }
    await this.create(input, { id, account })
    return { id, created: true }
  }

  /** The user of a Google account (by its hash), if there is one. */
  async findByAccount(account: string): Promise<string | undefined> {
    const id = await this.redis.get(this.accountKey(account))
    return id !== null && (await this.redis.exists(userKey(this.prefix, id))) === 1 ? id : undefined
  }

  /**
   * Whether a grant for `account` may replace user `id`'s: only the Google account the user
   * registered with may. A user from before accounts were kept is tied to the first account that
   * comes back, unless that account already has a user of its own.
   */
  async bindAccount(id: string, account: string): Promise<AccountBinding> {
    const result = await this.redis.eval(BIND_ACCOUNT, 2, userKey(this.prefix, id), this.accountKey(account), id, ACCOUNT_FIELD, account)
    return result === 1 ? 'same' : result === 0 ? 'other' : 'gone'
  }

  private accountKey(account: string): string {
    return `${this.prefix}:account:${account}`
  }

  async create(
    input: {
      /** Absent for an account with no Google link (made with a passkey): it sells only what it uploads. */
      refreshToken?: string
      dataTypes: readonly DataTypeKey[]
      now: number
      scopes?: readonly string[]
      timeZone?: string
      individualTypes?: readonly DataTypeKey[]
    },
    identity: { id: string; account: string } | undefined = undefined,
  ): Promise<User> {
    const id = identity?.id ?? randomBytes(16).toString('base64url')
    await this.redis
      .multi()
      .hset(userKey(this.prefix, id), {
        [USER_FIELDS.state]: 'active',
        [USER_FIELDS.dataTypes]: input.dataTypes.join(','),
        [USER_FIELDS.createdAt]: String(input.now),
        ...(input.refreshToken === undefined
          ? {}
          : { [USER_FIELDS.refreshToken]: this.refreshKeys.encryptToBytes(input.refreshToken, refreshTokenContext(id)) }),
        [USER_FIELDS.consentUpdatedAt]: String(input.now),
        ...(input.scopes === undefined ? {} : { [USER_FIELDS.scopes]: encodeScopes(input.scopes) }),
        ...(input.timeZone === undefined ? {} : { [USER_FIELDS.timeZone]: input.timeZone }),
        ...(input.individualTypes === undefined ? {} : { [USER_FIELDS.individualTypes]: input.individualTypes.join(',') }),
        ...(identity === undefined ? {} : { [ACCOUNT_FIELD]: identity.account }),
      })
      .sadd(userIndexKey(this.prefix), id)
      .exec()
    return (await this.get(id))!
  }

  async get(id: string): Promise<User | undefined> {
    return toUser(id, fieldsOf(await this.redis.hmget(userKey(this.prefix, id), ...VIEW_FIELDS)))
  }

  /** The user and when their access token expires (undefined: none stored), in one read: what a sync starts from. */
  async forSync(id: string): Promise<(User & { readonly accessTokenExpiresAt: number | undefined }) | undefined> {
    const values = await this.redis.hmget(userKey(this.prefix, id), ...VIEW_FIELDS, USER_FIELDS.accessTokenExpiresAt)
    const user = toUser(id, fieldsOf(values))
    return user === undefined ? undefined : { ...user, accessTokenExpiresAt: optionalNumber(values[VIEW_FIELDS.length] ?? undefined) }
  }

  /**
   * One page of the users, in no particular order, from a cursor (start with '0'; '0' comes back when
   * the walk is over): all of them, or only those paused in one state (walked from its own index). `count` is a hint, as for Redis SSCAN: a page may hold fewer users, even none, before the
   * end, or a few more; a user registered or erased during the walk may be missed or seen twice.
   */
  async page(cursor: string, count: number, only?: PausedState): Promise<{ users: User[]; cursor: string }> {
    const [next, ids] = await this.redis.sscan(only === undefined ? userIndexKey(this.prefix) : this.pausedKey(only), cursor, 'COUNT', count)
    const pipeline = this.redis.pipeline()
    for (const id of ids) pipeline.hmget(userKey(this.prefix, id), ...VIEW_FIELDS)
    const rows = (await pipeline.exec()) ?? []
    const users = ids.map((id, i) => {
      const [error, values] = rows[i] ?? [new Error('no reply')]
      if (error) throw error
      return toUser(id, fieldsOf(values as (string | null)[]))
    })
    return { users: users.filter((u): u is User => u !== undefined), cursor: next }
  }

  async refreshToken(id: string): Promise<string | undefined> {
    const ciphertext = await this.redis.hgetBuffer(userKey(this.prefix, id), USER_FIELDS.refreshToken)
    return ciphertext === null ? undefined : this.refreshKeys.decrypt(ciphertext, refreshTokenContext(id))
  }

  /** Whether the user has a Google grant (false for an account made with a passkey, and for no user). */
  async hasGoogleGrant(id: string): Promise<boolean> {
    return (await this.redis.hexists(userKey(this.prefix, id), USER_FIELDS.refreshToken)) === 1
  }

  /**
   * Sets the user's state and files them under it (out of every other paused state's index), in one
   * step and only while they exist. `lastError` is set when given, removed when null. With
   * `onlyIf`, only if they are still in `onlyIf.state` and, when `consentUpdatedAt` is given, their
   * consent or grant has not changed since: a decision made on what was read before does not undo
   * a grant that came in meanwhile. Answers whether the state was set.
   */
  async setState(
    id: string,
    state: UserState,
    options: { lastError?: string | null; onlyIf?: { state: UserState; consentUpdatedAt?: number | undefined } } = {},
  ): Promise<boolean> {
    const { lastError, onlyIf } = options
    const result = await this.redis.eval(
      SET_STATE,
      1 + PAUSED_STATES.length,
      userKey(this.prefix, id),
      ...PAUSED_STATES.map((paused) => this.pausedKey(paused)),
      id,
      USER_FIELDS.state,
      state,
      String(state === 'active' ? 0 : 2 + PAUSED_STATES.indexOf(state)),
      USER_FIELDS.lastError,
      lastError === undefined ? 'keep' : lastError === null ? 'remove' : 'set',
      lastError ?? '',
      onlyIf?.state ?? '',
      USER_FIELDS.consentUpdatedAt,
      onlyIf !== undefined && 'consentUpdatedAt' in onlyIf ? '1' : '',
      String(onlyIf?.consentUpdatedAt ?? ''),
    )
    return result === 1
  }

  /** All registered users, and those paused in each state. */
  async counts(): Promise<{ total: number } & Record<PausedState, number>> {
    const multi = this.redis.multi().scard(userIndexKey(this.prefix))
    for (const state of PAUSED_STATES) multi.scard(this.pausedKey(state))
    const [total = 0, ...paused] = (((await multi.exec()) ?? []) as [unknown, number][]).map(([, count]) => count)
    return { total, ...(Object.fromEntries(PAUSED_STATES.map((state, i) => [state, paused[i] ?? 0])) as Record<PausedState, number>) }
  }

  private pausedKey(state: PausedState): string {
    return state === 'reauth_required' ? `${userIndexKey(this.prefix)}:reauth` : `${userIndexKey(this.prefix)}:move`
  }

  async recordBackfillPlan(id: string, chunks: number, end: number): Promise<void> {
    await this.updateExisting(id, { [USER_FIELDS.backfillChunks]: String(chunks), [USER_FIELDS.backfillEnd]: String(end) })
  }

  /** Changes what the user sells; the fetcher reads it at fetch time, so it applies from the next fetch. */
  async updateConsent(id: string, dataTypes: readonly DataTypeKey[], now: number): Promise<boolean> {
    return this.updateExisting(id, { [USER_FIELDS.dataTypes]: dataTypes.join(','), [USER_FIELDS.consentUpdatedAt]: String(now) })
  }

  /** Changes which types the user sells as individual records (the rest of what they sell goes to cohorts only). */
  async updateIndividualTypes(id: string, individualTypes: readonly DataTypeKey[], now: number): Promise<boolean> {
    return this.updateExisting(id, { [USER_FIELDS.individualTypes]: individualTypes.join(','), [USER_FIELDS.consentUpdatedAt]: String(now) })
  }

  /**
   * The person's current IANA zone, as a fetcher found it in their Health settings: their next
   * sync's daily windows are their local days there. Only while they exist; answers whether so.
   */
  async setTimeZone(id: string, timeZone: string): Promise<boolean> {
    return this.updateExisting(id, { [USER_FIELDS.timeZone]: timeZone })
  }

  /** A new grant from Google consent: new refresh token and scopes, the consent that went with them, and syncing resumes. */
  async replaceGrant(id: string, grant: { refreshToken: string; scopes: readonly string[]; dataTypes: readonly DataTypeKey[]; now: number }): Promise<boolean> {
    const replaced = await this.updateExisting(id, {
      [USER_FIELDS.state]: 'active',
      [USER_FIELDS.refreshToken]: this.refreshKeys.encryptToBytes(grant.refreshToken, refreshTokenContext(id)),
      [USER_FIELDS.scopes]: encodeScopes(grant.scopes),
      [USER_FIELDS.dataTypes]: grant.dataTypes.join(','),
      [USER_FIELDS.consentUpdatedAt]: String(grant.now),
    })
    if (replaced) {
      await this.redis.hdel(userKey(this.prefix, id), USER_FIELDS.accessToken, USER_FIELDS.accessTokenExpiresAt)
      await this.setState(id, 'active', { lastError: null })
    }
    return replaced
  }

  async recordSync(id: string, at: number, status: string): Promise<void> {
    await this.updateExisting(id, { [USER_FIELDS.lastSyncAt]: String(at), [USER_FIELDS.lastSyncStatus]: status })
  }

  /** Removes the user and every secret of theirs; returns whether there was anything to remove. */
  async delete(id: string): Promise<boolean> {
    const account = await this.redis.hget(userKey(this.prefix, id), ACCOUNT_FIELD)
    const multi = this.redis.multi().del(userKey(this.prefix, id)).srem(userIndexKey(this.prefix), id)
    if (account !== null) multi.eval(DELETE_IF_EQUAL, 1, this.accountKey(account), id)
    for (const state of PAUSED_STATES) multi.srem(this.pausedKey(state), id)
    const [[, removed] = []] = (await multi.exec()) ?? []
    return removed === 1
  }

  async count(): Promise<number> {
    return this.redis.scard(userIndexKey(this.prefix))
  }

  /** Writes fields only if the user still exists, so a late write never resurrects an erased user. */
  private async updateExisting(id: string, fields: Record<string, string | Buffer>): Promise<boolean> {
    const args = Object.entries(fields).flat()
    const result = await this.redis.eval(
      "if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('HSET', KEYS[1], unpack(ARGV)) end return -1",
      1,
      userKey(this.prefix, id),
      ...args,
    )
    return result !== -1
  }
}

// See setState. KEYS: the user, then each paused state's index. ARGV: 1 id, 2 state field, 3 state,
// 4 the index to file under (0: none), 5 error field, 6 'set', 'remove' or 'keep' the error, 7 the
// error, 8 the state required now ('' for any), 9 consent-time field, 10 '1' to require 11, the
// consent time read ('' when none was stored).
const SET_STATE = `
local user = KEYS[1]
if redis.call('EXISTS', user) == 0 then return 0 end
if ARGV[8] ~= '' and redis.call('HGET', user, ARGV[2]) ~= ARGV[8] then return 0 end
if ARGV[10] == '1' and (redis.call('HGET', user, ARGV[9]) or '') ~= ARGV[11] then return 0 end
redis.call('HSET', user, ARGV[2], ARGV[3])
if ARGV[6] == 'set' then redis.call('HSET', user, ARGV[5], ARGV[7]) elseif ARGV[6] == 'remove' then redis.call('HDEL', user, ARGV[5]) end
for i = 2, #KEYS do redis.call('SREM', KEYS[i], ARGV[1]) end
local target = tonumber(ARGV[4])
if target > 0 then redis.call('SADD', KEYS[target], ARGV[1]) end
return 1`

// KEYS: the account's key, the new user's hash. ARGV: the new user's id. Answers the user the account
// already has, or 1 after claiming it. A claim whose user was never written (a crash) is taken over.
const CLAIM_ACCOUNT = `
local holder = redis.call('GET', KEYS[1])
if holder and redis.call('EXISTS', string.gsub(KEYS[2], '[^:]+$', '') .. holder) == 1 then return holder end
redis.call('SET', KEYS[1], ARGV[1])
return 1`

// KEYS: the user, the account's key. ARGV: the user's id, the account field, the account hash.
// 1: the user is the account's; 0: another account's (or the account has another user); -1: no user.
const BIND_ACCOUNT = `
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local bound = redis.call('HGET', KEYS[1], ARGV[2])
if bound then if bound == ARGV[3] then return 1 else return 0 end end
local holder = redis.call('GET', KEYS[2])
if holder and holder ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[1])
redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
return 1`

const DELETE_IF_EQUAL = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"

/** The fields a user's view is made of: everything but the tokens. */
const VIEW_FIELDS = [
  USER_FIELDS.state,
  USER_FIELDS.dataTypes,
  USER_FIELDS.createdAt,
  USER_FIELDS.fetchedUntil,
  USER_FIELDS.lastSyncAt,
  USER_FIELDS.lastSyncStatus,
  USER_FIELDS.lastError,
  USER_FIELDS.scopes,
  USER_FIELDS.timeZone,
  USER_FIELDS.consentUpdatedAt,
  USER_FIELDS.backfillChunks,
  USER_FIELDS.backfillDone,
  USER_FIELDS.backfillEnd,
  USER_FIELDS.individualTypes,
]

function fieldsOf(values: readonly (string | null)[]): Record<string, string> {
  const fields: Record<string, string> = {}
  VIEW_FIELDS.forEach((field, i) => {
    if (values[i] !== null && values[i] !== undefined) fields[field] = values[i]
  })
  return fields
}

/** A user from their stored fields; undefined once erased (or never registered). */
function toUser(id: string, fields: Record<string, string>): User | undefined {
  if (fields[USER_FIELDS.state] === undefined) return undefined
  return {
    id,
    state: fields[USER_FIELDS.state] as UserState,
    dataTypes: parseDataTypes(fields[USER_FIELDS.dataTypes]),
    individualTypes: parseDataTypes(fields[USER_FIELDS.individualTypes]),
    createdAt: Number(fields[USER_FIELDS.createdAt]),
    fetchedUntil: optionalNumber(fields[USER_FIELDS.fetchedUntil]),
    lastSyncAt: optionalNumber(fields[USER_FIELDS.lastSyncAt]),
    lastSyncStatus: fields[USER_FIELDS.lastSyncStatus],
    lastError: fields[USER_FIELDS.lastError],
    scopes: decodeScopes(fields[USER_FIELDS.scopes]),
    timeZone: fields[USER_FIELDS.timeZone] ?? 'UTC',
    consentUpdatedAt: optionalNumber(fields[USER_FIELDS.consentUpdatedAt]),
    backfill:
      fields[USER_FIELDS.backfillChunks] === undefined
        ? undefined
        : {
            chunks: Number(fields[USER_FIELDS.backfillChunks]),
            done: Number(fields[USER_FIELDS.backfillDone] ?? 0),
            end: Number(fields[USER_FIELDS.backfillEnd]),
          },
  }
}

function parseDataTypes(value: string | undefined): DataTypeKey[] {
  const known = new Set<string>(DATA_TYPE_KEYS)
  return (value ?? '').split(',').filter((key): key is DataTypeKey => known.has(key))
}

function optionalNumber(value: string | undefined): number | undefined {
  return value === undefined ? undefined : Number(value)
}
