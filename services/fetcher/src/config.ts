import { z } from 'zod'
import { commonEnvShape, envVar, googleApiEnvShape, keyringVar, parseEnv, type Env } from '@fitstream/shared'

const schema = z.object({
  ...commonEnvShape,
  /** Each replica's own port; under compose it is not published, so replicas never clash. */
  HTTP_PORT: envVar.port().default(8081),
  ACCESS_TOKEN_KEYS: keyringVar(),
  /** Root of the Fitness REST API (configurable so a local stand-in can take its place). */
  GOOGLE_FITNESS_ROOT_URL: envVar.url().default('https://fitness.googleapis.com/'),
  /** Root of the Google Health API, the Fitness API's successor. */
  GOOGLE_HEALTH_ROOT_URL: envVar.url().default('https://health.googleapis.com/'),
  /** The same as the token service's. */
  ...googleApiEnvShape,
  GOOGLE_TIMEOUT_MS: envVar.positiveInt().default(30_000),
  /** The token service, asked for a new access token when Google rejects one. */
  TOKEN_SERVICE_URL: envVar.url().default('http://127.0.0.1:8080'),
  INTERNAL_API_TOKEN: z.string().min(24, 'must be at least 24 characters (e.g. openssl rand -hex 24)'),
  FETCH_CONCURRENCY: envVar.positiveInt().default(20),
  /**
   * Requests to Google per second for the whole project, shared by every fetcher replica through
   * Redis: a Fitness API fetch is one request, a Health API fetch one per data type (and one per
   * further page or part of a long window).
   */
  GOOGLE_RATE_LIMIT_PER_SECOND: envVar.positiveInt().default(200),
  /** Transient Google failures within GOOGLE_OUTAGE_WINDOW_MS that, outnumbering successes, pause every fetcher. */
  GOOGLE_OUTAGE_THRESHOLD: envVar.positiveInt().default(10),
  GOOGLE_OUTAGE_WINDOW_MS: envVar.positiveInt().min(1_000).default(10_000),
  /** How long fetches hold back, attempts untouched, once Google looks down; then a few probe again. */
  GOOGLE_OUTAGE_PAUSE_MS: envVar.positiveInt().min(100).default(15_000),
  /** Fetch location-bearing types (location samples) for users who consented. Enable only with a privacy policy that releases them. */
  FETCH_LOCATION: envVar.boolean().default(false),
})

export type FetcherConfig = z.output<typeof schema>
export const fetcherEnvSchema = schema

export function loadConfig(env: Env): Readonly<FetcherConfig> {
  return parseEnv(schema, env)
}
