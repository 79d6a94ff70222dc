import { ServiceRuntime, type Logger } from '@fitstream/shared'
import { deriveKeys } from './anonymize.js'
import { createAnonymizeProcessor } from './anonymize-processor.js'
import { startCohortCloser } from './cohort-closer.js'
import { startCohortErasure } from './cohort-erasure.js'
import type { AnonymizerConfig } from './config.js'
import { createAnonymizerMetrics } from './metrics.js'
import { describePolicy } from './policy.js'
import { PrivacyStore } from './privacy-store.js'

export async function createAnonymizer(config: AnonymizerConfig, logger: Logger): Promise<ServiceRuntime> {
  const runtime = new ServiceRuntime('anonymizer', config, logger)
  const { policy } = config
  const keys = deriveKeys(config.PSEUDONYM_KEY)
  const metrics = createAnonymizerMetrics(runtime.metrics)
  const store = new PrivacyStore(runtime.redis, config.QUEUE_PREFIX, policy)
  logger.info(
    { policyFile: config.ANONYMIZER_POLICY_FILE, release: describePolicy(policy), k: policy.cohorts.k, budget: policy.budget },
    'privacy policy loaded',
  )
  runtime.addWorker({
    stage: 'anonymize',
    concurrency: config.ANONYMIZE_CONCURRENCY,
    process: createAnonymizeProcessor({ policy, keys, queues: runtime.queues, store, metrics }),
  })
  const closeCloser = await startCohortCloser({
    policy,
    keys,
    store,
    queues: runtime.queues,
    metrics,
    logger,
    connection: runtime.redis,
    workerConnection: runtime.workerRedis,
    prefix: config.QUEUE_PREFIX,
  })
  runtime.onClose('cohort closer', closeCloser)
  runtime.onClose('cohort erasure', startCohortErasure({ store, keys, logger, workerConnection: runtime.workerRedis, prefix: config.QUEUE_PREFIX }))
  runtime.buildServer()
  return runtime
}
