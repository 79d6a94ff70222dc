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

export function createMetrics(service: string): ServiceMetrics {
  const registry = new Registry()
  registry.setDefaultLabels({ service })
  collectDefaultMetrics({ register: registry, prefix: 'fitstream_' })
  const registers = [registry]
  return {
    registry,
    jobsCompleted: new Counter({ name: 'fitstream_jobs_completed_total', help: 'Jobs completed, by queue', labelNames: ['queue'], registers }),
    jobsFailed: new Counter({
      name: 'fitstream_jobs_failed_total',
      help: 'Job attempts that failed, by queue and error code',
      labelNames: ['queue', 'code'],
      registers,
    }),
    jobsRetried: new Counter({
      name: 'fitstream_jobs_retried_total',
      help: 'Failed attempts that will be retried, by queue',
      labelNames: ['queue'],
      registers,
    }),
    jobsDeadLettered: new Counter({
      name: 'fitstream_jobs_dead_lettered_total',
      help: 'Jobs moved to a dead-letter queue, by queue and error code',
      labelNames: ['queue', 'code'],
      registers,
    }),
    jobsDeferred: new Counter({
      name: 'fitstream_jobs_deferred_total',
      help: 'Jobs put back without using an attempt (rate limits), by queue and scope',
      labelNames: ['queue', 'scope'],
      registers,
    }),
    jobDuration: new Histogram({
      name: 'fitstream_job_duration_seconds',
      help: 'Time spent processing one job attempt',
      labelNames: ['queue', 'outcome'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    }),
    queueDepth: new Gauge({
      name: 'fitstream_queue_jobs',
      help: 'Jobs in a queue, by state (sampled at scrape time)',
      labelNames: ['queue', 'state'],
      registers,
    }),
    oldestWaitingAge: new Gauge({
      name: 'fitstream_queue_oldest_waiting_seconds',
      help: 'Age of the oldest job waiting in a queue (0 when none waits), sampled at scrape time',
      labelNames: ['queue'],
      registers,
    }),
  }
}
