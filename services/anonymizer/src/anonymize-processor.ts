import { createHash } from 'node:crypto'
import type { JobContext, StageData, StageQueues } from '@fitstream/shared'
import { anonymizeSamples, type AnonymizationPolicy } from './anonymize.js'

export interface AnonymizeResult {
  readonly samples: number
  readonly records: number
}

/** Anonymises one user's samples and hands the records to the publisher; no user id goes with them. */
export function createAnonymizeProcessor(deps: { readonly policy: AnonymizationPolicy; readonly queues: StageQueues }) {
  return async (data: StageData<'anonymize'>, context: JobContext): Promise<AnonymizeResult> => {
    const records = anonymizeSamples(data.userId, data.samples, deps.policy)
    if (records.length > 0) {
      // The job id is derived from the records, not the user, so the publish queue holds nothing that names anyone.
      const digest = createHash('sha256')
        .update(records.map((r) => r.id).join(','))
        .digest('base64url')
        .slice(0, 24)
      await deps.queues.add('publish', { syncId: data.syncId, records }, { jobId: `publish-${digest}` })
    }
    context.logger.info({ syncId: data.syncId, samples: data.samples.length, records: records.length }, 'samples anonymised')
    return { samples: data.samples.length, records: records.length }
  }
}
