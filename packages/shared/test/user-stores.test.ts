import { randomBytes } from 'node:crypto'
import { afterAll, describe, expect, it } from 'vitest'
import { Keyring } from '../src/crypto.js'
import { FetchHistoryStore } from '../src/fetch-history.js'
import { RedisLock } from '../src/redis-lock.js'
import { USER_FIELDS, UserRecordStore, accessTokenContext, encodeScopes, userKey } from '../src/user-record.js'
import { testRedis, uniquePrefix } from '../../../tests/helpers.js'

const prefix = uniquePrefix('user-stores')
const { redis, cleanup } = testRedis(prefix)
afterAll(cleanup)

const accessKeys = new Keyring([['a1', randomBytes(32)]])
const users = new UserRecordStore(redis, prefix, accessKeys)
const history = new FetchHistoryStore(redis, prefix, (userId) => users.existenceKey(userId))
const SCOPE = 'https://www.googleapis.com/auth/fitness.activity.read'

/** A user as the token service files one (its UserRepository is the writer in the service). */
async function fileUser(userId: string, fields: Record<string, string> = {}): Promise<void> {
  await redis.hset(userKey(prefix, userId), { [USER_FIELDS.state]: 'active', [USER_FIELDS.dataTypes]: 'steps,sleep', ...fields })
}

describe('the user record as a fetch reads it', () => {
  it('gives state, consent, granted scopes and the decrypted access token in one read', async () => {
    await fileUser('reader-1', {
      [USER_FIELDS.scopes]: encodeScopes([SCOPE, 'openid']),
      [USER_FIELDS.accessToken]: accessKeys.encrypt('ya29.token', accessTokenContext('reader-1')),
      [USER_FIELDS.accessTokenExpiresAt]: '1800000000000',
    })
    expect(await users.forFetch('reader-1')).toEqual({
      state: 'active',
      consent: new Set(['steps', 'sleep']),
      scopes: [SCOPE, 'openid'],
      accessToken: { token: 'ya29.token', expiresAt: 1_800_000_000_000 },
    })
    expect(await users.accessToken('reader-1')).toEqual({ token: 'ya29.token', expiresAt: 1_800_000_000_000 })
    expect(await users.forFetch('nobody-1')).toBeUndefined()
  })

  it('moves the fetch cursor forward only, and never for a user who is gone', async () => {
    await fileUser('cursor-1')
    expect(await users.advanceFetchCursor('cursor-1', 2_000)).toBe(2_000)
    expect(await users.advanceFetchCursor('cursor-1', 1_000)).toBe(2_000)
    await users.recordBackfillChunk('cursor-1')
    expect(await redis.hmget(userKey(prefix, 'cursor-1'), USER_FIELDS.fetchedUntil, USER_FIELDS.backfillDone)).toEqual(['2000', '1'])

    expect(await users.advanceFetchCursor('gone-1', 2_000)).toBe(-1)
    await users.recordBackfillChunk('gone-1')
    expect(await redis.exists(userKey(prefix, 'gone-1'))).toBe(0)
  })
})

describe('the fetch history', () => {
  it('is kept only while the user exists, and erased on request', async () => {
    await fileUser('history-1')
    expect(await history.save('history-1', Buffer.from([1, 2, 3]), 60_000)).toBe(true)
    expect(await history.read('history-1')).toEqual(Buffer.from([1, 2, 3]))
    expect(await history.erase('history-1')).toBe(1)
    expect(await history.read('history-1')).toBeNull()

    expect(await history.save('erased-1', Buffer.from([1]), 60_000)).toBe(false)
    expect(await history.read('erased-1')).toBeNull()
  })

  it('is updated by one fetch at a time: a second waits, then is refused while the first holds the lock', async () => {
    const held = await history.lock('locked-1', 'fetch-a')
    expect(held).toBeDefined()
    expect(await history.lock('locked-1', 'fetch-b')).toBeUndefined()
    await held!.release()
    const next = await history.lock('locked-1', 'fetch-b')
    expect(next).toBeDefined()
    await next!.release()
  })

  it('is read with its lock, and kept (or dropped) as the lock is let go, only while the user exists', async () => {
    await fileUser('history-2')
    const first = await history.lock('history-2', 'fetch-a')
    expect(first!.history).toBeNull()
    expect(await first!.keep(Buffer.from([0xf1, 0, 0xff]), 60_000)).toBe(true)
    const second = await history.lock('history-2', 'fetch-b')
    expect(second!.history).toEqual(Buffer.from([0xf1, 0, 0xff]))
    expect(await second!.keep(null, 60_000)).toBe(false)
    expect(await history.read('history-2')).toBeNull()

    // Erased while a fetch held the lock: nothing is written back, and the lock is let go all the same.
    const third = await history.lock('history-2', 'fetch-c')
    await redis.del(userKey(prefix, 'history-2'))
    expect(await third!.keep(Buffer.from([1]), 60_000)).toBe(false)
    expect(await history.read('history-2')).toBeNull()
    const fourth = await history.lock('history-2', 'fetch-d')
    expect(fourth).toBeDefined()
    await fourth!.release()
  })
})

describe('a lock in Redis', () => {
  it('is let go only by its holder, and removed by whoever erases what it guards', async () => {
    const lock = new RedisLock(redis, `${prefix}:lock:test`, 60_000)
    expect(await lock.tryTake('first')).toBe(true)
    expect(await lock.tryTake('second')).toBe(false)
    await lock.release('second')
    expect(await lock.held()).toBe(true)
    await lock.release('first')
    expect(await lock.held()).toBe(false)
    expect(await lock.tryTake('second')).toBe(true)
    expect(await lock.remove()).toBe(1)
    expect(await lock.held()).toBe(false)
  })
})
