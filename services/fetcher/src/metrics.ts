import { metricBuilder, type ServiceMetrics } from '@fitstream/shared'

/** What the fetcher reports beyond the job metrics every stage has. */
export type FetcherMetrics = ReturnType<typeof createFetcherMetrics>

export function createFetcherMetrics(metrics: ServiceMetrics) {
  const { counter, histogram } = metricBuilder(metrics.registry)
  return {
    googleRequests: counter('fitstream_google_requests_total', 'Requests to Google (Fitness API and Health API), by HTTP status', ['status']),
    googleLatency: histogram('fitstream_google_request_duration_seconds', 'Latency of requests to Google', [0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]),
    pointsRejected: counter(
      'fitstream_google_points_rejected_total',
      'Points in Google responses that could not be read as sent, by reason: set aside, or (an unknown exercise type) counted as other',
      ['reason'],
    ),
    bucketsUnchanged: counter('fitstream_buckets_unchanged_total', 'Re-read buckets that had not changed and were not passed on'),
    outageDeferrals: counter(
      'fitstream_google_outage_deferrals_total',
      'Fetch jobs put back without using an attempt because Google was failing for every fetch',
    ),
    googleThrottled: counter(
      'fitstream_google_requests_throttled_total',
      'Times a request to Google waited for the next second because the project-wide GOOGLE_RATE_LIMIT_PER_SECOND was used up',
    ),
    bucketsRevised: counter('fitstream_buckets_revised_total', 'Buckets passed on again as revisions because late data changed them'),
  }
}
