import { createHmac } from 'node:crypto'
import { dataType, hmacHex, type DataTypeKey, type FitnessSample, type ReleasableRecord, type ValueField, pseudonymOf } from '@fitstream/shared'
import { distanceMetres, geohash, geohashCentre } from './geohash.js'
import { fromUnits, noisyUnits, prfRandomSource, toUnits } from './noise.js'
import type { FieldRule, IndividualRule, PrivacyPolicy, PrivacyZone } from './policy.js'
import { epochOf, historyBatchOf, windowIndexInPeriod, windowOf, type TimeUnit } from './time-windows.js'

export { epochOf } from './time-windows.js'

/**
 * Secrets derived from PSEUDONYM_KEY, one per purpose, so that no output of one use (a pseudonym,
 * a noise draw, a cohort member token) helps compute another.
 */
export interface AnonymizerKeys {
  /** Pseudonyms and record and cohort ids. */
  readonly pseudonym: Buffer
  /** The keyed PRF noise is drawn from. */
  readonly noise: Buffer
  /** Per-cell member tokens: count a person once in a cell without storing who they are. */
  readonly member: Buffer
}

export function deriveKeys(pseudonymKey: Buffer): AnonymizerKeys {
  const derive = (purpose: string): Buffer => createHmac('sha256', pseudonymKey).update(`fitstream/key/v1|${purpose}`).digest()
  return { pseudonym: pseudonymKey, noise: derive('noise'), member: derive('cohort-member') }
}

/** The pseudonym scheme is shared, so tools (the benchmark, privacy reports) compute exactly the same. */
export const pseudonym = pseudonymOf

/** An individual record the policy allows, with what releasing it would cost. */
export interface CandidateRecord {
  readonly record: ReleasableRecord
  /** Epsilon charged to the person's budget (0 when the policy adds no noise). */
  readonly epsilon: number
  /** Budget period the record's data falls in. */
  readonly period: string
  /** Ledger field: the same release is never charged twice. */
  readonly chargeField: string
  /** The record's interval (ms), as its ISO `start` and `end`. */
  readonly startMs: number
  readonly endMs: number
}

/** One bucket of a person's data headed for a cohort cell: only the cohort's allow-listed fields. */
export interface CohortBucket {
  /** `<startMs>-<endMs>` of the bucket: the same bucket arriving again replaces, never adds. */
  readonly bucket: string
  readonly revision: number
  readonly values: Readonly<Record<string, number>>
  /** Set where the bucket itself decides the band (a location's geohash cell). */
  readonly band?: string
}

/** A person's data for one cohort cell (type × window), identified by a cell-scoped token only. */
export interface CohortContribution {
  readonly type: DataTypeKey
  readonly startMs: number
  readonly endMs: number
  /** `<type>:<startMs>:<endMs>`, or `<type>:<startMs>:<endMs>:<batchStartMs>` for a history cell; names the cell in Redis. */
  readonly cell: string
  /** HMAC of the cell and the user id: distinct per person within a cell, unlinkable across cells. */
  readonly member: string
  readonly epsilon: number
  readonly period: string
  readonly chargeField: string
  /** The window's place among the windows of its type that start in `period`: its bit in the person's ledger. */
  readonly windowIndex: number
  /** Set when the window's own cell had closed: the history batch whose back-dated cell this goes to. */
  readonly history?: { readonly batchStartMs: number; readonly batchEndMs: number }
  readonly buckets: readonly CohortBucket[]
}

/**
 * `coarser_than_grid`: a sample longer than one unit of the records' grid, which no single record can
 * hold. `not_opted_in`: a type released only as individual records, from someone who did not opt in.
 */
export type DropReason = 'policy' | 'privacy_zone' | 'incomplete' | 'coarser_than_grid' | 'not_opted_in'

export interface ReleasePlan {
  readonly records: CandidateRecord[]
  readonly contributions: CohortContribution[]
  /** Samples that the policy keeps back, by type and reason. */
  readonly dropped: { readonly type: DataTypeKey; readonly reason: DropReason; readonly samples: number }[]
}

