import { createHmac } from 'node:crypto'
import type { Worker } from 'bullmq'
import type { FastifyInstance } from 'fastify'
import { redisTargetOf, retryPolicies, type CommonConfig } from './config.js'
import { slotGroupPrefix, type SlotGroup } from './key-slots.js'
import type { Logger } from './logger.js'
import { createMetrics, type ServiceMetrics } from './metrics.js'
import { createRedis, isCluster, type RedisConnection } from './redis.js'
import { buildServer, type ServerOptions } from './server.js'
import { StageQueues } from './stage-queues.js'
import { createStageWorker, type StageWorkerOptions } from './stage-worker.js'
import type { Stage } from './stages.js'

/**
 * What every FitStream service process holds: a producer and a worker Redis connection, the stage
 * queues, metrics, its stage workers and one HTTP server, closed in the order that loses nothing.
 */
export class ServiceRuntime {
  /** Fail-fast connection for adds, reads and HTTP handlers. */
  readonly redis: RedisConnection
  /** Blocking connection for workers (never gives up on a command). */
  readonly workerRedis: RedisConnection
  /** True on a Redis Cluster (REDIS_CLUSTER_NODES): keys carry hash tags. */
  readonly cluster: boolean
  readonly metrics: ServiceMetrics
  readonly queues: StageQueues
  private readonly workers: Worker[] = []
  private readonly closers: [string, () => Promise<unknown>][] = []
  private readonly starters: (() => void)[] = []
  private httpServer: FastifyInstance | undefined

  constructor(
    readonly name: string,
    readonly config: CommonConfig,
    readonly logger: Logger,
  ) {
    const target = redisTargetOf(config)
    this.cluster = isCluster(target)
    this.redis = createRedis(target, 'producer', name)
    this.workerRedis = createRedis(target, 'worker', `${name}-worker`)
    this.metrics = createMetrics(name)
    this.queues = new StageQueues({
      connection: this.redis,
      prefix: config.QUEUE_PREFIX,
      cluster: this.cluster,
      retry: retryPolicies(config),
      logger,
      ...jobIdKeyOf(config),
    })
  }

  /** The key prefix of a slot group's stores: QUEUE_PREFIX on one Redis, with the group's hash tag on a cluster. */
  slotPrefix(group: SlotGroup): string {
    return slotGroupPrefix(this.config.QUEUE_PREFIX, group, this.cluster)
  }

  /** The stage workers this process runs (tests watch what they finish: BullMQ keeps no finished job that names a person). */
  get stageWorkers(): readonly Worker[] {
    return this.workers
  }

  get server(): FastifyInstance {
    if (this.httpServer === undefined) throw new Error(`${this.name}: server() has not been called`)
    return this.httpServer
  }

  addWorker<S extends Stage, R>(options: Omit<StageWorkerOptions<S, R>, 'connection' | 'queues' | 'logger' | 'metrics'>): Worker {
    const worker = createStageWorker({
      lockDurationMs: this.config.JOB_LOCK_MS,
      stalledIntervalMs: this.config.STALLED_CHECK_MS,
      ...options,
      connection: this.workerRedis,
      queues: this.queues,
      logger: this.logger,
      metrics: this.metrics,
    })
    this.workers.push(worker)
    return worker
  }

  /** Builds the HTTP server; Redis is always part of readiness. */
  buildServer(options: Partial<Omit<ServerOptions, 'logger' | 'metrics'>> = {}): FastifyInstance {
    this.httpServer = buildServer({
      ...options,
      logger: this.logger,
      metrics: this.metrics,
      readiness: { redis: async () => void (await this.redis.ping()), ...options.readiness },
      beforeScrape: async () => {
        await this.sampleQueues()
        await options.beforeScrape?.()
      },
    })
    return this.httpServer
  }

  /** Depth by state and the oldest waiting job's age, for the queues this service works and its dead letters. */
  private async sampleQueues(): Promise<void> {
    const stages = this.workers.map((worker) => worker.name as Stage)
    await Promise.all(
      stages
        .flatMap((stage) => [this.queues.queue(stage), this.queues.deadLetterQueue(stage)])
        .map(async (queue) => {
          const counts = await queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'failed')
          for (const [state, count] of Object.entries(counts)) this.metrics.queueDepth.set({ queue: queue.name, state }, count)
          const [oldest] = await queue.getJobs(['waiting', 'prioritized'], 0, 0, true)
          this.metrics.oldestWaitingAge.set({ queue: queue.name }, oldest === undefined ? 0 : Math.max(0, (Date.now() - oldest.timestamp) / 1000))
        }),
    )
  }

  /** Something to close after the workers have drained and the server has stopped (clients, pools). */
  onClose(name: string, close: () => Promise<unknown>): void {
    this.closers.push([name, close])
  }

  /** Something that runs beside the workers once the service starts (a timer); stop it with onClose. */
  onStart(start: () => void): void {
    this.starters.push(start)
  }

  /** Starts every worker taking jobs, and whatever runs beside them. */
  start(): void {
    for (const worker of this.workers) {
      worker.run().catch((err: unknown) => this.logger.error({ err, queue: worker.name }, 'worker stopped'))
    }
    for (const start of this.starters) start()
  }

  /** Stops taking jobs and finishes in-flight ones, then the server, then clients and connections. */
  async close(): Promise<void> {
    await Promise.all(this.workers.map((worker) => worker.close()))
    await this.httpServer?.close()
    for (const [name, close] of this.closers) {
      await close().catch((err: unknown) => this.logger.error({ err, step: name }, 'close failed'))
    }
    await this.queues.close()
    this.redis.disconnect()
    this.workerRedis.disconnect()
  }
}

/**
 * The key of job ids that would name a person: derived from INTERNAL_API_TOKEN, the secret the
 * services that add such jobs (the token service: sync and fetch; the fetchers: anonymize) already
 * hold and that stays out of Redis. Changing the token changes the ids once, so a job queued just
 * before may be queued again after it (both find the same data).
 */
function jobIdKeyOf(config: CommonConfig): { jobIdKey?: string } {
  const secret = (config as CommonConfig & { INTERNAL_API_TOKEN?: unknown }).INTERNAL_API_TOKEN
  return typeof secret === 'string' ? { jobIdKey: createHmac('sha256', secret).update('fitstream job ids').digest('base64url') } : {}
}
