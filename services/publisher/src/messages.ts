import type { DataTypeKey, ReleasableRecord } from '@fitstream/shared'

/** The version of the message format; bumped on any incompatible change (see README, "Messages"). */
export const MESSAGE_SCHEMA = 'fitstream.records/1' as const

export interface RecordMessage {
  readonly schema: typeof MESSAGE_SCHEMA
  readonly type: DataTypeKey
  readonly pseudonym: string
  readonly epoch: string
  readonly records: readonly { id: string; start: string; end: string; values: Record<string, number>; unit: string; revision: number }[]
}

/**
 * Packs records into messages: one per data type and pseudonym (that pseudonym is the partition
 * key, so one person's records stay in order in one partition), split so that no message exceeds
 * `maxBytes` of JSON.
 */
export function packMessages(records: readonly ReleasableRecord[], maxBytes: number): RecordMessage[] {
  const groups = new Map<string, ReleasableRecord[]>()
  for (const record of records) {
    const key = `${record.type}|${record.pseudonym}|${record.epoch}`
    const group = groups.get(key)
    if (group === undefined) groups.set(key, [record])
    else group.push(record)
  }
  const messages: RecordMessage[] = []
  for (const group of groups.values()) {
    const { type, pseudonym, epoch } = group[0]!
    const header = { schema: MESSAGE_SCHEMA, type, pseudonym, epoch }
    let batch: RecordMessage['records'][number][] = []
    let size = Buffer.byteLength(JSON.stringify({ ...header, records: [] }))
    for (const { id, start, end, values, unit, revision } of group) {
      const entry = { id, start, end, values, unit, revision }
      const entrySize = Buffer.byteLength(JSON.stringify(entry)) + 1
      if (batch.length > 0 && size + entrySize > maxBytes) {
        messages.push({ ...header, records: batch })
        batch = []
        size = Buffer.byteLength(JSON.stringify({ ...header, records: [] }))
      }
      batch.push(entry)
      size += entrySize
    }
    if (batch.length > 0) messages.push({ ...header, records: batch })
  }
  return messages
}
