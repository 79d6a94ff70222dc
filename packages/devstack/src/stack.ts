import { execFile } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { ALL_HEALTH_READ_SCOPES, ALL_READ_SCOPES, FAKE_FIT_CLOSES_AT, FakeGoogle, type FakeUser } from '@fitstream/fake-google'
import {
  StageQueues,
  createLogger,
  createRedis,
  type RedisConnection,
  type RedisTarget,
  deleteKeysWithPrefix,
  retryPolicies,
  commonEnv,
  parseEnv,
  type DataTypeKey,
  type GoogleDataApi,
} from '@fitstream/shared'
import { freePort, startLocalStreamrNetwork, type LocalStreamrNetwork } from '@fitstream/streamr-local'
import { generateDevSecrets, type DevSecrets } from './secrets.js'
import { ServiceProcess, type ServiceName } from './service-process.js'
import { Subscriber } from './subscriber.js'

const run = promisify(execFile)
/** Release slots as production has them (fitstream.records/2), an hour shortened to what a test can wait for. */
export const DEFAULT_PUBLISH_SLOT_MS = 1_500
/**
 * How long a stopping stack's publisher has to drain before it is killed. Its shutdown ends by holding
 * its last messages for buyers' nodes (STREAMR_SHUTDOWN_FLUSH_MS, 10 s); the stack's buyers have
 * stopped by then, so that wait would deliver nothing.
 */
const PUBLISHER_GRACE_WITHOUT_BUYERS_MS = 3_000
/** A profiled publisher (nodeArgs) waits out its whole flush, so that it exits and writes its profile. */
const PROFILED_PUBLISHER_GRACE_MS = 20_000
/**
 * The default privacy policy with everyone opted in to individual records (and hourly heart-rate
 * extremes kept): tests, the demo and the benchmark deliver and measure individual records as before.
 */
const OPTED_IN_POLICY_FILE = fileURLToPath(new URL('../../../services/anonymizer/policies/opted-in.yaml', import.meta.url))

/** The publisher's Streamr variables for a local network (what .env holds in production). */
export function streamrEnv(network: LocalStreamrNetwork, privateKey: string): Record<string, string> {
  const ep = network.entryPoint
  return {
    STREAMR_PRIVATE_KEY: privateKey,
    STREAMR_ENVIRONMENT: 'dev2',
    STREAMR_ENTRY_POINTS: `${ep.nodeId}@ws://${ep.websocket.host}:${ep.websocket.port}`,
    STREAMR_RPC_URL: network.rpcUrl,
    STREAMR_CHAIN_ID: String(network.chainId),
    STREAMR_STREAM_REGISTRY_ADDRESS: network.streamRegistryAddress,
    // Nothing listens there: The Graph (stream search) is not part of a local network.
    STREAMR_THE_GRAPH_URL: 'http://127.0.0.1:1/the-graph-is-not-available-locally',
    STREAMR_WEBSOCKET_HOST: '127.0.0.1',
  }
}

async function isPortFree(port: number): Promise<boolean> {
  const { createServer } = await import('node:net')
  return new Promise((resolve) => {
    const server = createServer()
    server.once('error', () => resolve(false))
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)))
  })
}

export interface StackOptions {
  /** Redis to use (default REDIS_URL or redis://127.0.0.1:6379). */
  readonly redisUrl?: string
  /**
   * A Redis Cluster's nodes (`host:port`), passed to the services as REDIS_CLUSTER_NODES; the stack's own
   * connections use them too. Default: none, one Redis at `redisUrl`.
   */
  readonly redisClusterNodes?: readonly string[]
  /** Queue and key prefix (default `fitstream`); tests use a unique one each. */
  readonly prefix?: string
  /** Fetcher processes (default 1). */
  readonly fetchers?: number
  /** Latency the fake Google adds to every Fitness answer (default 0). */
  readonly googleLatencyMs?: number
  /** The Google API people grant access to and are read from (default `fit`). */
  readonly googleApi?: GoogleDataApi
  /** Days of history a new user's first sync fetches (default 1). */
  readonly backfillDays?: number
  /**
   * The data types whose streams are provisioned and that a subscriber from `startSubscriber` reads
   * (default every type). A test that registers users for a few types saves creating, permitting
   * and joining every other type's streams.
   */
  readonly dataTypes?: readonly DataTypeKey[]
  /** Partitions of each stream (default 1). */
  readonly partitions?: number
  /**
   * The publisher's release slot, PUBLISH_SLOT_MS (default 1500: slots as in production, short enough
   * for a test). 0 publishes each job as it comes (`fitstream.records/1`), for a test of that path.
   */
  readonly publishSlotMs?: number
  /** Where service logs go, one file per process; kept in memory only when omitted. */
  readonly logDir?: string
  readonly logLevel?: string
  /** Variables for every service, and per service, over the defaults. */
  readonly env?: Readonly<Record<string, string>>
  readonly serviceEnv?: Partial<Readonly<Record<ServiceName, Readonly<Record<string, string>>>>>
  /** Port of the token service (API and Bull Board); a free one when omitted or taken. */
  readonly tokenServicePort?: number
  /** Extra node flags for every service process, e.g. ['--cpu-prof', '--cpu-prof-dir=/tmp/prof']. */
  readonly nodeArgs?: readonly string[]
  /** Delete the prefix's keys from Redis when the stack stops (default true). */
  readonly cleanRedis?: boolean
  readonly log?: (message: string) => void
}

