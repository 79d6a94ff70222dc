import { createLogger, loadConfigOrExit, onShutdown } from '@fitstream/shared'
import { loadConfig } from './config.js'
import { createTokenService } from './service.js'

const config = loadConfigOrExit('token-service', loadConfig)
const logger = createLogger('token-service', config.LOG_LEVEL)
const service = await createTokenService(config, logger)
onShutdown(logger, config.SHUTDOWN_TIMEOUT_MS, () => [['token service', () => service.close()]])
service.start()
await service.server.listen({ host: config.HTTP_HOST, port: config.HTTP_PORT })
if (service.internalServer !== undefined) await service.internalServer.listen({ host: config.HTTP_HOST, port: config.INTERNAL_HTTP_PORT })
