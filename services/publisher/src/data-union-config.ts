import { config as streamrConfig } from '@streamr/config'
import { z } from 'zod'
import { ConfigError, envVar, keyringVar, parseEnv, type Env } from '@fitstream/shared'
import { loadConfig, publisherEnvSchema, type PublisherConfig } from './config.js'
import { parseFeeFraction } from './data-union.js'

const address = (message: string) =>
  z
    .string()
    .trim()
    .regex(/^0x[0-9a-fA-F]{40}$/, message)

/** The Data Union settings, on top of the publisher's own (the operator key, the chain). */
const schema = publisherEnvSchema.extend({
  /** The product's Data Union (`fitstream du create` prints it). The membership service needs it; `du status` defaults to it. */
  DATA_UNION_ADDRESS: address('must be the Data Union contract address').optional(),
  /** The DataUnionFactory `du create` deploys through; default: the environment's, from @streamr/config. */
  DATA_UNION_FACTORY_ADDRESS: address('must be a contract address').optional(),
  /** The operator's share of each sale before members are paid, a fraction (default 0.1 = 10 %); Streamr's 1 % protocol fee comes on top. */
  DATA_UNION_ADMIN_FEE: z
    .string()
    .trim()
    .regex(/^(0(\.\d{1,18})?|1(\.0{1,18})?)$/, 'must be a fraction from 0 to 1, e.g. 0.1')
    .default('0.1'),
  /** How long one Data Union chain call, or one transaction until mined, may take before it counts as failed (default 30 s). */
  DATA_UNION_CHAIN_TIMEOUT_MS: envVar.positiveInt().default(30_000),
  /** Attempts of a membership batch before it goes to membership-dlq (default 10: with RETRY_BACKOFF_MS doubling, a chain down for some 15 minutes). */
  MEMBERSHIP_ATTEMPTS: envVar.positiveInt().default(10),
  /**
   * The keyring member keys are encrypted under (comma-separated id:base64key, first one active; see
   * docs/earnings.md): the membership service alone holds it, as it alone signs withdrawals.
   */
  MEMBER_KEYS: keyringVar().optional(),
  /** The bearer token the token service sends to the membership service's /internal API. */
  INTERNAL_API_TOKEN: z.string().min(24, 'must be at least 24 characters (e.g. openssl rand -hex 24)').optional(),
  /** The membership service's HTTP port (health, metrics, the /internal members API). */
  MEMBERSHIP_HTTP_PORT: envVar.port().default(8085),
})

export type DataUnionConfig = z.output<typeof schema>

export function loadDataUnionConfig(env: Env): Readonly<DataUnionConfig> {
  loadConfig(env) // the publisher's own cross-variable checks
  const config = parseEnv(schema, env)
  if (parseFeeFraction(config.DATA_UNION_ADMIN_FEE) > 990_000_000_000_000_000n) {
    throw new ConfigError('Invalid configuration: DATA_UNION_ADMIN_FEE plus the 1 % protocol fee must not exceed 1')
  }
  return config
}

export interface DataUnionEnvironment {
  readonly rpcUrl: string
  readonly chainId: number
  readonly factoryAddress: string | undefined
}

/** The chain Data Unions are on: the StreamRegistry's (STREAMR_RPC_URL, or the environment's), the factory from config or @streamr/config. */
export function dataUnionEnvironment(config: PublisherConfig & Partial<DataUnionConfig>): DataUnionEnvironment {
  const chain = streamrConfig[config.STREAMR_ENVIRONMENT]
  const rpcUrl = config.STREAMR_RPC_URL ?? chain.rpcEndpoints[0]?.url
  if (rpcUrl === undefined) throw new ConfigError(`no RPC endpoint is known for ${config.STREAMR_ENVIRONMENT}: set STREAMR_RPC_URL`)
  const contracts = chain.contracts as Record<string, string | undefined>
  return { rpcUrl, chainId: config.STREAMR_CHAIN_ID ?? chain.id, factoryAddress: config.DATA_UNION_FACTORY_ADDRESS ?? contracts['DataUnionFactory'] }
}
