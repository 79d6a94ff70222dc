import { describe, expect, it } from 'vitest'
import { timeZoneOffsetMs } from '@fitstream/shared'
import { alignDown, planFetchWindows, type SyncPlanOptions } from '../src/sync-planner.js'

const HOUR = 3_600_000
const DAY = 24 * HOUR
const now = Date.UTC(2026, 10, 24, 9, 20) // 09:20Z
const options: SyncPlanOptions = { bucketMs: HOUR, backfillMs: 30 * DAY, chunkMs: 48 * HOUR, lookbackMs: 48 * HOUR }

describe('planFetchWindows', () => {
  it('backfills a new user in chunks, newest first, numbered for progress, up to the last complete hour', () => {
    const plan = planFetchWindows({ fetchedUntil: undefined, backfillEnd: undefined, timeZone: 'UTC' }, now, options)
    expect(plan).toHaveLength(15)
    expect(plan[0]).toEqual({ kind: 'backfill', chunk: { index: 1, of: 15 }, window: { startMs: Date.UTC(2026, 10, 22, 9), endMs: Date.UTC(2026, 10, 24, 9) } })
    expect(plan.at(-1)!.window.startMs).toBe(Date.UTC(2026, 9, 25, 9))
    for (let i = 1; i < plan.length; i++) expect(plan[i]!.window.endMs).toBe(plan[i - 1]!.window.startMs)
    for (const p of plan) expect(p.window.endMs - p.window.startMs).toBeLessThanOrEqual(90 * DAY)
  })

  it('afterwards re-reads the lookback before the last complete hour, even when the cursor is recent', () => {
    const plan = planFetchWindows({ fetchedUntil: Date.UTC(2026, 10, 24, 8), backfillEnd: Date.UTC(2026, 10, 20), timeZone: 'UTC' }, now, options)
    expect(plan).toEqual([{ kind: 'incremental', window: { startMs: Date.UTC(2026, 10, 22, 9), endMs: Date.UTC(2026, 10, 24, 9) } }])
  })

  it('covers a longer gap from the cursor when a user was away', () => {
    const plan = planFetchWindows({ fetchedUntil: Date.UTC(2026, 10, 17, 9), backfillEnd: Date.UTC(2026, 10, 1), timeZone: 'UTC' }, now, options)
    expect(plan.at(-1)!.window.startMs).toBe(Date.UTC(2026, 10, 17, 9))
    expect(plan[0]!.window.endMs).toBe(Date.UTC(2026, 10, 24, 9))
    expect(plan.every((p) => p.kind === 'incremental')).toBe(true)
  })

  it('does not plan the backfill twice while its chunks are still running', () => {
    const plan = planFetchWindows({ fetchedUntil: undefined, backfillEnd: Date.UTC(2026, 10, 24, 8), timeZone: 'UTC' }, now, options)
    expect(plan.every((p) => p.kind === 'incremental')).toBe(true)
  })

  it('starts on the new zone’s midnight when the cursor lies on the midnight of a zone the person has left', () => {
    const daily = { ...options, bucketMs: DAY, chunkMs: 7 * DAY, lookbackMs: 2 * DAY }
    // Fetched up to Berlin's 15 November midnight (23:00Z); the person is in New York now (UTC-5) and was away a week.
    const plan = planFetchWindows({ fetchedUntil: Date.UTC(2026, 10, 14, 23), backfillEnd: Date.UTC(2026, 10, 1), timeZone: 'America/New_York' }, now, daily)
    expect(plan.at(-1)!.window.startMs).toBe(Date.UTC(2026, 10, 14, 5))
    for (const { window } of plan) expect([window.startMs, window.endMs].map((ms) => (ms - 5 * HOUR) % DAY)).toEqual([0, 0])
  })

  it('aligns daily buckets to the user’s local midnight', () => {
    const daily = { ...options, bucketMs: DAY, chunkMs: 7 * DAY, backfillMs: 3 * DAY }
    const plan = planFetchWindows({ fetchedUntil: undefined, backfillEnd: undefined, timeZone: 'Europe/Helsinki' }, now, daily)
    // 2026-11-24 00:00 in Helsinki (UTC+2) is 2026-11-23T22:00Z.
    expect(plan[0]!.window.endMs).toBe(Date.UTC(2026, 10, 23, 22))
    expect(plan[0]!.window.startMs).toBe(Date.UTC(2026, 10, 20, 22))
  })
})

describe('time zones', () => {
  it('knows offsets, DST included, and half-hour zones', () => {
    expect(timeZoneOffsetMs(Date.UTC(2026, 0, 15), 'Europe/Helsinki')).toBe(2 * HOUR)
    expect(timeZoneOffsetMs(Date.UTC(2026, 6, 15), 'Europe/Helsinki')).toBe(3 * HOUR)
    expect(timeZoneOffsetMs(Date.UTC(2026, 6, 15), 'Asia/Kolkata')).toBe(5.5 * HOUR)
    expect(alignDown(Date.UTC(2026, 6, 15, 10, 45), DAY, 'Asia/Kolkata')).toBe(Date.UTC(2026, 6, 14, 18, 30))
  })

  it('puts hourly windows on whole UTC hours in every zone, half-hour and 45-minute zones included', () => {
    for (const timeZone of ['Asia/Kolkata', 'Asia/Tehran', 'America/St_Johns', 'Australia/Adelaide', 'Asia/Kathmandu', 'Europe/Helsinki']) {
      expect(alignDown(Date.UTC(2026, 6, 15, 10, 45), HOUR, timeZone), timeZone).toBe(Date.UTC(2026, 6, 15, 10))
      const plan = planFetchWindows({ fetchedUntil: undefined, backfillEnd: undefined, timeZone }, now, options)
      // The same windows as a person in UTC gets: nothing in their records' boundaries shows their zone.
      expect(plan, timeZone).toEqual(planFetchWindows({ fetchedUntil: undefined, backfillEnd: undefined, timeZone: 'UTC' }, now, options))
      for (const { window } of plan) expect([window.startMs % HOUR, window.endMs % HOUR], timeZone).toEqual([0, 0])
    }
  })

  it('still lays daily buckets on the person’s local days in a half-hour zone', () => {
    const daily = { ...options, bucketMs: DAY, chunkMs: 7 * DAY, backfillMs: 3 * DAY }
    const plan = planFetchWindows({ fetchedUntil: undefined, backfillEnd: undefined, timeZone: 'Asia/Kolkata' }, now, daily)
    // 2026-11-24 00:00 in Kolkata (UTC+5:30) is 2026-11-23T18:30Z; 09:20Z is already the 24th there.
    expect(plan[0]!.window.endMs).toBe(Date.UTC(2026, 10, 23, 18, 30))
    expect(plan.at(-1)!.window.startMs).toBe(Date.UTC(2026, 10, 20, 18, 30))
    for (const { window } of plan) expect((window.startMs + timeZoneOffsetMs(window.startMs, 'Asia/Kolkata')) % DAY).toBe(0)
  })
})
