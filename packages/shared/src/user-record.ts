import type { Redis } from 'ioredis'
import type { Keyring } from './crypto.js'

/**
 * The Redis layout of a user, shared by the token service (which owns it) and the fetcher (which
 * reads the access token and advances the cursor). One hash per user keeps memory per user small.
 */
export const USER_FIELDS = {
  state: 'state',
  dataTypes: 'dataTypes',
  createdAt: 'createdAt',
  refreshToken: 'refreshToken',
  accessToken: 'accessToken',
  accessTokenExpiresAt: 'accessExp',
  fetchedUntil: 'fetchedUntil',
  lastSyncAt: 'lastSyncAt',
  lastSyncStatus: 'lastSyncStatus',
  lastError: 'lastError',
  /** OAuth scopes the user granted at Google (see encodeScopes); consent may cover less, never more. */
  scopes: 'scopes',
  /** When the user last changed what they consent to (ms). */
  consentUpdatedAt: 'consentAt',
  /** The user's IANA time zone: daily buckets are their local days (hourly ones lie on whole UTC hours). */
  timeZone: 'tz',
  /** Backfill progress: chunks planned when the user joined, and chunks fetched so far. */
  backfillChunks: 'bfChunks',
  backfillDone: 'bfDone',
  backfillEnd: 'bfEnd',
  /** Types the user opted in to selling as individual (pseudonymised) records; absent: none, cohorts only. */
  individualTypes: 'indiv',
} as const

export const userKey = (prefix: string, userId: string): string => `${prefix}:user:${userId}`
/** What the fetcher last passed on for the user's recent buckets (see services/fetcher bucket-history). */
export const bucketHistoryKey = (prefix: string, userId: string): string => `${prefix}:seen:${userId}`
export const userIndexKey = (prefix: string): string => `${prefix}:users`

const GOOGLE_SCOPE_PREFIX = 'https://www.googleapis.com/auth/'

/**
 * Scopes as stored in the user hash: space-separated, with Google's common URL prefix written as
 * `~`, so a user's seven Fitness scopes take some 220 bytes instead of 440. Scopes outside that
 * prefix (`openid`, `email`) are stored as they are, and full URLs (records kept without the
 * shorthand) are read as they are.
 */
export function encodeScopes(scopes: readonly string[]): string {
  return scopes.map((scope) => (scope.startsWith(GOOGLE_SCOPE_PREFIX) ? `~${scope.slice(GOOGLE_SCOPE_PREFIX.length)}` : scope)).join(' ')
}

export function decodeScopes(stored: string | undefined): string[] {
  return (stored ?? '')
    .split(' ')
    .filter((scope) => scope !== '')
    .map((scope) => (scope.startsWith('~') ? `${GOOGLE_SCOPE_PREFIX}${scope.slice(1)}` : scope))
}

/** Encryption contexts: a ciphertext only decrypts for the user and purpose it was made for. */
export const refreshTokenContext = (userId: string): string => `refresh-token:${userId}`
export const accessTokenContext = (userId: string): string => `access-token:${userId}`

export interface StoredAccessToken {
  readonly token: string
  readonly expiresAt: number
}

/** The user's current access token, or undefined if the user is gone or has none yet. */
export async function readAccessToken(redis: Redis, prefix: string, keyring: Keyring, userId: string): Promise<StoredAccessToken | undefined> {
  const [ciphertext, expiresAt] = await redis.hmget(userKey(prefix, userId), USER_FIELDS.accessToken, USER_FIELDS.accessTokenExpiresAt)
  return decodeAccessToken(keyring, userId, ciphertext, expiresAt)
}

/** The access token from the two stored fields (read together with others, to save a round trip). */
export function decodeAccessToken(
  keyring: Keyring,
  userId: string,
  ciphertext: string | null | undefined,
  expiresAt: string | null | undefined,
): StoredAccessToken | undefined {
  if (ciphertext === null || ciphertext === undefined || expiresAt === null || expiresAt === undefined) return undefined
  return { token: keyring.decrypt(ciphertext, accessTokenContext(userId)), expiresAt: Number(expiresAt) }
}

// Moves a cursor forward only, and only for a user who still exists (a fetch finishing after the
// user was erased must not bring their record back).
const ADVANCE_CURSOR = `
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local current = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
local proposed = tonumber(ARGV[2])
if proposed > current then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) return proposed end
return current`

/** Records that data up to `until` has been fetched; returns the cursor now stored (-1: user gone). */
export async function advanceFetchCursor(redis: Redis, prefix: string, userId: string, until: number): Promise<number> {
  const result = await redis.eval(ADVANCE_CURSOR, 1, userKey(prefix, userId), USER_FIELDS.fetchedUntil, String(until))
  return Number(result)
}

/** Counts one more backfill chunk as fetched (only for a user who still exists). */
export async function recordBackfillChunk(redis: Redis, prefix: string, userId: string): Promise<void> {
  await redis.eval(
    "if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('HINCRBY', KEYS[1], ARGV[1], 1) end return -1",
    1,
    userKey(prefix, userId),
    USER_FIELDS.backfillDone,
  )
}
