import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'

/** One Prometheus registry per service, with the job metrics every stage worker reports. */
export interface ServiceMetrics {
  readonly registry: Registry
  readonly jobsCompleted: Counter<'queue'>
  readonly jobsFailed: Counter<'queue' | 'code'>
  readonly jobsRetried: Counter<'queue'>
  readonly jobsDeadLettered: Counter<'queue' | 'code'>
  readonly jobsDeferred: Counter<'queue' | 'scope'>
  readonly jobDuration: Histogram<'queue' | 'outcome'>
  readonly queueDepth: Gauge<'queue' | 'state'>
  readonly oldestWaitingAge: Gauge<'queue'>
}

/** Metrics registered with one registry, each made in one line: the name, its help text and its labels. */
export interface MetricBuilder {
  counter<L extends string = string>(name: string, help: string, labelNames?: readonly L[]): Counter<L>
  gauge<L extends string = string>(name: string, help: string, labelNames?: readonly L[]): Gauge<L>
  histogram<L extends string = string>(name: string, help: string, buckets: number[], labelNames?: readonly L[]): Histogram<L>
}

export function metricBuilder(registry: Registry): MetricBuilder {
  const registers = [registry]
  return {
    counter: (name, help, labelNames = []) => new Counter({ name, help, labelNames, registers }),
    gauge: (name, help, labelNames = []) => new Gauge({ name, help, labelNames, registers }),
    histogram: (name, help, buckets, labelNames = []) => new Histogram({ name, help, labelNames, buckets, registers }),
  }
}

export function createMetrics(service: string): ServiceMetrics {
  const registry = new Registry()
  registry.setDefaultLabels({ service })
  collectDefaultMetrics({ register: registry, prefix: 'fitstream_' })
  const { counter, gauge, histogram } = metricBuilder(registry)
  return {
    registry,
    jobsCompleted: counter('fitstream_jobs_completed_total', 'Jobs completed, by queue', ['queue']),
    jobsFailed: counter('fitstream_jobs_failed_total', 'Job attempts that failed, by queue and error code', ['queue', 'code']),
    jobsRetried: counter('fitstream_jobs_retried_total', 'Failed attempts that will be retried, by queue', ['queue']),
    jobsDeadLettered: counter('fitstream_jobs_dead_lettered_total', 'Jobs moved to a dead-letter queue, by queue and error code', ['queue', 'code']),
    jobsDeferred: counter('fitstream_jobs_deferred_total', 'Jobs put back without using an attempt (rate limits), by queue and scope', ['queue', 'scope']),
    jobDuration: histogram(
      'fitstream_job_duration_seconds',
      'Time spent processing one job attempt',
      [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      ['queue', 'outcome'],
    ),
    queueDepth: gauge('fitstream_queue_jobs', 'Jobs in a queue, by state (sampled at scrape time)', ['queue', 'state']),
    oldestWaitingAge: gauge('fitstream_queue_oldest_waiting_seconds', 'Age of the oldest job waiting in a queue (0 when none waits), sampled at scrape time', [
      'queue',
    ]),
  }
}
