import type { RedisConnection } from './redis.js'
import type { Keyring } from './crypto.js'

/**
 * The Redis layout of a user. The token service owns the record (its UserRepository writes it);
 * this module is where its layout is known, and `UserRecordStore` below is how anyone else reads
 * it or moves the fetch progress kept in it. One hash per user keeps memory per user small.
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
export const userIndexKey = (prefix: string): string => `${prefix}:users`

const GOOGLE_SCOPE_PREFIX = 'https://www.googleapis.com/auth/'
// Both lists are frozen: their order gives stored scope characters their meaning (KNOWN_SCOPES). A new
// scope goes at the end of KNOWN_SCOPES, never into these lists.
const FIT_GROUPS = [
  'activity',
  'location',
  'heart_rate',
  'body',
  'sleep',
  'blood_pressure',
  'oxygen_saturation',
  'blood_glucose',
  'body_temperature',
  'nutrition',
  'reproductive_health',
]
const HEALTH_GROUPS = ['activity_and_fitness', 'health_metrics_and_measurements', 'sleep', 'location', 'profile', 'settings', 'ecg', 'irn']

/**
 * The scopes Google grants FitStream, each stored as one character: its index here in SCOPE_CODES.
 * Append only: a stored character means the scope at its index for as long as records exist.
 */
const KNOWN_SCOPES: readonly string[] = [
  ...FIT_GROUPS.flatMap((group) => [`${GOOGLE_SCOPE_PREFIX}fitness.${group}.read`, `${GOOGLE_SCOPE_PREFIX}fitness.${group}.write`]),
  ...HEALTH_GROUPS.flatMap((group) => [`${GOOGLE_SCOPE_PREFIX}googlehealth.${group}.readonly`, `${GOOGLE_SCOPE_PREFIX}googlehealth.${group}`]),
  'openid',
  'email',
  'profile',
  `${GOOGLE_SCOPE_PREFIX}userinfo.email`,
  `${GOOGLE_SCOPE_PREFIX}userinfo.profile`,
]
const SCOPE_CODES = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
const SCOPE_CODE_OF = new Map(KNOWN_SCOPES.map((scope, i) => [scope, SCOPE_CODES[i]!]))
/** Starts a run of known scopes' codes; no scope starts with it. */
const KNOWN_RUN = '%'

/**
 * Scopes as stored in the user hash, space-separated: a run of scopes FitStream knows is one word of
 * `%` and a character per scope (a Health grant's eight scopes take 9 bytes, not 440); any other
 * scope is stored as it is, Google's common URL prefix written as `~`. Decoding gives back the
 * scopes in their order, and reads every earlier form too (`~` words, full URLs).
 */
export function encodeScopes(scopes: readonly string[]): string {
  const words: string[] = []
  for (const scope of scopes) {
    const code = SCOPE_CODE_OF.get(scope)
    const last = words.length - 1
    if (code !== undefined && words[last]?.startsWith(KNOWN_RUN) === true) words[last] += code
    else if (code !== undefined) words.push(`${KNOWN_RUN}${code}`)
    else words.push(scope.startsWith(GOOGLE_SCOPE_PREFIX) ? `~${scope.slice(GOOGLE_SCOPE_PREFIX.length)}` : scope)
  }
  return words.join(' ')
}

export function decodeScopes(stored: string | undefined): string[] {
  const scopes: string[] = []
  for (const word of (stored ?? '').split(' ')) {
    if (word === '') continue
    if (word.startsWith(KNOWN_RUN)) {
      for (const code of word.slice(1)) {
        const scope = KNOWN_SCOPES[SCOPE_CODES.indexOf(code)]
        if (scope !== undefined) scopes.push(scope)
      }
    } else scopes.push(word.startsWith('~') ? `${GOOGLE_SCOPE_PREFIX}${word.slice(1)}` : word)
  }
  return scopes
}

