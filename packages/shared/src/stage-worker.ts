import { DelayedError, RateLimitError, UnrecoverableError, Worker, type Job } from 'bullmq'
import type { RedisConnection } from './redis.js'
import { DiscardJobError, FitStreamError, errorCode, isPermanent } from './errors.js'
import type { Logger } from './logger.js'
import type { ServiceMetrics } from './metrics.js'
import { parsePayload, type StageQueues } from './stage-queues.js'
import type { Stage, StageData } from './stages.js'

export interface JobContext {
  readonly jobId: string
  /** 1 for the first attempt. */
  readonly attempt: number
  readonly maxAttempts: number
  /** When the job was added (ms since epoch). */
  readonly enqueuedAt: number
  /** A child of the service logger bound to { queue, jobId }. */
  readonly logger: Logger
  updateProgress(progress: number | object): Promise<void>
  /**
   * Puts the job back for later without counting an attempt (an upstream said "slow down").
   * `job` delays only this job (a per-user limit); `queue` pauses the whole stage, on every
   * replica, for `delayMs` (a project-wide quota).
   */
  deferWithoutAttempt(delayMs: number, scope: 'job' | 'queue'): Promise<never>
}

export type StageProcessor<S extends Stage, R> = (data: StageData<S>, context: JobContext) => Promise<R>

export interface StageWorkerOptions<S extends Stage, R> {
  readonly stage: S
  readonly process: StageProcessor<S, R>
  /** A dedicated worker connection (`maxRetriesPerRequest: null`). */
  readonly connection: RedisConnection
  /** Where dead letters are written (the producer side of this process). */
  readonly queues: StageQueues
  readonly logger: Logger
  readonly metrics: ServiceMetrics
  /** Jobs processed at once by this process (default 1). */
  readonly concurrency?: number
  /** How long a job's lock lasts before it counts as stalled and another worker takes it (default 30 s). */
  readonly lockDurationMs?: number
  /** At most `max` jobs per `duration` ms across every worker of this stage (shared through Redis). */
  readonly limiter?: { readonly max: number; readonly duration: number }
  /** How often this worker looks for jobs whose worker died mid-job (default 30 s). */
  readonly stalledIntervalMs?: number
  /** How many times a job may be picked up again after its worker died before it fails (default 1). */
  readonly maxStalledCount?: number
}

export interface DiscardedResult {
  readonly discarded: string
}

/**
 * Wraps a stage's domain processor in what every stage needs: the payload checked against the
 * stage's schema, a per-job logger, metrics, and the dead-letter rule. A job whose payload is
 * invalid or whose error is permanent goes straight to `<stage>-dlq`; a transient error is retried
 * with backoff until the job's attempts are used up, then dead-lettered too. Nothing is dropped,
 * except work for a user who has been erased, which is discarded on purpose and said so.
 */
