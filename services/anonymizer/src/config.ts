import { z } from 'zod'
import { ConfigError, commonEnvShape, envVar, parseEnv, type Env } from '@fitstream/shared'
import { DEFAULT_POLICY_FILE, loadPolicy, type PrivacyPolicy } from './policy.js'

const schema = z.object({
  ...commonEnvShape,
  HTTP_PORT: envVar.port().default(8082),
  /** Secret HMAC key for pseudonyms, record ids and noise; kept apart from the data (32+ bytes, base64). */
  PSEUDONYM_KEY: envVar.base64Secret(32),
  /** The privacy policy (YAML or JSON); default: the conservative policy shipped in services/anonymizer/policies. */
  ANONYMIZER_POLICY_FILE: envVar.string().default(DEFAULT_POLICY_FILE),
  ANONYMIZE_CONCURRENCY: envVar.positiveInt().default(4),
})

/** Variables that the policy file replaced; a deployment still setting them would get something other than it asked for. */
const MOVED_TO_POLICY: Readonly<Record<string, string>> = {
  PSEUDONYM_EPOCH: 'pseudonym.epoch',
  TIME_GRANULARITY_MS: 'types.<type>.individual.granularity',
}

export type AnonymizerEnv = z.output<typeof schema>
export type AnonymizerConfig = AnonymizerEnv & { readonly policy: PrivacyPolicy }
export const anonymizerEnvSchema = schema

/** Reads the environment and the policy file it names; either one being wrong stops the service (exit 78). */
export function loadConfig(env: Env): Readonly<AnonymizerConfig> {
  const moved = Object.keys(MOVED_TO_POLICY).filter((name) => env[name] !== undefined && env[name] !== '')
  if (moved.length > 0) {
    throw new ConfigError(
      `Invalid configuration: ${moved.map((name) => `${name}: no longer read; set ${MOVED_TO_POLICY[name]} in the policy file`).join('; ')}`,
    )
  }
  const parsed = parseEnv(schema, env)
  return Object.freeze({ ...parsed, policy: loadPolicy(parsed.ANONYMIZER_POLICY_FILE) })
}