/** Encryption contexts: a ciphertext only decrypts for the user and purpose it was made for. */
export const refreshTokenContext = (userId: string): string => `refresh-token:${userId}`
export const accessTokenContext = (userId: string): string => `access-token:${userId}`

export interface StoredAccessToken {
  readonly token: string
  readonly expiresAt: number
}

/** The user's current access token, or undefined if the user is gone or has none yet. */
export async function readAccessToken(redis: RedisConnection, prefix: string, keyring: Keyring, userId: string): Promise<StoredAccessToken | undefined> {
  // As bytes: the token service keeps ciphertexts in their binary form (Keyring.encryptToBytes).
  const [ciphertext, expiresAt] = await redis.hmgetBuffer(userKey(prefix, userId), USER_FIELDS.accessToken, USER_FIELDS.accessTokenExpiresAt)
  return decodeAccessToken(keyring, userId, ciphertext, expiresAt?.toString())
}

/** The access token from the two stored fields (read together with others, to save a round trip). */
function decodeAccessToken(
  keyring: Keyring,
  userId: string,
  ciphertext: Buffer | null | undefined,
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

const INCREMENT_IF_EXISTS = "if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('HINCRBY', KEYS[1], ARGV[1], 1) end return -1"

/** What a fetch needs of a user, from one read of their record. */
export interface FetchableUser {
  /** `active`, or why the user is not synced (see the token service's UserState). */
  readonly state: string
  /** The data types the user consents to. */
  readonly consent: ReadonlySet<string>
  /** The OAuth scopes granted at Google (full URLs). */
  readonly scopes: readonly string[]
  readonly accessToken: StoredAccessToken | undefined
}

/**
 * The user record as the fetcher sees it: one read of what a fetch needs, and the fetch progress
 * (cursor, backfill chunks) the fetcher moves, each written only while the user still exists, so a
 * fetch finishing after the user was erased does not bring their record back.
 */
export class UserRecordStore {
  constructor(
    private readonly redis: RedisConnection,
    private readonly prefix: string,
    private readonly accessKeys: Keyring,
  ) {}

  /** The user's state, consent, grant and access token; undefined when there is no such user. */
  async forFetch(userId: string): Promise<FetchableUser | undefined> {
    const [state, consent, scopes, ciphertext, expiresAt] = await this.redis.hmgetBuffer(
      userKey(this.prefix, userId),
      USER_FIELDS.state,
      USER_FIELDS.dataTypes,
      USER_FIELDS.scopes,
      USER_FIELDS.accessToken,
      USER_FIELDS.accessTokenExpiresAt,
    )
    if (state === null || state === undefined) return undefined
    return {
      state: state.toString(),
      consent: new Set((consent?.toString() ?? '').split(',').filter((type) => type !== '')),
      scopes: decodeScopes(scopes?.toString()),
      accessToken: decodeAccessToken(this.accessKeys, userId, ciphertext, expiresAt?.toString()),
    }
  }

  /** The user's current access token, or undefined if the user is gone or has none yet. */
  accessToken(userId: string): Promise<StoredAccessToken | undefined> {
    return readAccessToken(this.redis, this.prefix, this.accessKeys, userId)
  }

  /** Records that data up to `until` has been fetched; returns the cursor now stored (-1: user gone). */
  async advanceFetchCursor(userId: string, until: number): Promise<number> {
    return Number(await this.redis.eval(ADVANCE_CURSOR, 1, userKey(this.prefix, userId), USER_FIELDS.fetchedUntil, String(until)))
  }

  /** Counts one more backfill chunk as fetched (only for a user who still exists). */
  async recordBackfillChunk(userId: string): Promise<void> {
    await this.redis.eval(INCREMENT_IF_EXISTS, 1, userKey(this.prefix, userId), USER_FIELDS.backfillDone)
  }

  /**
   * The key that exists exactly while the user does: another owner's script checks it (and only
   * checks it) to keep state of the user's only while they are not erased.
   */
  existenceKey(userId: string): string {
    return userKey(this.prefix, userId)
  }
}
