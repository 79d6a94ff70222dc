import { createPublisherMetrics } from './metrics.js'
import { SLOT_GROUPS, ServiceRuntime, type Logger } from '@fitstream/shared'
import type { PublisherConfig } from './config.js'
import { DeliveryJournal } from './delivery-journal.js'
import { crashPointFor, createDeliverer, createPublishProcessor, type PublishProcessorDeps } from './publish-processor.js'
import { startRekeying } from './rekey.js'
import { SlotReleaser } from './slot-releaser.js'
import { SlotStore } from './slot-store.js'
import { createStreamJoiner, createStreamrClient, registerStreamNeighborsMetric } from './streamr-client.js'

export interface PublisherOptions {
  /** Called once when the process must restart (it lost a job's lease to another process). */
  readonly restart?: () => void
}

export async function createPublisher(config: PublisherConfig, logger: Logger, options: PublisherOptions = {}): Promise<ServiceRuntime> {
  const runtime = new ServiceRuntime('publisher', config, logger)
  // One long-lived client per process: it keeps the network node, the encryption keys buyers ask for
  // (key exchange needs the publisher online) and the permission caches.
  const client = createStreamrClient(config)
  const owner = (config.STREAMR_STREAM_OWNER ?? (await client.getUserId())).toLowerCase()
  const rekeying = startRekeying(client, config.STREAMR_REKEY_HOURS * 3_600_000, logger)
  const journal = new DeliveryJournal(runtime.redis, runtime.slotPrefix(SLOT_GROUPS.journal))
  logger.info({ instance: journal.instance }, 'publishing as this instance (the name of its job leases and message chains in Redis)')
  let restarting = false
  const publisherId = await client.getUserId()
  const metrics = createPublisherMetrics(runtime.metrics)
  registerStreamNeighborsMetric(client, runtime.metrics.registry)
  const slotStore =
    config.PUBLISH_SLOT_MS > 0
      ? new SlotStore(runtime.redis, runtime.slotPrefix(SLOT_GROUPS.slots), { slotMs: config.PUBLISH_SLOT_MS, offsetMs: config.PUBLISH_SLOT_OFFSET_MS })
      : undefined
  // Crash tests only (PUBLISH_CRASH_AT, unset in production): SIGKILL, so nothing is cleaned up.
  const crashPoint = crashPointFor(config.PUBLISH_CRASH_AT, () => process.kill(process.pid, 'SIGKILL'))
  // When the local node last took a message: the shutdown flush is counted from it.
  let lastPublishedAt: number | undefined
  const deps: PublishProcessorDeps = {
    client: {
      publish: async (definition, content, metadata) => {
        // The processor always names streams by id.
        if (typeof definition === 'string') rekeying.published(definition)
        const message = await client.publish(definition, content, metadata)
        lastPublishedAt = Date.now()
        return message
      },
    },
    joined: createStreamJoiner(client, config.STREAMR_JOIN_TIMEOUT_MS),
    naming: { owner, pathPrefix: config.STREAMR_STREAM_PATH_PREFIX },
    journal,
    maxMessageBytes: config.MAX_MESSAGE_BYTES,
    metrics,
    onLeaseLost: (error) => {
      if (restarting) return
      restarting = true
      logger.error(
        { jobId: error.jobId, chain: error.chain, instance: journal.instance },
        'another publisher took over a job this one was still publishing (this process stalled past PUBLISH_LOCK_MS): restarting, so that this process never links a message to a stale one on that chain',
      )
      options.restart?.()
    },
    ...(slotStore === undefined ? {} : { slots: { store: slotStore, canPublish: (streamId: string) => client.isStreamPublisher(streamId, publisherId) } }),
    ...(crashPoint === undefined ? {} : { crashPoint }),
  }
  runtime.addWorker({
    stage: 'publish',
    concurrency: config.PUBLISH_CONCURRENCY,
    // Publishing can wait on the chain and the network for a while; don't let the job look stalled.
    lockDurationMs: config.PUBLISH_LOCK_MS,
    process: createPublishProcessor(deps),
  })
  if (slotStore !== undefined) {
    const releaser = new SlotReleaser({
      store: slotStore,
      deliver: createDeliverer(deps),
      maxMessageBytes: config.MAX_MESSAGE_BYTES,
      instance: journal.instance,
      lockMs: config.PUBLISH_LOCK_MS,
      logger,
      metrics,
      ...(crashPoint === undefined ? {} : { crashPoint }),
    })
    logger.info({ slotMs: config.PUBLISH_SLOT_MS, offsetMs: config.PUBLISH_SLOT_OFFSET_MS }, 'records are held and published in shared release slots')
    runtime.onStart(() => releaser.start(Math.min(1_000, Math.max(100, Math.floor(config.PUBLISH_SLOT_MS / 4)))))
    // Before the client goes: a slot being published finishes; held records wait in Redis.
    runtime.onClose('release slots', () => releaser.stop())
  }
  runtime.buildServer({
    readiness: {
      streamr: async () => {
        await client.connect()
      },
    },
  })
  runtime.onClose('streamr client', async () => {
    rekeying.stop()
    // publish() resolves once the local node has the message, not once neighbours have it: the node
    // stays up until the last message has had STREAMR_SHUTDOWN_FLUSH_MS to leave and for buyers to ask
    // for its key. A publisher that has been idle that long stops at once (a rolling deploy waits for nothing).
    const flushMs = lastPublishedAt === undefined ? 0 : Math.max(0, lastPublishedAt + config.STREAMR_SHUTDOWN_FLUSH_MS - Date.now())
    if (flushMs > 0) {
      logger.info({ flushMs }, 'keeping the network node up for the last messages to leave')
      await new Promise((resolve) => setTimeout(resolve, flushMs))
    }
    await client.destroy()
  })
  return runtime
}
