import {
  COHORT_ERASURE_QUEUE,
  MEMBERSHIP_DLQ,
  MEMBERSHIP_QUEUE,
  STAGE_NAMES,
  clusterKeyName,
  deadLetterQueueName,
  scanKeys,
  type RedisConnection,
} from '@fitstream/shared'
import type { Redis } from 'ioredis'

export interface ClusterCopyReport {
  /** Keys copied. */
  readonly copied: number
  /** Of them, keys whose name changed (a slot group's or a queue's). */
  readonly renamed: number
  /** The BullMQ queues found, whose keys took their queue's tag. */
  readonly queues: readonly string[]
}

/**
 * Copies every key under `prefix:` of a single Redis to a cluster, each under its cluster name
 * (clusterKeyName): DUMP there, RESTORE here with what is left of its expiry, replacing a key of the
 * same name. The queues are the stages', the erasure and membership queues, and any other whose
 * `<prefix>:<queue>:meta` BullMQ wrote. Run with every service stopped and the queues empty
 * (docs/capacity.md): a key written during the copy may be missed.
 */
export async function copyToCluster(from: Redis, to: RedisConnection, prefix: string): Promise<ClusterCopyReport> {
  const queues = new Set<string>([...STAGE_NAMES, ...STAGE_NAMES.map(deadLetterQueueName), COHORT_ERASURE_QUEUE, MEMBERSHIP_QUEUE, MEMBERSHIP_DLQ])
  for await (const keys of scanKeys(from, `${prefix}:*:meta`)) {
    for (const key of keys) {
      const queue = key.slice(prefix.length + 1, -':meta'.length)
      if (!queue.includes(':')) queues.add(queue)
    }
  }
  let copied = 0
  let renamed = 0
  for await (const keys of scanKeys(from, `${prefix}:*`)) {
    for (const key of keys) {
      const [dump, ttl] = await Promise.all([from.dumpBuffer(key), from.pttl(key)])
      // Gone since the scan (expired meanwhile): nothing to copy.
      if (dump === null || ttl === -2) continue
      const name = clusterKeyName(key, prefix, queues)
      await to.restore(name, ttl > 0 ? ttl : 0, dump, 'REPLACE')
      copied++
      if (name !== key) renamed++
    }
  }
  return { copied, renamed, queues: [...queues].sort() }
}
