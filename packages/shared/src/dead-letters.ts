import type { Job } from 'bullmq'
import { STAGES, STAGE_NAMES, type Stage } from './stages.js'
import type { StageQueues } from './stage-queues.js'
import type { DeadLetter } from './jobs.js'

export interface DeadLetterFilter {
  readonly stage?: Stage
  /** Error code, e.g. FST_ERR_GOOGLE_REJECTED. */
  readonly code?: string
  /** Failed at or after / before (ms since epoch). */
  readonly since?: number
  readonly until?: number
}

export interface DeadLetterEntry {
  /** The dead letter's own id (in `<stage>-dlq`). */
  readonly id: string
  readonly letter: DeadLetter
}

export interface StageSummary {
  readonly stage: Stage
  readonly count: number
  /** Count per error code, most frequent first. */
  readonly codes: readonly { code: string; count: number }[]
  readonly oldest: string | null
  readonly newest: string | null
}

export interface ReplayResult {
  readonly id: string
  readonly stage: Stage
  /** The id of the job put back on the stage (the same for a second replay of the same letter). */
  readonly jobId: string
  readonly replayed: boolean
}

const PAGE = 500

/**
 * Dead letters as an operator works with them: what failed and why, per stage; one letter with its
 * raw data hidden; replay back to the stage it failed in (keeping its history, never twice); purge.
 */
export class DeadLetters {
  constructor(private readonly queues: StageQueues) {}

  async summary(): Promise<StageSummary[]> {
    return Promise.all(
      STAGE_NAMES.map(async (stage) => {
        const entries = await this.list({ stage })
        const codes = new Map<string, number>()
        for (const { letter } of entries) codes.set(letter.error.code, (codes.get(letter.error.code) ?? 0) + 1)
        const times = entries.map((e) => e.letter.failedAt).sort()
        return {
          stage,
          count: entries.length,
          codes: [...codes].map(([code, count]) => ({ code, count })).sort((a, b) => b.count - a.count),
          oldest: times[0] ?? null,
          newest: times.at(-1) ?? null,
        }
      }),
    )
  }

  async list(filter: DeadLetterFilter = {}): Promise<DeadLetterEntry[]> {
    const stages = filter.stage === undefined ? STAGE_NAMES : [filter.stage]
    const entries: DeadLetterEntry[] = []
    for (const stage of stages) {
      const queue = this.queues.deadLetterQueue(stage)
      for (let start = 0; ; start += PAGE) {
        const jobs = (await queue.getJobs(['waiting'], start, start + PAGE - 1, true)) as Job<DeadLetter>[]
        for (const job of jobs) {
          if (job.id !== undefined && matches(job.data, filter)) entries.push({ id: job.id, letter: job.data })
        }
        if (jobs.length < PAGE) break
      }
    }
    return entries
  }

  async get(stage: Stage, id: string): Promise<DeadLetterEntry | undefined> {
    const job = (await this.queues.deadLetterQueue(stage).getJob(id)) as Job<DeadLetter> | undefined
    return job?.id === undefined ? undefined : { id: job.id, letter: job.data }
  }

  /**
   * Puts a letter's original payload back on its stage as a fresh job with the stage's retry policy.
   * The job id is derived from the letter, so replaying it twice never makes two jobs; the job's log
   * records the failure it came back from. The letter is then removed from the dead-letter queue.
   */
  async replay(stage: Stage, id: string): Promise<ReplayResult | undefined> {
    const entry = await this.get(stage, id)
    if (entry === undefined) return undefined
    const jobId = `replay-${id.replaceAll(':', '_')}`
    const queue = this.queues.queue(stage)
    const existing = await queue.getJob(jobId)
    if (existing === undefined) {
      const job = await queue.add(`replay of ${entry.letter.jobName}`, entry.letter.payload as never, { ...this.queues.jobOptions(stage), jobId })
      await job.log(
        `replayed from ${stage}-dlq entry ${id}: originally job ${entry.letter.jobId} created ${entry.letter.createdAt}, ` +
          `failed ${entry.letter.failedAt} after ${entry.letter.attemptsMade}/${entry.letter.maxAttempts} attempts: ` +
          `${entry.letter.error.code}: ${entry.letter.error.message}`,
      )
    }
    await this.queues.deadLetterQueue(stage).remove(id)
    return { id, stage, jobId, replayed: existing === undefined }
  }

  async replayMatching(filter: DeadLetterFilter): Promise<ReplayResult[]> {
    const results: ReplayResult[] = []
    for (const entry of await this.list(filter)) {
      const result = await this.replay(entry.letter.stage as Stage, entry.id)
      if (result !== undefined) results.push(result)
    }
    return results
  }

  /** Deletes the matching letters for good; returns how many. */
  async purge(filter: DeadLetterFilter): Promise<number> {
    let removed = 0
    for (const entry of await this.list(filter)) {
      await this.queues.deadLetterQueue(entry.letter.stage as Stage).remove(entry.id)
      removed++
    }
    return removed
  }
}

function matches(letter: DeadLetter, filter: DeadLetterFilter): boolean {
  const failedAt = Date.parse(letter.failedAt)
  return (
    (filter.code === undefined || letter.error.code === filter.code) &&
    (filter.since === undefined || failedAt >= filter.since) &&
    (filter.until === undefined || failedAt < filter.until)
  )
}

/**
 * A letter fit to show an operator: raw fitness data (and anything that could be a secret) is
 * replaced by a description of it. Replay still uses the stored original.
 */
export function redactDeadLetter(letter: DeadLetter): DeadLetter {
  return { ...letter, payload: redactPayload(letter.stage, letter.payload) }
}

const SECRET_KEY = /token|secret|password|authorization|privatekey|cookie/i

export function redactPayload(stage: string, payload: unknown): unknown {
  if (payload === null || typeof payload !== 'object' || Array.isArray(payload)) return payload
  const raw = STAGES[stage as Stage]?.holdsPersonalData === true
  return Object.fromEntries(
    Object.entries(payload).map(([key, value]) => {
      if (SECRET_KEY.test(key)) return [key, '[redacted]']
      if (raw && key === 'samples') return [key, Array.isArray(value) ? `[${value.length} raw samples hidden]` : '[hidden]']
      return [key, value]
    }),
  )
}
