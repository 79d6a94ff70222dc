import { createHash } from 'node:crypto'
import { UserGoneError, type DataTypeKey, type JobContext, type StageData, type StageQueues } from '@fitstream/shared'
import { planRelease, type AnonymizerKeys } from './anonymize.js'
import { erasedToken } from './cohort-erasure.js'
import type { AnonymizerMetrics } from './metrics.js'
import type { PrivacyPolicy } from './policy.js'
import type { PrivacyStore } from './privacy-store.js'

export interface AnonymizeResult {
  readonly samples: number
  readonly records: number
  readonly cohortContributions: number
  readonly withheldForBudget: number
  readonly late: number
  readonly dropped: number
}

export interface AnonymizeDeps {
  readonly policy: PrivacyPolicy
  readonly keys: AnonymizerKeys
  readonly queues: StageQueues
  readonly store: PrivacyStore
  readonly metrics: AnonymizerMetrics
  /** The clock that decides whether a cohort window has closed (default Date.now). */
  readonly now?: () => number
}

/**
 * Applies the privacy policy to one user's samples: individual records that are allowed (and paid
 * for, where noisy) go to the publisher with no user id; cohort contributions go to their cells;
 * what the budget or a closed window holds back is logged, counted and written to the person's
 * privacy log, never dropped silently.
 */
export function createAnonymizeProcessor(deps: AnonymizeDeps) {
  const { policy, keys, queues, store, metrics } = deps
  return async (data: StageData<'anonymize'>, context: JobContext): Promise<AnonymizeResult> => {
    const now = (deps.now ?? Date.now)()
    const plan = planRelease(data.userId, data.samples, policy, keys, new Set(data.individualTypes ?? []), now)
    // Withheld before: a retry of a release already counted and logged as withheld; counted in this job's result only.
    const release = await store.release(data.userId, plan.records, plan.contributions, now, erasedToken(keys, data.userId), true)
    // Fetched just before their erasure: nothing of theirs goes into cells, the log or the publisher.
    if (release === undefined) throw new UserGoneError('the user has been erased')
    const { granted, withheld, withheldBefore, outcomes } = release
    for (const { type, reason, samples } of plan.dropped) metrics.samplesDropped.inc({ type, reason }, samples)

    const records = granted.map((candidate) => candidate.record)
    if (records.length > 0) {
      // Derived from the records and their revisions, not the user: the publish queue names nobody,
      // a retry adds nothing twice, and a revised record is a new job rather than a duplicate.
      const digest = createHash('sha256')
        .update(records.map((r) => `${r.id}@${r.revision}`).join(','))
        .digest('base64url')
        .slice(0, 24)
      await queues.add('publish', { syncId: data.syncId, records, cohorts: [] }, { jobId: `publish-${digest}` })
    }

    // The log and the totals were written with the release; these are for the metrics and the job's log.
    const held = new Map<DataTypeKey, number>()
    const lateTypes = new Map<DataTypeKey, number>()
    const countedTypes = new Map<DataTypeKey, number>()
    const count = (counts: Map<DataTypeKey, number>, type: DataTypeKey): void => void counts.set(type, (counts.get(type) ?? 0) + 1)
    for (const { record } of granted) metrics.recordsReleased.inc({ type: record.type })
    for (const { record } of withheld) {
      count(held, record.type)
      metrics.withheldForBudget.inc({ type: record.type, kind: 'individual' })
    }
    plan.contributions.forEach((contribution, i) => {
      const outcome = outcomes[i]!
      metrics.cohortContributions.inc({ type: contribution.type, outcome })
      if (outcome === 'withheld') {
        count(held, contribution.type)
        metrics.withheldForBudget.inc({ type: contribution.type, kind: 'cohort' })
      }
      if (outcome === 'late') count(lateTypes, contribution.type)
      if (outcome === 'counted') count(countedTypes, contribution.type)
    })

    const late = [...lateTypes.values()].reduce((a, b) => a + b, 0)
    // What is left of the person's ledger is the daily compaction of their finished periods.
    await store.compactIfDue(data.userId, release.compactedAt ?? now, now)

    if (held.size > 0) {
      context.logger.warn(
        { syncId: data.syncId, withheld: Object.fromEntries(held) },
        'releases withheld: the privacy budget for their period is spent; they resume with the next period',
      )
    }
    if (late > 0) {
      context.logger.info({ syncId: data.syncId, late: Object.fromEntries(lateTypes) }, 'late cohort contributions dropped: their window had already closed')
    }
    if (countedTypes.size > 0) {
      context.logger.info(
        { syncId: data.syncId, counted: Object.fromEntries(countedTypes) },
        'cohort contributions refused: the person is counted in another cell of the same type and window already',
      )
    }
    const dropped = plan.dropped.reduce((n, d) => n + d.samples, 0)
    const result: AnonymizeResult = {
      samples: data.samples.length,
      records: records.length,
      cohortContributions: outcomes.filter((o) => o === 'joined' || o === 'updated').length,
      withheldForBudget: withheld.length + withheldBefore.length + outcomes.filter((o) => o === 'withheld' || o === 'withheld_again').length,
      late,
      dropped,
    }
    context.logger.info({ syncId: data.syncId, ...result }, 'samples anonymised')
    return result
  }
}
