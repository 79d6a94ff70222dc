import { Redis, type RedisOptions } from 'ioredis'

export type RedisRole = 'worker' | 'producer'

/**
 * Opens a Redis connection for one role. Workers block on Redis and must never give up on a
 * command (`maxRetriesPerRequest: null`, as BullMQ requires); producers (HTTP handlers, schedulers)
 * give up after two reconnection attempts, so a request errors within about a second instead of
 * hanging while Redis is away. Commands issued while the first connection is being made wait for it.
 */
export function createRedis(url: string, role: RedisRole, connectionName?: string): Redis {
  const options: RedisOptions = {
    connectionName,
    maxRetriesPerRequest: role === 'worker' ? null : 2,
    enableOfflineQueue: true,
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

/** Resolves once the connection is ready; rejects with the last connection error after `timeoutMs`. */
export async function waitForRedis(redis: Redis, timeoutMs = 5_000): Promise<void> {
  if (redis.status === 'ready') return
  await new Promise<void>((resolve, reject) => {
    let lastError: Error | undefined
    const onError = (error: Error): void => void (lastError = error)
    const timer = setTimeout(() => {
      redis.off('ready', onReady)
      redis.off('error', onError)
      reject(new Error(`Redis not reachable: ${lastError?.message ?? 'no answer'}`))
    }, timeoutMs)
    const onReady = (): void => {
      clearTimeout(timer)
      redis.off('error', onError)
      resolve()
    }
    redis.once('ready', onReady)
    redis.on('error', onError)
  })
}
