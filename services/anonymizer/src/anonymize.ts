import { dataType, hmacHex, type FitnessSample, type ReleasableRecord } from '@fitstream/shared'

export type PseudonymEpoch = 'month' | 'week' | 'day'

export interface AnonymizationPolicy {
  /** HMAC key for pseudonyms and record ids. */
  readonly key: Buffer
  readonly epoch: PseudonymEpoch
  /** Released intervals are widened to whole multiples of this, UTC-aligned. */
  readonly granularityMs: number
  /** Decimal places kept for fractional values. */
  readonly decimals: number
}

const DAY_MS = 86_400_000

/** The epoch label of an instant: `2026-11` (month), `2026-W47` (ISO week) or `2026-11-24` (day). */
export function epochOf(ms: number, epoch: PseudonymEpoch): string {
  const date = new Date(ms)
  if (epoch === 'month') return date.toISOString().slice(0, 7)
  if (epoch === 'day') return date.toISOString().slice(0, 10)
  // ISO 8601 week: the week belongs to the year of its Thursday.
  const thursday = new Date(Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), date.getUTCDate()))
  thursday.setUTCDate(thursday.getUTCDate() + 4 - (thursday.getUTCDay() || 7))
  const yearStart = Date.UTC(thursday.getUTCFullYear(), 0, 1)
  const week = Math.ceil(((thursday.getTime() - yearStart) / DAY_MS + 1) / 7)
  return `${thursday.getUTCFullYear()}-W${String(week).padStart(2, '0')}`
}

/** A keyed pseudonym of a user for one epoch. Without the key it can't be computed or reversed. */
export function pseudonym(key: Buffer, userId: string, epoch: string): string {
  return hmacHex(key, `fitstream/pseudonym/v1|${epoch}|${userId}`).slice(0, 32)
}

/**
 * Releasable records from one user's raw samples. Built field by field from an allow-list: the user
 * id becomes an epoch pseudonym, source and device ids are not copied, intervals are widened to the
 * policy's granularity (samples falling into one interval are combined) and values are rounded.
 */
export function anonymizeSamples(userId: string, samples: readonly FitnessSample[], policy: AnonymizationPolicy): ReleasableRecord[] {
  const g = policy.granularityMs
  const cells = new Map<string, { type: FitnessSample['type']; startMs: number; endMs: number; values: Record<string, number>[]; revisions: number[] }>()
  for (const sample of samples) {
    const startMs = Math.floor(sample.startMs / g) * g
    const endMs = Math.max(startMs + g, Math.ceil(sample.endMs / g) * g)
    const cellKey = `${sample.type}|${startMs}|${endMs}`
    const cell = cells.get(cellKey)
    if (cell === undefined) cells.set(cellKey, { type: sample.type, startMs, endMs, values: [sample.values], revisions: [sample.revision] })
    else {
      cell.values.push(sample.values)
      cell.revisions.push(sample.revision)
    }
  }
  const records: ReleasableRecord[] = []
  for (const cell of cells.values()) {
    const spec = dataType(cell.type)
    const epoch = epochOf(cell.startMs, policy.epoch)
    const alias = pseudonym(policy.key, userId, epoch)
    const values: Record<string, number> = {}
    for (const field of spec.fields) {
      const combined = combine(
        field.combine,
        cell.values.map((v) => v[field.name]).filter((v): v is number => v !== undefined),
      )
      if (combined === undefined) continue
      values[field.name] = field.format === 'int' ? Math.round(combined) : round(combined, policy.decimals)
    }
    if (Object.keys(values).length === 0) continue
    records.push({
      id: hmacHex(policy.key, `fitstream/record/v1|${alias}|${cell.type}|${cell.startMs}|${cell.endMs}`).slice(0, 32),
      type: cell.type,
      pseudonym: alias,
      epoch,
      start: new Date(cell.startMs).toISOString(),
      end: new Date(cell.endMs).toISOString(),
      values,
      unit: spec.unit,
      revision: Math.max(...cell.revisions),
    })
  }
  return records.sort((a, b) => a.start.localeCompare(b.start) || a.type.localeCompare(b.type))
}

function combine(mode: 'sum' | 'mean' | 'max' | 'min', values: number[]): number | undefined {
  if (values.length === 0) return undefined
  if (mode === 'max') return Math.max(...values)
  if (mode === 'min') return Math.min(...values)
  const sum = values.reduce((a, b) => a + b, 0)
  return mode === 'sum' ? sum : sum / values.length
}

function round(value: number, decimals: number): number {
  const factor = 10 ** decimals
  return Math.round(value * factor) / factor
}
