import { describe, expect, it } from 'vitest'
import { canReadSettings, isIanaZone, zoneFromSettings } from '../src/current-zone.js'
import { localBucketsBeginningIn } from '../src/windows.js'

const HOUR = 3_600_000
const DAY = 24 * HOUR
const iso = (ms: number) => new Date(ms).toISOString()

describe('zoneFromSettings', () => {
  it('takes the IANA zone of the person’s Health settings', () => {
    expect(zoneFromSettings({ timeZone: 'America/New_York', utcOffset: '-18000s' }, 'Europe/Berlin')).toEqual({
      timeZone: 'America/New_York',
      source: 'settings',
    })
    expect(zoneFromSettings({ timeZone: 'UTC' }, 'Europe/Berlin')).toEqual({ timeZone: 'UTC', source: 'settings' })
  })

  it('keeps the recorded zone when the settings name none, and sets aside one that is not an IANA zone, by reason', () => {
    const recorded = { timeZone: 'Europe/Berlin', source: 'recorded' }
    // proto3 JSON leaves an empty string out: a person with no zone set.
    expect(zoneFromSettings({ utcOffset: '3600s' }, 'Europe/Berlin')).toEqual(recorded)
    expect(zoneFromSettings({ timeZone: '' }, 'Europe/Berlin')).toEqual(recorded)
    for (const timeZone of ['Mars/Olympus_Mons', '+05:30', 'GMT+5:30', 3600, null, { id: 'Europe/Paris' }, 'Europe/Paris\n', 'x'.repeat(65)]) {
      expect(zoneFromSettings({ timeZone }, 'Europe/Berlin'), String(timeZone)).toEqual({ ...recorded, rejected: 'invalid time zone' })
    }
    for (const settings of ['<html>', null, [], 7]) {
      expect(zoneFromSettings(settings, 'Europe/Berlin'), String(settings)).toEqual({ ...recorded, rejected: 'malformed settings' })
    }
  })

  it('knows IANA names only', () => {
    expect(['Asia/Kolkata', 'America/Argentina/Buenos_Aires', 'Etc/GMT+5', 'UTC'].every(isIanaZone)).toBe(true)
    expect(['', 'Z', '+01:00', '../etc/passwd', 'Europe/'].some(isIanaZone)).toBe(false)
  })

  it('reads the settings only with their scope, read-only or full', () => {
    const prefix = 'https://www.googleapis.com/auth/googlehealth.'
    expect(canReadSettings([`${prefix}settings.readonly`])).toBe(true)
    expect(canReadSettings([`${prefix}settings`])).toBe(true)
    expect(canReadSettings([`${prefix}settings.writeonly`, `${prefix}activity_and_fitness.readonly`])).toBe(false)
  })
})

describe('localBucketsBeginningIn', () => {
  // Two days planned on Berlin's midnights (UTC+1 in November), read once the person is in New York
  // (UTC-5) or Tokyo (UTC+9); the clock long past them unless a test says otherwise.
  const berlin = { startMs: Date.UTC(2026, 10, 11, 23), endMs: Date.UTC(2026, 10, 13, 23) }
  const later = Date.UTC(2026, 11, 1)
  const span = (w: { startMs: number; endMs: number } | undefined) => (w === undefined ? undefined : [iso(w.startMs), iso(w.endMs)])

  it('is the window itself in the zone it was planned in', () => {
    expect(localBucketsBeginningIn(berlin, DAY, 'Europe/Berlin', later)).toEqual(berlin)
  })

  it('holds the local days of another zone that begin in the window, whole', () => {
    expect(span(localBucketsBeginningIn(berlin, DAY, 'America/New_York', later))).toEqual(['2026-11-12T05:00:00.000Z', '2026-11-14T05:00:00.000Z'])
    expect(span(localBucketsBeginningIn(berlin, DAY, 'Asia/Tokyo', later))).toEqual(['2026-11-12T15:00:00.000Z', '2026-11-14T15:00:00.000Z'])
  })

  it('takes every local day once across a sync’s windows back to back, as a backfill planned in the old zone has them', () => {
    const chunks = [0, 1, 2, 3].map((i) => ({ startMs: berlin.startMs + i * 2 * DAY, endMs: berlin.startMs + (i + 1) * 2 * DAY }))
    for (const zone of ['America/New_York', 'Asia/Tokyo', 'Asia/Kolkata', 'Pacific/Chatham']) {
      const read = chunks.map((chunk) => localBucketsBeginningIn(chunk, DAY, zone, later)!)
      for (let i = 1; i < read.length; i++) expect(read[i]!.startMs, zone).toBe(read[i - 1]!.endMs)
      expect(read.at(-1)!.endMs - read[0]!.startMs, zone).toBe(8 * DAY)
    }
  })

  it('takes a local day of 23 or 25 hours whole', () => {
    // New York leaves daylight saving time on 1 November 2026: that day has 25 hours.
    const window = { startMs: Date.UTC(2026, 9, 31, 0), endMs: Date.UTC(2026, 10, 3, 0) }
    expect(span(localBucketsBeginningIn(window, DAY, 'America/New_York', later))).toEqual(['2026-10-31T04:00:00.000Z', '2026-11-03T05:00:00.000Z'])
  })

  it('leaves a day not over yet to the next sync, and has nothing when no day is over', () => {
    // At 01:00Z on 14 November, New York's 13 November is not over.
    expect(span(localBucketsBeginningIn(berlin, DAY, 'America/New_York', Date.UTC(2026, 10, 14, 1)))).toEqual([
      '2026-11-12T05:00:00.000Z',
      '2026-11-13T05:00:00.000Z',
    ])
    expect(localBucketsBeginningIn(berlin, DAY, 'America/New_York', Date.UTC(2026, 10, 13, 4))).toBeUndefined()
  })
})