export function createStageWorker<S extends Stage, R>(options: StageWorkerOptions<S, R>): Worker<StageData<S>, R | DiscardedResult> {
  const { stage, logger, metrics, queues } = options

  const processor = async (job: Job<StageData<S>>, token?: string): Promise<R | DiscardedResult> => {
    const jobId = job.id ?? 'unknown'
    // The sync id follows one user's sync through every stage, so its log lines can be found together.
    const syncId = (job.data as { syncId?: unknown } | undefined)?.syncId
    const log = logger.child({ queue: stage, jobId, ...(typeof syncId === 'string' ? { syncId } : {}) })
    const maxAttempts = job.opts.attempts ?? 1
    const attempt = job.attemptsMade + 1
    const stopTimer = metrics.jobDuration.startTimer({ queue: stage })
    try {
      const data = parsePayload(stage, job.data)
      const result = await options.process(data, {
        jobId,
        attempt,
        maxAttempts,
        enqueuedAt: job.timestamp,
        logger: log,
        updateProgress: (progress) => job.updateProgress(progress),
        deferWithoutAttempt: async (delayMs, scope) => {
          metrics.jobsDeferred.inc({ queue: stage, scope })
          if (scope === 'queue') {
            await queues.queue(stage).rateLimit(delayMs)
            throw Worker.RateLimitError()
          }
          await job.moveToDelayed(Date.now() + delayMs, token)
          throw new DelayedError()
        },
      })
      stopTimer({ outcome: 'completed' })
      metrics.jobsCompleted.inc({ queue: stage })
      return result
    } catch (error) {
      if (error instanceof RateLimitError || error instanceof DelayedError) {
        stopTimer({ outcome: 'deferred' })
        throw error
      }
      stopTimer({ outcome: 'failed' })
      const code = errorCode(error)
      metrics.jobsFailed.inc({ queue: stage, code })
      if (error instanceof DiscardJobError) {
        log.info({ code }, `job discarded: ${error.message}`)
        // The result lands in the queue's event stream, which outlives the job and the person's erasure.
        return { discarded: withoutUserId(error.message, job.data) }
      }
      const permanent = isPermanent(error) || error instanceof UnrecoverableError
      const message = describe(error)
      if (!permanent && attempt < maxAttempts) {
        metrics.jobsRetried.inc({ queue: stage })
        log.warn({ code, attempt, maxAttempts }, `attempt failed, will retry: ${message}`)
        throw error
      }
      await queues.addDeadLetter(
        stage,
        {
          stage,
          jobId,
          jobName: job.name,
          payload: job.data,
          error: { code, name: error instanceof Error ? error.name : 'Error', message },
          permanent,
          attemptsMade: attempt,
          maxAttempts,
          createdAt: new Date(job.timestamp).toISOString(),
          firstAttemptAt: job.processedOn === undefined ? null : new Date(job.processedOn).toISOString(),
          failedAt: new Date().toISOString(),
        },
        // The same job failing again after a replay is a new dead letter; a crash between writing
        // the dead letter and failing the job is not.
        `${jobId.replaceAll(':', '_')}-${job.timestamp}-${attempt}`,
      )
      metrics.jobsDeadLettered.inc({ queue: stage, code })
      log.error({ code, attempt, maxAttempts, permanent }, `job dead-lettered: ${message}`)
      // The reason lands in the queue's event stream; the dead letter keeps it whole, with the payload.
      throw new UnrecoverableError(withoutUserId(message, job.data))
    }
  }

  const worker = new Worker<StageData<S>, R | DiscardedResult>(stage, processor, {
    connection: options.connection,
    prefix: queues.queuePrefix(stage),
    concurrency: options.concurrency ?? 1,
    lockDuration: options.lockDurationMs ?? 30_000,
    autorun: false,
    ...(options.limiter === undefined ? {} : { limiter: options.limiter }),
    ...(options.stalledIntervalMs === undefined ? {} : { stalledInterval: options.stalledIntervalMs }),
    ...(options.maxStalledCount === undefined ? {} : { maxStalledCount: options.maxStalledCount }),
  })
  worker.on('error', (err) => logger.error({ err, queue: stage }, 'worker error'))
  // A job whose worker died too often mid-job (stalled past maxStalledCount) is failed by BullMQ
  // itself, outside the processor: it still belongs in the dead-letter queue.
  worker.on('failed', (job, error) => {
    if (job === undefined || !/stalled/i.test(error.message)) return
    const jobId = job.id ?? 'unknown'
    queues
      .addDeadLetter(
        stage,
        {
          stage,
          jobId,
          jobName: job.name,
          payload: job.data,
          error: { code: 'FST_ERR_STALLED', name: error.name, message: error.message },
          permanent: false,
          attemptsMade: job.attemptsMade,
          maxAttempts: job.opts.attempts ?? 1,
          createdAt: new Date(job.timestamp).toISOString(),
          firstAttemptAt: job.processedOn === undefined ? null : new Date(job.processedOn).toISOString(),
          failedAt: new Date().toISOString(),
        },
        `${jobId.replaceAll(':', '_')}-${job.timestamp}-stalled`,
      )
      .then(() => {
        metrics.jobsDeadLettered.inc({ queue: stage, code: 'FST_ERR_STALLED' })
        logger.error({ queue: stage, jobId }, `job dead-lettered: ${error.message}`)
      })
      .catch((err: unknown) => logger.error({ err, queue: stage, jobId }, 'could not dead-letter a stalled job'))
  })
  return worker
}

/** A one-line description of an error that is safe to log and store: never a request config. */
function describe(error: unknown): string {
  if (error instanceof FitStreamError) return error.message
  if (error instanceof Error) return error.message
  return String(error)
}

/** `text` with the payload's user id replaced: what BullMQ keeps in its event streams must not name a person. */
function withoutUserId(text: string, data: unknown): string {
  const userId = (data as { userId?: unknown } | undefined)?.userId
  return typeof userId === 'string' && userId !== '' ? text.replaceAll(userId, '<user>') : text
}
