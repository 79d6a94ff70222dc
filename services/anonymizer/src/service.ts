import { COHORT_ERASURE_QUEUE, SLOT_GROUPS, ServiceRuntime, type Logger } from '@fitstream/shared'
import { deriveKeys } from './anonymize.js'
import { createAnonymizeProcessor } from './anonymize-processor.js'
import { COHORT_QUEUE, startCohortCloser } from './cohort-closer.js'
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
  const store = new PrivacyStore(runtime.redis, runtime.slotPrefix(SLOT_GROUPS.anonymizer), policy)
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
    prefix: runtime.queues.queuePrefix(COHORT_QUEUE),
  })
  runtime.onClose('cohort closer', closeCloser)
  runtime.onClose(
    'cohort erasure',
    startCohortErasure({ store, keys, logger, workerConnection: runtime.workerRedis, prefix: runtime.queues.queuePrefix(COHORT_ERASURE_QUEUE) }),
  )
  runtime.buildServer()
  return runtime
}
