import { z } from 'zod'
import { scanKeys, type RedisConnection } from './redis.js'

/**
 * The Redis layout of what FitStream has released about each person and how much of their
 * differential-privacy budget it cost. The anonymizer writes it; the token service reads it (a
 * user's privacy report) and erases it (every key is `<prefix>:privacy:<userId>` or below it).
 *
 * - `<prefix>:privacy:<userId>` hash of running totals (`PRIVACY_TOTAL_FIELDS`), a
 *   `period:<period>` field for each period that has a budget hash (the day of its last charge, in
 *   days since the epoch; `c` once compacted; `1` when the day is not known), and `compactedAt`.
 * - `<prefix>:privacy:<userId>:budget:<period>` hash: `budget` and `spent` in micro-epsilon, plus
 *   one field per record charge (`r|<type>|<startMs>|<revision>` → micro-epsilon), so a retried or
 *   duplicated release is never charged twice. Some days after the period is over those fields are
 *   dropped and counted in `charges`. Per cohort type, `k~<type>` (kept) is a hex bitmap of the windows
 *   starting in the period in which the person was counted, and `h~<type>` of those counted in a
 *   history cell: a cohort charge is its bit and one more in `charges`, so no window is paid for or
 *   counted twice. (Ledgers written before hold a `c|<type>|<startMs>` field per cohort charge, its
 *   value ending in `h` for a history cell: read as charges until compaction drops them.)
 * - `<prefix>:privacy:<userId>:log` list of `PrivacyLogEntry`, newest first, capped, each as one
 *   compact line (`encodePrivacyLogEntry`).
 * - `<prefix>:privacy:<userId>:periods`: a set of periods, read (never written) so that ledgers kept
 *   in that layout stay whole. The periods are fields of the totals hash instead because Redis 7.0
 *   stores even a one-member set of strings as a hash table, some 230 bytes a person.
 *
 * Epsilon is kept in integer micro-units: floating-point increments would drift, and a budget check
 * that rounds the wrong way would let a release through that the policy forbids.
 */

export const MICRO_EPSILON = 1_000_000

export const privacyKey = (prefix: string, userId: string): string => `${prefix}:privacy:${userId}`
export const privacyBudgetKey = (prefix: string, userId: string, period: string): string => `${prefix}:privacy:${userId}:budget:${period}`
export const privacyPeriodsKey = (prefix: string, userId: string): string => `${prefix}:privacy:${userId}:periods`
export const privacyLogKey = (prefix: string, userId: string): string => `${prefix}:privacy:${userId}:log`
/** A totals-hash field `period:2026-11` says the period has a budget hash. */
export const PRIVACY_PERIOD_FIELD_PREFIX = 'period:'
/** The value of a period's field once its per-charge fields have been dropped. */
export const PRIVACY_PERIOD_COMPACTED = 'c'
/** When the person's finished periods were last compacted (ms), in the totals hash. */
export const PRIVACY_COMPACTED_AT_FIELD = 'compactedAt'
/** In a compacted budget hash: how many charges its dropped fields were. */
export const PRIVACY_BUDGET_CHARGES_FIELD = 'charges'

/**
 * Most recent log entries kept per user: a sync that brings new data writes one per data type and
 * cohort cell, so for an hourly sync this is the last several hours in detail, while the totals and
 * the per-period budgets cover everything since the start. (500 entries of about 150 bytes each would
 * take some 75 KB of Redis per active user.)
 */
export const PRIVACY_LOG_LENGTH = 100

export const PRIVACY_TOTAL_FIELDS = {
  /** Individual records released (each revision counts). */
  recordsReleased: 'recordsReleased',
  /** (type, window) cohort cells the person was counted in. */
  cohortContributions: 'cohortContributions',
  /** Releases or contributions held back because the period's budget was spent. */
  withheldForBudget: 'withheldForBudget',
  /** Contributions that arrived after their cohort window had closed (dropped, not released). */
  lateContributions: 'lateContributions',
  lastReleaseAt: 'lastReleaseAt',
} as const

