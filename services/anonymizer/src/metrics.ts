import { Counter, Gauge } from 'prom-client'
import type { ServiceMetrics } from '@fitstream/shared'

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
  const registers = [metrics.registry]
  return {
    recordsReleased: new Counter({
      name: 'fitstream_privacy_records_released_total',
      help: 'Individual records handed to the publisher, by type',
      labelNames: ['type'],
      registers,
    }),
    samplesDropped: new Counter({
      name: 'fitstream_privacy_samples_dropped_total',
      help: 'Samples the policy keeps back (policy: type dropped; privacy_zone; incomplete; coarser_than_grid: longer than one unit of the records’ grid; not_opted_in), by type and reason',
      labelNames: ['type', 'reason'],
      registers,
    }),
    withheldForBudget: new Counter({
      name: 'fitstream_privacy_withheld_total',
      help: "Records or cohort contributions withheld because the person's epsilon budget for the period was spent (each once, not per retry)",
      labelNames: ['type', 'kind'],
      registers,
    }),
    cohortContributions: new Counter({
      name: 'fitstream_cohort_contributions_total',
      help: 'Contributions to cohort cells (joined, updated, late: window already closed, withheld: budget spent, withheld_again: a retry of one withheld)',
      labelNames: ['type', 'outcome'],
      registers,
    }),
    cohortCells: new Counter({
      name: 'fitstream_cohort_cells_total',
      help: 'Closed cohort cells (per band): released, suppressed_under_k, suppressed_noisy_count_under_threshold',
      labelNames: ['type', 'outcome'],
      registers,
    }),
    cohortOpenCells: new Gauge({ name: 'fitstream_cohort_open_cells', help: 'Cohort cells waiting for their window and grace period to end', registers }),
  }
}
