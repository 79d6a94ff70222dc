import { createLogger, loadConfigOrExit, onShutdown } from '@fitstream/shared'
import { loadConfig } from './config.js'
import { createAnonymizer } from './service.js'

const config = loadConfigOrExit('anonymizer', loadConfig)
const logger = createLogger('anonymizer', config.LOG_LEVEL)
const anonymizer = await createAnonymizer(config, logger)
onShutdown(logger, config.SHUTDOWN_TIMEOUT_MS, () => [['anonymizer', () => anonymizer.close()]])
anonymizer.start()
await anonymizer.server.listen({ host: config.HTTP_HOST, port: config.HTTP_PORT })
