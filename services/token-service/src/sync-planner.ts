import type { TimeWindow } from '@fitstream/shared'

export interface SyncPlanOptions {
  /** Bucket size; windows are aligned to it and cover whole buckets only. */
  readonly bucketMs: number
  /** How far back a user's first sync reaches. */
  readonly backfillMs: number
  /** Largest window one fetch job covers. */
  readonly chunkMs: number
}

/**
 * The windows a sync must fetch: from where the last fetch ended (or the backfill horizon for a
 * new user) up to the last complete bucket, cut into chunks. Empty when nothing new is complete.
 */
export function planFetchWindows(fetchedUntil: number | undefined, now: number, options: SyncPlanOptions): TimeWindow[] {
  const { bucketMs, chunkMs } = options
  const end = Math.floor(now / bucketMs) * bucketMs
  const start = fetchedUntil ?? Math.floor((now - options.backfillMs) / bucketMs) * bucketMs
  const step = Math.max(bucketMs, Math.floor(chunkMs / bucketMs) * bucketMs)
  const windows: TimeWindow[] = []
  for (let from = start; from < end; from += step) {
    windows.push({ startMs: from, endMs: Math.min(from + step, end) })
  }
  return windows
}
