import { DATA_TYPE_KEYS, dataType, dataTypeKeySchema, type DataTypeKey } from '@fitstream/shared'
import { COHORT_MESSAGE_SCHEMA, MESSAGE_SCHEMA, SLOT_MESSAGE_SCHEMA } from './messages.js'

/** The data types sold unless chosen otherwise: every type except location-bearing ones. */
export const DEFAULT_TYPES: readonly DataTypeKey[] = DATA_TYPE_KEYS.filter((key) => dataType(key).sensitive !== true)

/**
 * What a buyer is told about how the data was anonymised. It states what the pipeline guarantees
 * today (README, "Privacy"); a policy file given to `hub create-project --policy` is added as is.
 */
export const ANONYMISATION_SUMMARY = {
  identifiers: 'none: no account ids, emails, device or app identifiers, no location',
  pseudonyms: 'keyed HMAC-SHA256 pseudonyms that change every epoch (a UTC month by default); not linkable across epochs',
  time: 'intervals widened to whole UTC hours',
  values: 'fractional values rounded to one decimal',
  cohorts: 'cohort streams carry aggregates over at least k people and no pseudonym',
  revisions: 'a record with the same id and a higher revision supersedes the earlier one',
  release:
    "records are published in release slots shared by everyone (hourly by default), shuffled across people, under the slot's time, one epoch per message chain (fitstream.records/2)",
} as const

/** Metadata of a FitStream product on the Hub, beyond its name and description. */
export function listingMetadata(types: readonly DataTypeKey[], policy: Record<string, unknown> | undefined): Record<string, unknown> {
  return {
    fitstream: {
      messageSchemas: [SLOT_MESSAGE_SCHEMA, MESSAGE_SCHEMA, COHORT_MESSAGE_SCHEMA],
      dataTypes: types.map((key) => {
        const spec = dataType(key)
        return { key, description: spec.description, unit: spec.unit, values: spec.fields.map((f) => f.name) }
      }),
      anonymisation: { ...ANONYMISATION_SUMMARY, ...(policy === undefined ? {} : { policy }) },
    },
  }
}

/**
 * A project's metadata once `added` types are listed too: the FitStream part rewritten for the
 * types it named and the added ones, in catalogue order, keeping the policy it published; anything
 * else in it (name, description, what the Hub added) as it was.
 */
export function withDataTypes(current: Record<string, unknown>, added: readonly DataTypeKey[]): Record<string, unknown> {
  const fitstream = (current.fitstream ?? {}) as { dataTypes?: unknown; anonymisation?: { policy?: unknown } }
  const named = Array.isArray(fitstream.dataTypes) ? fitstream.dataTypes.map((t) => dataTypeKeySchema.safeParse((t as { key?: unknown } | null)?.key)) : []
  const types = new Set<DataTypeKey>([...named.flatMap((t) => (t.success ? [t.data] : [])), ...added])
  const policy = fitstream.anonymisation?.policy
  return {
    ...current,
    ...listingMetadata(
      DATA_TYPE_KEYS.filter((key) => types.has(key)),
      policy !== null && typeof policy === 'object' ? (policy as Record<string, unknown>) : undefined,
    ),
  }
}
