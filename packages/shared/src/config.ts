import { z } from 'zod'
import { FIT_CLOSES_AT, GOOGLE_DATA_APIS } from './data-types.js'
import { ConfigError } from './errors.js'
import type { RedisTarget } from './redis.js'
import type { RetryPolicy, Stage } from './stages.js'

export type Env = Readonly<Record<string, string | undefined>>

/**
 * Parses environment variables against a zod object schema whose keys are the variable names, and
 * returns a frozen result. The error names every bad variable, so a service fails fast at start
 * with a message an operator can act on.
 */
export function parseEnv<T extends z.ZodObject>(schema: T, env: Env): Readonly<z.output<T>> {
  const input: Record<string, string> = {}
  for (const key of Object.keys(schema.shape)) {
    const value = env[key]
    // An empty variable (FOO= in a .env file) means "not set", as it does for most tools.
    if (value !== undefined && value !== '') input[key] = value
  }
  const result = schema.safeParse(input)
  if (!result.success) {
    const problems = result.error.issues.map((issue) => {
      const variable = issue.path.length > 0 ? String(issue.path[0]) : '(environment)'
      return `${variable}: ${issue.message}`
    })
    throw new ConfigError(`Invalid configuration: ${problems.join('; ')}`)
  }
  return deepFreeze(result.data)
}

/** Refuses a configuration that sets only one of two variables that work only together. */
export function requireTogether(config: object, first: string, second: string): void {
  const set = (name: string): boolean => (config as Record<string, unknown>)[name] !== undefined
  if (set(first) !== set(second)) throw new ConfigError(`Invalid configuration: ${first} and ${second} go together`)
}

/** Freezes plain objects and arrays (not buffers or class instances such as keyrings). */
function deepFreeze<T>(value: T): T {
  const plain = Array.isArray(value) || (value !== null && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype)
  if (plain && !Object.isFrozen(value)) {
    Object.freeze(value)
    for (const inner of Object.values(value)) deepFreeze(inner)
  }
  return value
}

/** Field builders for the variable types FitStream uses. */
export const envVar = {
  string: () => z.string().trim().min(1),
  url: () => z.url({ message: 'must be a URL' }),
  port: () => z.coerce.number({ message: 'must be a port number' }).int().min(0).max(65_535),
  positiveInt: () => z.coerce.number({ message: 'must be a whole number' }).int().positive(),
  nonNegativeInt: () => z.coerce.number({ message: 'must be a whole number' }).int().min(0),
  boolean: () =>
    z.enum(['true', 'false', '1', '0', 'yes', 'no'], { message: 'must be true or false' }).transform((v) => v === 'true' || v === '1' || v === 'yes'),
  logLevel: () => z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
  /** A moment as an ISO 8601 date-time with its offset (`2027-01-01T00:00:00Z`), as ms since the epoch. */
  instant: () =>
    z.iso.datetime({ offset: true, message: 'must be an ISO 8601 date-time such as 2027-01-01T00:00:00Z' }).transform((value) => Date.parse(value)),
  /** A secret of at least `minBytes` bytes, given as base64 (what `openssl rand -base64 32` prints). */
  base64Secret: (minBytes: number) =>
    z
      .string()
      .trim()
      .transform((value, ctx) => {
        const bytes = Buffer.from(value, 'base64')
        if (bytes.length < minBytes || !/^[A-Za-z0-9+/_-]+={0,2}$/.test(value)) {
          ctx.addIssue({ code: 'custom', message: `must be base64 of at least ${minBytes} random bytes (e.g. openssl rand -base64 ${minBytes})` })
          return z.NEVER
        }
        return bytes
      }),
}

