import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { FakeGoogle } from '@fitstream/fake-google'
import { Keyring, USER_FIELDS, UserGoneError, createRedis, generateKeyringEntry, keyringVar, readAccessToken, userKey, waitForRedis } from '@fitstream/shared'
import { AccessTokenKeeper } from '../src/access-tokens.js'
import { refreshAccessToken, type FreshAccessToken } from '../src/google-oauth.js'
import { reencryptTokens } from '../src/reencrypt.js'
import { UserRepository } from '../src/users.js'
import { redisUrl, testRedis, uniquePrefix } from '../../../tests/helpers.js'
import { testEnv } from './support.js'

const prefix = uniquePrefix('tokens')
const { redis, cleanup } = testRedis(prefix)
let google: FakeGoogle

const keyring = (...entries: string[]): Keyring => keyringVar().parse(entries.join(','))

beforeAll(async () => {
  google = await FakeGoogle.start()
  await waitForRedis(redis)
})

afterAll(async () => {
  await google.close()
  await cleanup()
})

describe('access-token refresh across replicas', () => {
  it('refreshes once per user however many replicas ask at once', async () => {
    const refreshKeys = keyring(generateKeyringEntry('r1'))
    const accessKeys = keyring(generateKeyringEntry('a1'))
    const users = new UserRepository(redis, prefix, refreshKeys)
    const people = [google.addUser(), google.addUser()]
    const ids = await Promise.all(people.map(async (p) => (await users.create({ refreshToken: p.refreshToken, dataTypes: ['steps'], now: Date.now() })).id))
    const oauth = { clientId: google.clientId, clientSecret: google.clientSecret, tokenUrl: google.tokenUrl }
    // Two replicas: separate connections and keepers, sharing only Redis and Google, as in production.
    const replicas = [createRedis(redisUrl(), 'producer', 'replica-a'), createRedis(redisUrl(), 'producer', 'replica-b')]
    await Promise.all(replicas.map((r) => waitForRedis(r)))
    const keepers = replicas.map(
      (connection) =>
        new AccessTokenKeeper({
          redis: connection,
          prefix,
          accessKeys,
          refreshMarginMs: 300_000,
          refresh: async (userId) => {
            // A slow token endpoint widens the window in which the replicas race.
            await new Promise((resolve) => setTimeout(resolve, 150))
            return refreshAccessToken(oauth, (await users.refreshToken(userId))!)
          },
        }),
    )
    google.resetStats()
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => keepers[i % 2]!.ensureFresh(ids[i % ids.length]!)))
    expect(google.stats.tokenRequests).toBe(2)
    for (const [i, result] of results.entries()) expect(result.token).toBe(results[i % ids.length]!.token)
    // Still fresh: nobody goes to Google again.
    await Promise.all(keepers.map((k) => k.ensureFresh(ids[0]!)))
    expect(google.stats.tokenRequests).toBe(2)
    for (const r of replicas) r.disconnect()
  })
})

