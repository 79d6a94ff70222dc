import {
  ConfigError,
  errorCode,
  createLogger,
  createMetrics,
  createRedis,
  isCluster,
  redisTargetOf,
  buildServer,
  loadConfigOrExit,
  MembershipQueues,
  onShutdown,
} from '@fitstream/shared'
import { DataUnionChain, NotADataUnionError } from './data-union.js'
import { dataUnionEnvironment, loadDataUnionConfig } from './data-union-config.js'
import { createMembershipWorker } from './data-union-membership.js'
import { registerDataUnionRoutes } from './data-union-routes.js'
import { MemberWallets } from './member-wallets.js'

/**
 * The membership service: the Data Union's join-part agent and the keeper of member keys. It runs
 * the membership stage with the operator's key (the same STREAMR_PRIVATE_KEY as the publisher), in a
 * process of its own so that a slow or frozen chain never holds up publishing, and publishing never
 * holds up a join; and it answers the token service's /internal/members API (earnings, withdrawals,
 * erasure receipts), signing withdrawals with member keys only it can decrypt (MEMBER_KEYS).
 */
const config = loadConfigOrExit('membership', (env) => {
  const loaded = loadDataUnionConfig(env)
  const missing = (['DATA_UNION_ADDRESS', 'MEMBER_KEYS', 'INTERNAL_API_TOKEN'] as const).filter((name) => loaded[name] === undefined)
  if (missing.length > 0) throw new ConfigError(`Invalid configuration: the membership service needs ${missing.join(', ')} (see docs/earnings.md)`)
  return { ...loaded, DATA_UNION_ADDRESS: loaded.DATA_UNION_ADDRESS!, MEMBER_KEYS: loaded.MEMBER_KEYS!, INTERNAL_API_TOKEN: loaded.INTERNAL_API_TOKEN! }
})
const logger = createLogger('membership', config.LOG_LEVEL)
const environment = dataUnionEnvironment(config)
const redisTarget = redisTargetOf(config)
const redis = createRedis(redisTarget, 'producer', 'membership')
const workerRedis = createRedis(redisTarget, 'worker', 'membership-worker')
const chain = new DataUnionChain({
  rpcUrl: environment.rpcUrl,
  chainId: environment.chainId,
  operatorPrivateKey: config.STREAMR_PRIVATE_KEY.startsWith('0x') ? config.STREAMR_PRIVATE_KEY : `0x${config.STREAMR_PRIVATE_KEY}`,
  timeoutMs: config.DATA_UNION_CHAIN_TIMEOUT_MS,
})
const queues = new MembershipQueues({
  connection: redis,
  prefix: config.QUEUE_PREFIX,
  cluster: isCluster(redisTarget),
  retry: { attempts: config.MEMBERSHIP_ATTEMPTS, backoffMs: config.RETRY_BACKOFF_MS },
  logger,
})
const worker = createMembershipWorker({
  chain,
  dataUnion: config.DATA_UNION_ADDRESS,
  connection: workerRedis,
  redis,
  queues,
  prefix: config.QUEUE_PREFIX,
  logger,
})
const wallets = new MemberWallets(redis, config.QUEUE_PREFIX, config.MEMBER_KEYS, chain, config.DATA_UNION_ADDRESS)
const server = buildServer({ logger, metrics: createMetrics('membership'), readiness: { redis: async () => void (await redis.ping()) } })
registerDataUnionRoutes(server, { wallets, chain, dataUnion: config.DATA_UNION_ADDRESS, internalToken: config.INTERNAL_API_TOKEN })
onShutdown(logger, config.SHUTDOWN_TIMEOUT_MS, () => [
  ['membership worker', () => worker.close()],
  ['http server', () => server.close()],
  ['queues', () => queues.close()],
  [
    'connections',
    async () => {
      chain.destroy()
      await Promise.all([redis.quit(), workerRedis.quit()])
    },
  ],
])
// A wrong DATA_UNION_ADDRESS is a configuration error, found now rather than by every job; a chain
// that does not answer yet is not (the jobs wait for it).
try {
  await chain.assertDataUnion(config.DATA_UNION_ADDRESS)
} catch (error) {
  if (error instanceof NotADataUnionError) {
    logger.fatal({ code: error.code }, `DATA_UNION_ADDRESS: ${error.message}`)
    process.exit(78)
  }
  logger.warn({ code: errorCode(error) }, `could not check DATA_UNION_ADDRESS yet: ${error instanceof Error ? error.message : String(error)}`)
}
await server.listen({ host: config.HTTP_HOST, port: config.MEMBERSHIP_HTTP_PORT })
logger.info({ dataUnion: config.DATA_UNION_ADDRESS, operator: chain.operatorAddress }, 'membership service: joining and parting Data Union members')
void worker.run()
