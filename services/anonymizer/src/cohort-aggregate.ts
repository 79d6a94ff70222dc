import { dataType, hmacHex, type CohortRecord, type DataTypeKey } from '@fitstream/shared'
import { countEpsilon, releaseThreshold } from './accounting.js'
import { bandFloor, clamp, combine, mostFrequent, type AnonymizerKeys, type CohortBucket } from './anonymize.js'
import { fromUnits, noisyUnits, prfRandomSource, toUnits } from './noise.js'
import type { CohortRule, PrivacyPolicy } from './policy.js'

/**
 * How a person's buckets are stored in a cohort cell's Redis hash: one field per person (their
 * member token) holding all of their buckets in the cell, as entries joined by `;`. An entry is
 * `<start>[+<length>][.<revision>][@<band>]=<v0>,<v1>,…`: the bucket's start in minutes after the
 * cell's start and its length in minutes (left out when an hour), both in base 36; the revision left
 * out when 0, the band when none; values in the data type's field order, trailing empty ones left out.
 * The same bucket arriving again replaces itself: the store merges entries in Lua, keeping the newest
 * revision of each. Cells written before hold `<start>/<length>,<revision>,<band>,<v0>,…` entries
 * (decimal minutes), which both the store's merge and `decodeBuckets` still read.
 *
 * With the cohort rule, a value keeps a thousandth of its field's grid: far below what a cell releases
 * (a mean on that grid, after noise of many grid steps), and `79.333` takes 6 bytes where
 * `79.3333333` took 10. Without it, nine significant digits.
 */
export function encodeBuckets(type: DataTypeKey, cellStartMs: number, buckets: readonly CohortBucket[], rule?: CohortRule): string {
  const decimals = storedDecimalsOf(type, rule)
  let encoded = ''
  for (const bucket of buckets) {
    const dash = bucket.bucket.indexOf('-', 1)
    const start = Number(bucket.bucket.slice(0, dash))
    const end = Number(bucket.bucket.slice(dash + 1))
    const offset = Math.round((start - cellStartMs) / 60_000)
    const length = Math.round((end - start) / 60_000)
    let entry = length === 60 ? offset.toString(36) : `${offset.toString(36)}+${length.toString(36)}`
    if (bucket.revision !== 0) entry += `.${bucket.revision}`
    if (bucket.band !== undefined) entry += `@${bucket.band}`
    entry += '='
    let values = ''
    let kept = 0
    decimals.forEach(([field, places], i) => {
      const value = bucket.values[field]
      if (value === undefined) return
      values += ','.repeat(i - kept) + String(places === undefined ? Number(value.toPrecision(9)) : Number(value.toFixed(places)))
      kept = i
    })
    encoded += (encoded === '' ? '' : ';') + entry + values
  }
  return encoded
}

/** Per cohort rule (or data type, without one): each field and the decimals its values are stored with. */
const storedDecimals = new WeakMap<object, readonly (readonly [string, number | undefined])[]>()

function storedDecimalsOf(type: DataTypeKey, rule: CohortRule | undefined): readonly (readonly [string, number | undefined])[] {
  const spec = dataType(type)
  const cacheKey = rule ?? spec
  let decimals = storedDecimals.get(cacheKey)
  if (decimals === undefined) {
    decimals = spec.fields.map((field) => {
      const bounds = rule?.fields[field.name]
      if (bounds === undefined) return [field.name, undefined] as const
      const grid = bounds.round ?? defaultGrid(type, field.name)
      return [field.name, Math.min(12, Math.max(0, Math.ceil(3 - Math.log10(grid) - 1e-9)))] as const
    })
    storedDecimals.set(cacheKey, decimals)
  }
  return decimals
}

/** A person's buckets as `encodeBuckets` wrote them (either layout): each bucket once, its newest revision (as the store merges). */
export function decodeBuckets(type: DataTypeKey, encoded: string): { values: Record<string, number>; band?: string }[] {
  const fields = dataType(type).fields.map((f) => f.name)
  const newest = new Map<string, { revision: number; values: Record<string, number>; band?: string }>()
  for (const entry of encoded.split(';')) {
    const parsed = entry.includes('=') ? parseEntry(entry) : parseLegacyEntry(entry)
    if (parsed === undefined || (newest.get(parsed.name)?.revision ?? -1) > parsed.revision) continue
    const values: Record<string, number> = {}
    parsed.raw.forEach((text, i) => {
      const value = text === '' ? Number.NaN : Number(text)
      if (fields[i] !== undefined && Number.isFinite(value)) values[fields[i]] = value
    })
    newest.set(parsed.name, parsed.band === '' ? { revision: parsed.revision, values } : { revision: parsed.revision, values, band: parsed.band })
  }
  return [...newest.values()].map(({ values, band }) => (band === undefined ? { values } : { values, band }))
}

