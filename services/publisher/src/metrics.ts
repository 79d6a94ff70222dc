import type { Counter, Histogram } from 'prom-client'
import { metricBuilder, type ServiceMetrics } from '@fitstream/shared'

/** What the publisher reports beyond the job metrics every stage has. */
export interface PublisherMetrics {
  readonly publishDuration: Histogram<'kind'>
  readonly messagesPublished: Counter<'kind'>
  /** Records and cohorts held for a release slot. */
  readonly recordsHeld: Counter
  /** Release slots published, and how late each went out after its time. */
  readonly slotsReleased: Counter
  readonly slotReleaseLag: Histogram
}

export function createPublisherMetrics(metrics: ServiceMetrics): PublisherMetrics {
  const { counter, histogram } = metricBuilder(metrics.registry)
  return {
    publishDuration: histogram(
      'fitstream_streamr_publish_duration_seconds',
      'Time for one Streamr publish (signing, encryption, sending), by message kind (records or cohorts)',
      [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      ['kind'],
    ),
    messagesPublished: counter('fitstream_streamr_messages_published_total', 'Messages published to Streamr, by kind', ['kind']),
    recordsHeld: counter('fitstream_publisher_held_total', 'Records and cohorts held in Redis for their release slot'),
    slotsReleased: counter('fitstream_publisher_slots_released_total', 'Release slots whose held records were all published'),
    slotReleaseLag: histogram(
      'fitstream_publisher_slot_release_lag_seconds',
      "Time from a release slot's time to the end of its publishing",
      [0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600],
    ),
  }
}
