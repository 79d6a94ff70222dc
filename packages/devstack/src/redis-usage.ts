import type { Redis } from 'ioredis'

/** Key kinds that grow with the number of people; every other first segment is a BullMQ queue's. */
const PER_USER_KINDS = new Set(['user', 'users', 'seen', 'privacy', 'cohort', 'schedule', 'publisher'])

/**
 * Redis memory under a key prefix, by kind of key: what grows with people (user, users, seen, privacy,
 * cohort, schedule, publisher) by their first segment, queues as `queue <name>`. From MEMORY USAGE of every key (exact sizes).
 */
export async function redisBytesByKind(
  redis: Redis,
  prefix: string,
): Promise<{ total: number; kinds: Map<string, number>; shapes: Map<string, { keys: number; bytes: number }> }> {
  const kinds = new Map<string, number>()
  const shapes = new Map<string, { keys: number; bytes: number }>()
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
      const first = rest.split(':')[0]!
      const kind = PER_USER_KINDS.has(first) ? first : `queue ${first}`
      kinds.set(kind, (kinds.get(kind) ?? 0) + bytes)
      const shape = keyShape(rest)
      const entry = shapes.get(shape) ?? { keys: 0, bytes: 0 }
      entry.keys += 1
      entry.bytes += bytes
      shapes.set(shape, entry)
      total += bytes
    })
  } while (cursor !== '0')
  return { total, kinds, shapes }
}

/** A key with its ids taken out (`fetch:123` → `fetch:<id>`), so that keys of one kind add up together. */
function keyShape(key: string): string {
  return key
    .split(':')
    .map((segment) => ((/\d/.test(segment) && segment.length >= 6) || /^\d+$/.test(segment) ? '<id>' : segment))
    .join(':')
}
