/**
 * How FitStream names its Redis keys so that they work on a Redis Cluster as well as on one Redis.
 *
 * A Lua script or a MULTI may only touch keys of one hash slot on a cluster. A key's slot is the
 * CRC16 of its hash tag (the text between its first `{` and the next `}`, when not empty) or else of
 * the whole key, modulo 16384. So every group of keys that a script or a MULTI touches together
 * carries one tag, and everything else carries none and spreads over the cluster by its own name.
 *
 * On a single Redis the tags are left out and every key keeps the name it always had, so an
 * existing deployment's data stays where it is (docs/capacity.md, "Moving to a managed cluster").
 */

/** The slot groups: each one's keys share a hash slot on a cluster (docs/capacity.md lists who owns which). */
export const SLOT_GROUPS = {
  /** The user hashes, the user index and sets, account claims, fetch histories and their locks, member enrolment. */
  users: 'users',
  /** The token service's sessions: a sign-in writes the session and the person's session set together. */
  sessions: 'sessions',
  /** The token service's passkeys: a new passkey claims its credential id and joins the person's set together. */
  passkeys: 'passkeys',
  /** The fetcher's Google outage detector (four counters read and set together). */
  google: 'google',
  /** The privacy ledgers and the cohort cells: one release script charges a person's budget and fills shared cells. */
  anonymizer: 'anonymizer',
  /** The publisher's delivery journal: a lease script moves message chains between jobs and this process's pool. */
  journal: 'journal',
  /** The publisher's release slots: a slot holds and releases many people's jobs at once. */
  slots: 'slots',
} as const

export type SlotGroup = (typeof SLOT_GROUPS)[keyof typeof SLOT_GROUPS]

/**
 * The prefix of one slot group's keys: QUEUE_PREFIX itself on a single Redis, `<prefix>:{<group>}` on
 * a cluster. Every key stays under `<prefix>:`, so prefix scans still find them.
 */
export function slotGroupPrefix(prefix: string, group: SlotGroup, cluster: boolean): string {
  return cluster ? `${prefix}:{${group}}` : prefix
}

/**
 * The BullMQ prefix of one queue: QUEUE_PREFIX on a single Redis; on a cluster `<prefix>:{<queue>}`,
 * since BullMQ's scripts touch many keys of one queue together and a tag per queue (not one for all)
 * lets the queues land on different masters (BullMQ's "Redis Cluster" guide).
 */
export function queuePrefix(prefix: string, queue: string, cluster: boolean): string {
  return cluster ? `${prefix}:{${queue}}` : prefix
}

/** The part of a key Redis Cluster hashes: its first non-empty `{…}`, else the whole key. */
export function hashTagOf(key: string): string {
  const open = key.indexOf('{')
  if (open < 0) return key
  const close = key.indexOf('}', open + 1)
  return close <= open + 1 ? key : key.slice(open + 1, close)
}

/** The hash slot (0-16383) Redis Cluster puts a key in: CRC16-CCITT (XMODEM) of its hash tag. */
export function keySlot(key: string): number {
  let crc = 0
  for (const byte of Buffer.from(hashTagOf(key), 'utf8')) {
    crc ^= byte << 8
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff
  }
  return crc % 16_384
}

/**
 * The key families of each slot group, as names after `<prefix>:`: an entry ending in `:` is a family of
 * keys, any other one key. The stores build these names; this table says where a key goes on a cluster
 * when a deployment's data is copied there (docs/capacity.md, "Moving to a managed cluster").
 */
export const SLOT_GROUP_FAMILIES: Readonly<Record<SlotGroup, readonly string[]>> = {
  users: ['user:', 'users', 'users:', 'account:', 'seen:', 'lock:fetch:', 'lock:refresh:', 'token-service:member:', 'token-service:member-joins-pending'],
  sessions: ['session:', 'user-sessions:', 'oauth-state:', 'reconsents:'],
  passkeys: ['passkey:'],
  google: ['google:'],
  anonymizer: ['privacy:', 'cohort:'],
  journal: ['publisher:job:', 'publisher:done:', 'publisher:chains:'],
  slots: ['publisher:slots', 'publisher:slot:', 'publisher:held-job:'],
}

/**
 * The name a key of a single Redis has on a cluster: a slot group's key gets the group's tag, a key of
 * one of `queues` (BullMQ's `<prefix>:<queue>:…`) the queue's, any other key keeps its name.
 */
export function clusterKeyName(key: string, prefix: string, queues: ReadonlySet<string>): string {
  if (!key.startsWith(`${prefix}:`)) return key
  const rest = key.slice(prefix.length + 1)
  for (const [group, families] of Object.entries(SLOT_GROUP_FAMILIES) as [SlotGroup, readonly string[]][]) {
    if (families.some((family) => (family.endsWith(':') ? rest.startsWith(family) : rest === family))) return `${slotGroupPrefix(prefix, group, true)}:${rest}`
  }
  const queue = rest.slice(0, rest.indexOf(':'))
  return queues.has(queue) ? `${queuePrefix(prefix, queue, true)}:${rest}` : key
}
