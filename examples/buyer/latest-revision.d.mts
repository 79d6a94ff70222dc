/** The highest revision a buyer holds of each record, per stream (see latest-revision.mjs). */
export declare class LatestRevisions {
  /** Whether the record is new or supersedes what is held; if so, it becomes the highest. */
  accept(streamId: string, record: { id: string; revision?: number }): boolean
  /** The highest revision held of a record, or undefined. */
  highest(streamId: string, id: string): number | undefined
}