interface Prepared {
  readonly sample: FitnessSample
  /** The truncated geohash cell of a location sample (its coordinates go no further). */
  readonly cell?: string
}

/** The samples of one type and window that become one record or one cohort contribution. */
interface PreparedCell {
  readonly type: DataTypeKey
  readonly startMs: number
  readonly endMs: number
  readonly items: Prepared[]
}

/**
 * Plans what one user's raw samples may become under the policy: pseudonymous individual records,
 * contributions to cohort cells, or nothing. Pure: it reads no clock and touches no store.
 *
 * Every output is built field by field from the policy's allow-list; nothing of a sample is copied
 * whole, so a source id, a device name or a field the catalogue gains later can't slip through.
 */
export function planRelease(
  userId: string,
  samples: readonly FitnessSample[],
  policy: PrivacyPolicy,
  keys: AnonymizerKeys,
  /** Types the person opted in to selling as individual records (the anonymize job's `individualTypes`). */
  individualTypes: ReadonlySet<DataTypeKey> = new Set(),
  /** The anonymiser's clock: a window whose cell has closed by then goes to a history cell, if the policy has them. */
  now?: number,
): ReleasePlan {
  const dropped = new Map<string, { type: DataTypeKey; reason: DropReason; samples: number }>()
  const drop = (type: DataTypeKey, reason: DropReason): void => {
    const key = `${type}|${reason}`
    const entry = dropped.get(key) ?? { type, reason, samples: 0 }
    entry.samples++
    dropped.set(key, entry)
  }

  const individual = new IntervalMap<PreparedCell>()
  const cohort = new IntervalMap<PreparedCell>()
  for (const sample of latestRevisions(samples)) {
    const rule = policy.types[sample.type]
    if (rule === undefined || rule.release === 'drop') {
      drop(sample.type, 'policy')
      continue
    }
    let prepared: Prepared = { sample }
    if (sample.type === 'location') {
      const cell = locationCell(sample, policy.location.geohashPrecision, policy.location.privacyZones)
      if (cell === 'incomplete' || cell === 'privacy_zone') {
        drop(sample.type, cell)
        continue
      }
      prepared = { sample, cell }
    }
    const optedIn = rule.individual?.consent === 'with-type' || individualTypes.has(sample.type)
    if (rule.release === 'individual' && !optedIn) {
      drop(sample.type, 'not_opted_in')
      continue
    }
    if (rule.individual !== undefined && (rule.release === 'individual' || rule.release === 'both') && optedIn) {
      const unit = gridUnitOf(sample, rule.individual.granularity)
      if (unit === undefined) drop(sample.type, 'coarser_than_grid')
      else addTo(individual, sample.type, unit.startMs, unit.endMs, prepared)
    }
    if (rule.cohort !== undefined && (rule.release === 'cohort' || rule.release === 'both')) {
      const window = windowOf(sample.startMs, rule.cohort.window)
      addTo(cohort, sample.type, window.startMs, window.endMs, prepared)
    }
  }

  const records: CandidateRecord[] = []
  // A day of hourly records shares one or two epochs: each pseudonym is one HMAC, not one per record.
  const aliases = new Map<string, string>()
  const aliasOf = (epoch: string): string => {
    let alias = aliases.get(epoch)
    if (alias === undefined) aliases.set(epoch, (alias = pseudonym(keys.pseudonym, userId, epoch)))
    return alias
  }
  // Consecutive hourly records share their boundaries: each instant is formatted once.
  const isoTimes = new Map<number, string>()
  const isoOf = (ms: number): string => {
    let iso = isoTimes.get(ms)
    if (iso === undefined) isoTimes.set(ms, (iso = new Date(ms).toISOString()))
    return iso
  }
  for (const cell of individual.values()) {
    const candidate = buildRecord(aliasOf, isoOf, cell, policy, keys)
    if (candidate !== undefined) records.push(candidate)
  }
  records.sort((a, b) => a.record.start.localeCompare(b.record.start) || a.record.type.localeCompare(b.record.type))

  const contributions: CohortContribution[] = []
  for (const cell of cohort.values()) {
    const contribution = buildContribution(userId, cell, policy, keys, now)
    if (contribution !== undefined) contributions.push(contribution)
  }
  return { records, contributions, dropped: [...dropped.values()] }
}

