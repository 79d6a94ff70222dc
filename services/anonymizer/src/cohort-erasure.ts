import { createHmac } from 'node:crypto'
import { UnrecoverableError, Worker } from 'bullmq'
import type { RedisConnection } from '@fitstream/shared'
import { COHORT_ERASURE_QUEUE, cohortErasureJobSchema, type CohortErasureJobData, type Logger } from '@fitstream/shared'
import { memberToken, type AnonymizerKeys } from './anonymize.js'
import type { PrivacyStore } from './privacy-store.js'

export interface CohortErasureResult {
  /** Cohort cells not yet released that held a contribution of the person's and no longer do. */
  readonly cells: number
  /** Keys of their privacy state deleted (written back by a job of theirs that ran during the erasure). */
  readonly privacyState: number
}

/** How long an erased person's anonymize jobs are discarded: longer than any job of theirs can still be on its way. */
export const ERASED_MARK_TTL_S = 7 * 86_400

/** The keyed token an erased person is marked by: it names nobody without the anonymiser's key. */
export function erasedToken(keys: AnonymizerKeys, userId: string): string {
  return createHmac('sha256', keys.member).update(`fitstream/erased/v1|${userId}`).digest('hex').slice(0, 32)
}

/**
 * Removes one person's contributions from every cohort cell not yet released, and their privacy
 * state; marked first, so an anonymize job of theirs that comes later is discarded.
 */
export async function eraseCohortContributions(store: PrivacyStore, keys: AnonymizerKeys, userId: string): Promise<CohortErasureResult> {
  await store.markErased(erasedToken(keys, userId), ERASED_MARK_TTL_S)
  const cells = await store.eraseContributions((cell) => memberToken(keys, cell, userId))
  return { cells, privacyState: await store.erasePrivacyState(userId) }
}

/**
 * The worker on the anonymizer's erasure queue (`COHORT_ERASURE_QUEUE`): the token service's erasure
 * asks here, since only the anonymizer can find a person's member tokens. Returns its close function.
 */
export function startCohortErasure(deps: {
  readonly store: PrivacyStore
  readonly keys: AnonymizerKeys
  readonly logger: Logger
  readonly workerConnection: RedisConnection
  readonly prefix: string
}): () => Promise<void> {
  const worker = new Worker<CohortErasureJobData, CohortErasureResult>(
    COHORT_ERASURE_QUEUE,
    async (job) => {
      const parsed = cohortErasureJobSchema.safeParse(job.data)
      if (!parsed.success) throw new UnrecoverableError(`invalid erasure job: ${parsed.error.issues.map((i) => i.message).join('; ')}`)
      const result = await eraseCohortContributions(deps.store, deps.keys, parsed.data.userId)
      // The person is not named in the log: the job id is the producer's, and should not name them either.
      deps.logger.info(
        { queue: COHORT_ERASURE_QUEUE, jobId: job.id, cells: result.cells, privacyState: result.privacyState },
        'contributions erased from open cohort cells',
      )
      return result
    },
    { connection: deps.workerConnection, prefix: deps.prefix, concurrency: 1 },
  )
  worker.on('error', (err) => deps.logger.error({ err, queue: COHORT_ERASURE_QUEUE }, 'worker error'))
  worker.on('failed', (job, err) => deps.logger.error({ err, queue: COHORT_ERASURE_QUEUE, jobId: job?.id }, 'erasing cohort contributions failed'))
  return () => worker.close()
}