/** Variables every FitStream service reads. */
export const commonEnvShape = {
  REDIS_URL: envVar.url().default('redis://127.0.0.1:6379'),
  /**
   * A Redis Cluster's nodes as `host:port,host:port` (a few are enough: the rest are discovered).
   * Set, FitStream connects to the cluster and tags its keys per slot group (docs/capacity.md);
   * REDIS_URL then gives only the user, password and `rediss:` for TLS. Default: unset, one Redis at REDIS_URL.
   */
  REDIS_CLUSTER_NODES: z
    .string()
    .transform((value, ctx) => {
      const nodes = value
        .split(',')
        .map((node) => node.trim())
        .filter((node) => node !== '')
      const bad = nodes.filter((node) => !/^[A-Za-z0-9.-]+:\d{1,5}$/.test(node) || Number(node.slice(node.lastIndexOf(':') + 1)) > 65_535)
      if (nodes.length === 0 || bad.length > 0) {
        ctx.addIssue({ code: 'custom', message: `must be host:port entries separated by commas (bad: ${bad.length > 0 ? bad.join(', ') : 'none given'})` })
        return z.NEVER
      }
      return nodes
    })
    .optional(),
  QUEUE_PREFIX: z
    .string()
    .regex(/^[a-zA-Z0-9_-]{1,64}$/, 'must be 1-64 letters, digits, _ or -')
    .default('fitstream'),
  LOG_LEVEL: envVar.logLevel().default('info'),
  HTTP_HOST: envVar.string().default('0.0.0.0'),
  SHUTDOWN_TIMEOUT_MS: envVar.positiveInt().default(25_000),
  SYNC_ATTEMPTS: envVar.positiveInt().default(5),
  FETCH_ATTEMPTS: envVar.positiveInt().default(6),
  ANONYMIZE_ATTEMPTS: envVar.positiveInt().default(3),
  PUBLISH_ATTEMPTS: envVar.positiveInt().default(8),
  RETRY_BACKOFF_MS: envVar.positiveInt().default(2_000),
  /** How long a worker's lock on a job lasts; a job whose worker died is handed on after it lapses. */
  JOB_LOCK_MS: envVar.positiveInt().min(1_000).default(30_000),
  /** How often each worker looks for jobs whose worker died mid-job (stalled jobs). */
  STALLED_CHECK_MS: envVar.positiveInt().min(500).default(30_000),
}

/** Variables of the services that talk to Google about people's data (token service, fetchers): both must agree. */
export const googleApiEnvShape = {
  /**
   * The Google API people grant access to: `health` (the Google Health API) or `fit` (the Fitness
   * REST API, closed to new projects since 2024 and shut down by Google at the end of 2026). Here
   * too is the API of a user whose granted scopes are not known (registered with a bare refresh token).
   */
  GOOGLE_DATA_API: z.enum(GOOGLE_DATA_APIS).default('health'),
  /**
   * When Google shuts the Fitness API down. From then on nobody is read from it: a person still on
   * Fit is paused as `move_required` until they move to the Health API. Set it earlier if Google
   * closes it earlier, later if Google keeps it longer.
   */
  GOOGLE_FIT_CLOSES_AT: envVar.instant().default(Date.parse(FIT_CLOSES_AT)),
}

export const commonEnv = z.object(commonEnvShape)
export type CommonConfig = z.output<typeof commonEnv>

/** Where the services' Redis is, from REDIS_URL and REDIS_CLUSTER_NODES. */
export function redisTargetOf(config: Pick<CommonConfig, 'REDIS_URL' | 'REDIS_CLUSTER_NODES'>): RedisTarget {
  return config.REDIS_CLUSTER_NODES === undefined ? { url: config.REDIS_URL } : { url: config.REDIS_URL, clusterNodes: config.REDIS_CLUSTER_NODES }
}

/** Each stage's retry policy, from the *_ATTEMPTS variables and RETRY_BACKOFF_MS. */
export function retryPolicies(config: CommonConfig): Record<Stage, RetryPolicy> {
  const policy = (attempts: number): RetryPolicy => ({ attempts, backoffMs: config.RETRY_BACKOFF_MS })
  return {
    sync: policy(config.SYNC_ATTEMPTS),
    fetch: policy(config.FETCH_ATTEMPTS),
    anonymize: policy(config.ANONYMIZE_ATTEMPTS),
    publish: policy(config.PUBLISH_ATTEMPTS),
  }
}

/**
 * Loads a service's configuration, or prints why it can't and exits with EX_CONFIG (78), so a
 * misconfigured container stops at once with a readable message instead of a stack trace. The
 * message is one JSON line shaped like the services' own log lines (pino's fields), so that
 * `docker compose logs` stays machine-readable and the variable's name is the first thing it shows.
 */
export function loadConfigOrExit<T>(service: string, load: (env: Env) => T, env: Env = process.env): T {
  try {
    return load(env)
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error
    process.stderr.write(`${configErrorLine(service, error, new Date())}\n`)
    process.exit(78)
  }
}

/** The log line of a configuration error: pino's fatal level (60), the service, the code and the variables. */
export function configErrorLine(service: string, error: ConfigError, now: Date): string {
  return JSON.stringify({ level: 60, time: now.toISOString(), service, name: service, code: error.code, msg: `${service}: ${error.message}` })
}
