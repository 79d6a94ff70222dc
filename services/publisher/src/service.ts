import { ServiceRuntime, type Logger } from '@fitstream/shared'
import type { PublisherConfig } from './config.js'
import { createPublishProcessor } from './publish-processor.js'
import { createStreamrClient } from './streamr-client.js'

export async function createPublisher(config: PublisherConfig, logger: Logger): Promise<ServiceRuntime> {
  const runtime = new ServiceRuntime('publisher', config, logger)
  // One long-lived client per process: it keeps the network node, the encryption keys buyers ask for
  // (key exchange needs the publisher online) and the permission caches.
  const client = createStreamrClient(config)
  const owner = (config.STREAMR_STREAM_OWNER ?? (await client.getUserId())).toLowerCase()
  runtime.addWorker({
    stage: 'publish',
    concurrency: config.PUBLISH_CONCURRENCY,
    // Publishing can wait on the chain and the network for a while; don't let the job look stalled.
    lockDurationMs: 120_000,
    process: createPublishProcessor({
      client,
      naming: { owner, pathPrefix: config.STREAMR_STREAM_PATH_PREFIX },
      redis: runtime.redis,
      prefix: config.QUEUE_PREFIX,
      maxMessageBytes: config.MAX_MESSAGE_BYTES,
    }),
  })
  runtime.buildServer({
    readiness: {
      streamr: async () => {
        await client.connect()
      },
    },
  })
  runtime.onClose('streamr client', () => client.destroy())
  return runtime
}
