import { describe, expect, it } from 'vitest'
import { health, type health_v4 } from 'googleapis/build/src/apis/health/index.js'
import { ALL_HEALTH_READ_SCOPES, healthReadScope } from '../src/index.js'
import { failure, options, scopeInsufficient, useFakeGoogle } from './health-support.js'

const GET_SETTINGS = 'google.devicesandservices.health.v4.HealthProfileService.GetSettings'

describe('users.getSettings: the person’s time zone, as Google keeps it', () => {
  // 20 March 2026, 12:00 UTC: New York is on daylight saving time (UTC-4) since 8 March, Berlin not yet (UTC+1).
  const google = useFakeGoogle()
  const settings = (token: string | null): Promise<{ data: health_v4.Schema$Settings }> =>
    health({ version: 'v4', rootUrl: google.fake.rootUrl }).users.getSettings({ name: 'users/me/settings' }, options(token))

  it('names the zone of the account and its offset now, and the zone the person moved to once they have', async () => {
    const user = google.fake.addUser({ seed: 'settings-traveller', scopes: [...ALL_HEALTH_READ_SCOPES], timeZone: 'Europe/Berlin' })
    const token = await google.accessToken(user)
    const before = google.fake.stats.settingsRequests
    const { data } = await settings(token)
    expect(data).toEqual({
      name: `users/${user.googleId}/settings`,
      distanceUnit: 'DISTANCE_UNIT_KILOMETERS',
      heightUnit: 'HEIGHT_UNIT_CENTIMETERS',
      weightUnit: 'WEIGHT_UNIT_KILOGRAMS',
      languageLocale: 'en_GB',
      timeZone: 'Europe/Berlin',
      utcOffset: '3600s',
    })
    google.fake.setUserTimeZone(user.googleId, 'America/New_York')
    expect((await settings(token)).data).toMatchObject({ timeZone: 'America/New_York', utcOffset: '-14400s' })
    expect(google.fake.stats.settingsRequests - before).toBe(2)
  })

  it('needs googlehealth.settings.readonly, and a valid token', async () => {
    const scopes = ALL_HEALTH_READ_SCOPES.filter((scope) => scope !== healthReadScope('settings'))
    const user = google.fake.addUser({ seed: 'settings-no-scope', scopes })
    const denied = await failure(settings(await google.accessToken(user)))
    expect(denied.status).toBe(403)
    expect(denied.error).toMatchObject(scopeInsufficient(GET_SETTINGS))
    expect(denied.headers.get('www-authenticate')).toContain(`scope="${healthReadScope('settings')}"`)
    expect((await failure(settings(null))).status).toBe(401)
    expect((await failure(settings('ya29.not-a-token'))).status).toBe(401)
  })

  it('answers with an injected fault or a corrupted body, as tests of a client need', async () => {
    const user = google.fake.addUser({ seed: 'settings-faults', scopes: [...ALL_HEALTH_READ_SCOPES] })
    const token = await google.accessToken(user)
    google.fake.injectFault({ route: 'settings', status: 503 })
    expect((await failure(settings(token))).status).toBe(503)
    google.fake.injectFault({ route: 'settings', status: 200, body: { timeZone: 'Mars/Olympus_Mons' } })
    expect((await settings(token)).data).toEqual({ timeZone: 'Mars/Olympus_Mons' })
    expect((await settings(token)).data.timeZone).toBe('UTC')
  })
})
