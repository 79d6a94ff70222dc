/**
 * Calendar units, always in UTC: the granularity of released records, the windows of cohort cells,
 * pseudonym epochs and budget periods. Calendar units rather than fixed milliseconds, so a day is a
 * day and a month a month, whatever its length.
 */
export const TIME_UNITS = ['hour', 'day', 'week', 'month'] as const
export type TimeUnit = (typeof TIME_UNITS)[number]

export const PERIOD_UNITS = ['day', 'week', 'month'] as const
export type PeriodUnit = (typeof PERIOD_UNITS)[number]

const HOUR_MS = 3_600_000
const DAY_MS = 86_400_000

/** The UTC window of `unit` containing `ms`: [startMs, endMs). Weeks are ISO weeks (Monday to Monday). */
export function windowOf(ms: number, unit: TimeUnit): { startMs: number; endMs: number } {
  if (unit === 'hour') {
    const startMs = Math.floor(ms / HOUR_MS) * HOUR_MS
    return { startMs, endMs: startMs + HOUR_MS }
  }
  const dayStart = Math.floor(ms / DAY_MS) * DAY_MS
  if (unit === 'day') return { startMs: dayStart, endMs: dayStart + DAY_MS }
  if (unit === 'week') {
    const weekday = (new Date(dayStart).getUTCDay() + 6) % 7
    const startMs = dayStart - weekday * DAY_MS
    return { startMs, endMs: startMs + 7 * DAY_MS }
  }
  const date = new Date(ms)
  return { startMs: Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), 1), endMs: Date.UTC(date.getUTCFullYear(), date.getUTCMonth() + 1, 1) }
}

/** Per unit, the period `epochOf` last labelled: a day of hourly records falls in one or two. */
const lastPeriods = new Map<PeriodUnit, { startMs: number; endMs: number; label: string }>()

/** The label of a period: `2026-11` (month), `2026-W47` (ISO week) or `2026-11-24` (day). */
export function epochOf(ms: number, unit: PeriodUnit): string {
  const last = lastPeriods.get(unit)
  if (last !== undefined && ms >= last.startMs && ms < last.endMs) return last.label
  const label = labelOf(ms, unit)
  lastPeriods.set(unit, { ...windowOf(ms, unit), label })
  return label
}

function labelOf(ms: number, unit: PeriodUnit): string {
  const date = new Date(ms)
  if (unit === 'month') return date.toISOString().slice(0, 7)
  if (unit === 'day') return date.toISOString().slice(0, 10)
  // ISO 8601 week: the week belongs to the year of its Thursday.
  const thursday = new Date(Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), date.getUTCDate()))
  thursday.setUTCDate(thursday.getUTCDate() + 4 - (thursday.getUTCDay() || 7))
  const yearStart = Date.UTC(thursday.getUTCFullYear(), 0, 1)
  const week = Math.ceil(((thursday.getTime() - yearStart) / DAY_MS + 1) / 7)
  return `${thursday.getUTCFullYear()}-W${String(week).padStart(2, '0')}`
}

/** When the period an `epochOf` label names ends (ms); undefined for a label that is none of the three. */
export function periodEndOf(label: string): number | undefined {
  const month = /^(\d{4})-(\d{2})$/.exec(label)
  if (month !== null) return Date.UTC(Number(month[1]), Number(month[2]), 1)
  const day = /^(\d{4})-(\d{2})-(\d{2})$/.exec(label)
  if (day !== null) return Date.UTC(Number(day[1]), Number(day[2]) - 1, Number(day[3]) + 1)
  const week = /^(\d{4})-W(\d{2})$/.exec(label)
  if (week === null) return undefined
  // ISO week 1 is the week with the year's first Thursday, i.e. the one containing 4 January.
  const jan4 = Date.UTC(Number(week[1]), 0, 4)
  const week1Monday = jan4 - ((new Date(jan4).getUTCDay() + 6) % 7) * DAY_MS
  return week1Monday + Number(week[2]) * 7 * DAY_MS
}

/**
 * The most windows of `unit` that can start within one period (a cell is charged to the period its
 * window starts in): 31 days or 5 ISO weeks in a month, 53 weeks or 366 days in a year.
 */
export function windowsPerPeriod(unit: TimeUnit, period: PeriodUnit | 'year'): number {
  const days = { day: 1, week: 7, month: 31, year: 366 }[period]
  if (unit === 'hour') return days * 24
  if (unit === 'day') return days
  if (unit === 'week') return period === 'year' ? 53 : Math.ceil(days / 7)
  // Months: one starts in a month or a year-month; a day or week holds at most one month's first day.
  return period === 'year' ? 12 : 1
}

/**
 * Which window of `unit` a window starting at `startMs` is among those starting in its period (0, 1, …):
 * the bit that marks it in the person's ledger of the period.
 */
export function windowIndexInPeriod(startMs: number, unit: TimeUnit, period: PeriodUnit): number {
  if (unit === 'month') return 0
  const periodStart = windowOf(startMs, period).startMs
  return Math.floor((startMs - periodStart) / { hour: HOUR_MS, day: DAY_MS, week: 7 * DAY_MS }[unit])
}

/**
 * The history batch `now` falls in: batches of `days` days counted from Monday 1970-01-05, so weekly
 * batches run Monday to Monday (UTC). Cells of a batch close at its end.
 */
export function historyBatchOf(now: number, days: number): { startMs: number; endMs: number } {
  const length = days * DAY_MS
  const origin = 4 * DAY_MS
  const startMs = Math.floor((now - origin) / length) * length + origin
  return { startMs, endMs: startMs + length }
}
