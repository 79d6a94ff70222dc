import { z } from 'zod'
import { commonEnvShape, ConfigError, envVar, parseEnv, requireTogether, type Env } from '@fitstream/shared'

const entryPoint = z
  .string()
  .trim()
  .regex(/^[0-9a-f]{40}@wss?:\/\/[^:/]+:\d{1,5}$/i, 'must be nodeId@ws://host:port entries (nodeId: 40 hex characters)')
  .transform((value) => {
    const [nodeId, url] = value.split('@') as [string, string]
    const parsed = new URL(url)
    return { nodeId: nodeId.toLowerCase(), websocket: { host: parsed.hostname, port: Number(parsed.port), tls: parsed.protocol === 'wss:' } }
  })

const address = (message: string) =>
  z
    .string()
    .trim()
    .regex(/^0x[0-9a-fA-F]{40}$/, message)

const schema = z.object({
  ...commonEnvShape,
  HTTP_PORT: envVar.port().default(8083),
  /** The publisher's Ethereum private key (0x + 64 hex). It owns the streams or holds PUBLISH on them. */
  STREAMR_PRIVATE_KEY: z
    .string()
    .trim()
    .regex(/^(0x)?[0-9a-fA-F]{64}$/, 'must be a 32-byte hex private key'),
  /** The address whose namespace holds the streams; defaults to the publisher key's own address. */
  STREAMR_STREAM_OWNER: z
    .string()
    .trim()
    .regex(/^0x[0-9a-fA-F]{40}$/, 'must be an Ethereum address')
    .optional(),
  /** Streams are `<owner><STREAM_PATH_PREFIX><type>`, e.g. 0xabc…/fitness/steps. */
  STREAMR_STREAM_PATH_PREFIX: z
    .string()
    .regex(/^\/[a-z0-9/_-]*\/$/, 'must start and end with /')
    .default('/fitness/'),
  /** Streamr network preset: polygon (the real network), polygonAmoy (testnet) or dev2 (local). */
  STREAMR_ENVIRONMENT: z.enum(['polygon', 'polygonAmoy', 'dev2']).default('polygon'),
  /** Entry points to use instead of the preset's: comma-separated nodeId@ws://host:port. */
  STREAMR_ENTRY_POINTS: z
    .string()
    .transform((v) => v.split(',').filter((s) => s.trim() !== ''))
    .pipe(z.array(entryPoint).min(1))
    .optional(),
  /** JSON-RPC URL of the chain holding the StreamRegistry, instead of the preset's. */
  STREAMR_RPC_URL: envVar.url().optional(),
  STREAMR_CHAIN_ID: envVar.positiveInt().optional(),
  STREAMR_STREAM_REGISTRY_ADDRESS: z
    .string()
    .regex(/^0x[0-9a-fA-F]{40}$/, 'must be a contract address')
    .optional(),
  STREAMR_THE_GRAPH_URL: envVar.url().optional(),
  /**
   * The one port of this node's WebSocket server, which buyers' nodes dial (publish it, and open it
   * on the firewall). Unset: the SDK picks one of 32200-32250.
   */
  STREAMR_WEBSOCKET_PORT: envVar.port().optional(),
  /**
   * Whether this node runs a WebSocket server at all (default true). false: a seller who can open no
   * port (behind NAT) still reaches buyers, over WebRTC, and a buyer's node reaches it the same way.
   */
  STREAMR_WEBSOCKET_SERVER: envVar.boolean().default(true),
  /**
   * The host buyers reach the port at. Unset: the node learns its public address from the network,
   * as a node with Streamr's AutoCertifier certificate must. Set: it advertises exactly this (a
   * local network, or the host the operator's certificate is for).
   */
  STREAMR_WEBSOCKET_HOST: envVar.string().optional(),
  /**
   * TLS on the WebSocket server: browsers open WebSockets only to TLS servers. Default: on, except on
   * a local network (dev2). With no certificate files the SDK gets one from Streamr's AutoCertifier.
   */
  STREAMR_WEBSOCKET_TLS: envVar.boolean().optional(),
  /** The operator's own certificate and key (PEM files) for STREAMR_WEBSOCKET_HOST, instead of AutoCertifier's. */
  STREAMR_TLS_CERT_FILE: envVar.string().optional(),
  STREAMR_TLS_KEY_FILE: envVar.string().optional(),
  /**
   * How long the client trusts a permission it read from the chain (default 60 s). Key requests are
   * answered from this cache, so it bounds how long a new buyer waits for data after buying.
   */
  STREAMR_PERMISSION_CACHE_MS: envVar.positiveInt().default(60_000),
  /** Partitions of streams `streams provision` creates (existing streams keep theirs). */
  STREAMR_PARTITIONS: envVar.positiveInt().max(99).default(1),
  /** A storage node to keep the streams' history on (buyers can then fetch the past); none by default. */
  STREAMR_STORAGE_NODE: address('must be the storage node operator address').optional(),
  /** Days a storage node keeps messages (stream metadata `storageDays`). */
  STREAMR_STORAGE_DAYS: envVar.positiveInt().default(30),
  /** ProjectRegistryV1 and MarketplaceV4 of the Hub; default: the environment's, from @streamr/config. */
  HUB_PROJECT_REGISTRY_ADDRESS: address('must be a contract address').optional(),
  HUB_MARKETPLACE_ADDRESS: address('must be a contract address').optional(),
  /** How long the first publish to a stream waits to find the stream's subscribers (see createStreamJoiner). */
  STREAMR_JOIN_TIMEOUT_MS: envVar.nonNegativeInt().default(5_000),
  /**
   * On shutdown, how long the network node stays up after the last publish: those messages get out,
   * and buyers who see a new encryption key in them can still ask this publisher for it.
   */
  STREAMR_SHUTDOWN_FLUSH_MS: envVar.nonNegativeInt().max(20_000).default(10_000),
  /**
   * How many of a stream partition's neighbours must have each message before the network node stops
   * holding it for neighbours that join later (for up to 10 s, at most STREAMR_PROPAGATION_BUFFER_SIZE
   * messages a partition). The SDK's default, 2, keeps every message for the full 10 s when a stream
   * has a single buyer, which at the benchmark's rate held some 40 MB of messages; 1 releases a message
   * once someone has it and still hands it to the first neighbour to join when there was nobody.
   */
  STREAMR_PROPAGATION_TARGETS: envVar.positiveInt().max(8).default(1),
  /** Most messages a stream partition holds for neighbours that join later (SDK default 150). */
  STREAMR_PROPAGATION_BUFFER_SIZE: envVar.positiveInt().max(1_000).default(150),
  PUBLISH_CONCURRENCY: envVar.positiveInt().default(4),
  /** Renew each stream's encryption key this often (0: never), so lapsed buyers stop reading new data. */
  STREAMR_REKEY_HOURS: envVar
    .nonNegativeInt()
    .max(24 * 365)
    .default(24),
  /** How long a publish job's lock lasts; after a crash its retry starts once the lock has expired. */
  PUBLISH_LOCK_MS: envVar.positiveInt().min(1_000).default(120_000),
  /**
   * Release slots (default hourly, 3600000): records are held in Redis and published together every
   * PUBLISH_SLOT_MS, shuffled across people, under the slot's time, so that no publish time, order
   * or message chain follows one person's syncs. 0 publishes each job as it comes, one message per
   * pseudonym (fitstream.records/1), which links a person's pseudonyms across months: tests only.
   */
  PUBLISH_SLOT_MS: envVar.nonNegativeInt().default(3_600_000),
  /** Where in the period the slots fall (default 0: on the hour); less than PUBLISH_SLOT_MS. */
  PUBLISH_SLOT_OFFSET_MS: envVar.nonNegativeInt().default(0),
  /**
   * Fault injection for crash tests, off by default (never set it in production): the publisher kills
   * itself with SIGKILL at this point of its publishing. `held`: a job's records are held for their
   * slot, the job not yet marked done. `planned`: a slot's plan is kept, nothing published. For the
   * n-th message (from 1) of a job or slot: `published:<n>` (published, not yet noted), `noting:<n>`
   * (its note sent to Redis, the answer not awaited), `noted:<n>` (noted, the next not published).
   * `completed`: a slot's journal is complete, the slot not yet marked released.
   */
  PUBLISH_CRASH_AT: z
    .string()
    .trim()
    .regex(/^(held|planned|completed|(published|noting|noted):[1-9][0-9]*)$/, 'must be held, planned, completed, or published:<n>, noting:<n> or noted:<n>')
    .optional(),
  /** Largest message published (bytes); records are split across messages to stay under it. */
  MAX_MESSAGE_BYTES: envVar
    .positiveInt()
    .max(1_000_000)
    .default(256 * 1024),
})

