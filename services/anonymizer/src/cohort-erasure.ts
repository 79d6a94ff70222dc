import { UnrecoverableError, Worker } from 'bullmq'
import type { Redis } from 'ioredis'
import { COHORT_ERASURE_QUEUE, cohortErasureJobSchema, type CohortErasureJobData, type Logger } from '@fitstream/shared'
import { memberToken, type AnonymizerKeys } from './anonymize.js'
import type { PrivacyStore } from './privacy-store.js'

export interface CohortErasureResult {
  /** Cohort cells not yet released that held a contribution of the person's and no longer do. */
  readonly cells: number
}

/** Removes one person's contributions from every cohort cell not yet released. */
export async function eraseCohortContributions(store: PrivacyStore, keys: AnonymizerKeys, userId: string): Promise<CohortErasureResult> {
  return { cells: await store.eraseContributions((cell) => memberToken(keys, cell, userId)) }
}

/**
 * The worker on the anonymizer's erasure queue (`COHORT_ERASURE_QUEUE`): the token service's erasure
 * asks here, since only the anonymizer can find a person's member tokens. Returns its close function.
 */
export function startCohortErasure(deps: {
  readonly store: PrivacyStore
  readonly keys: AnonymizerKeys
  readonly logger: Logger
  readonly workerConnection: Redis
  readonly prefix: string
}): () => Promise<void> {
  const worker = new Worker<CohortErasureJobData, CohortErasureResult>(
    COHORT_ERASURE_QUEUE,
    async (job) => {
      const parsed = cohortErasureJobSchema.safeParse(job.data)
      if (!parsed.success) throw new UnrecoverableError(`invalid erasure job: ${parsed.error.issues.map((i) => i.message).join('; ')}`)
      const result = await eraseCohortContributions(deps.store, deps.keys, parsed.data.userId)
      // The person is not named in the log: the job id is the producer's, and should not name them either.
      deps.logger.info({ queue: COHORT_ERASURE_QUEUE, jobId: job.id, cells: result.cells }, 'contributions erased from open cohort cells')
      return result
    },
    { connection: deps.workerConnection, prefix: deps.prefix, concurrency: 1 },
  )
  worker.on('error', (err) => deps.logger.error({ err, queue: COHORT_ERASURE_QUEUE }, 'worker error'))
  worker.on('failed', (job, err) => deps.logger.error({ err, queue: COHORT_ERASURE_QUEUE, jobId: job?.id }, 'erasing cohort contributions failed'))
  return () => worker.close()
}
