import { HEALTH_SCOPE_PREFIX, HEALTH_SETTINGS_SCOPE } from '@fitstream/shared'

/**
 * The zone a fetch lays the person's days out in, and where it came from: their Health settings
 * (`settings`), or the zone FitStream has for them (`recorded`, the token service's, which a sync
 * puts in each fetch job). `rejected` names what was wrong with a settings answer set aside.
 */
export interface CurrentZone {
  readonly timeZone: string
  readonly source: 'settings' | 'recorded'
  readonly rejected?: 'invalid time zone' | 'malformed settings'
}

/** Whether a grant may read the person's Health settings: the read-only scope, or the settings group's full one. */
export function canReadSettings(scopes: readonly string[]): boolean {
  return scopes.includes(HEALTH_SETTINGS_SCOPE) || scopes.includes(`${HEALTH_SCOPE_PREFIX}settings`)
}

/** An IANA name (Area/Location, or UTC), not an offset such as "+05:30", that Intl knows. */
const IANA_NAME = /^[A-Za-z][A-Za-z0-9_+-]*(?:\/[A-Za-z0-9_+-]+)*$/

export function isIanaZone(zone: unknown): zone is string {
  if (typeof zone !== 'string' || zone.length > 64 || !IANA_NAME.test(zone)) return false
  try {
    new Intl.DateTimeFormat('en', { timeZone: zone })
    return true
  } catch {
    return false
  }
}

/**
 * The zone of Google's settings answer (health/v4 Settings.timeZone, the IANA zone of the person's
 * account, which follows them when they travel), else the recorded one. An answer that is not an
 * object, or whose zone is not an IANA zone, is set aside with a reason; one without a zone
 * (proto3 JSON leaves an empty string out) falls back without one.
 */
export function zoneFromSettings(settings: unknown, recorded: string): CurrentZone {
  const fallback: CurrentZone = { timeZone: recorded, source: 'recorded' }
  if (settings === null || typeof settings !== 'object' || Array.isArray(settings)) return { ...fallback, rejected: 'malformed settings' }
  const zone = (settings as { timeZone?: unknown }).timeZone
  if (zone === undefined || zone === '') return fallback
  return isIanaZone(zone) ? { timeZone: zone, source: 'settings' } : { ...fallback, rejected: 'invalid time zone' }
}
