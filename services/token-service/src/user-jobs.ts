import { randomBytes } from 'node:crypto'
import type { Job, JobType, Queue } from 'bullmq'
import { COHORT_ERASURE_QUEUE, cohortErasureJobSchema, deadLetterQueueName, type CohortErasureJobData, type StageQueues } from '@fitstream/shared'

/** The stages whose payloads name a user; publish jobs carry only anonymised records. */
const USER_STAGES = ['sync', 'fetch', 'anonymize'] as const
const RECALLABLE_STATES: JobType[] = ['waiting', 'delayed', 'prioritized', 'waiting-children', 'failed', 'completed']
const PAGE = 500

export interface JobRecall {
  /** Jobs removed, per queue name. */
  readonly removed: Record<string, number>
  /** Jobs a worker holds right now, per queue name: they can't be removed safely. */
  readonly running: Record<string, number>
}

/**
 * Finds and removes every job that names a user, in the stage queues and their dead-letter queues
 * (which keep the original payload). Erasure is rare, so a scan of each queue is affordable.
 */
export class UserJobs {
  constructor(private readonly queues: StageQueues) {}

  /**
   * Asks the anonymiser, which alone can find a person's contributions, to remove them from every
   * cohort cell not yet released. The job's id is random and it leaves no trace once done or given up,
   * so nothing of it names the person afterwards. With `delayMs`, it runs that much later (after jobs
   * that were running at the erasure are done). Answers the job's id.
   */
  async requestCohortErasure(userId: string, delayMs = 0): Promise<string> {
    const jobId = `erase-${randomBytes(12).toString('base64url')}`
    const queue = this.queues.queueNamed<CohortErasureJobData>(COHORT_ERASURE_QUEUE)
    const { attempts, backoff } = this.queues.jobOptions('anonymize')
    await queue.add('erase', cohortErasureJobSchema.parse({ userId }), {
      jobId,
      removeOnComplete: true,
      removeOnFail: true,
      ...(delayMs > 0 ? { delay: delayMs } : {}),
      ...(attempts === undefined ? {} : { attempts }),
      ...(backoff === undefined ? {} : { backoff }),
    })
    return jobId
  }

  async recall(userId: string): Promise<JobRecall> {
    const removed: Record<string, number> = {}
    const running: Record<string, number> = {}
    for (const stage of USER_STAGES) {
      const targets: [string, Queue, (data: unknown) => unknown][] = [
        [stage, this.queues.queue(stage) as Queue, (data) => (data as { userId?: unknown } | undefined)?.userId],
        [
          deadLetterQueueName(stage),
          this.queues.deadLetterQueue(stage) as Queue,
          (data) => (data as { payload?: { userId?: unknown } } | undefined)?.payload?.userId,
        ],
      ]
      for (const [name, queue, ownerOf] of targets) {
        let count = 0
        for (const job of await jobsOf(queue, RECALLABLE_STATES, (data) => ownerOf(data) === userId)) {
          try {
            await job.remove()
            count++
          } catch {
            // Taken by a worker between the scan and the removal.
            running[name] = (running[name] ?? 0) + 1
          }
        }
        removed[name] = count
        const active = (await jobsOf(queue, ['active'], (data) => ownerOf(data) === userId)).length
        if (active > 0) running[name] = (running[name] ?? 0) + active
      }
    }
    return { removed, running }
  }
}

// Collects first and removes afterwards: removing while paging would shift the pages.
async function jobsOf(queue: Queue, states: JobType[], matches: (data: unknown) => boolean): Promise<Job[]> {
  const found = new Map<string, Job>()
  for (let start = 0; ; start += PAGE) {
    const page = await queue.getJobs(states, start, start + PAGE - 1, true)
    for (const job of page) if (job?.id !== undefined && matches(job.data)) found.set(job.id, job)
    if (page.length < PAGE) break
  }
  return [...found.values()]
}
