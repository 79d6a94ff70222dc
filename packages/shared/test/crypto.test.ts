import { randomBytes } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { DecryptionError, Keyring } from '../src/index.js'

const key = () => randomBytes(32)

describe('Keyring', () => {
  it('round-trips and never stores the plaintext', () => {
    const ring = new Keyring([['k1', key()]])
    const ciphertext = ring.encrypt('1//refresh-token-value', 'refresh-token:u1')
    expect(ciphertext).not.toContain('refresh-token-value')
    expect(ciphertext.startsWith('v1.k1.')).toBe(true)
    expect(ring.decrypt(ciphertext, 'refresh-token:u1')).toBe('1//refresh-token-value')
  })

  it('binds a ciphertext to its context: another user cannot use it', () => {
    const ring = new Keyring([['k1', key()]])
    const ciphertext = ring.encrypt('token', 'refresh-token:alice')
    expect(() => ring.decrypt(ciphertext, 'refresh-token:bob')).toThrow(DecryptionError)
  })

  it('detects tampering', () => {
    const ring = new Keyring([['k1', key()]])
    const parts = ring.encrypt('token', 'ctx').split('.')
    parts[4] = Buffer.from('forged').toString('base64url')
    expect(() => ring.decrypt(parts.join('.'), 'ctx')).toThrow(/does not authenticate/)
  })

  it('rotates: new key encrypts, old key still decrypts, a dropped key is reported by id', () => {
    const oldKey = key()
    const before = new Keyring([['2026-05', oldKey]]).encrypt('token', 'ctx')
    const rotated = new Keyring([
      ['2026-11', key()],
      ['2026-05', oldKey],
    ])
    expect(rotated.decrypt(before, 'ctx')).toBe('token')
    expect(Keyring.keyIdOf(rotated.encrypt('token', 'ctx'))).toBe('2026-11')
    const dropped = new Keyring([['2026-11', key()]])
    expect(() => dropped.decrypt(before, 'ctx')).toThrow(/no key with id 2026-05/)
  })

  it('keeps ciphertexts as bytes too, a quarter smaller, bound, authenticated and rotated alike', () => {
    const oldKey = key()
    const ring = new Keyring([['2026-05', oldKey]])
    const text = ring.encrypt('1//refresh-token-value-of-some-length', 'refresh-token:u1')
    const bytes = ring.encryptToBytes('1//refresh-token-value-of-some-length', 'refresh-token:u1')
    expect(bytes.length).toBeLessThan(text.length * 0.85)
    expect(bytes.includes('refresh-token-value')).toBe(false)
    expect(ring.decrypt(bytes, 'refresh-token:u1')).toBe('1//refresh-token-value-of-some-length')
    // The text form read back as bytes (as a binary-safe Redis read gives it) still decrypts.
    expect(ring.decrypt(Buffer.from(text), 'refresh-token:u1')).toBe('1//refresh-token-value-of-some-length')
    expect(() => ring.decrypt(bytes, 'refresh-token:u2')).toThrow(DecryptionError)
    const forged = Buffer.from(bytes)
    forged[forged.length - 1]! ^= 1
    expect(() => ring.decrypt(forged, 'refresh-token:u1')).toThrow(/does not authenticate/)
    expect(() => ring.decrypt(bytes.subarray(0, 20), 'refresh-token:u1')).toThrow(/not a FitStream ciphertext/)
    expect(Keyring.keyIdOf(bytes)).toBe('2026-05')
    const rotated = new Keyring([
      ['2026-11', key()],
      ['2026-05', oldKey],
    ])
    expect(rotated.decrypt(bytes, 'refresh-token:u1')).toBe('1//refresh-token-value-of-some-length')
    expect(Keyring.keyIdOf(rotated.encryptToBytes('token', 'ctx'))).toBe('2026-11')
    expect(() => new Keyring([['2026-11', key()]]).decrypt(bytes, 'refresh-token:u1')).toThrow(/no key with id 2026-05/)
  })
})
