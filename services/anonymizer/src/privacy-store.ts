import { createHash } from 'node:crypto'
import type { Redis } from 'ioredis'
import {
  MICRO_EPSILON,
  PRIVACY_BUDGET_CHARGES_FIELD,
  PRIVACY_COMPACTED_AT_FIELD,
  PRIVACY_LOG_LENGTH,
  PRIVACY_PERIOD_COMPACTED,
  PRIVACY_PERIOD_FIELD_PREFIX,
  PRIVACY_TOTAL_FIELDS,
  encodePrivacyLogEntry,
  erasePrivacyLedger,
  privacyBudgetKey,
  privacyKey,
  privacyLogKey,
  type DataTypeKey,
  type PrivacyLogEntry,
} from '@fitstream/shared'
import type { CandidateRecord, CohortContribution } from './anonymize.js'
import { encodeBuckets, type ClosedCell } from './cohort-aggregate.js'
import { cohortReserve, type PrivacyPolicy } from './policy.js'
import { periodEndOf } from './time-windows.js'

/** In a budget hash: micro-epsilon spent on individual records (the rest went to cohort cells). */
const RECORDS_SPENT_FIELD = 'spentRecords'
/** In a budget hash: `w~<charge>` marks a release withheld, so a retry is not counted again (dropped with the charges). */
const WITHHELD_MARK = 'w~'

/**
 * The anonymizer's state in Redis. Per person (erased with them): the epsilon ledger and release log,
 * laid out in `@fitstream/shared/privacy-ledger`. Per cohort cell (never keyed by a person):
 *
 * - `<prefix>:cohort:cell:<type>:<start>:<end>` hash of `<member>` → that person's buckets (see encodeBuckets),
 *   where `member` is an HMAC of the cell and the user id; it lives only until the cell closes.
 * - `<prefix>:cohort:open` sorted set of cells by the time they close (window end + grace).
 * - `<prefix>:cohort:closing` and `<prefix>:cohort:closing:<cell>`: closed cells not yet handed on,
 *   so a crash between closing and publishing loses nothing.
 * - `<prefix>:cohort:done:<cell>`: a closed marker, so a straggler can't reopen a released cell.
 */

/**
 * Charges noisy records to one budget period; grants each only while the records' share of the
 * period's budget (ARGV[5]: what the cohort cells a person can join leave over) has room. A record
 * withheld is counted once, however often its release is retried: a `w~<charge>` field marks it.
 */
const CHARGE = `
local budget = tonumber(ARGV[1])
local cap = tonumber(ARGV[5])
local granted = {}
local withheld = 0
redis.call('HSETNX', KEYS[1], 'budget', ARGV[1])
redis.call('HSETNX', KEYS[1], 'spent', '0')
for i = 6, #ARGV, 2 do
  if redis.call('HEXISTS', KEYS[1], ARGV[i]) == 1 then
    table.insert(granted, 1)
  else
    local cost = tonumber(ARGV[i + 1])
    local spent = tonumber(redis.call('HGET', KEYS[1], 'spent'))
    local spentRecords = tonumber(redis.call('HGET', KEYS[1], '${RECORDS_SPENT_FIELD}') or '0')
    if spent + cost > budget or spentRecords + cost > cap then
      if redis.call('HSETNX', KEYS[1], '${WITHHELD_MARK}' .. string.gsub(ARGV[i], '|', '~'), '1') == 1 then
        withheld = withheld + 1
        table.insert(granted, 0)
      else
        table.insert(granted, 2)
      end
    else
      redis.call('HSET', KEYS[1], ARGV[i], cost)
      redis.call('HINCRBY', KEYS[1], 'spent', cost)
      redis.call('HINCRBY', KEYS[1], '${RECORDS_SPENT_FIELD}', cost)
      table.insert(granted, 1)
    end
  end
end
redis.call('EXPIRE', KEYS[1], ARGV[2])
redis.call('HSET', KEYS[2], '${PRIVACY_PERIOD_FIELD_PREFIX}' .. ARGV[3], ARGV[4])
if withheld > 0 then redis.call('HINCRBY', KEYS[2], '${PRIVACY_TOTAL_FIELDS.withheldForBudget}', withheld) end
redis.call('EXPIRE', KEYS[2], ARGV[2])
return granted
`

