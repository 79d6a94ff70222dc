import { describe, expect, it } from 'vitest'
import { canReadSettings, isIanaZone, zoneFromSettings } from '../src/current-zone.js'
import { wholeLocalBuckets } from '../src/windows.js'

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

describe('wholeLocalBuckets', () => {
  // Two days planned on Berlin's midnights (UTC+1 in November) are read in New York (UTC-5) as its one whole day inside them.
  const berlin = { startMs: Date.UTC(2026, 10, 11, 23), endMs: Date.UTC(2026, 10, 13, 23) }

  it('is the window itself in the zone it was planned in', () => {
    expect(wholeLocalBuckets(berlin, DAY, 'Europe/Berlin')).toEqual(berlin)
  })

  it('holds the whole local days of another zone that lie inside the window', () => {
    const ny = wholeLocalBuckets(berlin, DAY, 'America/New_York')!
    expect([iso(ny.startMs), iso(ny.endMs)]).toEqual(['2026-11-12T05:00:00.000Z', '2026-11-13T05:00:00.000Z'])
    const tokyo = wholeLocalBuckets(berlin, DAY, 'Asia/Tokyo')!
    expect([iso(tokyo.startMs), iso(tokyo.endMs)]).toEqual(['2026-11-12T15:00:00.000Z', '2026-11-13T15:00:00.000Z'])
  })

  it('takes a local day of 23 or 25 hours whole', () => {
    // New York leaves daylight saving time on 1 November 2026: that day has 25 hours.
    const window = { startMs: Date.UTC(2026, 9, 31, 0), endMs: Date.UTC(2026, 10, 3, 0) }
    const ny = wholeLocalBuckets(window, DAY, 'America/New_York')!
    expect([iso(ny.startMs), iso(ny.endMs)]).toEqual(['2026-10-31T04:00:00.000Z', '2026-11-02T05:00:00.000Z'])
  })

  it('has none when no whole local day fits', () => {
    expect(wholeLocalBuckets({ startMs: berlin.startMs, endMs: berlin.startMs + DAY }, DAY, 'America/New_York')).toBeUndefined()
  })
})