interface ParsedEntry {
  /** `<start>/<length>` in decimal minutes, whichever layout the entry came in. */
  readonly name: string
  readonly revision: number
  readonly band: string
  readonly raw: string[]
}

function parseEntry(entry: string): ParsedEntry | undefined {
  const match = /^(-?[0-9a-z]+)(?:\+([0-9a-z]+))?(?:\.(\d+))?(?:@([^=]*))?=(.*)$/.exec(entry)
  if (match === null) return undefined
  const length = match[2] === undefined ? 60 : parseInt(match[2], 36)
  return { name: `${parseInt(match[1]!, 36)}/${length}`, revision: Number(match[3] ?? 0), band: match[4] ?? '', raw: match[5]!.split(',') }
}

function parseLegacyEntry(entry: string): ParsedEntry | undefined {
  const [name = '', revisionText = '', band = '', ...raw] = entry.split(',')
  const revision = Number(revisionText)
  if (name === '' || !Number.isInteger(revision)) return undefined
  return { name, revision, band, raw }
}

export interface ClosedCell {
  readonly type: DataTypeKey
  readonly startMs: number
  readonly endMs: number
  /** Set for a history cell: the start of the batch it collected contributions in. */
  readonly batchStartMs?: number
  /** The cell's hash: member token → encoded buckets (or `member|bucket` → one bucket, as cells written before). */
  readonly entries: Readonly<Record<string, string>>
}

export type SuppressionReason = 'under_k' | 'noisy_count_under_threshold'

export interface CellOutcome {
  readonly released: CohortRecord[]
  readonly suppressed: { readonly band?: string; readonly reason: SuppressionReason }[]
  /** Distinct contributors over all bands (for logs; never released as such). */
  readonly contributors: number
}

interface Member {
  readonly values: Record<string, number>
  readonly band: string | undefined
}

/**
 * Turns a closed cell into cohort records: one per band that at least k distinct people reached and
 * whose noisy contributor count reached the release threshold (k plus a margin set by epsilon and
 * delta: DP partition selection, so k − 1 fake users can't tell from a cell's appearance whether
 * their target joined it). Each person counts once, with their own buckets combined and their
 * contribution clamped to the policy's bounds; each field's sum gets discrete Laplace noise; values
 * are means per contributor.
 */
export function aggregateCell(cell: ClosedCell, policy: PrivacyPolicy, keys: AnonymizerKeys): CellOutcome {
  const rule = policy.types[cell.type]?.cohort
  if (rule === undefined) return { released: [], suppressed: [], contributors: 0 }
  const members = membersOf(cell, rule)
  const bands = new Map<string | undefined, Member[]>()
  for (const member of members) {
    const group = bands.get(member.band)
    if (group === undefined) bands.set(member.band, [member])
    else group.push(member)
  }

  const released: CohortRecord[] = []
  const suppressed: CellOutcome['suppressed'] = []
  const k = policy.cohorts.k
  const { threshold } = releaseThreshold(policy, rule)
  const fields = Object.keys(rule.fields).sort()
  for (const [band, group] of [...bands.entries()].sort((a, b) => (a[0] ?? '').localeCompare(b[0] ?? ''))) {
    // The hard rule: fewer than k real people, nothing leaves, whatever the noise would say.
    if (group.length < k) {
      suppressed.push({ ...(band === undefined ? {} : { band }), reason: 'under_k' })
      continue
    }
    const history = cell.batchStartMs === undefined ? '' : `|history|${cell.batchStartMs}`
    const id = hmacHex(keys.pseudonym, `fitstream/cohort/v1|${cell.type}|${cell.startMs}|${cell.endMs}|${band ?? ''}${history}`).slice(0, 32)
    const rng = rule.epsilon === undefined ? undefined : prfRandomSource(keys.noise, `cohort|${id}`)
    const share = countEpsilon(rule)
    const contributors = rng === undefined || share === undefined ? group.length : noisyUnits(group.length, { sensitivityUnits: 1, epsilon: share }, rng)
    if (contributors < threshold) {
      suppressed.push({ ...(band === undefined ? {} : { band }), reason: 'noisy_count_under_threshold' })
      continue
    }
    const values: Record<string, number> = {}
    for (const name of fields) {
      const bounds = rule.fields[name]!
      const grid = bounds.round ?? defaultGrid(cell.type, name)
      const [lo, hi] = [toUnits(bounds.clamp[0], grid), toUnits(bounds.clamp[1], grid)]
      let sum = 0
      // A field a person's buckets lack (no REM minutes that day) counts as 0, held within the bounds.
      for (const member of group) sum += clamp(toUnits(member.values[name] ?? 0, grid), lo, hi)
      if (rng !== undefined && share !== undefined) sum = noisyUnits(sum, { sensitivityUnits: Math.max(Math.abs(lo), Math.abs(hi)), epsilon: share }, rng)
      values[name] = fromUnits(clamp(Math.round(sum / contributors), lo, hi), grid)
    }
    released.push({
      id,
      type: cell.type,
      start: new Date(cell.startMs).toISOString(),
      end: new Date(cell.endMs).toISOString(),
      ...(band === undefined ? {} : { band }),
      ...(cell.batchStartMs === undefined ? {} : { release: 'history' as const, batch: new Date(cell.batchStartMs).toISOString().slice(0, 10) }),
      contributors,
      values,
      unit: dataType(cell.type).unit,
    })
  }
  return { released, suppressed, contributors: members.length }
}

