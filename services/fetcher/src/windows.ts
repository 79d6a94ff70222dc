import { civilTime, instantOf, timeZoneOffsetMs, type TimeWindow } from '@fitstream/shared'

export const DAY_MS = 86_400_000

/**
 * The time zone whose local days the buckets are, when they are whole days in a zone other than UTC
 * (Google then counts days in it, daylight-saving changes included); undefined for fixed buckets.
 */
export function localDayZone(bucketMs: number, timeZone: string | undefined): string | undefined {
  return bucketMs % DAY_MS === 0 && timeZone !== undefined && timeZone !== 'UTC' ? timeZone : undefined
}

/**
 * The window in consecutive parts of at most `maxMs`, each a whole number of buckets. With a time
 * zone the buckets are local days, and each cut moves to the nearest local midnight (a day with a
 * daylight-saving change is an hour shorter or longer).
 */
export function splitWindow(window: TimeWindow, bucketMs: number, maxMs: number, timeZone?: string): TimeWindow[] {
  const step = Math.max(bucketMs, Math.floor(maxMs / bucketMs) * bucketMs)
  const cuts: number[] = []
  for (let cut = window.startMs + step; cut < window.endMs; cut += step) {
    const day = timeZone === undefined ? undefined : civilTime(cut + DAY_MS / 2, timeZone)
    cuts.push(day === undefined ? cut : instantOf({ ...day, hours: 0, minutes: 0, seconds: 0 }, timeZone!))
  }
  // Snapped to local midnight, the last cut can land on the window's end (the day clocks go back).
  const bounds = [window.startMs, ...cuts.filter((cut) => cut > window.startMs && cut < window.endMs), window.endMs]
  return bounds.slice(1).map((endMs, i) => ({ startMs: bounds[i]!, endMs }))
}

/** The start of the local bucket of whole days holding `ms`, laid out in the zone as a sync lays them out. */
function localBucketStart(ms: number, bucketMs: number, timeZone: string): number {
  const offset = timeZoneOffsetMs(ms, timeZone)
  return Math.floor((ms + offset) / bucketMs) * bucketMs - offset
}

/**
 * A window planned on another zone's midnights, read as the local buckets of whole days in
 * `timeZone` that begin in it: from the first local bucket start at or after its start to the first
 * at or after its end (the window itself when it is laid out in that zone). So the windows of one
 * sync, back to back, take every local day once, each in the window its midnight falls in. The last
 * day ends up to a day after the window; one not over by `nowMs` is left to the next sync. Undefined
 * when no such day is over yet.
 */
export function localBucketsBeginningIn(window: TimeWindow, bucketMs: number, timeZone: string, nowMs: number): TimeWindow | undefined {
  const startOfOrAfter = (ms: number): number => {
    const start = localBucketStart(ms, bucketMs, timeZone)
    // A local day is 23 to 25 hours: three hours past the next start lands inside the following bucket.
    return start < ms ? localBucketStart(start + bucketMs + 3 * 3_600_000, bucketMs, timeZone) : start
  }
  const startMs = startOfOrAfter(window.startMs)
  const endMs = Math.min(startOfOrAfter(window.endMs), localBucketStart(nowMs, bucketMs, timeZone))
  return startMs < endMs ? { startMs, endMs } : undefined
}
