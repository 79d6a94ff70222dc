/** A wall-clock date and time in some time zone, as Google's civil-time fields carry it. */
export interface CivilTime {
  readonly year: number
  readonly month: number
  readonly day: number
  readonly hours: number
  readonly minutes: number
  readonly seconds: number
}

const formats = new Map<string, Intl.DateTimeFormat>()

function format(timeZone: string): Intl.DateTimeFormat {
  let f = formats.get(timeZone)
  if (f === undefined) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
    })
    formats.set(timeZone, f)
  }
  return f
}

/** The wall-clock time in `timeZone` at the instant `ms` (to the second). */
export function civilTime(ms: number, timeZone: string): CivilTime {
  if (timeZone === 'UTC') {
    const d = new Date(ms)
    return {
      year: d.getUTCFullYear(),
      month: d.getUTCMonth() + 1,
      day: d.getUTCDate(),
      hours: d.getUTCHours(),
      minutes: d.getUTCMinutes(),
      seconds: d.getUTCSeconds(),
    }
  }
  const parts = format(timeZone).formatToParts(new Date(ms))
  const get = (type: string): number => Number(parts.find((p) => p.type === type)?.value)
  return { year: get('year'), month: get('month'), day: get('day'), hours: get('hour'), minutes: get('minute'), seconds: get('second') }
}

/** How far `timeZone`'s wall clock is ahead of UTC at the instant `ms`. */
export function timeZoneOffsetMs(ms: number, timeZone: string): number {
  if (timeZone === 'UTC') return 0
  const c = civilTime(ms, timeZone)
  return Date.UTC(c.year, c.month - 1, c.day, c.hours, c.minutes, c.seconds) - Math.floor(ms / 1000) * 1000
}

/**
 * The instant a wall-clock time in `timeZone` names. The offset is taken twice, the second time at
 * the first answer, so a time on the far side of a daylight-saving change still comes out right.
 */
export function instantOf(civil: CivilTime, timeZone: string): number {
  const asUtc = Date.UTC(civil.year, civil.month - 1, civil.day, civil.hours, civil.minutes, civil.seconds)
  const first = asUtc - timeZoneOffsetMs(asUtc, timeZone)
  return asUtc - timeZoneOffsetMs(first, timeZone)
}