/**
 * A member token under one name whichever form stored it: cells written before held the 128 bits as
 * 32 hex characters, now as 22 base64url ones, so one person is one member even if both are there.
 */
function sameTokenName(member: string): string {
  return /^[0-9a-f]{32}$/.test(member) ? Buffer.from(member, 'hex').toString('base64url') : member
}

/** One entry per distinct person: their buckets combined by each field's rule, then clamped. */
function membersOf(cell: ClosedCell, rule: CohortRule): Member[] {
  const buckets = new Map<string, { values: Record<string, number>; band?: string }[]>()
  for (const [field, encoded] of Object.entries(cell.entries)) {
    const bar = field.indexOf('|')
    // Cells written before one field held all of a person's buckets have a field per bucket.
    const member = sameTokenName(bar === -1 ? field : field.slice(0, bar))
    const parsed = bar === -1 ? decodeBuckets(cell.type, encoded) : [decodeBucketValue(encoded)].filter((b) => b !== undefined)
    if (parsed.length === 0) continue
    const list = buckets.get(member)
    if (list === undefined) buckets.set(member, parsed)
    else list.push(...parsed)
  }
  const spec = dataType(cell.type)
  const members: Member[] = []
  for (const list of buckets.values()) {
    const values: Record<string, number> = {}
    for (const [name, bounds] of Object.entries(rule.fields)) {
      const mode = spec.fields.find((f) => f.name === name)?.combine ?? 'mean'
      const combined = combine(
        mode,
        list.map((b) => b.values[name]).filter((v): v is number => v !== undefined),
      )
      if (combined !== undefined) values[name] = clamp(combined, bounds.clamp[0], bounds.clamp[1])
    }
    const bandOfBuckets = list.some((b) => b.band !== undefined) ? mostFrequent(list.map((b) => b.band).filter((b): b is string => b !== undefined)) : undefined
    members.push({ values, band: bandOfBuckets ?? bandLabel(values, rule) })
  }
  return members
}

/** `avg:60-80` for a value in [60, 80); `avg:<40` and `avg:>=120` outside the edges. */
function bandLabel(values: Record<string, number>, rule: CohortRule): string | undefined {
  if (rule.bandBy === undefined) return undefined
  const { field, edges } = rule.bandBy
  const value = values[field]
  if (value === undefined) return `${field}:unknown`
  if (value < edges[0]!) return `${field}:<${edges[0]}`
  if (value >= edges[edges.length - 1]!) return `${field}:>=${edges[edges.length - 1]}`
  const lower = bandFloor(value, edges)
  return `${field}:${lower}-${edges[edges.indexOf(lower) + 1]}`
}

function defaultGrid(type: DataTypeKey, field: string): number {
  return dataType(type).fields.find((f) => f.name === field)?.format === 'int' ? 1 : 0.1
}

/** One bucket as cells written before stored it: `revision|{"v": values, "b": band}`. */
function decodeBucketValue(encoded: string): { values: Record<string, number>; band?: string } | undefined {
  const bar = encoded.indexOf('|')
  try {
    const parsed = JSON.parse(encoded.slice(bar + 1)) as { v?: Record<string, unknown>; b?: unknown }
    const values: Record<string, number> = {}
    for (const [name, value] of Object.entries(parsed.v ?? {})) if (typeof value === 'number' && Number.isFinite(value)) values[name] = value
    return typeof parsed.b === 'string' ? { values, band: parsed.b } : { values }
  } catch {
    // A corrupt entry is left out of the cell rather than failing every other person's contribution.
    return undefined
  }
}