export interface RegisteredUser {
  readonly userId: string
  readonly google: FakeUser
  readonly dataTypes: readonly DataTypeKey[]
}

/**
 * FitStream on one machine, every part real except the internet: Redis, the fake Google, a local
 * Streamr network (chain, registry, entry point), the four services as separate processes, and the
 * streams provisioned. Used by the demo, the end-to-end tests and the benchmark alike.
 */
export class Stack {
  readonly services: ServiceProcess[] = []
  readonly streams: string[] = []
  /** The Streamr SDK keeps encryption keys under XDG_DATA_HOME; each stack gets its own. */
  readonly streamrDataDir = mkdtempSync(join(tmpdir(), 'fitstream-streamr-'))
  private subscribers: Subscriber[] = []
  private inspector: { redis: RedisConnection; queues: StageQueues } | undefined
  private stopping: Promise<void> | undefined

  private constructor(
    readonly options: StackOptions,
    readonly prefix: string,
    readonly redisUrl: string,
    readonly secrets: DevSecrets,
    readonly google: FakeGoogle,
    readonly network: LocalStreamrNetwork,
  ) {}

  static async start(options: StackOptions = {}): Promise<Stack> {
    const log = options.log ?? (() => {})
    const redisUrl = options.redisUrl ?? process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'
    const prefix = options.prefix ?? 'fitstream'
    if (options.logDir !== undefined) mkdirSync(options.logDir, { recursive: true })
    log('starting the fake Google and a local Streamr network')
    const [google, network] = await Promise.all([FakeGoogle.start({ latencyMs: options.googleLatencyMs ?? 0 }), startLocalStreamrNetwork()])
    const stack = new Stack(options, prefix, redisUrl, generateDevSecrets(), google, network)
    try {
      // No service needs the streams to start (the publisher checks them per job): they are
      // provisioned while the services boot. Both settle before a failure is passed on, so that
      // stop() sees every process that was spawned.
      const results = await Promise.allSettled([stack.provisionStreams(), stack.startServices()])
      const failed = results.find((result) => result.status === 'rejected')
      if (failed !== undefined) throw failed.reason
    } catch (error) {
      await stack.stop()
      throw error
    }
    return stack
  }

  /** The stack's Redis as its services reach it: one server, or a cluster. */
  get redisTarget(): RedisTarget {
    return this.options.redisClusterNodes === undefined ? { url: this.redisUrl } : { url: this.redisUrl, clusterNodes: this.options.redisClusterNodes }
  }

  /** The Google API people grant access to and are read from. */
  get googleApi(): GoogleDataApi {
    return this.options.googleApi ?? 'fit'
  }

  get publisherKey(): string {
    return this.network.accounts[1]!.privateKey
  }

  get buyer(): { address: string; privateKey: string } {
    return this.network.accounts[2]!
  }

  get tokenService(): ServiceProcess {
    return this.service('token-service')
  }

  service(label: string): ServiceProcess {
    const found = this.services.find((s) => s.label === label)
    if (found === undefined) throw new Error(`no service ${label}`)
    return found
  }

