import { Counter, Histogram } from 'prom-client'
import type { ServiceMetrics } from '@fitstream/shared'

/** What the fetcher reports beyond the job metrics every stage has. */
export interface FetcherMetrics {
  readonly googleRequests: Counter<'status'>
  readonly googleLatency: Histogram
  readonly pointsRejected: Counter<'reason'>
  readonly bucketsUnchanged: Counter
  readonly bucketsRevised: Counter
  readonly outageDeferrals: Counter
  readonly googleThrottled: Counter
}

export function createFetcherMetrics(metrics: ServiceMetrics): FetcherMetrics {
  const registers = [metrics.registry]
  return {
    googleRequests: new Counter({
      name: 'fitstream_google_requests_total',
      help: 'Requests to Google (Fitness API and Health API), by HTTP status',
      labelNames: ['status'],
      registers,
    }),
    googleLatency: new Histogram({
      name: 'fitstream_google_request_duration_seconds',
      help: 'Latency of requests to Google',
      buckets: [0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    }),
    pointsRejected: new Counter({
      name: 'fitstream_google_points_rejected_total',
      help: 'Points in Google responses that could not be read as sent, by reason: set aside, or (an unknown exercise type) counted as other',
      labelNames: ['reason'],
      registers,
    }),
    bucketsUnchanged: new Counter({
      name: 'fitstream_buckets_unchanged_total',
      help: 'Re-read buckets that had not changed and were not passed on',
      registers,
    }),
    outageDeferrals: new Counter({
      name: 'fitstream_google_outage_deferrals_total',
      help: 'Fetch jobs put back without using an attempt because Google was failing for every fetch',
      registers,
    }),
    googleThrottled: new Counter({
      name: 'fitstream_google_requests_throttled_total',
      help: 'Times a request to Google waited for the next second because the project-wide GOOGLE_RATE_LIMIT_PER_SECOND was used up',
      registers,
    }),
    bucketsRevised: new Counter({
      name: 'fitstream_buckets_revised_total',
      help: 'Buckets passed on again as revisions because late data changed them',
      registers,
    }),
  }
}
