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
  erasePrivacyLedger,
  privacyBudgetKey,
  privacyKey,
  privacyLogKey,
  type DataTypeKey,
} from '@fitstream/shared'
import { cohortCloseAt, legacyMemberToken, type CandidateRecord, type CohortContribution } from './anonymize.js'
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
 * In a budget hash: `h~<type>`, the same bitmap for the windows in which the person was counted in a
 * history cell, so that a replica whose clock still shows the live cell open keeps them out of it.
 * A cohort charge is a bit in these and one more in `charges`: no field of its own (ledgers written
 * before hold `c|<type>|<startMs>` fields, still read, their value ending in `h` for a history cell).
 */
const HISTORY_MARK = 'h~'

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
 * half-land. A person already counted for a (type, window) (marked in COUNTED_MARK, or charged in a
 * ledger written before) joins no other cell of it: a history contribution to a cell that does not
 * hold them, or a live one from someone counted in a history cell (HISTORY_MARK, or a charge whose
 * value ends in `h`), is `counted`, so the live cell and the history cells of a window hold disjoint
 * people; a contribution to the window they are counted in is an update, never paid again. Each budget
 * hash is read in one HMGET (its totals, the charges asked about and the types' marks) and
 * written once, the done markers are checked in one EXISTS, and a person's first contribution to a
 * cell is written without reading the cell: a day of five types is some 35 commands.
 *
 * With ARGV[8] set (the release time, ISO 8601), it also writes the person's release log (a line per
 * kind and type, see encodePrivacyLogLine: the records granted, the cells joined, what was withheld)
 * and counts in their totals the records granted (ARGV[9] of them cost nothing: their spans come
 * ready, ARGV[13] of them) and the late contributions (ARGV[10] of them known late before the call);
 * the answer then ends with the totals' `compactedAt`.
 *
 * KEYS: erased marker, totals, open cells, release log, a budget hash per period, then a done marker and a cell per contribution.
 * ARGV: budget, ledger TTL, today, records' cap, #periods, #records, #contributions, release time or '',
 * free records, late before, release time in base 36, log length, #free spans, the period names, per
 * free span (type, start, end, count), per record (period index, charge field, cost, type, start, end),
 * per contribution (period index, charge field, cost, cell, close at, cell expiry, member, buckets,
 * type, window index, `h` for a history cell or `l`, start, end, the member's token as cells written
 * before hold it). Answers 1 if erased, else 0 followed
 * by each record's outcome (1 granted, 0 withheld, 2 withheld before) and each contribution's.
 */
