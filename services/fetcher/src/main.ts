import { createLogger, loadConfigOrExit, onShutdown } from '@fitstream/shared'
import { loadConfig } from './config.js'
import { createFetcher } from './service.js'

const config = loadConfigOrExit('fetcher', loadConfig)
const logger = createLogger('fetcher', config.LOG_LEVEL)
const fetcher = createFetcher(config, logger)
onShutdown(logger, config.SHUTDOWN_TIMEOUT_MS, () => [['fetcher', () => fetcher.close()]])
fetcher.start()
await fetcher.server.listen({ host: config.HTTP_HOST, port: config.HTTP_PORT })
