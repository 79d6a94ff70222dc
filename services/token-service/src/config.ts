import { z } from 'zod'
import { commonEnvShape, envVar, keyringVar, parseEnv, type Env } from '@fitstream/shared'

const schema = z.object({
  ...commonEnvShape,
  HTTP_PORT: envVar.port().default(8080),
  /** Bearer token for the admin API and Bull Board (at least 24 characters). */
  ADMIN_TOKEN: z.string().min(24, 'must be at least 24 characters (e.g. openssl rand -hex 24)'),
  /** Bearer token other FitStream services use for internal calls (token refresh on 401). */
  INTERNAL_API_TOKEN: z.string().min(24, 'must be at least 24 characters (e.g. openssl rand -hex 24)'),
  GOOGLE_CLIENT_ID: envVar.string(),
  GOOGLE_CLIENT_SECRET: envVar.string(),
  GOOGLE_TOKEN_URL: envVar.url().default('https://oauth2.googleapis.com/token'),
  /** Keys for refresh tokens at rest; only the token service has them. */
  REFRESH_TOKEN_KEYS: keyringVar(),
  /** Keys for access tokens at rest; shared with the fetchers, which read access tokens. */
  ACCESS_TOKEN_KEYS: keyringVar(),
  SYNC_INTERVAL_MS: envVar.positiveInt().min(60_000).default(3_600_000),
  SYNC_BUCKET_MS: envVar.positiveInt().min(60_000).default(3_600_000),
  /** How far back the first sync of a new user reaches. */
  BACKFILL_DAYS: envVar.nonNegativeInt().max(3650).default(7),
  /** Largest window one fetch job covers; longer spans are split into several jobs. */
  FETCH_CHUNK_HOURS: envVar
    .positiveInt()
    .max(24 * 90)
    .default(24),
  /** Refresh an access token when it has less than this left. */
  TOKEN_REFRESH_MARGIN_MS: envVar.positiveInt().default(300_000),
  SYNC_CONCURRENCY: envVar.positiveInt().default(20),
})

export type TokenServiceConfig = z.output<typeof schema>

export const tokenServiceEnvSchema = schema

export function loadConfig(env: Env): Readonly<TokenServiceConfig> {
  return parseEnv(schema, env)
}
