import { hmacHex } from './crypto.js'

/**
 * A keyed pseudonym of a user for one epoch (HMAC-SHA256 under the anonymiser's key, 128 bits).
 * Without the key it can't be computed or reversed; a new epoch gives an unlinkable new one.
 */
export function pseudonymOf(key: Buffer, userId: string, epoch: string): string {
  return hmacHex(key, `fitstream/pseudonym/v1|${epoch}|${userId}`).slice(0, 32)
}
