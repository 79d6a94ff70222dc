import { createHash } from 'node:crypto'
import type { RedisConnection } from '@fitstream/shared'
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
import { cohortCloseAt, type CandidateRecord, type CohortContribution } from './anonymize.js'
import { encodeBuckets, type ClosedCell } from './cohort-aggregate.js'
import { cohortReserve, type PrivacyPolicy } from './policy.js'
import { periodEndOf } from './time-windows.js'

/** In a budget hash: micro-epsilon spent on individual records (the rest went to cohort cells). */
const RECORDS_SPENT_FIELD = 'spentRecords'
/** In a budget hash: `w~<charge>` marks a release withheld, so a retry is not counted again (dropped with the charges). */
const WITHHELD_MARK = 'w~'
/**
 * In a budget hash: `k~<type>` is a bitmap, in hex, of the windows of that type starting in the period
 * in which the person has been counted in a cohort cell (window i is bit i % 4 of the hex digit i / 4
 * from the left). Unlike the charge fields it survives compaction, so a history cell months later
 * still finds them counted.
 */
const COUNTED_MARK = 'k~'

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
 *
 * A history cell (policy `cohorts.history`) is named `<type>:<start>:<end>:<batchStart>` and lives in
 * the same keys: it collects contributions to a window whose own cell had closed, and closes with its
 * batch. Per person and (type, window), one cell of all of them takes them: the first they were
 * charged for (COUNTED_MARK).
 */

/**
 * One anonymize job's whole write to Redis, in one atomic call: it refuses a person marked erased
 * (KEYS[1]), charges their noisy records, then adds their cohort contributions, each after charging
 * the cell's epsilon. A record or a contribution is granted while its budget period has room (records
 * only up to their share, ARGV[4]: what the cohort cells a person can join leave over); one refused is
 * counted once however often its release is retried, by a `w~<charge>` field; a charge already in the
 * ledger is a retry and passes without being paid again. A cell that has closed (its done marker is
 * set) takes nothing, so a contribution that was paid for can't miss its cell and a refused one can't
 * half-land. A person already counted for a (type, window) (charged, or marked in COUNTED_MARK after
 * compaction) joins no other cell of it: a history contribution to a cell that does not hold them,
 * or a live one from someone charged for a history cell (the charge's value ends in `h`), is
 * `counted`, so the live cell and the history cells of a window hold disjoint people. Each budget hash and the totals are read once and written once, whatever the number of
 * records and cells: a day of five types is some 50 commands instead of 130.
 *
 * KEYS: erased marker, totals, open cells, a budget hash per period, then a done marker and a cell per contribution.
 * ARGV: budget, ledger TTL, today, records' cap, #periods, #records, #contributions, the period names,
 * then per record (period index, charge field, cost), per contribution (period index, charge field,
 * cost, cell, close at, cell expiry, member, buckets, type, window index, `h` for a history cell or `l`). Answers 1 if erased, else 0 followed by each
 * record's outcome (1 granted, 0 withheld, 2 withheld before) and each contribution's.
 */