  /** Environment of one service process (what compose's .env provides in production). */
  serviceEnv(name: ServiceName, extra: Record<string, string> = {}): Record<string, string> {
    const s = this.secrets
    const common = {
      GOOGLE_FIT_CLOSES_AT: FAKE_FIT_CLOSES_AT,
      REDIS_URL: this.redisUrl,
      ...(this.options.redisClusterNodes === undefined ? {} : { REDIS_CLUSTER_NODES: this.options.redisClusterNodes.join(',') }),
      QUEUE_PREFIX: this.prefix,
      LOG_LEVEL: this.options.logLevel ?? 'info',
      RETRY_BACKOFF_MS: '500',
      ...this.options.env,
    }
    const tokenServiceUrl = this.services.find((p) => p.options.name === 'token-service')?.url ?? ''
    const own: Record<ServiceName, Record<string, string>> = {
      'token-service': {
        GOOGLE_DATA_API: this.googleApi,
        ADMIN_TOKEN: s.ADMIN_TOKEN,
        INTERNAL_API_TOKEN: s.INTERNAL_API_TOKEN,
        SESSION_SECRET: s.SESSION_SECRET,
        GOOGLE_CLIENT_ID: this.google.clientId,
        GOOGLE_CLIENT_SECRET: this.google.clientSecret,
        GOOGLE_TOKEN_URL: this.google.tokenUrl,
        GOOGLE_AUTH_URL: this.google.authorizeUrl,
        GOOGLE_REVOKE_URL: this.google.revokeUrl,
        REFRESH_TOKEN_KEYS: s.REFRESH_TOKEN_KEYS,
        ACCESS_TOKEN_KEYS: s.ACCESS_TOKEN_KEYS,
        BACKFILL_DAYS: String(this.options.backfillDays ?? 1),
        // Re-read no further back than the backfill reached, so what a run delivers is exactly predictable.
        SYNC_LOOKBACK_HOURS: String(24 * (this.options.backfillDays ?? 1)),
      },
      fetcher: {
        ACCESS_TOKEN_KEYS: s.ACCESS_TOKEN_KEYS,
        GOOGLE_DATA_API: this.googleApi,
        GOOGLE_FITNESS_ROOT_URL: this.google.rootUrl,
        GOOGLE_HEALTH_ROOT_URL: this.google.rootUrl,
        TOKEN_SERVICE_URL: tokenServiceUrl,
        INTERNAL_API_TOKEN: s.INTERNAL_API_TOKEN,
      },
      anonymizer: { PSEUDONYM_KEY: s.PSEUDONYM_KEY, ANONYMIZER_POLICY_FILE: OPTED_IN_POLICY_FILE },
      publisher: { ...this.publisherStreamrEnv(), PUBLISH_SLOT_MS: String(this.options.publishSlotMs ?? DEFAULT_PUBLISH_SLOT_MS) },
    }
    return { ...common, ...own[name], ...this.options.serviceEnv?.[name], ...extra }
  }

  /** Starts another process of a service (e.g. a second fetcher) and waits until it is ready. */
  async addService(name: ServiceName, label: string = name): Promise<ServiceProcess> {
    const service = await this.spawnService(name, label)
    await service.waitReady()
    return service
  }

  private async spawnService(name: ServiceName, label: string): Promise<ServiceProcess> {
    const wanted = name === 'token-service' ? this.options.tokenServicePort : undefined
    const port = wanted !== undefined && (await isPortFree(wanted)) ? wanted : await freePort()
    const extra: Record<string, string> =
      name === 'publisher' ? { STREAMR_WEBSOCKET_PORT: String(await freePort()) } : name === 'token-service' ? { PUBLIC_URL: `http://127.0.0.1:${port}` } : {}
    const service = new ServiceProcess({
      name,
      label,
      port,
      env: this.serviceEnv(name, extra),
      ...(this.options.nodeArgs === undefined ? {} : { nodeArgs: this.options.nodeArgs }),
      ...(this.options.logDir === undefined ? {} : { logFile: join(this.options.logDir, `${label}.log`) }),
    })
    service.start()
    this.services.push(service)
    return service
  }

  /** Registers a fake Google user with FitStream through the token service's API. */
  async registerUser(options: { seed?: string; dataTypes?: readonly DataTypeKey[] } = {}): Promise<RegisteredUser> {
    const google = this.google.addUser({
      ...(options.seed === undefined ? {} : { seed: options.seed }),
      // A person who consented to the API in use: every read scope of it.
      scopes: [...(this.googleApi === 'health' ? ALL_HEALTH_READ_SCOPES : ALL_READ_SCOPES)],
    })
    const dataTypes = options.dataTypes ?? ['steps', 'calories', 'heart_rate']
    const response = await this.api('POST', '/users', { refreshToken: google.refreshToken, dataTypes })
    if (response.status !== 201) throw new Error(`registering a user failed: ${response.status} ${JSON.stringify(response.body)}`)
    return { userId: (response.body as { id: string }).id, google, dataTypes }
  }

