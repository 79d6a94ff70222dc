/**
 * users.getSettings (google.devicesandservices.health.v4 HealthProfileService.GetSettings): the
 * person's account settings, of which FitStream reads the time zone. Google keeps the zone of the
 * person's account (an IANA name) and its offset from UTC now; the fake answers with the user's
 * zone, which FakeGoogle.setUserTimeZone moves, and metric units.
 */
import { utcOffset } from './list.js'

/** The Settings message as Google writes it in JSON (health/v4 Schema$Settings); proto3 leaves `false` out. */
export interface SettingsJson {
  name: string
  distanceUnit: 'DISTANCE_UNIT_KILOMETERS'
  heightUnit: 'HEIGHT_UNIT_CENTIMETERS'
  weightUnit: 'WEIGHT_UNIT_KILOGRAMS'
  languageLocale: string
  /** The IANA zone of the person's account. */
  timeZone: string
  /** google.protobuf.Duration: the zone's offset from UTC when asked, e.g. "-18000s". */
  utcOffset: string
}

export function buildSettingsResponse(googleId: string, timeZone: string, nowMs: number): SettingsJson {
  return {
    name: `users/${googleId}/settings`,
    distanceUnit: 'DISTANCE_UNIT_KILOMETERS',
    heightUnit: 'HEIGHT_UNIT_CENTIMETERS',
    weightUnit: 'WEIGHT_UNIT_KILOGRAMS',
    languageLocale: 'en_GB',
    timeZone,
    utcOffset: utcOffset(nowMs, timeZone),
  }
}
