import { describe, expect, it } from 'vitest'
import { decodeScopes, encodeScopes } from '../src/user-record.js'

const FITNESS = [
  'https://www.googleapis.com/auth/fitness.activity.read',
  'https://www.googleapis.com/auth/fitness.heart_rate.read',
  'https://www.googleapis.com/auth/fitness.sleep.read',
]

describe('stored scopes', () => {
  it('reads back exactly the scopes Google granted, Fitness URLs and others alike', () => {
    const granted = [...FITNESS, 'openid', 'https://www.googleapis.com/auth/userinfo.email', 'https://example.com/other']
    expect(decodeScopes(encodeScopes(granted))).toEqual(granted)
    expect(decodeScopes(encodeScopes([]))).toEqual([])
    expect(decodeScopes(undefined)).toEqual([])
  })

  it("stores Google's common prefix once per scope as a single character", () => {
    const stored = encodeScopes(FITNESS)
    expect(stored).toBe('~fitness.activity.read ~fitness.heart_rate.read ~fitness.sleep.read')
    expect(stored.length).toBeLessThan(FITNESS.join(' ').length / 2)
  })

  it('still reads scopes stored as full URLs by an earlier version', () => {
    expect(decodeScopes(FITNESS.join(' '))).toEqual(FITNESS)
  })
})
