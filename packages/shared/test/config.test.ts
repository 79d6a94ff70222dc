import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import { ConfigError, commonEnv, envVar, generateKeyringEntry, keyringVar, parseEnv } from '../src/index.js'

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
