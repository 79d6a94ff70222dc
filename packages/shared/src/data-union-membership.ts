import { Queue, type JobsOptions } from 'bullmq'
import { z } from 'zod'
import { InvalidPayloadError } from './errors.js'
import { queuePrefix } from './key-slots.js'
import type { Logger } from './logger.js'
import type { RedisConnection } from './redis.js'
import { DEAD_LETTER_JOB_OPTIONS, type RetryPolicy } from './stages.js'

/**
 * The Data Union membership stage: people join the product's Data Union when their data is first
 * released for sale, and part when they withdraw consent or are erased. Its worker (in the
 * publisher, which holds the operator's key, the Data Union's join-part agent) sends one
 * `addMembers` or `partMembers` transaction per job. Like every stage it has a dead-letter queue;
 * it is kept apart from STAGES because its jobs carry member addresses, not fitness data, and never
 * reach the anonymised pipeline.
 */
export const MEMBERSHIP_QUEUE = 'membership'
export const MEMBERSHIP_DLQ = 'membership-dlq'
/** Attempts of a membership job when the producer has no setting of its own (with RETRY_BACKOFF_MS doubling: about a quarter of an hour). */
export const MEMBERSHIP_DEFAULT_ATTEMPTS = 10
/** Most addresses one transaction joins or parts (gas grows with each). */
export const MEMBERSHIP_BATCH_MAX = 100

const memberAddress = z.string().regex(/^0x[0-9a-fA-F]{40}$/, 'must be an Ethereum address')

export const membershipJobSchema = z.object({
  action: z.enum(['join', 'part']),
  members: z.array(memberAddress).min(1).max(MEMBERSHIP_BATCH_MAX),
  /**
   * When the request was decided (ms since epoch; default: when the job was added). The latest
   * request for an address wins, so a producer that decides before it adds (a batch read from a
   * pending set) passes the time it decided.
   */
  requestedAt: z.number().int().nonnegative().optional(),
})
export type MembershipJob = z.output<typeof membershipJobSchema>

export interface MembershipResult {
  readonly joined: string[]
  readonly parted: string[]
  /** Already as asked (a repeated request, or a retry after a transaction that went through). */
  readonly unchanged: string[]
  /** Asked for earlier than a later request for the same address, so left to that one. */
  readonly superseded: string[]
  readonly transactionHash?: string
}

export interface MembershipDeadLetter {
  readonly job: MembershipJob
  readonly jobId: string
  readonly error: { readonly code: string; readonly message: string }
  readonly attemptsMade: number
}

/** Job options of the membership stage: the producer's retry policy with exponential backoff and jitter. */
export function membershipJobOptions(retry: RetryPolicy): JobsOptions {
  return {
    attempts: retry.attempts,
    backoff: { type: 'exponential', delay: retry.backoffMs, jitter: 0.5 },
    removeOnComplete: { age: 3600, count: 100 },
    removeOnFail: { age: 3600, count: 100 },
  }
}

export function parseMembershipJob(data: unknown): MembershipJob {
  const parsed = membershipJobSchema.safeParse(data)
  if (!parsed.success) throw new InvalidPayloadError(`membership job: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`)
  return parsed.data
}

export interface MembershipQueuesOptions {
  /** A producer connection (fail-fast). */
  readonly connection: RedisConnection
  /** QUEUE_PREFIX. */
  readonly prefix: string
  /** On a Redis Cluster each queue's prefix carries the queue as a hash tag (default false). */
  readonly cluster?: boolean
  readonly retry: RetryPolicy
  readonly logger: Logger
}

/** The producer side of the membership stage and its dead-letter queue. */
export class MembershipQueues {
  readonly queue: Queue<MembershipJob, MembershipResult>
  readonly deadLetters: Queue<MembershipDeadLetter>
  /** The BullMQ prefix of the membership queue: its worker must use the same. */
  readonly queuePrefix: string

  constructor(private readonly options: MembershipQueuesOptions) {
    const cluster = options.cluster ?? false
    this.queuePrefix = queuePrefix(options.prefix, MEMBERSHIP_QUEUE, cluster)
    this.queue = new Queue<MembershipJob, MembershipResult>(MEMBERSHIP_QUEUE, {
      connection: options.connection,
      prefix: this.queuePrefix,
    })
    this.deadLetters = new Queue<MembershipDeadLetter>(MEMBERSHIP_DLQ, {
      connection: options.connection,
      prefix: queuePrefix(options.prefix, MEMBERSHIP_DLQ, cluster),
    })
    for (const queue of [this.queue, this.deadLetters]) queue.on('error', (error) => options.logger.error({ err: error, queue: queue.name }, 'queue error'))
  }

  /**
   * Asks for addresses to join or part, in batches of MEMBERSHIP_BATCH_MAX. `requestId` makes the
   * request idempotent (the same id adds nothing twice); it must not name a person.
   */
  async request(action: MembershipJob['action'], members: readonly string[], requestId: string, requestedAt?: number): Promise<string[]> {
    const ids: string[] = []
    for (let i = 0; i < members.length; i += MEMBERSHIP_BATCH_MAX) {
      const job = parseMembershipJob({ action, members: members.slice(i, i + MEMBERSHIP_BATCH_MAX), ...(requestedAt === undefined ? {} : { requestedAt }) })
      const jobId = `${requestId}-${i / MEMBERSHIP_BATCH_MAX}`
      await this.queue.add(action, job, { ...membershipJobOptions(this.options.retry), jobId })
      ids.push(jobId)
    }
    return ids
  }

  async deadLettered(): Promise<MembershipDeadLetter[]> {
    const jobs = await this.deadLetters.getJobs(['waiting', 'delayed', 'completed', 'failed'])
    return jobs.map((job) => job.data)
  }

  async deadLetter(entry: MembershipDeadLetter): Promise<void> {
    await this.deadLetters.add('dead-letter', entry, { ...DEAD_LETTER_JOB_OPTIONS, jobId: entry.jobId })
  }

  async close(): Promise<void> {
    await Promise.all([this.queue.close(), this.deadLetters.close()])
  }
}
