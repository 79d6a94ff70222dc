import { ServiceRuntime, type Logger } from '@fitstream/shared'
import { createAnonymizeProcessor } from './anonymize-processor.js'
import type { AnonymizerConfig } from './config.js'

export function createAnonymizer(config: AnonymizerConfig, logger: Logger): ServiceRuntime {
  const runtime = new ServiceRuntime('anonymizer', config, logger)
  runtime.addWorker({
    stage: 'anonymize',
    concurrency: config.ANONYMIZE_CONCURRENCY,
    process: createAnonymizeProcessor({
      policy: { key: config.PSEUDONYM_KEY, epoch: config.PSEUDONYM_EPOCH, granularityMs: config.TIME_GRANULARITY_MS, decimals: 1 },
      queues: runtime.queues,
    }),
  })
  runtime.buildServer()
  return runtime
}