const RELEASE = `
if redis.call('EXISTS', KEYS[1]) == 1 then return {1} end
local budget = tonumber(ARGV[1])
local cap = tonumber(ARGV[4])
local np, nr, nc = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local recordsAt = 8 + np
local contributionsAt = recordsAt + 3 * nr
local stride = 11
local ledgers = {}
for i = 1, np do
  local key = KEYS[3 + i]
  local held = redis.call('HMGET', key, 'budget', 'spent', '${RECORDS_SPENT_FIELD}')
  ledgers[i] = { key = key, period = ARGV[7 + i], hasBudget = held[1] ~= false, hadSpent = held[2] ~= false,
    spent = tonumber(held[2] or '0'), spentBefore = tonumber(held[2] or '0'), spentRecords = tonumber(held[3] or '0'), recordsCharged = false,
    charged = {}, writes = {}, init = false, expire = false, dated = false, marks = {}, marked = {} }
end
-- Which charges are already in each ledger, read in one HMGET per period.
local asked = {}
for i = 1, np do asked[i] = {} end
for r = 0, nr - 1 do local a = recordsAt + 3 * r; table.insert(asked[tonumber(ARGV[a])], ARGV[a + 1]) end
for c = 0, nc - 1 do local a = contributionsAt + stride * c; table.insert(asked[tonumber(ARGV[a])], ARGV[a + 1]) end
for i = 1, np do
  local fields = asked[i]
  for from = 1, #fields, 500 do
    local upto = math.min(#fields, from + 499)
    local found = redis.call('HMGET', ledgers[i].key, unpack(fields, from, upto))
    for j = from, upto do if found[j - from + 1] then ledgers[i].charged[fields[j]] = found[j - from + 1] end end
  end
end
local withheld, joined = 0, 0
local function withhold(ledger, field)
  return redis.call('HSETNX', ledger.key, '${WITHHELD_MARK}' .. string.gsub(field, '|', '~'), '1') == 1
end
local function charge(ledger, field, cost, suffix)
  local value = string.format('%d', cost) .. (suffix or '')
  ledger.charged[field] = value
  table.insert(ledger.writes, field)
  table.insert(ledger.writes, value)
  ledger.spent = ledger.spent + cost
end
local out = {0}
for r = 0, nr - 1 do
  local a = recordsAt + 3 * r
  local ledger, field, cost = ledgers[tonumber(ARGV[a])], ARGV[a + 1], tonumber(ARGV[a + 2])
  ledger.init, ledger.expire, ledger.dated = true, true, true
  if ledger.charged[field] then
    out[#out + 1] = 1
  elseif ledger.spent + cost > budget or ledger.spentRecords + cost > cap then
    if withhold(ledger, field) then
      withheld = withheld + 1
      out[#out + 1] = 0
    else
      out[#out + 1] = 2
    end
  else
    charge(ledger, field, cost)
    ledger.spentRecords = ledger.spentRecords + cost
    ledger.recordsCharged = true
    out[#out + 1] = 1
  end
end
local function marks(ledger, t)
  local bits = ledger.marks[t]
  if bits == nil then
    bits = redis.call('HGET', ledger.key, '${COUNTED_MARK}' .. t) or ''
    ledger.marks[t] = bits
  end
  return bits
end
local function counted(ledger, t, i)
  local at = math.floor(i / 4) + 1
  local digit = tonumber(string.sub(marks(ledger, t), at, at), 16) or 0
  return bit.band(digit, bit.lshift(1, i % 4)) ~= 0
end
local function markCounted(ledger, t, i)
  local bits = marks(ledger, t)
  local at = math.floor(i / 4) + 1
  if #bits < at then bits = bits .. string.rep('0', at - #bits) end
  local digit = bit.bor(tonumber(string.sub(bits, at, at), 16), bit.lshift(1, i % 4))
  ledger.marks[t] = string.sub(bits, 1, at - 1) .. string.format('%x', digit) .. string.sub(bits, at + 1)
  ledger.marked[t] = true
end
local function merge(buckets, encoded)
  for entry in string.gmatch(encoded, '[^;]+') do
    local bucket, revision = string.match(entry, '^([^,]*),(%d+),')
    local held = buckets[bucket]
    if held == nil or tonumber(string.match(held, '^[^,]*,(%d+),')) <= tonumber(revision) then buckets[bucket] = entry end
  end
end
for c = 0, nc - 1 do
  local a = contributionsAt + stride * c
  local done, cell = KEYS[4 + np + 2 * c], KEYS[5 + np + 2 * c]
  local ledger, field, cost = ledgers[tonumber(ARGV[a])], ARGV[a + 1], tonumber(ARGV[a + 2])
  local t, index, history = ARGV[a + 8], tonumber(ARGV[a + 9]), ARGV[a + 10] == 'h'
  local outcome
  if redis.call('EXISTS', done) == 1 then
    outcome = 'late'
  else
    local held = ledger.charged[field]
    local fresh = not held
    if history and (not fresh or counted(ledger, t, index)) then
      fresh = false
      -- Counted for this window already: only the history cell that holds them takes more of their data.
      if redis.call('HEXISTS', cell, ARGV[a + 6]) == 0 then outcome = 'counted' end
    elseif not history and held and string.sub(held, -1) == 'h' then
      -- Counted in a history cell by a replica whose clock had passed the live cell's close.
      outcome = 'counted'
    end
    if fresh and outcome == nil then
      ledger.init = true
      if cost > 0 and ledger.spent + cost > budget then
        if withhold(ledger, field) then
          withheld = withheld + 1
          ledger.expire, ledger.dated = true, true
          outcome = 'withheld'
        else
          outcome = 'withheld_again'
        end
      else
        charge(ledger, field, cost, history and 'h' or nil)
        markCounted(ledger, t, index)
        ledger.expire, ledger.dated = true, true
        joined = joined + 1
      end
    end
    if outcome == nil then
      local member = ARGV[a + 6]
      local buckets = {}
      merge(buckets, redis.call('HGET', cell, member) or '')
      merge(buckets, ARGV[a + 7])
      local entries = {}
      for _, entry in pairs(buckets) do entries[#entries + 1] = entry end
      table.sort(entries)
      redis.call('HSET', cell, member, table.concat(entries, ';'))
      redis.call('PEXPIREAT', cell, ARGV[a + 5])
      redis.call('ZADD', KEYS[3], 'NX', ARGV[a + 4], ARGV[a + 3])
      outcome = fresh and 'joined' or 'updated'
    end
  end
  out[#out + 1] = outcome
end
local summary = {}
for i = 1, np do
  local ledger = ledgers[i]
  if ledger.init then
    local fields = ledger.writes
    if not ledger.hasBudget then table.insert(fields, 'budget'); table.insert(fields, ARGV[1]) end
    if not ledger.hadSpent or ledger.spent ~= ledger.spentBefore then table.insert(fields, 'spent'); table.insert(fields, string.format('%d', ledger.spent)) end
    if ledger.recordsCharged then table.insert(fields, '${RECORDS_SPENT_FIELD}'); table.insert(fields, string.format('%d', ledger.spentRecords)) end
    for t in pairs(ledger.marked) do table.insert(fields, '${COUNTED_MARK}' .. t); table.insert(fields, ledger.marks[t]) end
    for from = 1, #fields, 1000 do redis.call('HSET', ledger.key, unpack(fields, from, math.min(#fields, from + 999))) end
  end
  if ledger.expire then redis.call('EXPIRE', ledger.key, ARGV[2]) end
  if ledger.dated then table.insert(summary, '${PRIVACY_PERIOD_FIELD_PREFIX}' .. ledger.period); table.insert(summary, ARGV[3]) end
end
if #summary > 0 then redis.call('HSET', KEYS[2], unpack(summary)) end
if withheld > 0 then redis.call('HINCRBY', KEYS[2], '${PRIVACY_TOTAL_FIELDS.withheldForBudget}', withheld) end
if joined > 0 then redis.call('HINCRBY', KEYS[2], '${PRIVACY_TOTAL_FIELDS.cohortContributions}', joined) end
if #summary > 0 or withheld > 0 or joined > 0 then redis.call('EXPIRE', KEYS[2], ARGV[2]) end
return out
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

/**
 * `withheld`: refused for budget, counted; `withheld_again`: a retry of one already counted;
 * `counted`: the person is already counted in another cell of this type and window (live or history).
 */
export type ContributionOutcome = 'joined' | 'updated' | 'late' | 'withheld' | 'withheld_again' | 'counted'

/** What a release granted: records by outcome (`withheldBefore`: a retry of one already counted), contributions in order. */
export interface ReleaseOutcome {
  readonly granted: CandidateRecord[]
  readonly withheld: CandidateRecord[]
  readonly withheldBefore: CandidateRecord[]
  readonly outcomes: ContributionOutcome[]
}

export class PrivacyStore {
  private readonly scripts = new Map<string, string>()

  constructor(
    private readonly redis: RedisConnection,
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

  /**
   * Charges a person's noisy records and adds their cohort contributions in one call (see RELEASE):
   * records without noise cost nothing and always pass; a contribution to a cell past its close
   * time is late without asking Redis. Answers undefined, having written nothing, if the person is
   * marked erased under `erasedToken`.
   */
  async release(
    userId: string,
    candidates: readonly CandidateRecord[],
    contributions: readonly CohortContribution[],
    now: number,
    erasedToken?: string,
  ): Promise<ReleaseOutcome | undefined> {
    const granted: CandidateRecord[] = []
    const withheld: CandidateRecord[] = []
    const withheldBefore: CandidateRecord[] = []
    const outcomes: ContributionOutcome[] = contributions.map(() => 'late')
    const periods = new Map<string, number>()
    const periodOf = (period: string): string => {
      let index = periods.get(period)
      if (index === undefined) periods.set(period, (index = periods.size + 1))
      return String(index)
    }
    const charged = candidates.filter((c) => c.epsilon > 0)
    const open = contributions.flatMap((contribution, i) => {
      const closeAt = contribution.history?.batchEndMs ?? this.closeAt(contribution.endMs)
      return now >= closeAt ? [] : [{ contribution, i, closeAt }]
    })
    const recordArgs = charged.flatMap((c) => [periodOf(c.period), c.chargeField, String(Math.round(c.epsilon * MICRO_EPSILON))])
    const contributionKeys: string[] = []
    const contributionArgs: string[] = []
    for (const { contribution, closeAt } of open) {
      contributionKeys.push(this.key('done', contribution.cell), this.key('cell', contribution.cell))
      contributionArgs.push(
        periodOf(contribution.period),
        contribution.chargeField,
        String(Math.round(contribution.epsilon * MICRO_EPSILON)),
        contribution.cell,
        String(closeAt),
        String(closeAt + CELL_SAFETY_MS),
        contribution.member,
        encodeBuckets(contribution.type, contribution.startMs, contribution.buckets),
        contribution.type,
        String(contribution.windowIndex),
        contribution.history === undefined ? 'l' : 'h',
      )
    }
    const answer =
      periods.size === 0 && erasedToken === undefined
        ? [0]
        : ((await this.run(
            RELEASE,
            [
              this.erasedKey(erasedToken ?? ''),
              privacyKey(this.prefix, userId),
              this.openKey,
              ...[...periods.keys()].map((period) => privacyBudgetKey(this.prefix, userId, period)),
              ...contributionKeys,
            ],
            [
              String(this.budgetMicro),
              String(this.ledgerTtlSeconds),
              dayOf(now),
              String(this.recordsCapMicro),
              String(periods.size),
              String(charged.length),
              String(open.length),
              ...periods.keys(),
              ...recordArgs,
              ...contributionArgs,
            ],
          )) as (number | ContributionOutcome)[])
    if (answer[0] === 1) return undefined
    for (const candidate of candidates) if (candidate.epsilon <= 0) granted.push(candidate)
    charged.forEach((candidate, i) => {
      const outcome = answer[1 + i]
      ;(outcome === 1 ? granted : outcome === 0 ? withheld : withheldBefore).push(candidate)
    })
    open.forEach(({ i }, j) => (outcomes[i] = answer[1 + charged.length + j] as ContributionOutcome))
    return { granted, withheld, withheldBefore, outcomes }
  }

  /** Charges noisy records to the person's budget; records without noise cost nothing and always pass. */
  async chargeRecords(
    userId: string,
    candidates: readonly CandidateRecord[],
    now = Date.now(),
  ): Promise<{ granted: CandidateRecord[]; withheld: CandidateRecord[]; withheldBefore: CandidateRecord[] }> {
    const { granted, withheld, withheldBefore } = (await this.release(userId, candidates, [], now))!
    return { granted, withheld, withheldBefore }
  }

  /** Adds a person's buckets to a cohort cell, unless the cell has closed or their budget is spent. */
  async contribute(userId: string, contribution: CohortContribution, now: number): Promise<ContributionOutcome> {
    return (await this.release(userId, [], [contribution], now))!.outcomes[0]!
  }

  /** When a window's live cell closes: its end plus the grace period for late data. */
  closeAt(windowEndMs: number): number {
    return cohortCloseAt(this.policy, windowEndMs)
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
      const [type, start, end, batch] = name.split(':')
      cells.push({
        type: type as DataTypeKey,
        startMs: Number(start),
        endMs: Number(end),
        ...(batch === undefined ? {} : { batchStartMs: Number(batch) }),
        entries: await this.redis.hgetall(this.key('closing', name)),
      })
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
    await this.redis.set(this.erasedKey(token), '1', 'EX', ttlS)
  }

  async isErased(token: string): Promise<boolean> {
    return (await this.redis.exists(this.erasedKey(token))) === 1
  }

  private erasedKey(token: string): string {
    return `${this.prefix}:cohort:erased:${token}`
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

export function cellName(cell: { type: string; startMs: number; endMs: number; batchStartMs?: number }): string {
  return `${cell.type}:${cell.startMs}:${cell.endMs}${cell.batchStartMs === undefined ? '' : `:${cell.batchStartMs}`}`
}
