import { z } from 'zod'
import { commonEnvShape, envVar, parseEnv, type Env } from '@fitstream/shared'

const schema = z.object({
  ...commonEnvShape,
  HTTP_PORT: envVar.port().default(8082),
  /** Secret HMAC key for pseudonyms and record ids; kept apart from the data (32+ bytes, base64). */
  PSEUDONYM_KEY: envVar.base64Secret(32),
  /** How often pseudonyms change: records of different epochs can't be linked to one person. */
  PSEUDONYM_EPOCH: z.enum(['month', 'week', 'day']).default('month'),
  /** Released records are coarsened to this granularity (UTC-aligned). */
  TIME_GRANULARITY_MS: envVar.positiveInt().min(60_000).default(3_600_000),
  ANONYMIZE_CONCURRENCY: envVar.positiveInt().default(4),
})

export type AnonymizerConfig = z.output<typeof schema>
export const anonymizerEnvSchema = schema

export function loadConfig(env: Env): Readonly<AnonymizerConfig> {
  return parseEnv(schema, env)
}