/**
 * The one unit of the records' UTC grid a sample goes to: the unit holding its midpoint. Every
 * record then covers exactly one whole UTC unit, whatever grid the samples came on: an hourly bucket
 * laid out in a half-hour zone (10:30-11:30) becomes the 11:00-12:00 record, not a 10:00-12:00 one
 * overlapping its neighbours, which would show the person's zone. One bucket always lands in the
 * same unit, so a revision replaces its record. A sample longer than a unit (a local day may run 25
 * hours) has no single unit and is left out.
 */
export function gridUnitOf(sample: Pick<FitnessSample, 'startMs' | 'endMs'>, unit: TimeUnit): { startMs: number; endMs: number } | undefined {
  const length = Math.max(0, sample.endMs - sample.startMs)
  const window = windowOf(sample.startMs + Math.floor(length / 2), unit)
  const slack = unit === 'hour' ? 0 : HOUR_MS
  return length > window.endMs - window.startMs + slack ? undefined : window
}

const HOUR_MS = 3_600_000

/**
 * One sample per (type, interval): the highest revision wins. A bucket passed on twice (a retry, an
 * overlapping fetch) must not count twice, and a revised total replaces the earlier one.
 */
function latestRevisions(samples: readonly FitnessSample[]): FitnessSample[] {
  const latest = new IntervalMap<FitnessSample>()
  for (const sample of samples) {
    const seen = latest.get(sample.type, sample.startMs, sample.endMs)
    if (seen === undefined || sample.revision >= seen.revision) latest.set(sample.type, sample.startMs, sample.endMs, sample)
  }
  return latest.values()
}

function addTo(cells: IntervalMap<PreparedCell>, type: DataTypeKey, startMs: number, endMs: number, item: Prepared): void {
  const cell = cells.get(type, startMs, endMs)
  if (cell === undefined) cells.set(type, startMs, endMs, { type, startMs, endMs, items: [item] })
  else cell.items.push(item)
}

/** Values by (type, start, end), in insertion order, looked up without building a string key per sample. */
class IntervalMap<V> {
  /** type → start → end → the value's place in `inOrder`. */
  private readonly places = new Map<string, Map<number, Map<number, number>>>()
  private readonly inOrder: V[] = []

  get(type: string, startMs: number, endMs: number): V | undefined {
    const place = this.places.get(type)?.get(startMs)?.get(endMs)
    return place === undefined ? undefined : this.inOrder[place]
  }

  set(type: string, startMs: number, endMs: number, value: V): void {
    let starts = this.places.get(type)
    if (starts === undefined) this.places.set(type, (starts = new Map()))
    let ends = starts.get(startMs)
    if (ends === undefined) starts.set(startMs, (ends = new Map()))
    const place = ends.get(endMs)
    if (place === undefined) {
      ends.set(endMs, this.inOrder.length)
      this.inOrder.push(value)
    } else this.inOrder[place] = value
  }

  values(): V[] {
    return this.inOrder
  }
}

/** The truncated geohash of a location bounding box, or why it can't be released. */
function locationCell(sample: FitnessSample, precision: number, zones: readonly PrivacyZone[]): string | 'incomplete' | 'privacy_zone' {
  const { low_lat: lowLat, low_lng: lowLng, high_lat: highLat, high_lng: highLng } = sample.values
  if (lowLat === undefined || lowLng === undefined || highLat === undefined || highLng === undefined) return 'incomplete'
  if (Math.abs(lowLat) > 90 || Math.abs(highLat) > 90 || Math.abs(lowLng) > 180 || Math.abs(highLng) > 180) return 'incomplete'
  const centre = { lat: (lowLat + highLat) / 2, lng: (lowLng + highLng) / 2 }
  // The whole box, not just its centre, must stay clear of every zone.
  const reach = distanceMetres(centre, { lat: highLat, lng: highLng })
  if (zones.some((zone) => distanceMetres(centre, zone) <= zone.radiusMetres + reach)) return 'privacy_zone'
  return geohash(centre.lat, centre.lng, precision)
}

