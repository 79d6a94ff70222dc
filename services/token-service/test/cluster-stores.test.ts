import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { LocalRedisCluster, hasRedisServer } from '@fitstream/devstack'
import {
  SLOT_GROUPS,
  createRedis,
  deleteKeysWithPrefix,
  generateKeyringEntry,
  keyringVar,
  slotGroupPrefix,
  waitForRedis,
  type RedisConnection,
} from '@fitstream/shared'
import { PasskeyStore } from '../src/passkey-store.js'
import { SessionStore } from '../src/sessions.js'
import { UserRepository } from '../src/users.js'
import { uniquePrefix } from '../../../tests/helpers.js'

/**
 * The token service's stores whose scripts and transactions touch several keys, on a local Redis
 * Cluster of three masters under their cluster prefixes: each call would fail with CROSSSLOT if its
 * keys spanned slots. The pipeline's own stores run on a cluster in tests/redis-cluster.test.ts.
 * Skipped without redis-server, except in CI (FITSTREAM_REQUIRE_CLUSTER=1).
 */
const prefix = uniquePrefix('cluster-stores')
const keys = keyringVar().parse(generateKeyringEntry('k1'))
let cluster: LocalRedisCluster | undefined
let redis: RedisConnection

describe.runIf(hasRedisServer() || process.env.FITSTREAM_REQUIRE_CLUSTER === '1')('token-service stores on a Redis Cluster', () => {
  beforeAll(async () => {
    cluster = await LocalRedisCluster.start(3)
    redis = createRedis({ url: cluster.url, clusterNodes: cluster.nodes }, 'producer', 'cluster-stores-test')
    await waitForRedis(redis, 10_000)
  })

  afterAll(async () => {
    if (redis !== undefined) {
      await deleteKeysWithPrefix(redis, prefix)
      redis.disconnect()
    }
    await cluster?.stop()
  })

  it('signs a person in and out: the session and their set of sessions together', async () => {
    const sessions = new SessionStore(redis, slotGroupPrefix(prefix, SLOT_GROUPS.sessions, true), keys)
    const first = await sessions.signIn('person-1', undefined)
    const second = await sessions.signIn('person-1', first.id)
    expect(await sessions.get(first.id)).toBeUndefined()
    expect((await sessions.get(second.id))?.userId).toBe('person-1')
    expect(await sessions.countReconsent('person-1')).toBe(1)
    expect(await sessions.destroyAllOf('person-1')).toBe(1)
    expect(await sessions.get(second.id)).toBeUndefined()
  })

  it('adds a passkey once, moves its counter and erases it with the person', async () => {
    const passkeys = new PasskeyStore(redis, slotGroupPrefix(prefix, SLOT_GROUPS.passkeys, true))
    const passkey = {
      id: 'credential-1',
      userId: 'person-2',
      handle: 'handle-2',
      publicKey: new Uint8Array([1, 2, 3]),
      counter: 0,
      transports: ['usb'],
      createdAt: 1,
    }
    expect(await passkeys.add(passkey)).toBe(true)
    expect(await passkeys.add({ ...passkey, userId: 'someone-else' })).toBe(false)
    expect(await passkeys.advanceCounter('credential-1', 0, 1)).toBe(true)
    expect(await passkeys.advanceCounter('credential-1', 0, 2)).toBe(false)
    expect(await passkeys.eraseAllOf('person-2')).toBe(1)
    expect(await passkeys.get('credential-1')).toBeUndefined()
  })

  it('claims an account, pauses and deletes a user: the user hash, the index, the paused set and the account key together', async () => {
    const users = new UserRepository(redis, slotGroupPrefix(prefix, SLOT_GROUPS.users, true), keys)
    const made = await users.createForAccount('account-3', { dataTypes: ['steps'], now: 1, refreshToken: 'refresh-3' })
    expect(made.created).toBe(true)
    expect(await users.createForAccount('account-3', { dataTypes: ['steps'], now: 2 })).toEqual({ id: made.id, created: false })
    expect(await users.bindAccount(made.id, 'account-3')).toBe('same')
    expect(await users.setState(made.id, 'reauth_required')).toBe(true)
    expect(await users.counts()).toMatchObject({ total: 1, reauth_required: 1 })
    expect(await users.refreshToken(made.id)).toBe('refresh-3')
    expect(await users.delete(made.id)).toBe(true)
    expect(await users.counts()).toMatchObject({ total: 0, reauth_required: 0 })
  })
})
