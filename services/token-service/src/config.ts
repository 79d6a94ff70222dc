import { z } from 'zod'
import { commonEnvShape, ConfigError, envVar, googleApiEnvShape, keyringVar, parseEnv, requireTogether, type Env } from '@fitstream/shared'

const schema = z.object({
  ...commonEnvShape,
  HTTP_PORT: envVar.port().default(8080),
  /** Bearer token for the admin API and Bull Board (at least 24 characters). */
  ADMIN_TOKEN: z.string().min(24, 'must be at least 24 characters (e.g. openssl rand -hex 24)'),
  /** Bearer token other FitStream services use for internal calls (token refresh on 401). */
  INTERNAL_API_TOKEN: z.string().min(24, 'must be at least 24 characters (e.g. openssl rand -hex 24)'),
  /** The membership service (Data Union earnings, withdrawals); unset: no earnings on the account page or at /users/:id/earnings. */
  MEMBERSHIP_URL: envVar.url().optional(),
  /** Key of the references the membership service knows people by (a keyed hash of the account id); needed with MEMBERSHIP_URL. */
  MEMBER_REF_KEY: z.string().min(32, 'must be at least 32 characters (e.g. openssl rand -base64 32)').optional(),
  GOOGLE_CLIENT_ID: envVar.string(),
  GOOGLE_CLIENT_SECRET: envVar.string(),
  GOOGLE_TOKEN_URL: envVar.url().default('https://oauth2.googleapis.com/token'),
  /** Google's consent screen, where the onboarding page sends people. */
  GOOGLE_AUTH_URL: envVar.url().default('https://accounts.google.com/o/oauth2/v2/auth'),
  ...googleApiEnvShape,
  /** Where a user's grant is revoked when they delete their data. */
  GOOGLE_REVOKE_URL: envVar.url().default('https://oauth2.googleapis.com/revoke'),
  /**
   * The address people's browsers reach this service at; the OAuth redirect URI is PUBLIC_URL/oauth/callback
   * and must be registered with the Google OAuth client. An https URL makes session cookies Secure.
   */
  PUBLIC_URL: envVar
    .url()
    .default('http://localhost:8080')
    .transform((url) => url.replace(/\/+$/, '')),
  /**
   * The WebAuthn relying party ID passkeys are made for: PUBLIC_URL's host name, or a registrable suffix of it
   * (example.org for https://app.example.org). Passkeys work only on that domain; changing it strands every
   * passkey already made. Default: PUBLIC_URL's host name.
   */
  PASSKEY_RP_ID: z
    .string()
    .regex(/^[a-z0-9.-]+$/, 'must be a host name (lower case, no scheme or port)')
    .optional(),
  /** The name authenticators show next to a passkey (default FitStream). */
  PASSKEY_RP_NAME: z.string().min(1).max(64).default('FitStream'),
  /** Signs session cookies and re-consent links: comma-separated secrets of 32+ characters, the first one signs. */
  SESSION_SECRET: z
    .string()
    .trim()
    .transform((value) => value.split(',').map((s) => s.trim()))
    .refine((secrets) => secrets.every((s) => s.length >= 32), 'must be comma-separated secrets of at least 32 characters each (e.g. openssl rand -base64 32)'),
  /**
   * Keys the hash of each person's Google account id (OpenID sub), which stops one Google account from
   * registering twice and a link from binding another account; 32+ characters. Derived from the first
   * SESSION_SECRET when unset: set it before rotating SESSION_SECRET, or returning people are not recognised.
   */
  ACCOUNT_ID_KEY: z.string().min(32, 'must be at least 32 characters (e.g. openssl rand -base64 32)').optional(),
  /** How long a reconnect, move or re-consent link works (minutes); each works once. Default 1440 (a day). */
  LINK_TTL_MINUTES: envVar
    .positiveInt()
    .min(5)
    .max(7 * 1440)
    .default(1440),
  /**
   * A second listener for /metrics, /docs and the internal endpoints (other services and Prometheus reach
   * it; it is not published). Unset: they stay on HTTP_PORT, as before.
   */
  INTERNAL_HTTP_PORT: envVar.port().optional(),
  /** Requests per minute one IP may make to the public pages; past it, 429. Kept in Redis, shared by replicas. */
  RATE_LIMIT_PAGES_PER_MINUTE: envVar.positiveInt().default(60),
  /** Google callbacks per minute one IP may make (each costs a code exchange at Google). */
  RATE_LIMIT_CALLBACK_PER_MINUTE: envVar.positiveInt().default(10),
  /**
   * Reverse proxies in front of the service that append the client's address to X-Forwarded-For (a TLS
   * terminator is one). Per-address limits key on the address the outermost of them saw; 0 (default):
   * the connection's own peer. Set it when there is a proxy, or every visitor shares one limit.
   */
  TRUST_PROXY_HOPS: envVar.nonNegativeInt().max(5).default(0),
  /**
   * Trips to Google's consent screen one existing user may start in an hour (reconnect links, the account
   * page's reconnect, consent changes that need Google); Google allows a project 10,000 re-consents a day.
   */
  RATE_LIMIT_RECONSENTS_PER_HOUR: envVar.positiveInt().default(10),
  /** Failed admin or internal authentications one IP may make in 15 minutes before every attempt is refused. */
  RATE_LIMIT_AUTH_FAILURES: envVar.positiveInt().default(20),
  /** Keys for refresh tokens at rest; only the token service has them. */
  REFRESH_TOKEN_KEYS: keyringVar(),
  /** Keys for access tokens at rest; shared with the fetchers, which read access tokens. */
  ACCESS_TOKEN_KEYS: keyringVar(),
  SYNC_INTERVAL_MS: envVar.positiveInt().min(60_000).default(3_600_000),
  SYNC_BUCKET_MS: envVar.positiveInt().min(60_000).default(3_600_000),
  /** How far back the first sync of a new user reaches. */
  BACKFILL_DAYS: envVar.nonNegativeInt().max(3650).default(30),
  /** Largest window one fetch job covers; longer spans are split into several jobs (Google allows 90 days). */
  FETCH_CHUNK_HOURS: envVar
    .positiveInt()
    .max(24 * 90)
    .default(48),
  /** Every sync re-reads this many hours before its cursor, so late uploads from phones are caught. */
  SYNC_LOOKBACK_HOURS: envVar
    .nonNegativeInt()
    .max(24 * 30)
    .default(48),
  /** Refresh an access token when it has less than this left. */
  TOKEN_REFRESH_MARGIN_MS: envVar.positiveInt().default(300_000),
  SYNC_CONCURRENCY: envVar.positiveInt().default(20),
  /** Largest export upload accepted, in bytes (default 2 GiB). */
  IMPORT_MAX_UPLOAD_BYTES: envVar.positiveInt().default(2 * 1024 ** 3),
  /** Most bytes one import may inflate from its archive (default 8 GiB). */
  IMPORT_MAX_INFLATED_BYTES: envVar.positiveInt().default(8 * 1024 ** 3),
  /** Highest inflated-to-compressed ratio of a file in an uploaded archive (default 100). */
  IMPORT_MAX_RATIO: envVar.positiveInt().default(100),
  /** Where uploads rest, encrypted under a key held only in memory, while imported (default: the OS temp folder). */
  IMPORT_SPOOL_DIR: z.string().min(1).optional(),
  /** Imports one token-service process parses at once; more wait their turn (default 1). */
  IMPORT_CONCURRENCY: envVar.positiveInt().max(16).default(1),
})

export type TokenServiceConfig = z.output<typeof schema>

export const tokenServiceEnvSchema = schema

export function loadConfig(env: Env): Readonly<TokenServiceConfig> {
  const config = parseEnv(schema, env)
  requireTogether(config, 'MEMBERSHIP_URL', 'MEMBER_REF_KEY')
  const host = new URL(config.PUBLIC_URL).hostname
  if (config.PASSKEY_RP_ID !== undefined && host !== config.PASSKEY_RP_ID && !host.endsWith(`.${config.PASSKEY_RP_ID}`)) {
    throw new ConfigError(`Invalid configuration: PASSKEY_RP_ID must be the host name of PUBLIC_URL (${host}) or a suffix of it`)
  }
  return config
}
