import { describe, expect, it } from 'vitest'
import { decodeScopes, encodeScopes } from '../src/user-record.js'

const FITNESS = [
  'https://www.googleapis.com/auth/fitness.activity.read',
  'https://www.googleapis.com/auth/fitness.heart_rate.read',
  'https://www.googleapis.com/auth/fitness.sleep.read',
]

describe('stored scopes', () => {
  it('reads characters stored by earlier records as the same scopes for good', () => {
    // Pinned: a record keeps these characters for as long as it exists, so the table only grows at its end.
    const google = 'https://www.googleapis.com/auth/'
    expect(decodeScopes('%AWmq')).toEqual([
      `${google}fitness.activity.read`,
      `${google}googlehealth.activity_and_fitness.readonly`,
      'openid',
      `${google}userinfo.profile`,
    ])
    expect(decodeScopes('%Vl')).toEqual([`${google}fitness.reproductive_health.write`, `${google}googlehealth.irn`])
  })

  it('reads back exactly the scopes Google granted, Fitness URLs and others alike', () => {
    const granted = [...FITNESS, 'openid', 'https://www.googleapis.com/auth/userinfo.email', 'https://example.com/other']
    expect(decodeScopes(encodeScopes(granted))).toEqual(granted)
    expect(decodeScopes(encodeScopes([]))).toEqual([])
    expect(decodeScopes(undefined)).toEqual([])
  })

  it('stores each scope FitStream knows as one character, runs of them as one word', () => {
    const health = ['activity_and_fitness', 'health_metrics_and_measurements', 'sleep', 'location', 'profile', 'settings', 'ecg', 'irn'].map(
      (group) => `https://www.googleapis.com/auth/googlehealth.${group}.readonly`,
    )
    expect(encodeScopes(health)).toMatch(/^%.{8}$/)
    expect(decodeScopes(encodeScopes(health))).toEqual(health)
    expect(encodeScopes(FITNESS)).toMatch(/^%.{3}$/)
  })

  it('keeps the order of known and other scopes mixed together', () => {
    const granted = ['https://example.com/a', FITNESS[0]!, FITNESS[1]!, 'https://www.googleapis.com/auth/unknown.read', 'openid', 'https://example.com/b']
    expect(encodeScopes(granted)).toBe(
      `https://example.com/a ${encodeScopes(FITNESS.slice(0, 2))} ~unknown.read ${encodeScopes(['openid'])} https://example.com/b`,
    )
    expect(decodeScopes(encodeScopes(granted))).toEqual(granted)
  })

  it('still reads scopes stored with the URL prefix as `~`', () => {
    expect(decodeScopes('~fitness.activity.read ~fitness.heart_rate.read ~fitness.sleep.read openid')).toEqual([...FITNESS, 'openid'])
  })

  it('still reads scopes stored as full URLs by an earlier version', () => {
    expect(decodeScopes(FITNESS.join(' '))).toEqual(FITNESS)
  })
})
