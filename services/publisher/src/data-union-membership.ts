import { UnrecoverableError, Worker, type Job } from 'bullmq'
import type { RedisConnection } from '@fitstream/shared'
import {
  MEMBERSHIP_QUEUE,
  errorCode,
  isPermanent,
  parseMembershipJob,
  type Logger,
  type MembershipJob,
  type MembershipQueues,
  type MembershipResult,
} from '@fitstream/shared'
import type { DataUnionChain, MembershipChange } from './data-union.js'

/**
 * The latest membership request per member address, so that a join retried after a later part (or
 * the other way round) does not undo it: each job applies only the addresses it is the latest
 * request for. Holds addresses and times only, never who they belong to.
 */
export class MembershipIntents {
  constructor(
    private readonly redis: RedisConnection,
    private readonly key: string,
  ) {}

  /** Records `action` at `requestedAt` for each address unless a later request is recorded; returns the addresses it is now the latest for. */
  async claim(action: MembershipJob['action'], members: readonly string[], requestedAt: number): Promise<{ current: string[]; superseded: string[] }> {
    const current: string[] = []
    const superseded: string[] = []
    for (const member of members) {
      const field = member.toLowerCase()
      // Atomic compare-and-set: two workers of the stage may hold requests for the same address.
      const latest = (await this.redis.eval(CLAIM, 1, this.key, field, String(requestedAt), action)) as number
      ;(latest === 1 ? current : superseded).push(member)
    }
    return { current, superseded }
  }
}

const CLAIM = `
local stored = redis.call('HGET', KEYS[1], ARGV[1])
if stored then
  local at, action = string.match(stored, '^(%d+):(%a+)$')
  if tonumber(at) > tonumber(ARGV[2]) then return 0 end
  if tonumber(at) == tonumber(ARGV[2]) and action ~= ARGV[3] then return 0 end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. ':' .. ARGV[3])
return 1`

/** Applies one membership job: the domain step, free of BullMQ. */
export async function applyMembershipJob(
  job: MembershipJob,
  requestedAt: number,
  deps: { chain: DataUnionChain; dataUnion: string; intents: MembershipIntents },
): Promise<MembershipResult> {
  const { current, superseded } = await deps.intents.claim(job.action, job.members, requestedAt)
  const change: MembershipChange = current.length === 0 ? { changed: [], unchanged: [] } : await deps.chain.applyMembership(deps.dataUnion, job.action, current)
  return {
    joined: job.action === 'join' ? change.changed : [],
    parted: job.action === 'part' ? change.changed : [],
    unchanged: change.unchanged,
    superseded,
    ...(change.transactionHash === undefined ? {} : { transactionHash: change.transactionHash }),
  }
}

export interface MembershipWorkerOptions {
  readonly chain: DataUnionChain
  /** The product's Data Union (DATA_UNION_ADDRESS). */
  readonly dataUnion: string
  /** A dedicated worker connection (`maxRetriesPerRequest: null`). */
  readonly connection: RedisConnection
  /** For the intents (a producer connection). */
  readonly redis: RedisConnection
  readonly queues: MembershipQueues
  readonly prefix: string
  readonly logger: Logger
}

/**
 * The membership stage's worker. One job at a time, so the operator's transactions go out in order
 * with no nonce races; a chain that is down or slow fails the job as retryable (BullMQ backs off and
 * tries again), and a job that can never pass, or runs out of attempts, goes to `membership-dlq`.
 */
export function createMembershipWorker(options: MembershipWorkerOptions): Worker<MembershipJob, MembershipResult> {
  const { logger, queues } = options
  const intents = new MembershipIntents(options.redis, `${options.prefix}:publisher:du-intents`)
  const processor = async (job: Job<MembershipJob, MembershipResult>): Promise<MembershipResult> => {
    const jobId = job.id ?? 'unknown'
    const log = logger.child({ queue: MEMBERSHIP_QUEUE, jobId })
    const attempt = job.attemptsMade + 1
    const maxAttempts = job.opts.attempts ?? 1
    try {
      const data = parseMembershipJob(job.data)
      const result = await applyMembershipJob(data, data.requestedAt ?? job.timestamp, { chain: options.chain, dataUnion: options.dataUnion, intents })
      log.info(
        {
          joined: result.joined.length,
          parted: result.parted.length,
          unchanged: result.unchanged.length,
          superseded: result.superseded.length,
          tx: result.transactionHash,
        },
        'membership applied',
      )
      return result
    } catch (error) {
      const code = errorCode(error)
      const message = error instanceof Error ? error.message : String(error)
      const permanent = isPermanent(error)
      if (!permanent && attempt < maxAttempts) {
        log.warn({ code, attempt, maxAttempts }, `membership attempt failed, will retry: ${message}`)
        throw error
      }
      await queues.deadLetter({
        job: job.data,
        jobId: `${jobId.replaceAll(':', '_')}-${job.timestamp}-${attempt}`,
        error: { code, message },
        attemptsMade: attempt,
      })
      log.error({ code, attempt, maxAttempts, permanent }, `membership job dead-lettered: ${message}`)
      throw new UnrecoverableError(message)
    }
  }
  const worker = new Worker<MembershipJob, MembershipResult>(MEMBERSHIP_QUEUE, processor, {
    connection: options.connection,
    prefix: options.queues.queuePrefix,
    concurrency: 1,
    // A transaction waits for its receipt within the chain timeout; the lock outlasts it.
    lockDuration: 120_000,
    autorun: false,
  })
  worker.on('error', (err) => logger.error({ err, queue: MEMBERSHIP_QUEUE }, 'worker error'))
  // A job whose worker died too often mid-job is failed by BullMQ itself, outside the processor: it
  // still belongs in the dead-letter queue (its addresses are then re-requested, never lost unseen).
  worker.on('failed', (job, error) => {
    if (job === undefined || !/stalled/i.test(error.message)) return
    const jobId = `${(job.id ?? 'unknown').replaceAll(':', '_')}-${job.timestamp}-stalled`
    queues
      .deadLetter({ job: job.data, jobId, error: { code: 'FST_ERR_STALLED', message: error.message }, attemptsMade: job.attemptsMade })
      .then(() => logger.error({ queue: MEMBERSHIP_QUEUE, jobId: job.id }, `membership job dead-lettered: ${error.message}`))
      .catch((err: unknown) => logger.error({ err, queue: MEMBERSHIP_QUEUE, jobId: job.id }, 'could not dead-letter a stalled membership job'))
  })
  return worker
}
