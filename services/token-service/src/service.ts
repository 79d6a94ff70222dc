import { ServiceRuntime, UserGoneError, type Logger } from '@fitstream/shared'
import { AccessTokenKeeper } from './access-tokens.js'
import { registerBullBoard } from './bull-board.js'
import type { TokenServiceConfig } from './config.js'
import { refreshAccessToken } from './google-oauth.js'
import { userRoutes } from './routes.js'
import { SyncScheduler } from './scheduler.js'
import { createSyncProcessor } from './sync-processor.js'
import { UserRepository } from './users.js'

export async function createTokenService(config: TokenServiceConfig, logger: Logger): Promise<ServiceRuntime> {
  const runtime = new ServiceRuntime('token-service', config, logger)
  const { redis, queues } = runtime
  const prefix = config.QUEUE_PREFIX

  const users = new UserRepository(redis, prefix, config.REFRESH_TOKEN_KEYS)
  const oauth = { clientId: config.GOOGLE_CLIENT_ID, clientSecret: config.GOOGLE_CLIENT_SECRET, tokenUrl: config.GOOGLE_TOKEN_URL }
  const tokens = new AccessTokenKeeper({
    redis,
    prefix,
    accessKeys: config.ACCESS_TOKEN_KEYS,
    refreshMarginMs: config.TOKEN_REFRESH_MARGIN_MS,
    refresh: async (userId) => {
      const refreshToken = await users.refreshToken(userId)
      if (refreshToken === undefined) throw new UserGoneError(`user ${userId} no longer exists`)
      return refreshAccessToken(oauth, refreshToken)
    },
  })
  const scheduler = new SyncScheduler(queues, config.SYNC_INTERVAL_MS)

  runtime.addWorker({
    stage: 'sync',
    concurrency: config.SYNC_CONCURRENCY,
    process: createSyncProcessor({
      users,
      tokens,
      scheduler,
      queues,
      plan: { bucketMs: config.SYNC_BUCKET_MS, backfillMs: config.BACKFILL_DAYS * 86_400_000, chunkMs: config.FETCH_CHUNK_HOURS * 3_600_000 },
    }),
  })

  const server = runtime.buildServer({ bodyLimit: 16 * 1024 })
  await userRoutes(server, { users, tokens, scheduler, adminToken: config.ADMIN_TOKEN, internalToken: config.INTERNAL_API_TOKEN })
  await registerBullBoard(server, queues, config.ADMIN_TOKEN)
  return runtime
}
