import { randomBytes, randomInt } from 'node:crypto'
import type { CohortRecord, DataTypeKey, ReleasableRecord } from '@fitstream/shared'

/**
 * Versions of the message formats; bumped only on an incompatible change. The JSON Schema of all
 * of them is docs/message-schema.json (see docs/messages.md). `fitstream.records/1` is one person's
 * records, published as their sync finished; `fitstream.records/2` is many people's records of one
 * epoch, published in a release slot shared by everyone (see planSlot).
 */
export const MESSAGE_SCHEMA = 'fitstream.records/1' as const
export const SLOT_MESSAGE_SCHEMA = 'fitstream.records/2' as const
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

/** A record of a slot message: each carries its own pseudonym. */
export interface SlotRecordEntry extends RecordEntry {
  readonly pseudonym: string
}

/** Records of many people, of one data type and one pseudonym epoch, in no meaningful order. */
export interface SlotRecordMessage {
  readonly schema: typeof SLOT_MESSAGE_SCHEMA
  readonly type: DataTypeKey
  readonly epoch: string
  readonly records: readonly SlotRecordEntry[]
}

export interface CohortEntry {
  readonly id: string
  readonly start: string
  readonly end: string
  readonly band?: string
  /** `history` on a back-dated cell (docs/messages.md); absent on the window's live cell. */
  readonly release?: 'history'
  readonly batch?: string
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
  | { readonly kind: 'records'; readonly content: RecordMessage | SlotRecordMessage; readonly partitionKey: string }
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
 * Packs cohort aggregates into messages, one per data type, window start and release (the live cell
 * or one history batch): cohorts carry no pseudonym, so the window is the partition key and one
 * cell's bands arrive together.
 */
export function packCohortMessages(cohorts: readonly CohortRecord[], maxBytes: number): CohortMessage[] {
  const groups = groupBy(cohorts, (c) => `${c.type}|${c.start}|${c.batch ?? ''}`)
  return [...groups.values()].flatMap((group) => {
    const entries = group.map(({ id, start, end, band, release, batch, contributors, values, unit }): CohortEntry => ({
      id,
      start,
      end,
      ...(band === undefined ? {} : { band }),
      ...(release === undefined ? {} : { release }),
      ...(batch === undefined ? {} : { batch }),
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

/** A message of a release slot, and the message chain it goes out on. */
export interface SlotMessage {
  readonly message: OutgoingMessage
  readonly msgChainId: string
}

/** Uniform random integer in [0, max); node:crypto's unless a test pins it. */
export type RandomInt = (max: number) => number

/**
 * Everything a release slot publishes, in the order it is published; all of it goes out under the
 * slot's timestamp. What a buyer can see of it depends on no one person:
 * - records are shuffled across people before they are packed, so a message holds a random
 *   selection of the slot's pseudonyms of one data type and epoch, and which records share a
 *   message or follow each other says nothing about whose they are;
 * - each epoch's messages go on a chain of their own, fresh for this slot (cohorts on another), so
 *   no chain carries two epochs' pseudonyms and no chain runs from one slot into the next;
 * - a message's partition key is random, so the partition follows no pseudonym;
 * - the messages themselves are shuffled, so the order of types and epochs is random too.
 */
export function planSlot(
  held: { records: readonly ReleasableRecord[]; cohorts: readonly CohortRecord[] },
  maxBytes: number,
  random: RandomInt = randomInt,
): SlotMessage[] {
  const chains = new Map<string, string>()
  const chainOf = (key: string): string => {
    let chain = chains.get(key)
    if (chain === undefined) chains.set(key, (chain = randomHex(random, 20)))
    return chain
  }
  const records = shuffle(held.records, random)
  const groups = groupBy(records, (r) => `${r.type}|${r.epoch}`)
  const recordMessages = [...groups.values()].flatMap((group) => {
    const { type, epoch } = group[0]!
    const entries = group.map(({ pseudonym, id, start, end, values, unit, revision }): SlotRecordEntry => ({
      pseudonym,
      id,
      start,
      end,
      values,
      unit,
      revision,
    }))
    return splitBySize({ schema: SLOT_MESSAGE_SCHEMA, type, epoch }, entries, maxBytes).map((content): SlotMessage => ({
      message: { kind: 'records', content, partitionKey: randomHex(random, 16) },
      msgChainId: chainOf(`records|${epoch}`),
    }))
  })
  const cohortMessages = packCohortMessages(held.cohorts, maxBytes).map((content): SlotMessage => ({
    message: { kind: 'cohorts', content, partitionKey: randomHex(random, 16) },
    msgChainId: chainOf('cohorts'),
  }))
  return shuffle([...recordMessages, ...cohortMessages], random)
}

/** Fisher-Yates with the given randomness: every order equally likely. */
export function shuffle<T>(items: readonly T[], random: RandomInt = randomInt): T[] {
  const out = [...items]
  for (let i = out.length - 1; i > 0; i--) {
    const j = random(i + 1)
    ;[out[i], out[j]] = [out[j]!, out[i]!]
  }
  return out
}

function randomHex(random: RandomInt, length: number): string {
  if (random === randomInt)
    return randomBytes(Math.ceil(length / 2))
      .toString('hex')
      .slice(0, length)
  return Array.from({ length }, () => random(16).toString(16)).join('')
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