/**
 * Adds one person's buckets to a cohort cell, after charging the cell's epsilon to their budget, in
 * one atomic step: a cell that closes in between can't receive a contribution that was paid for, and
 * a contribution that was refused can't half-land.
 */
const CONTRIBUTE = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 'late' end
local fresh = redis.call('HEXISTS', KEYS[4], ARGV[1]) == 0
if fresh then
  local cost = tonumber(ARGV[2])
  local budget = tonumber(ARGV[3])
  redis.call('HSETNX', KEYS[4], 'budget', ARGV[3])
  redis.call('HSETNX', KEYS[4], 'spent', '0')
  local spent = tonumber(redis.call('HGET', KEYS[4], 'spent'))
  if cost > 0 and spent + cost > budget then
    if redis.call('HSETNX', KEYS[4], '${WITHHELD_MARK}' .. string.gsub(ARGV[1], '|', '~'), '1') == 0 then return 'withheld_again' end
    redis.call('HINCRBY', KEYS[5], '${PRIVACY_TOTAL_FIELDS.withheldForBudget}', 1)
    redis.call('EXPIRE', KEYS[4], ARGV[7])
    redis.call('HSET', KEYS[5], '${PRIVACY_PERIOD_FIELD_PREFIX}' .. ARGV[4], ARGV[11])
    redis.call('EXPIRE', KEYS[5], ARGV[7])
    return 'withheld'
  end
  redis.call('HSET', KEYS[4], ARGV[1], cost)
  redis.call('HINCRBY', KEYS[4], 'spent', cost)
  redis.call('EXPIRE', KEYS[4], ARGV[7])
  redis.call('HSET', KEYS[5], '${PRIVACY_PERIOD_FIELD_PREFIX}' .. ARGV[4], ARGV[11])
  redis.call('HINCRBY', KEYS[5], '${PRIVACY_TOTAL_FIELDS.cohortContributions}', 1)
  redis.call('EXPIRE', KEYS[5], ARGV[7])
end
local buckets = {}
local function merge(encoded)
  for entry in string.gmatch(encoded, '[^;]+') do
    local bucket, revision = string.match(entry, '^([^,]*),(%d+),')
    local held = buckets[bucket]
    if held == nil or tonumber(string.match(held, '^[^,]*,(%d+),')) <= tonumber(revision) then buckets[bucket] = entry end
  end
