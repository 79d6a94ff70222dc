import type { DataTypeKey } from '@fitstream/shared'

export interface StreamNaming {
  /** Lower-case 0x address whose namespace holds the streams. */
  readonly owner: string
  /** e.g. `/fitness/` */
  readonly pathPrefix: string
}

/** One stream per data type, never per user: `<owner>/fitness/<type>`. */
export function streamIdFor(naming: StreamNaming, type: DataTypeKey): string {
  return `${naming.owner.toLowerCase()}${naming.pathPrefix}${type}`
}

/** Cohort aggregates of a data type have their own stream, `<owner>/fitness/<type>/cohort`, sold apart. */
export function cohortStreamIdFor(naming: StreamNaming, type: DataTypeKey): string {
  return `${streamIdFor(naming, type)}/cohort`
}