  /** Calls the token service's API as an operator. */
  async api(method: string, path: string, body?: unknown): Promise<{ status: number; body: unknown }> {
    const response = await fetch(`${this.tokenService.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${this.secrets.ADMIN_TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    })
    const text = await response.text()
    let parsed: unknown = text
    try {
      parsed = JSON.parse(text)
    } catch {
      // not JSON: keep the text
    }
    return { status: response.status, body: parsed }
  }

  /** The stack's queues, as an operator's tool sees them (inspect, add, dead letters). */
  queues(): StageQueues {
    if (this.inspector === undefined) {
      const redis = createRedis(this.redisTarget, 'producer', 'devstack-inspector')
      const config = parseEnv(commonEnv, { REDIS_URL: this.redisUrl, QUEUE_PREFIX: this.prefix })
      this.inspector = {
        redis,
        queues: new StageQueues({
          connection: redis,
          prefix: this.prefix,
          cluster: this.options.redisClusterNodes !== undefined,
          retry: retryPolicies(config),
          logger: createLogger('devstack', 'silent'),
        }),
      }
    }
    return this.inspector.queues
  }

  /** A buyer subscribed to every stream (SUBSCRIBE was granted at provisioning). */
  async startSubscriber(): Promise<Subscriber> {
    const config = await this.network.clientConfig({ privateKey: this.buyer.privateKey, websocketPort: await freePort() })
    const subscriber = await Subscriber.start(config, this.streams, { XDG_DATA_HOME: this.streamrDataDir })
    this.subscribers.push(subscriber)
    return subscriber
  }

  /** Stops everything and removes the stack's keys; a second call waits for the first. */
  stop(): Promise<void> {
    this.stopping ??= this.tearDown()
    return this.stopping
  }

  private async tearDown(): Promise<void> {
    await Promise.all(this.subscribers.map((s) => s.stop()))
    // Stop in pipeline order so nothing is left half-done behind a stopped stage.
    for (const name of ['token-service', 'fetcher', 'anonymizer', 'publisher'] as const) {
      const grace = name !== 'publisher' ? undefined : this.options.nodeArgs === undefined ? PUBLISHER_GRACE_WITHOUT_BUYERS_MS : PROFILED_PUBLISHER_GRACE_MS
      await Promise.all(this.services.filter((s) => s.options.name === name).map((s) => s.stop(grace)))
    }
    if (this.inspector !== undefined) {
      await this.inspector.queues.close()
      this.inspector.redis.disconnect()
    }
    if (this.options.cleanRedis !== false) {
      const redis = createRedis(this.redisTarget, 'producer', 'devstack')
      await deleteKeysWithPrefix(redis, this.prefix).catch(() => 0)
      redis.disconnect()
    }
    await Promise.all([this.google.close(), this.network.stop()])
    rmSync(this.streamrDataDir, { recursive: true, force: true })
  }

  private publisherStreamrEnv(): Record<string, string> {
    return { ...streamrEnv(this.network, this.publisherKey), XDG_DATA_HOME: this.streamrDataDir }
  }

  private async provisionStreams(): Promise<void> {
    const cli = fileURLToPath(new URL('../../../services/publisher/dist/cli.js', import.meta.url))
    const args = [cli, 'streams', 'provision', '--partitions', String(this.options.partitions ?? 1), '--grant-subscribe', this.buyer.address]
    if (this.options.dataTypes !== undefined) args.push('--types', this.options.dataTypes.join(','))
    const env = { PATH: process.env.PATH ?? '', ...this.serviceEnv('publisher', { STREAMR_WEBSOCKET_PORT: String(await freePort()) }) }
    const { stdout } = await run(process.execPath, args, { env, timeout: 120_000 })
    const report = JSON.parse(stdout.trim().split('\n').pop()!) as { streams: { id: string }[] }
    this.streams.push(...report.streams.map((s) => s.id))
    this.options.log?.(`provisioned ${this.streams.length} streams (records and cohorts) for the data types`)
  }

  private async startServices(): Promise<void> {
    // The token service is spawned first because the fetchers' environment names its URL; they call
    // it only per job, so every service boots at once.
    const started = [await this.spawnService('token-service', 'token-service')]
    const fetchers = this.options.fetchers ?? 1
    for (let i = 0; i < fetchers; i++) started.push(await this.spawnService('fetcher', fetchers === 1 ? 'fetcher' : `fetcher-${i + 1}`))
    started.push(await this.spawnService('anonymizer', 'anonymizer'), await this.spawnService('publisher', 'publisher'))
    await Promise.all(started.map((service) => service.waitReady()))
  }
}