describe('a refresh and its lock', () => {
  const accessKeys = keyring(generateKeyringEntry('a1'))
  const users = new UserRepository(redis, prefix, keyring(generateKeyringEntry('r1')))
  const lockKey = (id: string) => `${prefix}:lock:refresh:${id}`
  const keeper = (refresh: (userId: string) => Promise<FreshAccessToken>, now = () => 1_000_000) =>
    new AccessTokenKeeper({ redis, prefix, accessKeys, refreshMarginMs: 300_000, refresh, now })

  it('lets go of the lock with the token it stores, and after a refresh that failed', async () => {
    const { id } = await users.create({ refreshToken: '1//09lock', dataTypes: ['steps'], now: 0 })
    const fresh = keeper(async () => ({ accessToken: 'ya29.lock', expiresAt: 1_000_000 + 3_600_000, scopes: [] }))
    expect(await fresh.ensureFresh(id, { stale: true })).toEqual({ token: 'ya29.lock', expiresAt: 4_600_000 })
    expect(await redis.exists(lockKey(id))).toBe(0)
    expect((await readAccessToken(redis, prefix, accessKeys, id))?.token).toBe('ya29.lock')

    const refused = keeper(() => Promise.reject(new Error('Google is down')))
    await expect(refused.ensureFresh(id, { force: true })).rejects.toThrow('Google is down')
    expect(await redis.exists(lockKey(id))).toBe(0)
  })

  it('tells a token that needs refreshing by its expiry alone, and refreshes it without decrypting it', async () => {
    const { id } = await users.create({ refreshToken: '1//09stale', dataTypes: ['steps'], now: 0 })
    // Stored under a key this keeper does not have: reading it would fail, refreshing it must not.
    await redis.hset(
      userKey(prefix, id),
      USER_FIELDS.accessToken,
      keyring(generateKeyringEntry('gone')).encrypt('ya29.old', `access-token:${id}`),
      USER_FIELDS.accessTokenExpiresAt,
      '1200000',
    )
    const tokens = keeper(async () => ({ accessToken: 'ya29.new', expiresAt: 5_000_000, scopes: [] }))
    expect(tokens.isFresh(1_200_000)).toBe(false)
    expect(tokens.isFresh(undefined)).toBe(false)
    expect(tokens.isFresh(1_300_001)).toBe(true)
    expect((await tokens.ensureFresh(id)).token).toBe('ya29.new')
    expect((await tokens.ensureFresh(id)).token).toBe('ya29.new')
  })

  it('does not bring back a user erased during the refresh, and lets go of the lock', async () => {
    const { id } = await users.create({ refreshToken: '1//09erased', dataTypes: ['steps'], now: 0 })
    const tokens = keeper(async (userId) => {
      await users.delete(userId)
      return { accessToken: 'ya29.late', expiresAt: 5_000_000, scopes: [] }
    })
    await expect(tokens.ensureFresh(id, { stale: true })).rejects.toThrow(UserGoneError)
    expect(await redis.exists(userKey(prefix, id), lockKey(id))).toBe(0)
  })
})

