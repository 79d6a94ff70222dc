import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis'

export type RedisRole = 'worker' | 'producer'

/** A connection to FitStream's Redis: one server, or a Redis Cluster (REDIS_CLUSTER_NODES). */
export type RedisConnection = Redis | Cluster

/** Where FitStream's Redis is: `url` alone for one server; with `clusterNodes`, a cluster reached through them. */
export interface RedisTarget {
  /** REDIS_URL. On a cluster only its user name, password and scheme (`rediss:` for TLS) are used, for every node. */
  readonly url: string
  /** REDIS_CLUSTER_NODES as `host:port` entries; absent or empty on a single Redis. */
  readonly clusterNodes?: readonly string[]
}

/** True when the target is a Redis Cluster: keys then carry hash tags (see key-slots.ts). */
export function isCluster(target: RedisTarget): boolean {
  return (target.clusterNodes?.length ?? 0) > 0
}

/**
 * Opens a Redis connection for one role. Workers block on Redis and must never give up on a
 * command (`maxRetriesPerRequest: null`, as BullMQ requires); producers (HTTP handlers, schedulers)
 * give up after two reconnection attempts, so a request errors within about a second instead of
 * hanging while Redis is away. Commands issued while the first connection is being made wait for it.
 * A target with cluster nodes gives an ioredis `Cluster`, which follows the cluster's slot map.
 */
export function createRedis(url: string, role: RedisRole, connectionName?: string): Redis
export function createRedis(target: string | RedisTarget, role: RedisRole, connectionName?: string): RedisConnection
export function createRedis(target: string | RedisTarget, role: RedisRole, connectionName?: string): RedisConnection {
  const { url, clusterNodes = [] } = typeof target === 'string' ? { url: target } : target
  const options: RedisOptions = {
    connectionName,
    maxRetriesPerRequest: role === 'worker' ? null : 2,
    enableOfflineQueue: true,
    // Reconnect forever with a capped delay: Redis restarts must heal by themselves.
    retryStrategy: (times) => Math.min(times * 200, 5_000),
    lazyConnect: false,
  }
  if (clusterNodes.length === 0) return new Redis(url, options)
  const parsed = new URL(url)
  const clusterOptions: ClusterOptions = {
    // The cluster client retries a command itself while the slot map settles; a worker waits as long as it takes.
    maxRedirections: 16,
    enableOfflineQueue: true,
    clusterRetryStrategy: (times) => Math.min(times * 200, 5_000),
    redisOptions: {
      connectionName,
      maxRetriesPerRequest: options.maxRetriesPerRequest,
      ...(parsed.username === '' ? {} : { username: decodeURIComponent(parsed.username) }),
      ...(parsed.password === '' ? {} : { password: decodeURIComponent(parsed.password) }),
      ...(parsed.protocol === 'rediss:' ? { tls: {} } : {}),
    },
    // A managed cluster announces its nodes by IP address while TLS certificates name the host: keep the name.
    ...(parsed.protocol === 'rediss:' ? { dnsLookup: (address: string, done: (error: null, address: string) => void) => done(null, address) } : {}),
  }
  return new Cluster(
    clusterNodes.map((node) => {
      const at = node.lastIndexOf(':')
      return { host: node.slice(0, at), port: Number(node.slice(at + 1)) }
    }),
    clusterOptions,
  )
}

/** The servers whose keys a scan must visit: the one Redis, or every master of a cluster. */
export function scanTargets(redis: RedisConnection): Redis[] {
  return redis instanceof Cluster ? redis.nodes('master') : [redis]
}

/** Every key matching `pattern`, on every master of a cluster, in batches of up to 1,000 names. */
export async function* scanKeys(redis: RedisConnection, pattern: string): AsyncGenerator<string[]> {
  // A cluster client knows its masters only once it has read the slot map: scanning before would scan none.
  if (redis instanceof Cluster && redis.status !== 'ready') await waitForRedis(redis, 10_000)
  for (const node of scanTargets(redis)) {
    let cursor = '0'
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 1000)
      cursor = next
      if (keys.length > 0) yield keys
    } while (cursor !== '0')
  }
}

/** Deletes every key under `prefix:` (tests and tooling; never called by services). */
export async function deleteKeysWithPrefix(redis: RedisConnection, prefix: string): Promise<number> {
  let deleted = 0
  for await (const keys of scanKeys(redis, `${prefix}:*`)) {
    // One UNLINK per key on a cluster: a batch of keys from one master may still span slots.
    if (redis instanceof Cluster) for (const key of keys) deleted += await redis.unlink(key)
    else deleted += await redis.unlink(...keys)
  }
  return deleted
}

/** Resolves once the connection is ready; rejects with the last connection error after `timeoutMs`. */
export async function waitForRedis(redis: RedisConnection, timeoutMs = 5_000): Promise<void> {
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
