import { ConfigError, createLogger, createRedis, loadConfigOrExit, MembershipQueues, onShutdown } from '@fitstream/shared'
import { DataUnionChain } from './data-union.js'
import { dataUnionEnvironment, loadDataUnionConfig } from './data-union-config.js'
import { createMembershipWorker } from './data-union-membership.js'

/**
 * The membership service: the Data Union's join-part agent. It runs the membership stage with the
 * operator's key (the same STREAMR_PRIVATE_KEY as the publisher), in a process of its own so that a
 * slow or frozen chain never holds up publishing, and publishing never holds up a join.
 */
const config = loadConfigOrExit('membership', (env) => {
  const loaded = loadDataUnionConfig(env)
  if (loaded.DATA_UNION_ADDRESS === undefined) throw new ConfigError('Invalid configuration: DATA_UNION_ADDRESS is required (run `fitstream du create`)')
  return { ...loaded, DATA_UNION_ADDRESS: loaded.DATA_UNION_ADDRESS }
})
const logger = createLogger('membership', config.LOG_LEVEL)
const environment = dataUnionEnvironment(config)
const redis = createRedis(config.REDIS_URL, 'producer', 'membership')
const workerRedis = createRedis(config.REDIS_URL, 'worker', 'membership-worker')
const chain = new DataUnionChain({
  rpcUrl: environment.rpcUrl,
  chainId: environment.chainId,
  operatorPrivateKey: config.STREAMR_PRIVATE_KEY.startsWith('0x') ? config.STREAMR_PRIVATE_KEY : `0x${config.STREAMR_PRIVATE_KEY}`,
  timeoutMs: config.DATA_UNION_CHAIN_TIMEOUT_MS,
})
const queues = new MembershipQueues({
  connection: redis,
  prefix: config.QUEUE_PREFIX,
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
onShutdown(logger, config.SHUTDOWN_TIMEOUT_MS, () => [
  ['membership worker', () => worker.close()],
  ['queues', () => queues.close()],
  [
    'connections',
    async () => {
      chain.destroy()
      await Promise.all([redis.quit(), workerRedis.quit()])
    },
  ],
])
logger.info({ dataUnion: config.DATA_UNION_ADDRESS, operator: chain.operatorAddress }, 'membership service: joining and parting Data Union members')
void worker.run()
