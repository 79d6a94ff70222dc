import { createHash, createHmac } from 'node:crypto'
import { Queue, type Job, type JobsOptions } from 'bullmq'
import { z } from 'zod'
import { InvalidPayloadError } from './errors.js'
import { queuePrefix } from './key-slots.js'
import type { Logger } from './logger.js'
import type { RedisConnection } from './redis.js'
import {
  DEAD_LETTER_JOB_OPTIONS,
  STAGES,
  deadLetterQueueName,
  stageJobOptions,
  type RetryPolicy,
  type Stage,
  type StageData,
  type StageInput,
} from './stages.js'
import type { DeadLetter } from './jobs.js'

export interface StageQueuesOptions {
  /** A producer connection (fail-fast); shared by all queues of this process. */
  readonly connection: RedisConnection
  /** QUEUE_PREFIX: namespaces every queue in Redis. */
  readonly prefix: string
  /** On a Redis Cluster each queue's prefix carries the queue as a hash tag (default false). */
  readonly cluster?: boolean
  readonly retry: Readonly<Record<Stage, RetryPolicy>>
  readonly logger: Logger
  /**
   * The secret job ids are keyed with where they would name a person (see userlessJobId); every
   * producer of a stage must use the same one, so that its ids still de-duplicate. Default: none
   * (the ids are then plain SHA-256 hashes, which only hide the person from whoever does not know them).
   */
  readonly jobIdKey?: string
}

export interface AddOptions {
  /**
   * Idempotency key: adding a job whose id already exists is a no-op. Must not contain ':'. An id that
   * contains the payload's `userId` is stored as a keyed hash of itself (see userlessJobId).
   */
  readonly jobId?: string
  readonly delay?: number
  /** 1 is the highest; jobs without a priority go before any job with one. */
  readonly priority?: number
  /** Shown in Bull Board (default: the stage name). */
  readonly name?: string
}

/**
 * The producer side of every stage: validated adds, and the dead-letter queues. Queues are opened
 * on first use, so a service only holds the ones it touches.
 */
export class StageQueues {
  private readonly queues = new Map<string, Queue>()

  constructor(private readonly options: StageQueuesOptions) {}

  get prefix(): string {
    return this.options.prefix
  }

  /** The BullMQ prefix of one queue (a worker of it must use the same). */
  queuePrefix(queue: string): string {
    return queuePrefix(this.options.prefix, queue, this.options.cluster ?? false)
  }

  /** The options a job of this stage is added with (retry policy, retention). */
  jobOptions(stage: Stage): JobsOptions {
    return stageJobOptions(stage, this.options.retry[stage])
  }

  /** The BullMQ queue of a stage, typed by its payload. */
  queue<S extends Stage>(stage: S): Queue<StageData<S>> {
    return this.open(stage) as Queue<StageData<S>>
  }

  deadLetterQueue(stage: Stage): Queue<DeadLetter> {
    return this.open(deadLetterQueueName(stage)) as Queue<DeadLetter>
  }

  /** Validates `data` against the stage's schema, then adds it with the stage's retry policy. */
  async add<S extends Stage>(stage: S, data: StageInput<S>, options: AddOptions = {}): Promise<Job<StageData<S>>> {
    const parsed = parsePayload(stage, data)
    const { name, ...rest } = options
    const opts = { ...stageJobOptions(stage, this.options.retry[stage]), ...definedOnly(this.withUserlessId(parsed, rest)) }
    return (this.queue(stage) as Queue).add(name ?? stage, parsed, opts) as Promise<Job<StageData<S>>>
  }

  /** Adds many jobs in one round trip (each validated). */
  async addBulk<S extends Stage>(stage: S, items: readonly { data: StageInput<S>; options?: AddOptions }[]): Promise<void> {
    if (items.length === 0) return
    const base = stageJobOptions(stage, this.options.retry[stage])
    await (this.queue(stage) as Queue).addBulk(
      items.map(({ data, options: { name, ...rest } = {} }) => ({
        name: name ?? stage,
        data: parsePayload(stage, data),
        opts: { ...base, ...definedOnly(this.withUserlessId(data, rest)) },
      })),
    )
  }

  async addDeadLetter(stage: Stage, entry: DeadLetter, jobId: string): Promise<void> {
    await this.deadLetterQueue(stage).add('dead-letter', entry, { ...DEAD_LETTER_JOB_OPTIONS, jobId })
  }

  /** A queue outside the stages, such as the anonymiser's erasure queue, opened on this connection and prefix. */
  queueNamed<Data = unknown>(name: string): Queue<Data> {
    return this.open(name) as Queue<Data>
  }

  /** Every queue this process has opened (Bull Board, metrics). */
  opened(): Queue[] {
    return [...this.queues.values()]
  }

  async close(): Promise<void> {
    await Promise.all([...this.queues.values()].map((q) => q.close()))
    this.queues.clear()
  }

  private withUserlessId(data: unknown, options: AddOptions): AddOptions {
    const userId = (data as { userId?: unknown } | undefined)?.userId
    if (options.jobId === undefined || typeof userId !== 'string') return options
    return { ...options, jobId: userlessJobId(options.jobId, userId, this.options.jobIdKey) }
  }

  private open(name: string): Queue {
    let queue = this.queues.get(name)
    if (queue === undefined) {
      queue = new Queue(name, { connection: this.options.connection, prefix: this.queuePrefix(name), streams: QUEUE_EVENT_STREAM })
      queue.on('error', (err) => this.options.logger.error({ err, queue: name }, 'queue error'))
      this.queues.set(name, queue)
    }
    return queue
  }
}

/**
 * Each queue's event stream keeps its last 1,000 events, not BullMQ's 10,000: nothing in FitStream
 * replays old events, and at 10,000 the four stages' streams hold some 5 MB of Redis whatever the
 * number of users.
 */
export const QUEUE_EVENT_STREAM = { events: { maxLen: 1000 } }

/**
 * A job id that does not name the person its job is about. Job ids outlive their jobs in BullMQ's
 * event streams, so `fetch-<userId>-<window>` would keep naming someone after their erasure. An id
 * containing `userId` becomes what precedes it (`fetch-`, `schedule-`) and a keyed hash of the whole
 * id: the same id always gives the same hash (retries and overlapping syncs still de-duplicate),
 * its length is bounded, and it can't be traced back to the person without the key. Other ids are
 * kept as they are.
 */
export function userlessJobId(jobId: string, userId: string, key: string | undefined): string {
  const at = jobId.indexOf(userId)
  if (at < 0 || userId === '') return jobId
  const hash = (key === undefined ? createHash('sha256') : createHmac('sha256', key)).update(jobId).digest('base64url').slice(0, 32)
  return `${jobId.slice(0, Math.min(at, 32))}${hash}`
}

const MAX_ISSUES_SHOWN = 10

export function parsePayload<S extends Stage>(stage: S, data: unknown): StageData<S> {
  const result = STAGES[stage].schema.safeParse(data)
  if (!result.success) {
    // The first problems are enough to act on; a payload of thousands of bad samples must not make a megabyte-long reason.
    const { issues } = result.error
    const shown = z.prettifyError(new z.ZodError(issues.slice(0, MAX_ISSUES_SHOWN))).replace(/\n/g, '; ')
    const more = issues.length > MAX_ISSUES_SHOWN ? `; and ${issues.length - MAX_ISSUES_SHOWN} more problems` : ''
    throw new InvalidPayloadError(`invalid ${stage} job payload: ${shown}${more}`)
  }
  return result.data as StageData<S>
}

function definedOnly(options: AddOptions): AddOptions {
  return Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined))
}