const RELEASE = `
if redis.call('EXISTS', KEYS[1]) == 1 then return {1} end
local budget = tonumber(ARGV[1])
local cap = tonumber(ARGV[4])
local np, nr, nc = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local releasedAt = ARGV[8]
local nf = tonumber(ARGV[13])
local periodsAt = 14
local freeAt = periodsAt + np
local recordsAt = freeAt + 4 * nf
local contributionsAt = recordsAt + 6 * nr
local stride = 14
local ledgers = {}
local asked = {}
for i = 1, np do
  ledgers[i] = { key = KEYS[4 + i], period = ARGV[periodsAt + i - 1], charged = {}, writes = {}, init = false, expire = false,
    dated = false, marks = {}, marked = {}, recordsCharged = false }
  asked[i] = { 'budget', 'spent', '${RECORDS_SPENT_FIELD}', '${PRIVACY_BUDGET_CHARGES_FIELD}' }
end
local markAsked = {}
for i = 1, np do markAsked[i] = {} end
for r = 0, nr - 1 do local a = recordsAt + 6 * r; table.insert(asked[tonumber(ARGV[a])], ARGV[a + 1]) end
for c = 0, nc - 1 do
  local a = contributionsAt + stride * c
  local i, t = tonumber(ARGV[a]), ARGV[a + 8]
  table.insert(asked[i], ARGV[a + 1])
  if not markAsked[i][t] then
    markAsked[i][t] = true
    table.insert(asked[i], '${COUNTED_MARK}' .. t)
    table.insert(asked[i], '${HISTORY_MARK}' .. t)
  end
end
-- Each ledger's totals, the charges asked about and the counted marks, in one HMGET per period.
for i = 1, np do
  local ledger, fields, held = ledgers[i], asked[i], {}
  for from = 1, #fields, 500 do
    local upto = math.min(#fields, from + 499)
    local found = redis.call('HMGET', ledger.key, unpack(fields, from, upto))
    for j = from, upto do held[fields[j]] = found[j - from + 1] end
  end
  ledger.hasBudget, ledger.hadSpent = held['budget'] ~= false, held['spent'] ~= false
  ledger.spent = tonumber(held['spent'] or '0')
  ledger.spentBefore = ledger.spent
  ledger.spentRecords = tonumber(held['${RECORDS_SPENT_FIELD}'] or '0')
  ledger.charges, ledger.newCharges = tonumber(held['${PRIVACY_BUDGET_CHARGES_FIELD}'] or '0'), 0
  for j = 5, #fields do
    local field = fields[j]
    if not string.find(field, '|', 1, true) then ledger.marks[field] = held[field] or ''
    elseif held[field] then ledger.charged[field] = held[field] end
  end
end
local withheld, joined, late = 0, 0, tonumber(ARGV[10])
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
-- The release log's spans: per kind, per type (in the order they first come), the interval covered,
-- how many and the epsilon (micro) they cost.
local function spans() return { byType = {} } end
local releasedSpans, joinedSpans, heldSpans = spans(), spans(), spans()
local function widen(list, t, s, e, n, micro)
  local span = list.byType[t]
  if span == nil then
    span = { t = t, s = s, e = e, n = n, m = micro }
    list.byType[t] = span
    list[#list + 1] = span
  else
    if s < span.s then span.s = s end
    if e > span.e then span.e = e end
    span.n = span.n + n
    span.m = span.m + micro
  end
end
for f = 0, nf - 1 do
  local a = freeAt + 4 * f
  widen(releasedSpans, ARGV[a], tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3]), 0)
end
local out = {0}
local grantedRecords = tonumber(ARGV[9])
for r = 0, nr - 1 do
  local a = recordsAt + 6 * r
  local ledger, field, cost = ledgers[tonumber(ARGV[a])], ARGV[a + 1], tonumber(ARGV[a + 2])
  local t, s, e = ARGV[a + 3], tonumber(ARGV[a + 4]), tonumber(ARGV[a + 5])
  ledger.init, ledger.expire, ledger.dated = true, true, true
  if ledger.charged[field] then
    out[#out + 1] = 1
    grantedRecords = grantedRecords + 1
    widen(releasedSpans, t, s, e, 1, cost)
  elseif ledger.spent + cost > budget or ledger.spentRecords + cost > cap then
    if withhold(ledger, field) then
      withheld = withheld + 1
      out[#out + 1] = 0
      widen(heldSpans, t, s, e, 1, 0)
    else
      out[#out + 1] = 2
    end
  else
    charge(ledger, field, cost)
    ledger.spentRecords = ledger.spentRecords + cost
    ledger.recordsCharged = true
    out[#out + 1] = 1
    grantedRecords = grantedRecords + 1
    widen(releasedSpans, t, s, e, 1, cost)
  end
end
-- A bitmap field (COUNTED_MARK or HISTORY_MARK and the type): window i is bit i % 4 of hex digit i / 4.
local function marks(ledger, field)
  local bits = ledger.marks[field]
  if bits == nil then
    bits = redis.call('HGET', ledger.key, field) or ''
    ledger.marks[field] = bits
  end
  return bits
end
local function marked(ledger, field, i)
  local at = math.floor(i / 4) + 1
  local digit = tonumber(string.sub(marks(ledger, field), at, at), 16) or 0
  return bit.band(digit, bit.lshift(1, i % 4)) ~= 0
end
local function mark(ledger, field, i)
  local bits = marks(ledger, field)
  local at = math.floor(i / 4) + 1
  if #bits < at then bits = bits .. string.rep('0', at - #bits) end
  local digit = bit.bor(tonumber(string.sub(bits, at, at), 16), bit.lshift(1, i % 4))
  ledger.marks[field] = string.sub(bits, 1, at - 1) .. string.format('%x', digit) .. string.sub(bits, at + 1)
  ledger.marked[field] = true
end
local digits36 = '0123456789abcdefghijklmnopqrstuvwxyz'
local function base36(n)
  if n < 0 then return '-' .. base36(-n) end
  local text = ''
  repeat
    local d = n % 36
    text = string.sub(digits36, d + 1, d + 1) .. text
    n = (n - d) / 36
  until n == 0
  return text
end
-- An entry's bucket and revision; an entry of the earlier layout is rewritten in the current one.
local function parse(entry)
  local name, revision = string.match(entry, '^([^.@=,]*)%.?(%d*)[@=]')
  if name then return name, tonumber(revision) or 0, entry end
  local start, length, rev, band, values = string.match(entry, '^(%-?%d+)/(%d+),(%d+),([^,]*),?(.*)$')
  if start == nil then return nil end
  length = tonumber(length)
  name = base36(tonumber(start)) .. (length == 60 and '' or '+' .. base36(length))
  rev = tonumber(rev)
  values = string.gsub(values, ',+$', '')
  return name, rev, name .. (rev == 0 and '' or '.' .. rev) .. (band == '' and '' or '@' .. band) .. '=' .. values
end
local function merge(buckets, encoded)
  for entry in string.gmatch(encoded, '[^;]+') do
    local name, revision, current = parse(entry)
    if name then
      local held = buckets[name]
      if held == nil or held[1] <= revision then buckets[name] = { revision, current } end
    end
  end
end
local anyDone = false
for c = 0, nc - 1, 500 do
  local keys = {}
  for j = c, math.min(nc - 1, c + 499) do keys[#keys + 1] = KEYS[5 + np + 2 * j] end
  if redis.call('EXISTS', unpack(keys)) > 0 then anyDone = true end
end
for c = 0, nc - 1 do
  local a = contributionsAt + stride * c
  local done, cell = KEYS[5 + np + 2 * c], KEYS[6 + np + 2 * c]
  local ledger, field, cost = ledgers[tonumber(ARGV[a])], ARGV[a + 1], tonumber(ARGV[a + 2])
  local t, index, history = ARGV[a + 8], tonumber(ARGV[a + 9]), ARGV[a + 10] == 'h'
  local s, e = tonumber(ARGV[a + 11]), tonumber(ARGV[a + 12])
  local outcome
  if anyDone and redis.call('EXISTS', done) == 1 then
    outcome = 'late'
    late = late + 1
  else
    local held = ledger.charged[field]
    local fresh = not held and not marked(ledger, '${COUNTED_MARK}' .. t, index)
    if history and not fresh then
      -- Counted for this window already: only the history cell that holds them takes more of their data.
      if redis.call('HEXISTS', cell, ARGV[a + 6]) == 0 and redis.call('HEXISTS', cell, ARGV[a + 13]) == 0 then outcome = 'counted' end
    elseif not history and ((held and string.sub(held, -1) == 'h') or marked(ledger, '${HISTORY_MARK}' .. t, index)) then
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
          widen(heldSpans, t, s, e, 1, 0)
        else
          outcome = 'withheld_again'
        end
      else
        ledger.charged[field] = string.format('%d', cost) .. (history and 'h' or '')
        ledger.spent = ledger.spent + cost
        ledger.newCharges = ledger.newCharges + 1
        mark(ledger, '${COUNTED_MARK}' .. t, index)
        if history then mark(ledger, '${HISTORY_MARK}' .. t, index) end
        ledger.expire, ledger.dated = true, true
        joined = joined + 1
        widen(joinedSpans, t, s, e, 1, cost)
      end
    end
    if outcome == nil then
      local member = ARGV[a + 6]
      if fresh then
        -- Charged only now, so the cell holds nothing of theirs yet: their buckets go in as they came.
        redis.call('HSET', cell, member, ARGV[a + 7])
      else
        local buckets = {}
        local stored = redis.call('HGET', cell, member)
        if not stored then
          -- Held under their token as cells written before named it: moved to the current one.
          stored = redis.call('HGET', cell, ARGV[a + 13])
          if stored then redis.call('HDEL', cell, ARGV[a + 13]) end
        end
        merge(buckets, stored or '')
        merge(buckets, ARGV[a + 7])
        local entries = {}
        for _, entry in pairs(buckets) do entries[#entries + 1] = entry[2] end
        table.sort(entries)
        redis.call('HSET', cell, member, table.concat(entries, ';'))
      end
      -- The expiry is the same for every contribution to the cell: set when the cell opens, or when a
      -- first member recreates a cell whose last member was erased (Redis dropped the hash and its expiry).
      local opened = redis.call('ZADD', KEYS[3], 'NX', ARGV[a + 4], ARGV[a + 3]) == 1
      if opened or (fresh and redis.call('PTTL', cell) == -1) then redis.call('PEXPIREAT', cell, ARGV[a + 5]) end
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
    if ledger.newCharges > 0 then
      table.insert(fields, '${PRIVACY_BUDGET_CHARGES_FIELD}')
      table.insert(fields, string.format('%d', ledger.charges + ledger.newCharges))
    end
    for field in pairs(ledger.marked) do table.insert(fields, field); table.insert(fields, ledger.marks[field]) end
    for from = 1, #fields, 1000 do redis.call('HSET', ledger.key, unpack(fields, from, math.min(#fields, from + 999))) end
  end
  if ledger.expire then redis.call('EXPIRE', ledger.key, ARGV[2]) end
  if ledger.dated then table.insert(summary, '${PRIVACY_PERIOD_FIELD_PREFIX}' .. ledger.period); table.insert(summary, ARGV[3]) end
end
local logged = releasedAt ~= ''
if logged and grantedRecords > 0 then table.insert(summary, '${PRIVACY_TOTAL_FIELDS.lastReleaseAt}'); table.insert(summary, releasedAt) end
local touched = #summary > 0
if touched then redis.call('HSET', KEYS[2], unpack(summary)) end
local function add(field, n)
  if n > 0 then redis.call('HINCRBY', KEYS[2], field, n); touched = true end
end
add('${PRIVACY_TOTAL_FIELDS.withheldForBudget}', withheld)
add('${PRIVACY_TOTAL_FIELDS.cohortContributions}', joined)
if logged then
  add('${PRIVACY_TOTAL_FIELDS.recordsReleased}', grantedRecords)
  add('${PRIVACY_TOTAL_FIELDS.lateContributions}', late)
end
if touched then redis.call('EXPIRE', KEYS[2], ARGV[2]) end
if logged then
  -- One line per span, as encodePrivacyLogLine writes it; epsilon as its decimal, without trailing zeros.
  local function epsilon(micro)
    local whole, fraction = math.floor(micro / 1000000), micro % 1000000
    if fraction == 0 then return string.format('%d', whole) end
    return string.format('%d', whole) .. '.' .. string.gsub(string.format('%06d', fraction), '0+$', '')
  end
  local function interval(s, e)
    if s % 60000 == 0 and e % 60000 == 0 and e >= s then return base36(s / 60000) .. '|+' .. base36((e - s) / 60000) end
    return base36(s) .. '|' .. base36(e)
  end
  local lines = {}
  for _, entry in ipairs({ { 'r', releasedSpans }, { 'c', joinedSpans }, { 'w', heldSpans } }) do
    for _, span in ipairs(entry[2]) do
      lines[#lines + 1] = ARGV[11] .. '|' .. entry[1] .. '|' .. span.t .. '|' .. interval(span.s, span.e) .. '|' ..
        string.format('%d', span.n) .. '|' .. epsilon(span.m)
    end
  end
  if #lines > 0 then
    redis.call('LPUSH', KEYS[4], unpack(lines))
    redis.call('LTRIM', KEYS[4], 0, tonumber(ARGV[12]) - 1)
    redis.call('EXPIRE', KEYS[4], ARGV[2])
  end
  out[#out + 1] = redis.call('HGET', KEYS[2], '${PRIVACY_COMPACTED_AT_FIELD}') or '0'
end
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
  /** When the person's finished periods were last compacted (ms; 0 never), where the release counted the totals. */
  readonly compactedAt?: number
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
    /** Write the release log and count the granted records and late contributions in the totals too (the anonymize job's release). */
    totals = false,
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
    const recordArgs = charged.flatMap((c) => [
      periodOf(c.period),
      c.chargeField,
      String(Math.round(c.epsilon * MICRO_EPSILON)),
      c.record.type,
      String(c.startMs),
      String(c.endMs),
    ])
    // Records that cost nothing are granted whatever the ledger holds: their log spans are known here.
    const freeSpans = new Map<string, { startMs: number; endMs: number; count: number }>()
    if (totals) {
      for (const candidate of candidates) {
        if (candidate.epsilon > 0) continue
        const span = freeSpans.get(candidate.record.type)
        if (span === undefined) freeSpans.set(candidate.record.type, { startMs: candidate.startMs, endMs: candidate.endMs, count: 1 })
        else {
          span.startMs = Math.min(span.startMs, candidate.startMs)
          span.endMs = Math.max(span.endMs, candidate.endMs)
          span.count++
        }
      }
    }
    const freeArgs = [...freeSpans].flatMap(([type, span]) => [type, String(span.startMs), String(span.endMs), String(span.count)])
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
        encodeBuckets(contribution.type, contribution.startMs, contribution.buckets, this.policy.types[contribution.type]?.cohort),
        contribution.type,
        String(contribution.windowIndex),
        contribution.history === undefined ? 'l' : 'h',
        String(contribution.startMs),
        String(contribution.endMs),
        legacyMemberToken(contribution.member),
      )
    }
    const free = candidates.length - charged.length
    const lateBefore = contributions.length - open.length
    const answer =
      periods.size === 0 && erasedToken === undefined && !(totals && (free > 0 || lateBefore > 0))
        ? [0]
        : ((await this.run(
            RELEASE,
            [
              this.erasedKey(erasedToken ?? ''),
              privacyKey(this.prefix, userId),
              this.openKey,
              privacyLogKey(this.prefix, userId),
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
              totals ? new Date(now).toISOString() : '',
              String(free),
              String(lateBefore),
              now.toString(36),
              String(PRIVACY_LOG_LENGTH),
              String(freeSpans.size),
              ...periods.keys(),
              ...freeArgs,
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
    const compactedAt = totals ? Number(answer[1 + charged.length + open.length] ?? 0) : undefined
    return { granted, withheld, withheldBefore, outcomes, ...(compactedAt === undefined ? {} : { compactedAt }) }
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
        // Under the token either as it is or as cells written before hold it.
        const member = memberOf(cell)
        pipeline.hdel(this.key('cell', cell), member, legacyMemberToken(member))
        pipeline.hdel(this.key('closing', cell), member, legacyMemberToken(member))
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

  /** Compacts the person's finished budget periods once a day (see compactPeriods); `compactedAt` as `release` answered it. */
  async compactIfDue(userId: string, compactedAt: number, now = Date.now()): Promise<void> {
    if (now - compactedAt >= DAY_MS) await this.compactPeriods(userId, now)
  }

  /**
   * Drops the per-charge fields of the person's budget periods that have been over, and had no
   * charge, for COMPACT_AFTER_MS; their budget, spending and number of charges stay for the report.
   * Without this every period kept a field per record charge for the ledger's 400 days: for a person
   * who opted in to noisy hourly records of a type, some 700 a month (25 KB); compacted, 0.1 KB.
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
