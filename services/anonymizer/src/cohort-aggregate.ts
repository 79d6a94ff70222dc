import { dataType, hmacHex, type CohortRecord, type DataTypeKey } from '@fitstream/shared'
import { bandFloor, clamp, combine, mostFrequent, type AnonymizerKeys, type CohortBucket } from './anonymize.js'
import { fromUnits, noisyUnits, prfRandomSource, toUnits } from './noise.js'
import type { CohortRule, PrivacyPolicy } from './policy.js'

/**
 * How a person's bucket is stored in a cohort cell's Redis hash. The field is `<member>|<bucket>`,
 * so the same bucket arriving twice overwrites itself; the value starts with the revision, so the
 * store can keep the newest without parsing JSON.
 */
export function encodeBucketField(member: string, bucket: CohortBucket): string {
  return `${member}|${bucket.bucket}`
}

export function encodeBucketValue(bucket: CohortBucket): string {
  return `${bucket.revision}|${JSON.stringify(bucket.band === undefined ? { v: bucket.values } : { v: bucket.values, b: bucket.band })}`
}

export interface ClosedCell {
  readonly type: DataTypeKey
  readonly startMs: number
  readonly endMs: number
  /** The cell's hash: encoded field → encoded value. */
  readonly entries: Readonly<Record<string, string>>
}

export type SuppressionReason = 'under_k' | 'noisy_count_under_k'

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
 * Turns a closed cell into cohort records: one per band that at least k distinct people reached.
 * Each person counts once, with their own buckets combined and their contribution clamped to the
 * policy's bounds. With noise, the contributor count and each field's sum get discrete Laplace noise
 * and the cell must reach k on the noisy count too; values are means per contributor.
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
  const fields = Object.keys(rule.fields).sort()
  for (const [band, group] of [...bands.entries()].sort((a, b) => (a[0] ?? '').localeCompare(b[0] ?? ''))) {
    // The hard rule: fewer than k real people, nothing leaves, whatever the noise would say.
    if (group.length < k) {
      suppressed.push({ ...(band === undefined ? {} : { band }), reason: 'under_k' })
      continue
    }
    const id = hmacHex(keys.pseudonym, `fitstream/cohort/v1|${cell.type}|${cell.startMs}|${cell.endMs}|${band ?? ''}`).slice(0, 32)
    const rng = rule.epsilon === undefined ? undefined : prfRandomSource(keys.noise, `cohort|${id}`)
    const share = rule.epsilon === undefined ? undefined : rule.epsilon / (fields.length + 1)
    const contributors = rng === undefined || share === undefined ? group.length : noisyUnits(group.length, { sensitivityUnits: 1, epsilon: share }, rng)
    if (contributors < k) {
      suppressed.push({ ...(band === undefined ? {} : { band }), reason: 'noisy_count_under_k' })
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
      contributors,
      values,
      unit: dataType(cell.type).unit,
    })
  }
  return { released, suppressed, contributors: members.length }
}

/** One entry per distinct person: their buckets combined by each field's rule, then clamped. */
function membersOf(cell: ClosedCell, rule: CohortRule): Member[] {
  const buckets = new Map<string, { values: Record<string, number>; band?: string }[]>()
  for (const [field, encoded] of Object.entries(cell.entries)) {
    const member = field.slice(0, field.indexOf('|'))
    const parsed = decodeBucketValue(encoded)
    if (parsed === undefined) continue
    const list = buckets.get(member)
    if (list === undefined) buckets.set(member, [parsed])
    else list.push(parsed)
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
