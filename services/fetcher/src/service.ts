import { FetchHistoryStore, SLOT_GROUPS, ServiceRuntime, UserRecordStore, type Logger } from '@fitstream/shared'
import type { FetcherConfig } from './config.js'
import { createFetchProcessor } from './fetch-processor.js'
import { createFetcherMetrics } from './metrics.js'
import { GoogleFitClient } from './google-fit.js'
import { GoogleHealthClient } from './google-health.js'
import { GoogleRequestGate } from './google-requests.js'
import { GoogleOutageDetector } from './google-outage.js'
import { TokenServiceClient } from './token-service-client.js'

export function createFetcher(config: FetcherConfig, logger: Logger): ServiceRuntime {
  const runtime = new ServiceRuntime('fetcher', config, logger)
  const metrics = createFetcherMetrics(runtime.metrics)
  const usersPrefix = runtime.slotPrefix(SLOT_GROUPS.users)
  const users = new UserRecordStore(runtime.redis, usersPrefix, config.ACCESS_TOKEN_KEYS)
  const { send, reserve } = new GoogleRequestGate(runtime.redis, config.QUEUE_PREFIX, config.GOOGLE_RATE_LIMIT_PER_SECOND, metrics)
  runtime.addWorker({
    stage: 'fetch',
    concurrency: config.FETCH_CONCURRENCY,
    // Every fetch makes at least one request: fetches never outrun the requests' own limit.
    limiter: { max: config.GOOGLE_RATE_LIMIT_PER_SECOND, duration: 1_000 },
    process: createFetchProcessor({
      users,
      history: new FetchHistoryStore(runtime.redis, usersPrefix, (userId) => users.existenceKey(userId)),
      google: new GoogleFitClient({ rootUrl: config.GOOGLE_FITNESS_ROOT_URL, timeoutMs: config.GOOGLE_TIMEOUT_MS, send }),
      health: new GoogleHealthClient({ rootUrl: config.GOOGLE_HEALTH_ROOT_URL, timeoutMs: config.GOOGLE_TIMEOUT_MS, send, reserve }),
      defaultApi: config.GOOGLE_DATA_API,
      fitClosesAt: config.GOOGLE_FIT_CLOSES_AT,
      tokenService: new TokenServiceClient(config.TOKEN_SERVICE_URL, config.INTERNAL_API_TOKEN),
      queues: runtime.queues,
      metrics,
      fetchSensitiveTypes: config.FETCH_LOCATION,
      outage: new GoogleOutageDetector(runtime.redis, runtime.slotPrefix(SLOT_GROUPS.google), {
        threshold: config.GOOGLE_OUTAGE_THRESHOLD,
        windowMs: config.GOOGLE_OUTAGE_WINDOW_MS,
        pauseMs: config.GOOGLE_OUTAGE_PAUSE_MS,
      }),
    }),
  })
  runtime.buildServer()
  return runtime
}
