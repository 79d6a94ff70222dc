import { createHash } from 'node:crypto'
import { Queue, Worker } from 'bullmq'
import type { RedisConnection } from '@fitstream/shared'
import { QUEUE_EVENT_STREAM, waitForRedis, type CohortRecord, type Logger, type StageQueues } from '@fitstream/shared'
import type { AnonymizerKeys } from './anonymize.js'
import { aggregateCell } from './cohort-aggregate.js'
import type { AnonymizerMetrics } from './metrics.js'
import type { PrivacyPolicy } from './policy.js'
import type { PrivacyStore } from './privacy-store.js'

/** The anonymizer's own queue: a job scheduler ticks it, and each tick closes the windows that are due. */
export const COHORT_QUEUE = 'anonymizer-cohorts'
const SCHEDULER_ID = 'close-cohort-windows'
/** Cohort records per publish job: well under the contract's limit, and small enough to retry cheaply. */
const COHORTS_PER_JOB = 1_000

export interface CloseResult {
  readonly cells: number
  readonly released: number
  readonly suppressed: number
}

export interface CohortCloserDeps {
  readonly policy: PrivacyPolicy
  readonly keys: AnonymizerKeys
  readonly store: PrivacyStore
  readonly queues: StageQueues
  readonly metrics: AnonymizerMetrics
  readonly logger: Logger
}

/**
 * Closes every cohort cell whose window and grace period have ended: bands that reached k people and the release threshold go
 * to the publisher as cohort records, the others are suppressed, counted and logged; then the cell's
 * contributions are forgotten. Cells a crashed run left closing are finished first.
 */
export async function closeCohortWindows(deps: CohortCloserDeps, now: number): Promise<CloseResult> {
  const { store, metrics, logger } = deps
  await store.closeDue(now)
  let cells = 0
  let released = 0
  let suppressed = 0
  for (;;) {
    const closing = await store.closingCells(200)
    if (closing.length === 0) break
    const records: CohortRecord[] = []
    for (const cell of closing) {
      const outcome = aggregateCell(cell, deps.policy, deps.keys)
      records.push(...outcome.released)
      metrics.cohortCells.inc({ type: cell.type, outcome: 'released' }, outcome.released.length)
      for (const { band, reason } of outcome.suppressed) {
        metrics.cohortCells.inc({ type: cell.type, outcome: `suppressed_${reason}` })
        logger.info(
          {
            type: cell.type,
            start: new Date(cell.startMs).toISOString(),
            end: new Date(cell.endMs).toISOString(),
            ...(cell.batchStartMs === undefined ? {} : { release: 'history', batch: new Date(cell.batchStartMs).toISOString().slice(0, 10) }),
            band,
            reason,
          },
          'cohort cell suppressed: fewer than k people, or a noisy count under the release threshold',
        )
      }
      released += outcome.released.length
      suppressed += outcome.suppressed.length
    }
    for (let i = 0; i < records.length; i += COHORTS_PER_JOB) {
      const chunk = records.slice(i, i + COHORTS_PER_JOB)
      const digest = createHash('sha256')
        .update(chunk.map((r) => r.id).join(','))
        .digest('base64url')
        .slice(0, 24)
      await deps.queues.add('publish', { syncId: `cohorts-${now}`, records: [], cohorts: chunk }, { jobId: `publish-cohorts-${digest}` })
    }
    await store.finishCells(closing)
    cells += closing.length
  }
  metrics.cohortOpenCells.set(await store.openCells())
  if (cells > 0) logger.info({ cells, released, suppressed }, 'cohort windows closed')
  return { cells, released, suppressed }
}

/**
 * The trigger: a BullMQ job scheduler in Redis (one tick for all replicas, surviving restarts) and a
 * worker on the anonymizer's own queue. Returns a close function for the service's shutdown.
 */
export async function startCohortCloser(
  deps: CohortCloserDeps & { readonly connection: RedisConnection; readonly workerConnection: RedisConnection; readonly prefix: string },
): Promise<() => Promise<void>> {
  const queue = new Queue(COHORT_QUEUE, { connection: deps.connection, prefix: deps.prefix, streams: QUEUE_EVENT_STREAM })
  queue.on('error', (err) => deps.logger.error({ err, queue: COHORT_QUEUE }, 'queue error'))
  const worker = new Worker(COHORT_QUEUE, async () => closeCohortWindows(deps, Date.now()), {
    connection: deps.workerConnection,
    prefix: deps.prefix,
    concurrency: 1,
    autorun: true,
  })
  worker.on('error', (err) => deps.logger.error({ err, queue: COHORT_QUEUE }, 'worker error'))
  worker.on('failed', (job, err) => deps.logger.error({ err, queue: COHORT_QUEUE, jobId: job?.id }, 'closing cohort windows failed; the next tick retries'))
  // The producer connection fails fast; at start-up it may not be connected yet.
  await waitForRedis(deps.connection, 30_000)
  await queue.upsertJobScheduler(
    SCHEDULER_ID,
    { every: deps.policy.cohorts.closeEverySeconds * 1000 },
    { name: 'close', data: {}, opts: { removeOnComplete: { count: 100 }, removeOnFail: { count: 100 } } },
  )
  return async () => {
    await worker.close()
    await queue.close()
  }
}
