import { Redis, type RedisOptions } from 'ioredis'

export type RedisRole = 'worker' | 'producer'

/**
 * Opens a Redis connection for one role. Workers block on Redis and must never give up on a
 * command (`maxRetriesPerRequest: null`, as BullMQ requires); producers (HTTP handlers, schedulers)
 * fail fast so a request errors instead of hanging while Redis is away.
 */
export function createRedis(url: string, role: RedisRole, connectionName?: string): Redis {
  const options: RedisOptions = {
    connectionName,
    maxRetriesPerRequest: role === 'worker' ? null : 2,
    enableOfflineQueue: role === 'worker',
    // Reconnect forever with a capped delay: Redis restarts must heal by themselves.
    retryStrategy: (times) => Math.min(times * 200, 5_000),
    lazyConnect: false,
  }
  return new Redis(url, options)
}

/** Deletes every key under `prefix:` (tests and tooling; never called by services). */
export async function deleteKeysWithPrefix(redis: Redis, prefix: string): Promise<number> {
  let deleted = 0
  let cursor = '0'
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000)
    cursor = next
    if (keys.length > 0) deleted += await redis.unlink(...keys)
  } while (cursor !== '0')
  return deleted
}