export type PublisherConfig = z.output<typeof schema>
export const publisherEnvSchema = schema

export function loadConfig(env: Env): Readonly<PublisherConfig> {
  const config = parseEnv(schema, env)
  requireTogether(config, 'STREAMR_TLS_CERT_FILE', 'STREAMR_TLS_KEY_FILE')
  if (!config.STREAMR_WEBSOCKET_SERVER && (config.STREAMR_WEBSOCKET_PORT ?? config.STREAMR_WEBSOCKET_HOST ?? config.STREAMR_TLS_CERT_FILE) !== undefined) {
    throw new ConfigError(
      'Invalid configuration: STREAMR_WEBSOCKET_SERVER=false runs no WebSocket server, so STREAMR_WEBSOCKET_PORT, STREAMR_WEBSOCKET_HOST and STREAMR_TLS_CERT_FILE must be left unset',
    )
  }
  if (config.PUBLISH_SLOT_MS > 0 && config.PUBLISH_SLOT_OFFSET_MS >= config.PUBLISH_SLOT_MS) {
    throw new ConfigError('Invalid configuration: PUBLISH_SLOT_OFFSET_MS must be less than PUBLISH_SLOT_MS')
  }
  if (websocketTls(config) && config.STREAMR_WEBSOCKET_HOST !== undefined && config.STREAMR_TLS_CERT_FILE === undefined) {
    // AutoCertifier's certificate names a host it assigns; a node advertising another host would
    // present a certificate that browsers refuse.
    throw new ConfigError(
      'Invalid configuration: STREAMR_WEBSOCKET_HOST with TLS needs the certificate for that host (STREAMR_TLS_CERT_FILE, STREAMR_TLS_KEY_FILE); leave it empty to use AutoCertifier, or set STREAMR_WEBSOCKET_TLS=false on a local network',
    )
  }
  return config
}

/** Whether the node's WebSocket server speaks TLS: as configured, else everywhere but a local network. */
export function websocketTls(config: Pick<PublisherConfig, 'STREAMR_WEBSOCKET_TLS' | 'STREAMR_ENVIRONMENT'>): boolean {
  return config.STREAMR_WEBSOCKET_TLS ?? config.STREAMR_ENVIRONMENT !== 'dev2'
}
