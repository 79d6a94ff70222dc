import { describe, expect, it } from 'vitest'
import {
  ConfigError,
  SLOT_GROUPS,
  clusterKeyName,
  commonEnv,
  hashTagOf,
  isCluster,
  keySlot,
  parseEnv,
  privacyBudgetKey,
  privacyKey,
  privacyLogKey,
  privacyPeriodsKey,
  queuePrefix,
  redisTargetOf,
  slotGroupPrefix,
  userIndexKey,
  userKey,
} from '../src/index.js'

describe('REDIS_CLUSTER_NODES', () => {
  it('is unset by default: one Redis at REDIS_URL', () => {
    const config = parseEnv(commonEnv, {})
    expect(config.REDIS_CLUSTER_NODES).toBeUndefined()
    expect(isCluster(redisTargetOf(config))).toBe(false)
  })

  it('takes host:port entries separated by commas, with spaces and empty entries left out', () => {
    const config = parseEnv(commonEnv, { REDIS_URL: 'rediss://:secret@cache.example:6379', REDIS_CLUSTER_NODES: 'node-1.example:6379, 10.0.0.2:7001,' })
    expect(config.REDIS_CLUSTER_NODES).toEqual(['node-1.example:6379', '10.0.0.2:7001'])
    const target = redisTargetOf(config)
    expect(target).toEqual({ url: 'rediss://:secret@cache.example:6379', clusterNodes: ['node-1.example:6379', '10.0.0.2:7001'] })
    expect(isCluster(target)).toBe(true)
  })

  it.each([['redis://node:6379'], ['node'], ['node:port'], ['node:70000'], [','], ['node:6379,other']])(
    'refuses %j, naming the variable and the bad entry',
    (value) => {
      const attempt = () => parseEnv(commonEnv, { REDIS_CLUSTER_NODES: value })
      expect(attempt).toThrow(ConfigError)
      expect(attempt).toThrow(/REDIS_CLUSTER_NODES: must be host:port entries separated by commas/)
      try {
        attempt()
      } catch (error) {
        expect((error as ConfigError).code).toBe('FST_ERR_CONFIG')
      }
    },
  )
})

describe('key slots', () => {
  it('computes the slot Redis Cluster does (CRC16/XMODEM modulo 16384)', () => {
    // The CRC16 check value of "123456789" is 0x31C3 (the cluster specification's reference).
    expect(keySlot('123456789')).toBe(0x31c3)
    expect(keySlot('')).toBe(0)
    expect(keySlot('{user1000}.following')).toBe(keySlot('{user1000}.followers'))
  })

  it('hashes the first non-empty {…} only, as the cluster specification says', () => {
    expect(hashTagOf('foo{bar}zap')).toBe('bar')
    expect(hashTagOf('foo{}{bar}')).toBe('foo{}{bar}')
    expect(hashTagOf('foo{{bar}}zap')).toBe('{bar')
    expect(hashTagOf('foo{bar}{zap}')).toBe('bar')
    expect(hashTagOf('no-tag')).toBe('no-tag')
  })

  it('keeps every key name on a single Redis, so an existing deployment finds its data', () => {
    for (const group of Object.values(SLOT_GROUPS)) expect(slotGroupPrefix('fitstream', group, false)).toBe('fitstream')
    expect(queuePrefix('fitstream', 'fetch', false)).toBe('fitstream')
    expect(userKey(slotGroupPrefix('fitstream', SLOT_GROUPS.users, false), 'u1')).toBe('fitstream:user:u1')
  })

  it('puts the keys a script or transaction touches together in one slot on a cluster, under the prefix', () => {
    const users = slotGroupPrefix('fitstream', SLOT_GROUPS.users, true)
    const userKeys = [
      userKey(users, 'u1'),
      userKey(users, 'u2'),
      userIndexKey(users),
      `${userIndexKey(users)}:reauth`,
      `${users}:account:acct`,
      `${users}:seen:u1`,
    ]
    expect(new Set(userKeys.map(keySlot)).size).toBe(1)
    const anonymizer = slotGroupPrefix('fitstream', SLOT_GROUPS.anonymizer, true)
    const ledger = [
      privacyKey(anonymizer, 'u1'),
      privacyBudgetKey(anonymizer, 'u1', '2027-01'),
      privacyLogKey(anonymizer, 'u1'),
      privacyPeriodsKey(anonymizer, 'u1'),
      `${anonymizer}:cohort:open`,
      `${anonymizer}:cohort:cell:steps:0:3600000`,
    ]
    expect(new Set(ledger.map(keySlot)).size).toBe(1)
    for (const key of [...userKeys, ...ledger]) expect(key.startsWith('fitstream:')).toBe(true)
    // A BullMQ queue's keys (`<prefix>:<queue>:<suffix>`) share its slot.
    const fetch = queuePrefix('fitstream', 'fetch', true)
    expect(new Set([`${fetch}:fetch:wait`, `${fetch}:fetch:meta`, `${fetch}:fetch:42`].map(keySlot)).size).toBe(1)
  })

  it('gives each group and queue its own tag, so a cluster spreads them over its masters', () => {
    const tags = [
      ...Object.values(SLOT_GROUPS).map((group) => slotGroupPrefix('fitstream', group, true)),
      ...['sync', 'fetch', 'anonymize', 'publish'].map((queue) => queuePrefix('fitstream', queue, true)),
    ]
    expect(new Set(tags.map(hashTagOf)).size).toBe(tags.length)
    // Three masters own a third of the slots each: these tags do not all fall in one third.
    expect(new Set(tags.map((tag) => Math.floor(keySlot(tag) / 5462))).size).toBeGreaterThan(1)
  })

  it('names each key of a single Redis as the stores name it on a cluster, for copying a deployment there', () => {
    const queues = new Set(['fetch', 'fetch-dlq', 'anonymizer-cohorts'])
    const renamed = (key: string) => clusterKeyName(key, 'fitstream', queues)
    const users = slotGroupPrefix('fitstream', SLOT_GROUPS.users, true)
    expect(renamed('fitstream:user:u1')).toBe(userKey(users, 'u1'))
    expect(renamed('fitstream:users')).toBe(userIndexKey(users))
    expect(renamed('fitstream:users:reauth')).toBe(`${userIndexKey(users)}:reauth`)
    expect(renamed('fitstream:seen:u1')).toBe('fitstream:{users}:seen:u1')
    expect(renamed('fitstream:user-sessions:u1')).toBe('fitstream:{sessions}:user-sessions:u1')
    expect(renamed('fitstream:privacy:u1:budget:2027-01')).toBe(privacyBudgetKey(slotGroupPrefix('fitstream', SLOT_GROUPS.anonymizer, true), 'u1', '2027-01'))
    expect(renamed('fitstream:publisher:slots')).toBe('fitstream:{slots}:publisher:slots')
    expect(renamed('fitstream:publisher:job:7:published')).toBe('fitstream:{journal}:publisher:job:7:published')
    expect(renamed('fitstream:google:paused')).toBe('fitstream:{google}:google:paused')
    expect(renamed('fitstream:fetch:42')).toBe(`${queuePrefix('fitstream', 'fetch', true)}:fetch:42`)
    expect(renamed('fitstream:anonymizer-cohorts:meta')).toBe('fitstream:{anonymizer-cohorts}:anonymizer-cohorts:meta')
    // Keys of no group keep their names, and so does anything outside the prefix.
    for (const key of ['fitstream:google-requests', 'fitstream:schedule:sync', 'fitstream:link-used:n', 'other:user:u1']) expect(renamed(key)).toBe(key)
  })
})
