import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto'
import { z } from 'zod'
import { DecryptionError } from './errors.js'

const KEY_BYTES = 32
const IV_BYTES = 12
const FORMAT = 'v1'
/** First byte of the binary form; the text form starts with `v`. */
const BINARY_FORMAT = 2
const TAG_BYTES = 16

/**
 * AES-256-GCM keys by id. The first key encrypts; every key decrypts, so keys can rotate: add a new
 * key in front, re-encrypt, then drop the old one.
 */
export class Keyring {
  readonly activeKeyId: string
  private readonly keys: ReadonlyMap<string, Buffer>

  constructor(entries: readonly (readonly [id: string, key: Buffer])[]) {
    if (entries.length === 0) throw new Error('a keyring needs at least one key')
    for (const [id, key] of entries) {
      if (key.length !== KEY_BYTES) throw new Error(`key ${id} must be ${KEY_BYTES} bytes`)
    }
    this.keys = new Map(entries)
    this.activeKeyId = entries[0]![0]
  }

  /** Encrypts `plaintext`, bound to `context` (e.g. the purpose and user id) so a ciphertext can't be moved. */
  encrypt(plaintext: string, context: string): string {
    const { iv, tag, body } = this.seal(plaintext, context)
    return [FORMAT, this.activeKeyId, iv.toString('base64url'), tag.toString('base64url'), body.toString('base64url')].join('.')
  }

  /**
   * Encrypts as `encrypt` does, as bytes a quarter smaller than its text: the format byte, the key
   * id's length and the id, then the IV, the tag and the body. `decrypt` reads either form.
   */
  encryptToBytes(plaintext: string, context: string): Buffer {
    const keyId = Buffer.from(this.activeKeyId)
    if (keyId.length > 255) throw new Error('a key id for the binary form must be at most 255 bytes')
    const { iv, tag, body } = this.seal(plaintext, context)
    return Buffer.concat([Buffer.from([BINARY_FORMAT, keyId.length]), keyId, iv, tag, body])
  }

  private seal(plaintext: string, context: string): { iv: Buffer; tag: Buffer; body: Buffer } {
    const iv = randomBytes(IV_BYTES)
    const cipher = createCipheriv('aes-256-gcm', this.keys.get(this.activeKeyId)!, iv)
    cipher.setAAD(Buffer.from(context))
    const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()])
    return { iv, tag: cipher.getAuthTag(), body }
  }

  decrypt(ciphertext: string | Buffer, context: string): string {
    const { keyId, iv, tag, body } = parseCiphertext(ciphertext)
    const key = this.keys.get(keyId)
    if (key === undefined) throw new DecryptionError(`no key with id ${keyId} in the keyring`)
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, iv)
      decipher.setAAD(Buffer.from(context))
      decipher.setAuthTag(tag)
      return Buffer.concat([decipher.update(body), decipher.final()]).toString('utf8')
    } catch {
      throw new DecryptionError(`ciphertext does not authenticate under key ${keyId}`)
    }
  }

  /** The key id a ciphertext (either form) was made with (for re-encryption after rotation). */
  static keyIdOf(ciphertext: string | Buffer): string | undefined {
    try {
      return parseCiphertext(ciphertext).keyId
    } catch {
      return undefined
    }
  }
}

function parseCiphertext(ciphertext: string | Buffer): { keyId: string; iv: Buffer; tag: Buffer; body: Buffer } {
  if (typeof ciphertext !== 'string' && ciphertext[0] === BINARY_FORMAT) {
    const idEnd = 2 + (ciphertext[1] ?? 0)
    if (ciphertext.length < idEnd + IV_BYTES + TAG_BYTES) throw new DecryptionError('not a FitStream ciphertext')
    return {
      keyId: ciphertext.subarray(2, idEnd).toString('utf8'),
      iv: ciphertext.subarray(idEnd, idEnd + IV_BYTES),
      tag: ciphertext.subarray(idEnd + IV_BYTES, idEnd + IV_BYTES + TAG_BYTES),
      body: ciphertext.subarray(idEnd + IV_BYTES + TAG_BYTES),
    }
  }
  const parts = (typeof ciphertext === 'string' ? ciphertext : ciphertext.toString('utf8')).split('.')
  if (parts.length !== 5 || parts[0] !== FORMAT) throw new DecryptionError('not a FitStream ciphertext')
  const [, keyId, iv, tag, body] = parts as [string, string, string, string, string]
  return { keyId, iv: Buffer.from(iv, 'base64url'), tag: Buffer.from(tag, 'base64url'), body: Buffer.from(body, 'base64url') }
}

/**
 * A keyring variable: comma-separated `id:base64key` entries, the first one active, e.g.
 * `2026-11:q1w2...=,2026-05:z9x8...=`. Each key is 32 random bytes (`openssl rand -base64 32`).
 */
export const keyringVar = () =>
  z
    .string()
    .trim()
    .transform((value, ctx) => {
      const entries: [string, Buffer][] = []
      for (const entry of value.split(',')) {
        const match = /^([A-Za-z0-9_-]{1,32}):([A-Za-z0-9+/=_-]+)$/.exec(entry.trim())
        const key = match === null ? undefined : Buffer.from(match[2]!, 'base64')
        if (match === null || key === undefined || key.length !== KEY_BYTES) {
          ctx.addIssue({ code: 'custom', message: `must be comma-separated id:key entries, each key base64 of ${KEY_BYTES} bytes (openssl rand -base64 32)` })
          return z.NEVER
        }
        entries.push([match[1]!, key])
      }
      if (new Set(entries.map(([id]) => id)).size !== entries.length) {
        ctx.addIssue({ code: 'custom', message: 'key ids must be unique' })
        return z.NEVER
      }
      return new Keyring(entries)
    })

/** A new random key entry for a keyring variable. */
export function generateKeyringEntry(id: string): string {
  return `${id}:${randomBytes(KEY_BYTES).toString('base64')}`
}

/** HMAC-SHA256 of `message` under `key`, hex. */
export function hmacHex(key: Buffer, message: string): string {
  return createHmac('sha256', key).update(message).digest('hex')
}