describe('re-encrypting tokens under a new key', () => {
  async function seed(refreshKeys: Keyring, accessKeys: Keyring, count: number) {
    const users = new UserRepository(redis, prefix, refreshKeys)
    const made: { id: string; refreshToken: string }[] = []
    for (let i = 0; i < count; i++) {
      const refreshToken = `1//09refresh-${i}-${Math.random()}`
      const { id } = await users.create({ refreshToken, dataTypes: ['steps'], now: Date.now() })
      await redis.hset(
        userKey(prefix, id),
        USER_FIELDS.accessToken,
        accessKeys.encrypt(`ya29.access-${i}`, `access-token:${id}`),
        USER_FIELDS.accessTokenExpiresAt,
        '1',
      )
      made.push({ id, refreshToken })
    }
    return made
  }

  it('moves every token to the first key, so the old key can be dropped; a second run changes nothing', async () => {
    const [oldRefresh, oldAccess, newRefresh, newAccess] = ['old-r', 'old-a', 'new-r', 'new-a'].map((id) => generateKeyringEntry(id))
    await redis.del(`${prefix}:users`)
    const made = await seed(keyring(oldRefresh!), keyring(oldAccess!), 3)
    const report = await reencryptTokens(redis, prefix, { refresh: keyring(newRefresh!, oldRefresh!), access: keyring(newAccess!, oldAccess!) })
    expect(report).toEqual({ users: 3, reencrypted: { refreshTokens: 3, accessTokens: 3 }, current: { refreshTokens: 0, accessTokens: 0 }, failed: [] })

    const onlyNew = new UserRepository(redis, prefix, keyring(newRefresh!))
    for (const { id, refreshToken } of made) {
      expect(Keyring.keyIdOf((await redis.hgetBuffer(userKey(prefix, id), USER_FIELDS.refreshToken))!)).toBe('new-r')
      expect(await onlyNew.refreshToken(id)).toBe(refreshToken)
      expect((await readAccessToken(redis, prefix, keyring(newAccess!), id))?.token).toMatch(/^ya29\.access-/)
    }
    const again = await reencryptTokens(redis, prefix, { refresh: keyring(newRefresh!, oldRefresh!), access: keyring(newAccess!, oldAccess!) })
    expect(again.reencrypted).toEqual({ refreshTokens: 0, accessTokens: 0 })
    expect(again.current).toEqual({ refreshTokens: 3, accessTokens: 3 })
  })

  it('rewrites tokens kept in the text form as bytes, under the same key, and they still read', async () => {
    const [refreshEntry, accessEntry] = ['t-r', 't-a'].map((id) => generateKeyringEntry(id))
    const [refreshKeys, accessKeys] = [keyring(refreshEntry!), keyring(accessEntry!)]
    await redis.del(`${prefix}:users`)
    const users = new UserRepository(redis, prefix, refreshKeys)
    const { id } = await users.create({ refreshToken: '1//09text-form', dataTypes: ['steps'], now: Date.now() })
    // As the text form was written: v1.<key id>.<iv>.<tag>.<body>.
    const text = { refresh: refreshKeys.encrypt('1//09text-form', `refresh-token:${id}`), access: accessKeys.encrypt('ya29.text-form', `access-token:${id}`) }
    await redis.hset(userKey(prefix, id), USER_FIELDS.refreshToken, text.refresh, USER_FIELDS.accessToken, text.access, USER_FIELDS.accessTokenExpiresAt, '1')
    expect(await users.refreshToken(id)).toBe('1//09text-form')
    expect((await readAccessToken(redis, prefix, accessKeys, id))?.token).toBe('ya29.text-form')

    const report = await reencryptTokens(redis, prefix, { refresh: refreshKeys, access: accessKeys })
    expect(report).toMatchObject({ users: 1, reencrypted: { refreshTokens: 1, accessTokens: 1 }, failed: [] })
    const stored = await redis.hmgetBuffer(userKey(prefix, id), USER_FIELDS.refreshToken, USER_FIELDS.accessToken)
    expect(stored[0]!.length).toBeLessThan(text.refresh.length * 0.85)
    expect(stored[1]!.length).toBeLessThan(text.access.length * 0.85)
    expect(stored.map((token) => Keyring.keyIdOf(token!))).toEqual(['t-r', 't-a'])
    expect(await users.refreshToken(id)).toBe('1//09text-form')
    expect((await readAccessToken(redis, prefix, accessKeys, id))?.token).toBe('ya29.text-form')
    expect((await reencryptTokens(redis, prefix, { refresh: refreshKeys, access: accessKeys })).current).toEqual({ refreshTokens: 1, accessTokens: 1 })
  })

  it('is the command `node services/token-service/dist/cli.js tokens reencrypt`', async () => {
    const cliPrefix = `${prefix}-cli`
    const [oldRefresh, oldAccess, newRefresh, newAccess] = ['k1', 'k2', 'k3', 'k4'].map((id) => generateKeyringEntry(id))
    const users = new UserRepository(redis, cliPrefix, keyring(oldRefresh!))
    const { id } = await users.create({ refreshToken: '1//09cli-token', dataTypes: ['steps'], now: Date.now() })
    const env = {
      ...process.env,
      ...testEnv(google, cliPrefix),
      REFRESH_TOKEN_KEYS: `${newRefresh},${oldRefresh}`,
      ACCESS_TOKEN_KEYS: `${newAccess},${oldAccess}`,
    } as NodeJS.ProcessEnv
    const cli = new URL('../dist/cli.js', import.meta.url).pathname
    const { stdout } = await promisify(execFile)(process.execPath, [cli, 'tokens', 'reencrypt'], { env })
    expect(stdout).toMatch(/^re-encrypted 1 refresh and 0 access tokens of 1 users under keys k3 and k4/)
    expect(stdout).not.toContain('1//09cli-token')
    expect(Keyring.keyIdOf((await redis.hgetBuffer(userKey(cliPrefix, id), USER_FIELDS.refreshToken))!)).toBe('k3')
    await redis.del(userKey(cliPrefix, id), `${cliPrefix}:users`)

    const usage = await promisify(execFile)(process.execPath, [cli, 'tokens'], { env }).catch((e: { code: number; stderr: string }) => e)
    expect(usage).toMatchObject({ code: 64, stderr: expect.stringContaining('usage') })
  })
})