export const privacyLogEntrySchema = z.object({
  /** When the anonymizer acted (ISO 8601). */
  at: z.iso.datetime(),
  /**
   * `records`: individual pseudonymous records were handed to the publisher. `cohort`: the person's
   * data was counted in a cohort cell, released later only if the cell reaches k people.
   * `withheld`: nothing was released because the budget was spent.
   */
  kind: z.enum(['records', 'cohort', 'withheld']),
  type: z.string(),
  /** The data interval covered (ISO 8601). */
  start: z.iso.datetime(),
  end: z.iso.datetime(),
  /** Records released, cohort cells joined, or releases withheld. */
  count: z.number().int().min(0),
  /** Epsilon charged by this entry (0 where the policy adds no noise). */
  epsilon: z.number().min(0),
})
export type PrivacyLogEntry = z.infer<typeof privacyLogEntrySchema>

const LOG_KINDS = { records: 'r', cohort: 'c', withheld: 'w' } as const
const LOG_KIND_OF = { r: 'records', c: 'cohort', w: 'withheld' } as const

/**
 * One log entry as a line of `|`-separated fields, in base 36: when (ms), then the interval as its
 * start in minutes and `+` its length in minutes, e.g. `mhx2k3a8|c|heart_rate|tmj8w|+140|2|0.2`:
 * about 40 bytes where its JSON took 150. An interval not on whole minutes, and the lines written
 * before, give start and end in milliseconds (`mhx2k3a8|c|heart_rate|mhvp1c00|mhxr6o00|2|0.2`).
 */
export function encodePrivacyLogEntry(entry: PrivacyLogEntry): string {
  return encodePrivacyLogLine({
    atMs: Date.parse(entry.at),
    kind: entry.kind,
    type: entry.type,
    startMs: Date.parse(entry.start),
    endMs: Date.parse(entry.end),
    count: entry.count,
    epsilon: entry.epsilon,
  })
}

/** `encodePrivacyLogEntry` from times in milliseconds, for a writer that has them so. */
export function encodePrivacyLogLine(entry: {
  readonly atMs: number
  readonly kind: PrivacyLogEntry['kind']
  readonly type: string
  readonly startMs: number
  readonly endMs: number
  readonly count: number
  readonly epsilon: number
}): string {
  const { startMs, endMs } = entry
  const interval =
    startMs % 60_000 === 0 && endMs % 60_000 === 0 && endMs >= startMs
      ? `${(startMs / 60_000).toString(36)}|+${((endMs - startMs) / 60_000).toString(36)}`
      : `${startMs.toString(36)}|${endMs.toString(36)}`
  return `${entry.atMs.toString(36)}|${LOG_KINDS[entry.kind]}|${entry.type}|${interval}|${entry.count}|${entry.epsilon}`
}

/** Reads a log line, compact or JSON (the ledger's first line format, still read); undefined if it is neither. */
export function decodePrivacyLogEntry(line: string): PrivacyLogEntry | undefined {
  let candidate: unknown
  if (line.startsWith('{')) candidate = safeJson(line)
  else {
    const [at, kind, type, start, end, count, epsilon, ...rest] = line.split('|')
    const base36 = (text: string | undefined): number => (/^[0-9a-z]{1,12}$/.test(text ?? '') ? parseInt(text!, 36) : Number.NaN)
    const time = (ms: number): string | undefined => (Number.isFinite(ms) && ms <= 8.64e15 ? new Date(ms).toISOString() : undefined)
    // `+<length>`: start and length in minutes; else start and end in milliseconds.
    const inMinutes = end?.startsWith('+') === true
    const startMs = inMinutes ? base36(start) * 60_000 : base36(start)
    const endMs = inMinutes ? startMs + base36(end.slice(1)) * 60_000 : base36(end)
    if (rest.length === 0) {
      candidate = {
        at: time(base36(at)),
        kind: LOG_KIND_OF[kind as keyof typeof LOG_KIND_OF],
        type,
        start: time(startMs),
        end: time(endMs),
        count: Number(count),
        epsilon: Number(epsilon),
      }
    }
  }
  const parsed = privacyLogEntrySchema.safeParse(candidate)
  return parsed.success ? parsed.data : undefined
}

