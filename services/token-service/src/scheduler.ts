import { createHash } from 'node:crypto'
import { parsePayload, type StageQueues } from '@fitstream/shared'

/**
 * Per-user sync schedules, kept by BullMQ job schedulers in Redis: no timer per user in any process,
 * however many users there are. Each user gets a fixed offset within the period, derived from their
 * id, so syncs are spread evenly instead of all firing on the hour.
 */
export class SyncScheduler {
  constructor(
    private readonly queues: StageQueues,
    private readonly intervalMs: number,
  ) {}

  async schedule(userId: string): Promise<void> {
    await this.queues
      .queue('sync')
      .upsertJobScheduler(
        schedulerId(userId),
        { every: this.intervalMs, offset: spreadOffset(userId, this.intervalMs) },
        { name: 'sync', data: parsePayload('sync', { userId, reason: 'schedule' }), opts: this.queues.jobOptions('sync') },
      )
  }

  async unschedule(userId: string): Promise<boolean> {
    return this.queues.queue('sync').removeJobScheduler(schedulerId(userId))
  }

  async nextRunAt(userId: string): Promise<number | undefined> {
    const scheduler = await this.queues.queue('sync').getJobScheduler(schedulerId(userId))
    return scheduler?.next
  }

  /** Runs a sync now, in addition to the schedule. */
  async syncNow(userId: string, reason: 'manual' | 'onboarding'): Promise<string> {
    const job = await this.queues.add('sync', { userId, reason }, { jobId: `${reason}-${userId}-${Date.now()}` })
    return job.id ?? ''
  }
}

function schedulerId(userId: string): string {
  return `user-${userId}`
}

/** A stable offset in [0, intervalMs) from the user id. */
export function spreadOffset(userId: string, intervalMs: number): number {
  return createHash('sha256').update(userId).digest().readUInt32BE(0) % intervalMs
}
