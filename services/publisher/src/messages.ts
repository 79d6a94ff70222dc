import type { CohortRecord, DataTypeKey, ReleasableRecord } from '@fitstream/shared'

/**
 * Versions of the message formats; bumped only on an incompatible change. The JSON Schema of both
 * is docs/message-schema.json (see docs/messages.md).
 */
export const MESSAGE_SCHEMA = 'fitstream.records/1' as const
export const COHORT_MESSAGE_SCHEMA = 'fitstream.cohorts/1' as const

export interface RecordEntry {
  readonly id: string
  readonly start: string
  readonly end: string
  readonly values: Record<string, number>
  readonly unit: string
  readonly revision: number
}

export interface RecordMessage {
  readonly schema: typeof MESSAGE_SCHEMA
  readonly type: DataTypeKey
  readonly pseudonym: string
  readonly epoch: string
  readonly records: readonly RecordEntry[]
}

export interface CohortEntry {
  readonly id: string
  readonly start: string
  readonly end: string
  readonly band?: string
  readonly contributors: number
  readonly values: Record<string, number>
  readonly unit: string
}

export interface CohortMessage {
  readonly schema: typeof COHORT_MESSAGE_SCHEMA
  readonly type: DataTypeKey
  readonly records: readonly CohortEntry[]
}

/** A message and where it goes: the cohort stream or the data type's own, and its partition key. */
export type OutgoingMessage =
  | { readonly kind: 'records'; readonly content: RecordMessage; readonly partitionKey: string }
  | { readonly kind: 'cohorts'; readonly content: CohortMessage; readonly partitionKey: string }

/**
 * Packs records into messages: one per data type and pseudonym (that pseudonym is the partition
 * key, so one person's records stay in order in one partition), split so that no message exceeds
 * `maxBytes` of JSON.
 */
export function packMessages(records: readonly ReleasableRecord[], maxBytes: number): RecordMessage[] {
  const groups = groupBy(records, (r) => `${r.type}|${r.pseudonym}|${r.epoch}`)
  return [...groups.values()].flatMap((group) => {
    const { type, pseudonym, epoch } = group[0]!
    const entries = group.map(({ id, start, end, values, unit, revision }): RecordEntry => ({ id, start, end, values, unit, revision }))
    return splitBySize({ schema: MESSAGE_SCHEMA, type, pseudonym, epoch }, entries, maxBytes)
  })
}

/**
 * Packs cohort aggregates into messages, one per data type and window start: cohorts carry no
 * pseudonym, so the window is the partition key and one window's bands arrive together.
 */
export function packCohortMessages(cohorts: readonly CohortRecord[], maxBytes: number): CohortMessage[] {
  const groups = groupBy(cohorts, (c) => `${c.type}|${c.start}`)
  return [...groups.values()].flatMap((group) => {
    const entries = group.map(({ id, start, end, band, contributors, values, unit }): CohortEntry => ({
      id,
      start,
      end,
      ...(band === undefined ? {} : { band }),
      contributors,
      values,
      unit,
    }))
    return splitBySize({ schema: COHORT_MESSAGE_SCHEMA, type: group[0]!.type }, entries, maxBytes)
  })
}

/**
 * Every message of a publish job, in a fixed order: the same payload always packs into the same
 * messages in the same order, which is what lets a retry give each message the identity it had.
 */
export function outgoingMessages(job: { records: readonly ReleasableRecord[]; cohorts: readonly CohortRecord[] }, maxBytes: number): OutgoingMessage[] {
  return [
    ...packMessages(job.records, maxBytes).map((content): OutgoingMessage => ({ kind: 'records', content, partitionKey: content.pseudonym })),
    ...packCohortMessages(job.cohorts, maxBytes).map((content): OutgoingMessage => ({ kind: 'cohorts', content, partitionKey: content.records[0]!.start })),
  ]
}

/** What identifies a delivered record: a higher revision of the same id is a new delivery. */
export function deliveryKeys(message: OutgoingMessage): string[] {
  return message.kind === 'records' ? message.content.records.map((r) => `${r.id}:${r.revision}`) : message.content.records.map((c) => `c:${c.id}`)
}

function groupBy<T>(items: readonly T[], key: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>()
  for (const item of items) {
    const k = key(item)
    const group = groups.get(k)
    if (group === undefined) groups.set(k, [item])
    else group.push(item)
  }
  return groups
}

function splitBySize<H extends object, E>(header: H, entries: readonly E[], maxBytes: number): (H & { records: E[] })[] {
  const messages: (H & { records: E[] })[] = []
  const emptySize = Buffer.byteLength(JSON.stringify({ ...header, records: [] }))
  let batch: E[] = []
  let size = emptySize
  for (const entry of entries) {
    const entrySize = Buffer.byteLength(JSON.stringify(entry)) + 1
    if (batch.length > 0 && size + entrySize > maxBytes) {
      messages.push({ ...header, records: batch })
      batch = []
      size = emptySize
    }
    batch.push(entry)
    size += entrySize
  }
  if (batch.length > 0) messages.push({ ...header, records: batch })
  return messages
}
