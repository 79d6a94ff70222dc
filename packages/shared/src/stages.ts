import type { z } from 'zod'
import type { JobsOptions } from 'bullmq'
import { anonymizeJobSchema, fetchJobSchema, publishJobSchema, syncJobSchema } from './jobs.js'

/**
 * The pipeline's stages, in order. Each has one queue, one dead-letter queue (`<stage>-dlq`) and one
 * payload schema. The stage name is the BullMQ queue name; QUEUE_PREFIX namespaces them in Redis.
 */
export const STAGES = {
  sync: {
    schema: syncJobSchema,
    description: 'Per-user sync: the token service makes sure an access token is valid and plans the fetch window',
    holdsPersonalData: false,
  },
  fetch: {
    schema: fetchJobSchema,
    description: 'Fetch a window of fitness data from Google for one user',
    holdsPersonalData: false,
  },
  anonymize: {
    schema: anonymizeJobSchema,
    description: 'Raw samples of one user, to be released under the privacy policy',
    holdsPersonalData: true,
  },
  publish: {
    schema: publishJobSchema,
    description: 'Releasable records (pseudonymised records and cohort rows), to be published to Streamr',
    // Pseudonymous records are still personal data: nothing is kept once they are published.
    holdsPersonalData: true,
  },
} as const

export type Stage = keyof typeof STAGES
export const STAGE_NAMES = Object.keys(STAGES) as Stage[]
export type StageData<S extends Stage> = z.output<(typeof STAGES)[S]['schema']>
export type StageInput<S extends Stage> = z.input<(typeof STAGES)[S]['schema']>

export function deadLetterQueueName(stage: Stage): `${Stage}-dlq` {
  return `${stage}-dlq`
}

export interface RetryPolicy {
  /** Attempts before a job is dead-lettered (default 5). */
  readonly attempts: number
  /** First backoff delay in ms; doubles each attempt, with jitter (default 1000). */
  readonly backoffMs: number
}

/**
 * Job options for adding to a stage. Jobs that name a person or hold their data vanish from Redis as
 * soon as they complete or fail (the dead-letter queue is where failures are kept).
 */
export function stageJobOptions(stage: Stage, retry: RetryPolicy): JobsOptions {
  return {
    attempts: retry.attempts,
    backoff: { type: 'exponential', delay: retry.backoffMs, jitter: 0.5 },
    // Failures are kept in the dead-letter queue. A job whose payload names a person (a user id) or
    // holds their data goes as soon as it is done: one that finishes after the person's erasure must
    // not stay behind. A stage of neither kind keeps a short tail of finished jobs for Bull Board.
    removeOnComplete: namesPerson(stage) ? true : { age: 3600, count: 100 },
    removeOnFail: namesPerson(stage) ? true : { age: 3600, count: 100 },
  }
}

function namesPerson(stage: Stage): boolean {
  return STAGES[stage].holdsPersonalData || 'userId' in STAGES[stage].schema.shape
}

/** Dead letters stay until an operator replays or purges them. */
export const DEAD_LETTER_JOB_OPTIONS: JobsOptions = {
  attempts: 1,
  removeOnComplete: false,
  removeOnFail: false,
}
