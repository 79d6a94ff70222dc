/** What the Health API client hands to `normalizeHealth`: the module both depend on, so neither depends on the other. */
import type { DataTypeKey } from '@fitstream/shared'

/** What one fetch read from the Health API, for `normalizeHealth`. */
export interface HealthReadResult {
  /**
   * Per requested type, every page Google answered with: roll-ups as they came; for sleep, the
   * sessions that end in the window or up to a day after it; for workouts, those that start in it
   * or up to a day before it (and some more, as Google filters them by local time); for readings, each page already
   * reduced to times and values (`ReadingsPage`).
   */
  readonly pages: ReadonlyMap<DataTypeKey, readonly unknown[]>
  /** Whole local days (`dailyRollUp`, civil times in the answer) rather than fixed windows (`rollUp`). */
  readonly daily: boolean
  /** The bucket size, which sessions' segments are put into. */
  readonly bucketMs: number
}