/** Per individual rule, the fields it releases (in the data type's order): the same for every record. */
const releasedFieldsOf = new WeakMap<IndividualRule, readonly ValueField[]>()

function releasedFields(type: DataTypeKey, rule: IndividualRule): readonly ValueField[] {
  let fields = releasedFieldsOf.get(rule)
  if (fields === undefined) releasedFieldsOf.set(rule, (fields = dataType(type).fields.filter((field) => rule.fields[field.name] !== undefined)))
  return fields
}

function buildRecord(
  aliasOf: (epoch: string) => string,
  isoOf: (ms: number) => string,
  cell: PreparedCell,
  policy: PrivacyPolicy,
  keys: AnonymizerKeys,
): CandidateRecord | undefined {
  const rule = policy.types[cell.type]!.individual!
  const epoch = epochOf(cell.startMs, policy.pseudonym.epoch)
  const alias = aliasOf(epoch)
  const id = hmacHex(keys.pseudonym, `fitstream/record/v1|${alias}|${cell.type}|${cell.startMs}|${cell.endMs}`).slice(0, 32)
  const items = cell.items
  let revision = items[0]!.sample.revision
  for (const item of items) if (item.sample.revision > revision) revision = item.sample.revision
  const values: Record<string, number> = {}
  let released = 0
  if (cell.type === 'location') {
    const centre = geohashCentre(mostFrequent(items.map((item) => item.cell!)))
    values.lat = Number(centre.lat.toFixed(5))
    values.lng = Number(centre.lng.toFixed(5))
    released = 2
  } else {
    const fields = releasedFields(cell.type, rule)
    const rng = rule.noise === undefined ? undefined : prfRandomSource(keys.noise, `record|${id}|${revision}`)
    const epsilon = rule.noise === undefined ? undefined : rule.noise.epsilon / fields.length
    for (const field of fields) {
      // Most records hold one sample: its value needs no combining.
      const combined =
        items.length === 1
          ? items[0]!.sample.values[field.name]
          : combine(
              field.combine,
              items.map((item) => item.sample.values[field.name]).filter((v): v is number => v !== undefined),
            )
      if (combined === undefined) continue
      values[field.name] = generalise(combined, rule.fields[field.name]!, field, epsilon === undefined ? undefined : { epsilon, rng: rng! })
      released++
    }
  }
  if (released === 0) return undefined
  return {
    record: {
      id,
      type: cell.type,
      pseudonym: alias,
      epoch,
      start: isoOf(cell.startMs),
      end: isoOf(cell.endMs),
      values,
      unit: cell.type === 'location' ? 'deg' : dataType(cell.type).unit,
      revision,
    },
    epsilon: rule.noise?.epsilon ?? 0,
    period: epochOf(cell.startMs, policy.budget.period),
    chargeField: `r|${cell.type}|${cell.startMs}|${revision}`,
    startMs: cell.startMs,
    endMs: cell.endMs,
  }
}

