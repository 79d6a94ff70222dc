import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import {
  ConfigError,
  commonEnv,
  configErrorLine,
  envVar,
  generateKeyringEntry,
  googleApiEnvShape,
  keyringVar,
  parseEnv,
  requireTogether,
} from '../src/index.js'

describe('parseEnv', () => {
  const schema = z.object({ PORT: envVar.port(), NAME: envVar.string(), KEYS: keyringVar() })

  it('returns typed, frozen values', () => {
    const config = parseEnv(schema, { PORT: '8080', NAME: 'x', KEYS: generateKeyringEntry('k1') })
    expect(config.PORT).toBe(8080)
    expect(config.KEYS.activeKeyId).toBe('k1')
    expect(Object.isFrozen(config)).toBe(true)
  })

  it('names every bad variable in one error', () => {
    const attempt = () => parseEnv(schema, { PORT: 'eighty', KEYS: 'k1:tooshort' })
    expect(attempt).toThrow(ConfigError)
    expect(attempt).toThrow(/PORT: must be a port number/)
    expect(attempt).toThrow(/NAME: /)
    expect(attempt).toThrow(/KEYS: must be comma-separated id:key entries/)
  })

  it('treats an empty variable as unset, so defaults apply', () => {
    const config = parseEnv(commonEnv, { REDIS_URL: '', QUEUE_PREFIX: '' })
    expect(config.REDIS_URL).toBe('redis://127.0.0.1:6379')
    expect(config.QUEUE_PREFIX).toBe('fitstream')
  })

  it('reads people through the Google Health API unless told otherwise, and knows when Google closes Fit', () => {
    const google = z.object(googleApiEnvShape)
    expect(parseEnv(google, {})).toEqual({ GOOGLE_DATA_API: 'health', GOOGLE_FIT_CLOSES_AT: Date.parse('2027-01-01T00:00:00Z') })
    expect(parseEnv(google, { GOOGLE_DATA_API: 'fit', GOOGLE_FIT_CLOSES_AT: '2027-03-31T00:00:00+02:00' })).toEqual({
      GOOGLE_DATA_API: 'fit',
      GOOGLE_FIT_CLOSES_AT: Date.parse('2027-03-30T22:00:00Z'),
    })
    expect(() => parseEnv(google, { GOOGLE_FIT_CLOSES_AT: 'end of 2026' })).toThrow(
      /GOOGLE_FIT_CLOSES_AT: must be an ISO 8601 date-time such as 2027-01-01T00:00:00Z/,
    )
    expect(() => parseEnv(google, { GOOGLE_DATA_API: 'fitness' })).toThrow(/GOOGLE_DATA_API: /)
  })

  it('rejects a queue prefix that would break Redis key layout', () => {
    expect(() => parseEnv(commonEnv, { QUEUE_PREFIX: 'a:b' })).toThrow(/QUEUE_PREFIX: must be 1-64 letters/)
  })

  it('never echoes a secret value in its message', () => {
    const secret = 'k1:c2VjcmV0LXRoYXQtaXMtdG9vLXNob3J0'
    try {
      parseEnv(schema, { PORT: '1', NAME: 'x', KEYS: secret })
      expect.unreachable()
    } catch (error) {
      expect((error as Error).message).not.toContain('c2VjcmV0')
    }
  })
})

describe('two variables that work only together', () => {
  it('refuse one set without the other, naming both, and pass both or neither', () => {
    expect(() => requireTogether({ CERT: '/c.pem', KEY: undefined }, 'CERT', 'KEY')).toThrow(new ConfigError('Invalid configuration: CERT and KEY go together'))
    expect(() => requireTogether({ KEY: '/k.pem' }, 'CERT', 'KEY')).toThrow(ConfigError)
    expect(() => requireTogether({ CERT: '/c.pem', KEY: '/k.pem' }, 'CERT', 'KEY')).not.toThrow()
    expect(() => requireTogether({}, 'CERT', 'KEY')).not.toThrow()
  })
})

describe('a configuration error at start', () => {
  it('is one JSON log line with the code, naming every missing variable, never the values given', () => {
    const schema = z.object({ ADMIN_TOKEN: envVar.string(), PSEUDONYM_KEY: envVar.base64Secret(32), NAME: envVar.string() })
    let error: unknown
    try {
      parseEnv(schema, { NAME: 'secret-looking-value' })
    } catch (caught) {
      error = caught
    }
    expect(error).toBeInstanceOf(ConfigError)
    const line = JSON.parse(configErrorLine('anonymizer', error as ConfigError, new Date('2026-12-01T00:00:00Z'))) as Record<string, unknown>
    expect(line).toMatchObject({ level: 60, time: '2026-12-01T00:00:00.000Z', service: 'anonymizer', code: 'FST_ERR_CONFIG' })
    expect(line.msg).toMatch(/ADMIN_TOKEN/)
    expect(line.msg).toMatch(/PSEUDONYM_KEY/)
    expect(line.msg).not.toMatch(/secret-looking-value/)
  })
})
