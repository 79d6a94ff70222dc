import type { Counter, Gauge } from 'prom-client'
import { metricBuilder, type ServiceMetrics } from '@fitstream/shared'

/** What the anonymizer reports beyond the job metrics every stage has: nothing held back goes unsaid. */
export interface AnonymizerMetrics {
  readonly recordsReleased: Counter<'type'>
  readonly samplesDropped: Counter<'type' | 'reason'>
  readonly withheldForBudget: Counter<'type' | 'kind'>
  readonly cohortContributions: Counter<'type' | 'outcome'>
  readonly cohortCells: Counter<'type' | 'outcome'>
  readonly cohortOpenCells: Gauge
}

export function createAnonymizerMetrics(metrics: ServiceMetrics): AnonymizerMetrics {
  const { counter, gauge } = metricBuilder(metrics.registry)
  return {
    recordsReleased: counter('fitstream_privacy_records_released_total', 'Individual records handed to the publisher, by type', ['type']),
    samplesDropped: counter(
      'fitstream_privacy_samples_dropped_total',
      'Samples the policy keeps back (policy: type dropped; privacy_zone; incomplete; coarser_than_grid: longer than one unit of the records’ grid; not_opted_in), by type and reason',
      ['type', 'reason'],
    ),
    withheldForBudget: counter(
      'fitstream_privacy_withheld_total',
      "Records or cohort contributions withheld because the person's epsilon budget for the period was spent (each once, not per retry)",
      ['type', 'kind'],
    ),
    cohortContributions: counter(
      'fitstream_cohort_contributions_total',
      'Contributions to cohort cells (joined, updated, late: window already closed, withheld: budget spent, withheld_again: a retry of one withheld)',
      ['type', 'outcome'],
    ),
    cohortCells: counter(
      'fitstream_cohort_cells_total',
      'Closed cohort cells (per band): released, suppressed_under_k, suppressed_noisy_count_under_threshold',
      ['type', 'outcome'],
    ),
    cohortOpenCells: gauge('fitstream_cohort_open_cells', 'Cohort cells waiting for their window and grace period to end'),
  }
}
