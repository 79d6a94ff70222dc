/**
 * Calendar arithmetic in IANA time zones with nothing but Intl, for bucketByTime.period: a "day" in
 * Europe/Helsinki is 23 or 25 hours around DST changes, and the fake must get that right for the
 * project's daily totals to line up with what Google would return. The wall clock itself is read
 * by the shared civilTime, as the services read it; the arithmetic on top is the fake's own.
 */

import { civilTime } from '@fitstream/shared/time-zones'

/** Whether Intl knows the zone; Google answers 400 for zones it does not know. */
export function isValidTimeZone(timeZone: string): boolean {
  if (timeZone.length === 0 || timeZone.length > 64) return false
  try {
    civilTime(0, timeZone)
    return true
  } catch {
    return false
  }
}

export interface WallTime {
  year: number
  /** 1-12 */
  month: number
  day: number
  hour: number
  minute: number
  second: number
  millisecond: number
}

export function wallTime(t: number, timeZone: string): WallTime {
  const c = civilTime(t, timeZone)
  return {
    year: c.year,
    month: c.month,
    day: c.day,
    hour: c.hours,
    minute: c.minutes,
    second: c.seconds,
    millisecond: ((t % 1000) + 1000) % 1000,
  }
}

/** The instant a wall-clock time would be if the zone were UTC: civil times compared and added as numbers. */
export function wallAsUtc(w: WallTime): number {
  // Date.UTC normalises overflowing days and months, which the period arithmetic relies on.
  const d = new Date(0)
  d.setUTCFullYear(w.year, w.month - 1, w.day)
  d.setUTCHours(w.hour, w.minute, w.second, w.millisecond)
  return d.getTime()
}

/** The zone's offset from UTC at instant t, in ms. */
export function offsetAt(t: number, timeZone: string): number {
  return wallAsUtc(wallTime(t, timeZone)) - t
}

/**
 * The instant a wall-clock time occurs in a zone. In a DST gap the wall time does not exist and
 * this lands just after the gap; in an overlap it picks the earlier instant.
 */
export function zonedToInstant(w: WallTime, timeZone: string): number {
  const asUtc = wallAsUtc(w)
  const first = asUtc - offsetAt(asUtc, timeZone)
  const second = asUtc - offsetAt(first, timeZone)
  if (first === second) {
    // Check whether the earlier offset also matches (overlap: prefer the earlier instant).
    const earlier = asUtc - offsetAt(first - 3_600_000, timeZone)
    if (earlier < first && wallAsUtc(wallTime(earlier, timeZone)) === asUtc) return earlier
    return first
  }
  return Math.max(first, second)
}

/** Days in a month (1-12) of the proleptic Gregorian calendar. */
export function daysInMonth(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate()
}

/** The start of the next bucket: `value` calendar days/weeks/months after `t` in the zone. */
export function addCalendarPeriod(t: number, unit: 'day' | 'week' | 'month', value: number, timeZone: string): number {
  const w = wallTime(t, timeZone)
  if (unit === 'month') {
    const monthIndex = w.month - 1 + value
    const year = w.year + Math.floor(monthIndex / 12)
    const month = (((monthIndex % 12) + 12) % 12) + 1
    return zonedToInstant({ ...w, year, month, day: Math.min(w.day, daysInMonth(year, month)) }, timeZone)
  }
  return zonedToInstant({ ...w, day: w.day + value * (unit === 'week' ? 7 : 1) }, timeZone)
}
