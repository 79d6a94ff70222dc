import { createHash } from 'node:crypto'
import { UserGoneError, type DataTypeKey, type JobContext, type PrivacyLogEntry, type StageData, type StageQueues } from '@fitstream/shared'
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

interface Span {
  type: DataTypeKey
  startMs: number
  endMs: number
  count: number
  epsilon: number
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
    const release = await store.release(data.userId, plan.records, plan.contributions, now, erasedToken(keys, data.userId))
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

    const released = new Map<DataTypeKey, Span>()
    const joined = new Map<DataTypeKey, Span>()
    const held = new Map<DataTypeKey, Span>()
    const lateTypes = new Map<DataTypeKey, number>()
    const countedTypes = new Map<DataTypeKey, number>()
    for (const { record, epsilon } of granted) {
      widen(released, record.type, Date.parse(record.start), Date.parse(record.end), epsilon)
      metrics.recordsReleased.inc({ type: record.type })
    }
    for (const { record } of withheld) {
      widen(held, record.type, Date.parse(record.start), Date.parse(record.end), 0)
      metrics.withheldForBudget.inc({ type: record.type, kind: 'individual' })
    }
    plan.contributions.forEach((contribution, i) => {
      const outcome = outcomes[i]!
      metrics.cohortContributions.inc({ type: contribution.type, outcome })
      if (outcome === 'joined') widen(joined, contribution.type, contribution.startMs, contribution.endMs, contribution.epsilon)
      if (outcome === 'withheld') {
        widen(held, contribution.type, contribution.startMs, contribution.endMs, 0)
        metrics.withheldForBudget.inc({ type: contribution.type, kind: 'cohort' })
      }
      if (outcome === 'late') lateTypes.set(contribution.type, (lateTypes.get(contribution.type) ?? 0) + 1)
      if (outcome === 'counted') countedTypes.set(contribution.type, (countedTypes.get(contribution.type) ?? 0) + 1)
    })

    const at = new Date(now).toISOString()
    const entry = (kind: PrivacyLogEntry['kind'], span: Span): PrivacyLogEntry => ({
      at,
      kind,
      type: span.type,
      start: new Date(span.startMs).toISOString(),
      end: new Date(span.endMs).toISOString(),
      count: span.count,
      epsilon: Math.round(span.epsilon * 1e6) / 1e6,
    })
    const late = [...lateTypes.values()].reduce((a, b) => a + b, 0)
    await store.logReleases(
      data.userId,
      [
        ...[...released.values()].map((s) => entry('records', s)),
        ...[...joined.values()].map((s) => entry('cohort', s)),
        ...[...held.values()].map((s) => entry('withheld', s)),
      ],
      { recordsReleased: records.length, lateContributions: late },
      now,
    )

    if (held.size > 0) {
      context.logger.warn(
        { syncId: data.syncId, withheld: Object.fromEntries([...held].map(([type, span]) => [type, span.count])) },
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

function widen(spans: Map<DataTypeKey, Span>, type: DataTypeKey, startMs: number, endMs: number, epsilon: number): void {
  const span = spans.get(type)
  if (span === undefined) {
    spans.set(type, { type, startMs, endMs, count: 1, epsilon })
    return
  }
  span.startMs = Math.min(span.startMs, startMs)
  span.endMs = Math.max(span.endMs, endMs)
  span.count++
  span.epsilon += epsilon
}