export interface PrivacyBudgetPeriod {
  /** The budget period, e.g. `2026-11`: the period the released data falls in, not when it was released. */
  readonly period: string
  readonly budget: number
  readonly spent: number
  readonly remaining: number
  /** Distinct charged releases in the period. */
  readonly charges: number
}

export interface PrivacyReport {
  readonly userId: string
  readonly totals: {
    readonly recordsReleased: number
    readonly cohortContributions: number
    readonly withheldForBudget: number
    readonly lateContributions: number
    readonly lastReleaseAt: string | null
  }
  /** Oldest period first. */
  readonly budgets: readonly PrivacyBudgetPeriod[]
  /** Newest first; at most `PRIVACY_LOG_LENGTH`. */
  readonly releases: readonly PrivacyLogEntry[]
}

const fromMicro = (micro: number): number => Math.round(micro) / MICRO_EPSILON

/** What has been released about one person and the epsilon it cost, per period. */
export async function readPrivacyReport(redis: RedisConnection, prefix: string, userId: string): Promise<PrivacyReport> {
  const [totals, legacyPeriods, log] = await Promise.all([
    redis.hgetall(privacyKey(prefix, userId)),
    redis.smembers(privacyPeriodsKey(prefix, userId)),
    redis.lrange(privacyLogKey(prefix, userId), 0, PRIVACY_LOG_LENGTH - 1),
  ])
  const periods = new Set(legacyPeriods)
  for (const field of Object.keys(totals)) {
    if (field.startsWith(PRIVACY_PERIOD_FIELD_PREFIX)) periods.add(field.slice(PRIVACY_PERIOD_FIELD_PREFIX.length))
  }
  const budgets: PrivacyBudgetPeriod[] = []
  for (const period of [...periods].sort()) {
    const ledger = await redis.hgetall(privacyBudgetKey(prefix, userId, period))
    if (ledger.budget === undefined) continue
    const budget = Number(ledger.budget)
    const spent = Number(ledger.spent ?? 0)
    budgets.push({
      period,
      budget: fromMicro(budget),
      spent: fromMicro(spent),
      remaining: fromMicro(Math.max(0, budget - spent)),
      charges: Number(ledger[PRIVACY_BUDGET_CHARGES_FIELD] ?? 0) + Object.keys(ledger).filter((field) => field.includes('|')).length,
    })
  }
  const count = (field: string): number => Number(totals[field] ?? 0)
  return {
    userId,
    totals: {
      recordsReleased: count(PRIVACY_TOTAL_FIELDS.recordsReleased),
      cohortContributions: count(PRIVACY_TOTAL_FIELDS.cohortContributions),
      withheldForBudget: count(PRIVACY_TOTAL_FIELDS.withheldForBudget),
      lateContributions: count(PRIVACY_TOTAL_FIELDS.lateContributions),
      lastReleaseAt: totals[PRIVACY_TOTAL_FIELDS.lastReleaseAt] ?? null,
    },
    budgets,
    releases: log.flatMap((line) => {
      // An entry that can't be read is left out rather than failing the report.
      const entry = decodePrivacyLogEntry(line)
      return entry === undefined ? [] : [entry]
    }),
  }
}

/** Deletes every key of one person's ledger (totals, budgets, log); answers how many. */
export async function erasePrivacyLedger(redis: RedisConnection, prefix: string, userId: string): Promise<number> {
  const keys = [privacyKey(prefix, userId)]
  // On a cluster every master is scanned; the keys found share the ledger's slot, so one DEL takes them all.
  for await (const found of scanKeys(redis, `${privacyKey(prefix, userId)}:*`)) keys.push(...found)
  return redis.del(...keys)
}

/**
 * The ledger as the token service uses it: a person's report, and erasing it with them (at once, so
 * the erasure receipt can count it; the anonymizer's own erasure job erases it again afterwards).
 */
export class PrivacyLedgerReader {
  constructor(
    private readonly redis: RedisConnection,
    private readonly prefix: string,
  ) {}

  report(userId: string): Promise<PrivacyReport> {
    return readPrivacyReport(this.redis, this.prefix, userId)
  }

  erase(userId: string): Promise<number> {
    return erasePrivacyLedger(this.redis, this.prefix, userId)
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}