end
merge(redis.call('HGET', KEYS[2], ARGV[9]) or '')
merge(ARGV[10])
local entries = {}
for _, entry in pairs(buckets) do entries[#entries + 1] = entry end
table.sort(entries)
redis.call('HSET', KEYS[2], ARGV[9], table.concat(entries, ';'))
redis.call('PEXPIREAT', KEYS[2], ARGV[8])
redis.call('ZADD', KEYS[3], 'NX', ARGV[6], ARGV[5])
if fresh then return 'joined' end
return 'updated'
`

/** Moves every cell whose grace period is over from open to closing, and marks it closed. */
const CLOSE_DUE = `
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, cell in ipairs(due) do
  redis.call('ZREM', KEYS[1], cell)
  redis.call('SET', ARGV[3] .. ':cohort:done:' .. cell, '1', 'EX', ARGV[4])
  local key = ARGV[3] .. ':cohort:cell:' .. cell
  if redis.call('EXISTS', key) == 1 then redis.call('RENAME', key, ARGV[3] .. ':cohort:closing:' .. cell) end
  redis.call('ZADD', KEYS[2], ARGV[1], cell)
end
return due
`

/**
 * Drops a finished period's per-charge fields, keeping its budget, what was spent and how many
 * charges there were. Only if no charge has come in since the caller read the day of the period's last
 * charge (ARGV[2]); the period is then marked compacted ('c').
 */
const COMPACT_PERIOD = `
if redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[2] then return -1 end
local removed = 0
for _, field in ipairs(redis.call('HKEYS', KEYS[1])) do
  if string.find(field, '|', 1, true) then
    redis.call('HDEL', KEYS[1], field)
    removed = removed + 1
  elseif string.sub(field, 1, 2) == '${WITHHELD_MARK}' then
    redis.call('HDEL', KEYS[1], field)
  end
end
if removed > 0 then redis.call('HINCRBY', KEYS[1], '${PRIVACY_BUDGET_CHARGES_FIELD}', removed) end
redis.call('HSET', KEYS[2], ARGV[1], '${PRIVACY_PERIOD_COMPACTED}')
return removed
`

const DAY_S = 86_400
const DAY_MS = DAY_S * 1000
/**
 * A period's per-charge fields are dropped once it has been over, and uncharged, this long. They
 * only stop a retried release from being charged twice; retries come within minutes or hours. A
 * release replayed from a dead letter after that is charged again: more of the person's budget
 * spent, never less.
 */
const COMPACT_AFTER_MS = 8 * DAY_MS
/** How long a closed marker outlives its cell: longer than any clock skew between replicas. */
const DONE_MARKER_TTL_S = 7 * DAY_S
/** A cell's hash expires this long after it should have closed, in case its open entry was lost. */
const CELL_SAFETY_MS = 7 * DAY_MS

/** `withheld`: refused for budget, counted; `withheld_again`: a retry of one already counted. */
export type ContributionOutcome = 'joined' | 'updated' | 'late' | 'withheld' | 'withheld_again'

export class PrivacyStore {
  private readonly scripts = new Map<string, string>()

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly policy: PrivacyPolicy,
  ) {}

  private get ledgerTtlSeconds(): number {
    return this.policy.budget.retentionDays * DAY_S
  }

  private get budgetMicro(): number {
    return Math.round(this.policy.budget.epsilon * MICRO_EPSILON)
  }

  /** What noisy records may spend per period: the budget less every cohort cell a person can join, reserved in advance. */
  private get recordsCapMicro(): number {
    return Math.max(0, this.budgetMicro - Math.ceil(cohortReserve(this.policy) * MICRO_EPSILON - 1e-6))
  }

  /** Charges noisy records to the person's budget; records without noise cost nothing and always pass. */
  async chargeRecords(
    userId: string,
    candidates: readonly CandidateRecord[],
    now = Date.now(),
  ): Promise<{ granted: CandidateRecord[]; withheld: CandidateRecord[]; withheldBefore: CandidateRecord[] }> {
    const granted: CandidateRecord[] = []
    const withheld: CandidateRecord[] = []
    const withheldBefore: CandidateRecord[] = []
    const byPeriod = new Map<string, CandidateRecord[]>()
    for (const candidate of candidates) {
      if (candidate.epsilon <= 0) granted.push(candidate)
      else byPeriod.set(candidate.period, [...(byPeriod.get(candidate.period) ?? []), candidate])
    }
    for (const [period, list] of byPeriod) {
      const args = list.flatMap((c) => [c.chargeField, String(Math.round(c.epsilon * MICRO_EPSILON))])
      const answer = (await this.run(
        CHARGE,
        [privacyBudgetKey(this.prefix, userId, period), privacyKey(this.prefix, userId)],
        [String(this.budgetMicro), String(this.ledgerTtlSeconds), period, dayOf(now), String(this.recordsCapMicro), ...args],
      )) as number[]
      list.forEach((candidate, i) => (answer[i] === 1 ? granted : answer[i] === 0 ? withheld : withheldBefore).push(candidate))
    }
    return { granted, withheld, withheldBefore }
  }

  /** Adds a person's buckets to a cohort cell, unless the cell has closed or their budget is spent. */
  async contribute(userId: string, contribution: CohortContribution, now: number): Promise<ContributionOutcome> {
    const closeAt = this.closeAt(contribution.endMs)
    if (now >= closeAt) return 'late'
    return (await this.run(
      CONTRIBUTE,
      [
        this.key('done', contribution.cell),
        this.key('cell', contribution.cell),
        this.openKey,
        privacyBudgetKey(this.prefix, userId, contribution.period),
        privacyKey(this.prefix, userId),
      ],
      [
        contribution.chargeField,
        String(Math.round(contribution.epsilon * MICRO_EPSILON)),
        String(this.budgetMicro),
        contribution.period,
        contribution.cell,
        String(closeAt),
        String(this.ledgerTtlSeconds),
        String(closeAt + CELL_SAFETY_MS),
        contribution.member,
        encodeBuckets(contribution.type, contribution.startMs, contribution.buckets),
        dayOf(now),
      ],
    )) as ContributionOutcome
  }

  /** When a window's cell closes: its end plus the grace period for late data. */
  closeAt(windowEndMs: number): number {
    return windowEndMs + this.policy.cohorts.graceHours * 3_600_000
  }

  /** Closes every cell whose grace period has passed; returns their names. */
  async closeDue(now: number, limit = 1_000): Promise<string[]> {
    return (await this.run(CLOSE_DUE, [this.openKey, this.closingKey], [String(now), String(limit), this.prefix, String(DONE_MARKER_TTL_S)])) as string[]
  }

  /** Closed cells not yet handed on (including any a crashed closer left behind). */
  async closingCells(limit = 1_000): Promise<ClosedCell[]> {
    const names = await this.redis.zrange(this.closingKey, 0, limit - 1)
    const cells: ClosedCell[] = []
    for (const name of names) {
      const [type, start, end] = name.split(':')
      cells.push({ type: type as DataTypeKey, startMs: Number(start), endMs: Number(end), entries: await this.redis.hgetall(this.key('closing', name)) })
    }
    return cells
  }

  /** Forgets a closed cell's contributions once its outcome has been handed on. */
  async finishCells(cells: readonly ClosedCell[]): Promise<void> {
    if (cells.length === 0) return
    const pipeline = this.redis.pipeline()
    for (const cell of cells) {
      const name = cellName(cell)
      pipeline.unlink(this.key('closing', name))
      pipeline.zrem(this.closingKey, name)
    }
    await pipeline.exec()
  }

  /**
   * Removes one person's contributions from every cohort cell not yet released: the open ones and
   * any closed but not yet handed on. `memberOf` gives the person's token in a cell (memberToken);
   * their buckets go, the cell stays for everyone else. Released cells can't be recalled. Returns
   * how many cells held a contribution of theirs.
   */
  async eraseContributions(memberOf: (cell: string) => string): Promise<number> {
    const cells = [...new Set([...(await this.redis.zrange(this.openKey, 0, -1)), ...(await this.redis.zrange(this.closingKey, 0, -1))])]
    let erased = 0
    for (let i = 0; i < cells.length; i += 500) {
      const pipeline = this.redis.pipeline()
      for (const cell of cells.slice(i, i + 500)) {
        const member = memberOf(cell)
        pipeline.hdel(this.key('cell', cell), member)
        pipeline.hdel(this.key('closing', cell), member)
      }
      const results = (await pipeline.exec()) ?? []
      for (let j = 0; j < results.length; j += 2) {
        const [error, removed] = [results[j]?.[0] ?? results[j + 1]?.[0], Number(results[j]?.[1] ?? 0) + Number(results[j + 1]?.[1] ?? 0)]
        if (error) throw error
        if (removed > 0) erased++
      }
    }
    return erased
  }

  /**
   * Marks a person as erased for `ttlS` seconds, under a keyed token that does not name them: an
   * anonymize job of theirs still on its way (queued, or fetched a moment before the erasure) is then
   * discarded instead of putting them back into cohort cells or their privacy log.
   */
  async markErased(token: string, ttlS: number): Promise<void> {
    await this.redis.set(`${this.prefix}:cohort:erased:${token}`, '1', 'EX', ttlS)
  }

  async isErased(token: string): Promise<boolean> {
    return (await this.redis.exists(`${this.prefix}:cohort:erased:${token}`)) === 1
  }

  /** Deletes a person's privacy state (totals, ledger, log): the anonymiser owns it. Answers how many keys. */
  async erasePrivacyState(userId: string): Promise<number> {
    return erasePrivacyLedger(this.redis, this.prefix, userId)
  }

  /** Cells waiting for their window to close (for metrics). */
  async openCells(): Promise<number> {
    return this.redis.zcard(this.openKey)
  }

  /**
   * Appends to the person's release log and totals; once a day it also compacts the budget periods
   * that are over (see compactPeriods).
   */
  async logReleases(
    userId: string,
    entries: readonly PrivacyLogEntry[],
    totals: { recordsReleased: number; lateContributions: number },
    now = Date.now(),
  ): Promise<void> {
    if (entries.length === 0 && totals.recordsReleased === 0 && totals.lateContributions === 0) return
    const summary = privacyKey(this.prefix, userId)
    const log = privacyLogKey(this.prefix, userId)
    const pipeline = this.redis.pipeline()
    if (entries.length > 0) {
      pipeline.lpush(log, ...entries.map(encodePrivacyLogEntry))
      pipeline.ltrim(log, 0, PRIVACY_LOG_LENGTH - 1)
      pipeline.expire(log, this.ledgerTtlSeconds)
    }
    if (totals.recordsReleased > 0) {
      pipeline.hincrby(summary, PRIVACY_TOTAL_FIELDS.recordsReleased, totals.recordsReleased)
      pipeline.hset(summary, PRIVACY_TOTAL_FIELDS.lastReleaseAt, entries[0]?.at ?? new Date().toISOString())
    }
    if (totals.lateContributions > 0) pipeline.hincrby(summary, PRIVACY_TOTAL_FIELDS.lateContributions, totals.lateContributions)
    pipeline.expire(summary, this.ledgerTtlSeconds)
    pipeline.hget(summary, PRIVACY_COMPACTED_AT_FIELD)
    const results = await pipeline.exec()
    const compactedAt = Number(results?.at(-1)?.[1] ?? 0)
    if (now - compactedAt >= DAY_MS) await this.compactPeriods(userId, now)
  }

  /**
   * Drops the per-charge fields of the person's budget periods that have been over, and had no
   * charge, for COMPACT_AFTER_MS; their budget, spending and number of charges stay for the report.
   * Without this every period kept a field per charge for the ledger's 400 days: for a person whose data
   * comes in every day, under the default policy, some 150 a month (5 KB), 65 KB after a year; compacted, 0.1 KB.
   */
  private async compactPeriods(userId: string, now: number): Promise<void> {
    const summary = privacyKey(this.prefix, userId)
    const fields = await this.redis.hgetall(summary)
    for (const [field, value] of Object.entries(fields)) {
      if (!field.startsWith(PRIVACY_PERIOD_FIELD_PREFIX) || value === PRIVACY_PERIOD_COMPACTED) continue
      const period = field.slice(PRIVACY_PERIOD_FIELD_PREFIX.length)
      const endMs = periodEndOf(period)
      // The day of the last charge; earlier versions wrote '1', which reads as long ago.
      const lastChargeMs = Number(value) * DAY_MS
      if (endMs === undefined || !Number.isFinite(lastChargeMs) || now - Math.max(endMs, lastChargeMs + DAY_MS) < COMPACT_AFTER_MS) continue
      await this.run(COMPACT_PERIOD, [privacyBudgetKey(this.prefix, userId, period), summary], [field, value])
    }
    await this.redis.hset(summary, PRIVACY_COMPACTED_AT_FIELD, String(now))
  }

  private get openKey(): string {
    return `${this.prefix}:cohort:open`
  }

  private get closingKey(): string {
    return `${this.prefix}:cohort:closing`
  }

  private key(kind: 'cell' | 'closing' | 'done', cell: string): string {
    return `${this.prefix}:cohort:${kind}:${cell}`
  }

  /** EVALSHA, loading the script on first use or after Redis forgot it (a restart, SCRIPT FLUSH). */
  private async run(source: string, keys: string[], args: string[]): Promise<unknown> {
    let sha = this.scripts.get(source)
    if (sha === undefined) {
      sha = createHash('sha1').update(source).digest('hex')
      this.scripts.set(source, sha)
    }
    try {
      return await this.redis.evalsha(sha, keys.length, ...keys, ...args)
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error
      return this.redis.eval(source, keys.length, ...keys, ...args)
    }
  }
}

/** Days since the epoch: when a period was last charged, as its totals field keeps it. */
function dayOf(ms: number): string {
  return String(Math.floor(ms / DAY_MS))
}

export function cellName(cell: { type: string; startMs: number; endMs: number }): string {
  return `${cell.type}:${cell.startMs}:${cell.endMs}`
}
