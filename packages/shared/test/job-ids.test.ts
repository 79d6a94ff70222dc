import { afterAll, describe, expect, it } from 'vitest'
import { StageQueues, commonEnv, parseEnv, retryPolicies, userlessJobId } from '../src/index.js'
import { silentLogger, testRedis, uniquePrefix } from '../../../tests/helpers.js'
import { fetchInput } from './support.js'

const prefix = uniquePrefix('job-ids')
const { redis, cleanup } = testRedis(prefix)
const retry = retryPolicies(parseEnv(commonEnv, {}))
const USER = 'u5Xc0mQ2pLr8vT1wZ9yB3k'
const KEY = 'job-id-key-for-tests-0123456789'

afterAll(cleanup)

describe('job ids', () => {
  it('turns an id naming the payload’s person into its label and a keyed hash: the same each time, bounded, different under another key', () => {
    const id = `fetch-${USER}-1700000000000-1700003600000`
    const hashed = userlessJobId(id, USER, KEY)
    expect(hashed).toMatch(/^fetch-[\w-]{32}$/)
    expect(hashed).not.toContain(USER)
    expect(userlessJobId(id, USER, KEY)).toBe(hashed)
    expect(userlessJobId(`fetch-${USER}-1700003600000-1700007200000`, USER, KEY)).not.toBe(hashed)
    expect(userlessJobId(id, USER, 'another-key-0123456789abcdef')).not.toBe(hashed)
    expect(userlessJobId(`${'x'.repeat(200)}${USER}`, USER, KEY).length).toBeLessThanOrEqual(64)
    expect(userlessJobId('publish-cohorts-abc', USER, KEY)).toBe('publish-cohorts-abc')
  })

  it('stores no user id in Redis for a job added under an id that names them, and still de-duplicates it', async () => {
    const queues = new StageQueues({ connection: redis, prefix, retry, logger: silentLogger(), jobIdKey: KEY })
    try {
      const first = await queues.add('fetch', fetchInput(USER), { jobId: `fetch-${USER}-1` })
      const again = await queues.add('fetch', fetchInput(USER), { jobId: `fetch-${USER}-1` })
      await queues.addBulk('fetch', [{ data: fetchInput(USER), options: { jobId: `fetch-${USER}-1` } }])
      expect(again.id).toBe(first.id)
      expect(await queues.queue('fetch').count()).toBe(1)
      // While the job lives its payload names the person; nothing else in Redis does.
      await first.remove()
      const keys = await redis.keys(`${prefix}:*`)
      const dumps = await Promise.all(keys.map(async (key) => `${key} ${JSON.stringify(await dump(key))}`))
      expect(dumps.join('\n')).not.toContain(USER)
      expect(keys.some((key) => key.endsWith(':events'))).toBe(true)
    } finally {
      await queues.close()
    }
  })
})

async function dump(key: string): Promise<unknown> {
  const type = await redis.type(key)
  if (type === 'string') return redis.get(key)
  if (type === 'hash') return redis.hgetall(key)
  if (type === 'list') return redis.lrange(key, 0, -1)
  if (type === 'set') return redis.smembers(key)
  if (type === 'zset') return redis.zrange(key, 0, -1)
  if (type === 'stream') return redis.xrange(key, '-', '+')
  return type
}
