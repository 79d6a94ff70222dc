import { createLogger, loadConfigOrExit, onShutdown } from '@fitstream/shared'
import { loadConfig } from './config.js'
import { createPublisher } from './service.js'
import { detachStreamrSignalHandlers, waitForChain } from './streamr-client.js'

detachStreamrSignalHandlers()
const config = loadConfigOrExit('publisher', loadConfig)
const logger = createLogger('publisher', config.LOG_LEVEL)
// A process whose job lease another process took over restarts (see DeliveryJournal): it exits 75
// once drained, and its supervisor (compose's restart policy) starts it again with a clean client.
const publisher = await createPublisher(config, logger, { restart: () => void shutdown('lease lost', 75) })
const shutdown = onShutdown(logger, config.SHUTDOWN_TIMEOUT_MS, () => [['publisher', () => publisher.close()]])
await publisher.server.listen({ host: config.HTTP_HOST, port: config.HTTP_PORT })
await waitForChain(config, (message) => logger.warn(message))
publisher.start()