function buildContribution(userId: string, cell: PreparedCell, policy: PrivacyPolicy, keys: AnonymizerKeys, now?: number): CohortContribution | undefined {
  const rule = policy.types[cell.type]!.cohort!
  const closed = now !== undefined && now >= cohortCloseAt(policy, cell.endMs)
  const history = closed && policy.cohorts.history !== undefined ? historyBatchOf(now, policy.cohorts.history.batchDays) : undefined
  const name = `${cell.type}:${cell.startMs}:${cell.endMs}${history === undefined ? '' : `:${history.startMs}`}`
  const buckets: CohortBucket[] = []
  for (const { sample, cell: geocell } of cell.items) {
    const values: Record<string, number> = {}
    for (const field of Object.keys(rule.fields)) {
      const value = sample.values[field]
      if (value !== undefined) values[field] = value
    }
    if (geocell === undefined && Object.keys(values).length === 0) continue
    buckets.push({
      bucket: `${sample.startMs}-${sample.endMs}`,
      revision: sample.revision,
      values,
      ...(geocell === undefined ? {} : { band: `geohash:${geocell}` }),
    })
  }
  if (buckets.length === 0) return undefined
  return {
    type: cell.type,
    startMs: cell.startMs,
    endMs: cell.endMs,
    cell: name,
    member: memberToken(keys, name, userId),
    epsilon: rule.epsilon ?? 0,
    period: epochOf(cell.startMs, policy.budget.period),
    chargeField: `c|${cell.type}|${cell.startMs}`,
    windowIndex: windowIndexInPeriod(cell.startMs, rule.window, policy.budget.period),
    ...(history === undefined ? {} : { history: { batchStartMs: history.startMs, batchEndMs: history.endMs } }),
    buckets,
  }
}

/** When a window's live cell closes: its end plus the grace period for late data. */
export function cohortCloseAt(policy: PrivacyPolicy, windowEndMs: number): number {
  return windowEndMs + policy.cohorts.graceHours * 3_600_000
}

/**
 * A person's token in one cohort cell (its name, as `CohortContribution.cell`): the same for them in
 * that cell, unrelated across cells. 128 bits of an HMAC in base64url (22 characters); cells written
 * before name them by the same bits in hex (`legacyMemberToken`).
 */
export function memberToken(keys: AnonymizerKeys, cell: string, userId: string): string {
  return createHmac('sha256', keys.member).update(`fitstream/cohort-member/v1|${cell}|${userId}`).digest().subarray(0, 16).toString('base64url')
}

/** The same token as cells written before hold it: its bits in hex. */
export function legacyMemberToken(member: string): string {
  return Buffer.from(member, 'base64url').toString('hex')
}

/** Clamp (top and bottom coding), optional noise on the grid, then bands or rounding. */
export function generalise(value: number, rule: FieldRule, field: ValueField, noise?: { epsilon: number; rng: ReturnType<typeof prfRandomSource> }): number {
  const clamped = rule.clamp === undefined ? value : clamp(value, rule.clamp[0], rule.clamp[1])
  const grid = rule.round ?? (field.format === 'int' ? 1 : 0.1)
  let units = toUnits(clamped, grid)
  if (noise !== undefined && rule.clamp !== undefined) {
    const [lo, hi] = [toUnits(rule.clamp[0], grid), toUnits(rule.clamp[1], grid)]
    // Post-processing back into the declared range keeps the guarantee and the values plausible.
    units = clamp(noisyUnits(units, { sensitivityUnits: hi - lo, epsilon: noise.epsilon }, noise.rng), lo, hi)
  }
  const generalised = fromUnits(units, grid)
  return rule.bands === undefined ? generalised : bandFloor(generalised, rule.bands)
}

/** The lower edge of the band a value falls in; below the first edge is bottom-coded to it. */
export function bandFloor(value: number, edges: readonly number[]): number {
  let floor = edges[0]!
  for (const edge of edges) if (value >= edge) floor = edge
  return floor
}

export function combine(mode: ValueField['combine'], values: readonly number[]): number | undefined {
  if (values.length === 0) return undefined
  if (mode === 'max') return Math.max(...values)
  if (mode === 'min') return Math.min(...values)
  const sum = values.reduce((a, b) => a + b, 0)
  return mode === 'sum' ? sum : sum / values.length
}

export function clamp(value: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, value))
}

/** The most frequent item; ties go to the smallest, so the choice does not depend on arrival order. */
export function mostFrequent(items: readonly string[]): string {
  const counts = new Map<string, number>()
  for (const item of items) counts.set(item, (counts.get(item) ?? 0) + 1)
  return [...counts.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))[0]![0]
}
