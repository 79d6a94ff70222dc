import { timeZoneOffsetMs, type TimeWindow } from '@fitstream/shared'

const DAY_MS = 86_400_000

export interface SyncPlanOptions {
  /** Bucket size; windows are aligned to it and cover whole buckets only (whole days: the user's local days). */
  readonly bucketMs: number
  /** How far back a user's first sync reaches. */
  readonly backfillMs: number
  /** Largest window one fetch job covers (Google allows 90 days). */
  readonly chunkMs: number
  /** Every sync re-reads this much before the cursor: phones upload late. */
  readonly lookbackMs: number
}

export interface PlannedFetch {
  readonly window: TimeWindow
  readonly kind: 'incremental' | 'backfill'
  readonly chunk?: { readonly index: number; readonly of: number }
}

export interface SyncState {
  /** Data has been fetched up to here. */
  readonly fetchedUntil: number | undefined
  /** Where the planned backfill ends, once it is planned (its chunks may still be running). */
  readonly backfillEnd: number | undefined
  readonly timeZone: string
}

/**
 * The windows a sync must fetch, newest first, up to the last complete bucket.
 * - A new user: the backfill, `backfillMs` of history in chunks, each a separate job.
 * - Afterwards: from the cursor, or from `lookbackMs` before the last complete bucket if that is
 *   earlier, so late uploads are read again (the fetcher passes on only what changed).
 */
export function planFetchWindows(state: SyncState, now: number, options: SyncPlanOptions): PlannedFetch[] {
  const { bucketMs } = options
  const align = (ms: number): number => alignDown(ms, bucketMs, state.timeZone)
  const end = align(now)
  const step = Math.max(bucketMs, Math.floor(options.chunkMs / bucketMs) * bucketMs)
  const chunks = (start: number): TimeWindow[] => {
    const windows: TimeWindow[] = []
    for (let to = end; to > start; to -= step) windows.push({ startMs: Math.max(start, to - step), endMs: to })
    return windows
  }
  const cursor = state.fetchedUntil ?? state.backfillEnd
  if (cursor === undefined) {
    const windows = chunks(align(now - options.backfillMs))
    return windows.map((window, i) => ({ window, kind: 'backfill', chunk: { index: i + 1, of: windows.length } }))
  }
  // The cursor is aligned too: one left on another zone's midnights (the person has moved) would start a part-day window.
  return chunks(Math.min(align(cursor), align(end - options.lookbackMs))).map((window) => ({ window, kind: 'incremental' }))
}

/**
 * The start of the bucket containing `ms`. Buckets of whole days are laid out in local time of
 * `timeZone` (daily buckets begin at local midnight; the offset is taken at `ms` itself); shorter
 * buckets on the UTC grid, so an hourly bucket starts on a whole UTC hour in every zone (the
 * anonymiser's grid: a bucket straddling two UTC hours, as in half-hour zones, would be dropped).
 */
export function alignDown(ms: number, bucketMs: number, timeZone: string): number {
  if (bucketMs % DAY_MS !== 0) return Math.floor(ms / bucketMs) * bucketMs
  const offset = timeZoneOffsetMs(ms, timeZone)
  return Math.floor((ms + offset) / bucketMs) * bucketMs - offset
}
