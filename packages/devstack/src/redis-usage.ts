import type { Redis } from 'ioredis'

/**
 * Redis memory under a key prefix, by kind of key: per-user records (user, seen, privacy, cohort, schedule)
 * by their first segment, queues as `queue <name>`. From MEMORY USAGE of every key (exact sizes).
 */
export async function redisBytesByKind(redis: Redis, prefix: string): Promise<{ total: number; kinds: Map<string, number> }> {
  const kinds = new Map<string, number>()
  let total = 0
  let cursor = '0'
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000)
    cursor = next
    const pipeline = redis.pipeline()
    for (const key of keys) pipeline.call('MEMORY', 'USAGE', key, 'SAMPLES', '0')
    const sizes = (await pipeline.exec()) ?? []
    keys.forEach((key, i) => {
      const bytes = Number(sizes[i]?.[1] ?? 0)
      const rest = key.slice(prefix.length + 1)
      const kind = /^(user|seen|privacy|cohort|schedule):/.test(rest) ? rest.split(':')[0]! : `queue ${rest.split(':')[0]}`
      kinds.set(kind, (kinds.get(kind) ?? 0) + bytes)
      total += bytes
    })
  } while (cursor !== '0')
  return { total, kinds }
}
