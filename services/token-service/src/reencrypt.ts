import type { RedisConnection } from '@fitstream/shared'
import { Keyring, USER_FIELDS, accessTokenContext, refreshTokenContext, userIndexKey, userKey } from '@fitstream/shared'

export interface ReencryptReport {
  readonly users: number
  /** Ciphertexts moved to the keyring's first key (or from the text form to bytes), per token kind. */
  readonly reencrypted: { readonly refreshTokens: number; readonly accessTokens: number }
  /** Already under the first key, as bytes. */
  readonly current: { readonly refreshTokens: number; readonly accessTokens: number }
  /** Tokens that could not be decrypted (their key is no longer in the keyring): user ids only. */
  readonly failed: readonly { readonly userId: string; readonly field: string; readonly reason: string }[]
}

// Replaces a ciphertext only if it is still the one that was read: a refresh in between wins.
const COMPARE_AND_SET = "if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then redis.call('HSET', KEYS[1], ARGV[1], ARGV[3]) return 1 end return 0"

/**
 * Re-encrypts every user's tokens under the first key of each keyring, so that an old key can be
 * dropped after a rotation; tokens kept in the text form are rewritten as bytes (Keyring.encryptToBytes),
 * a quarter smaller. Safe to run while the services run, and to run again.
 */
export async function reencryptTokens(redis: RedisConnection, prefix: string, keys: { refresh: Keyring; access: Keyring }): Promise<ReencryptReport> {
  const reencrypted = { refreshTokens: 0, accessTokens: 0 }
  const current = { refreshTokens: 0, accessTokens: 0 }
  const failed: { userId: string; field: string; reason: string }[] = []
  let users = 0
  const kinds = [
    { field: USER_FIELDS.refreshToken, keyring: keys.refresh, context: refreshTokenContext, counter: 'refreshTokens' as const },
    { field: USER_FIELDS.accessToken, keyring: keys.access, context: accessTokenContext, counter: 'accessTokens' as const },
  ]
  let cursor = '0'
  do {
    const [next, ids] = await redis.sscan(userIndexKey(prefix), cursor, 'COUNT', 500)
    cursor = next
    for (const userId of ids) {
      users++
      const values = await redis.hmgetBuffer(userKey(prefix, userId), ...kinds.map((k) => k.field))
      for (const [i, kind] of kinds.entries()) {
        const ciphertext = values[i]
        if (ciphertext === null || ciphertext === undefined) continue
        if (Keyring.keyIdOf(ciphertext) === kind.keyring.activeKeyId && !isTextForm(ciphertext)) {
          current[kind.counter]++
          continue
        }
        try {
          const plaintext = kind.keyring.decrypt(ciphertext, kind.context(userId))
          const replaced = await redis.eval(
            COMPARE_AND_SET,
            1,
            userKey(prefix, userId),
            kind.field,
            ciphertext,
            kind.keyring.encryptToBytes(plaintext, kind.context(userId)),
          )
          if (replaced === 1) reencrypted[kind.counter]++
          else current[kind.counter]++
        } catch (error) {
          failed.push({ userId, field: kind.field, reason: error instanceof Error ? error.message : String(error) })
        }
      }
    }
  } while (cursor !== '0')
  return { users, reencrypted, current, failed }
}

/** Whether a ciphertext is in the text form (`v1.<key id>.…`) rather than bytes. */
function isTextForm(ciphertext: Buffer): boolean {
  return ciphertext.subarray(0, 3).toString() === 'v1.'
}
