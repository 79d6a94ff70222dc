import type { Redis } from 'ioredis'
import {
  UpstreamError,
  UserGoneError,
  advanceFetchCursor,
  readAccessToken,
  userKey,
  type JobContext,
  type Keyring,
  type StageData,
  type StageQueues,
} from '@fitstream/shared'
import { AccessTokenRejectedError, type GoogleFitClient } from './google-fit.js'
import { normalizeAggregate } from './normalize.js'
import type { TokenServiceClient } from './token-service-client.js'

export interface FetchResult {
  readonly samples: number
  readonly rejectedPoints: number
  readonly buckets: number
}

export interface FetchProcessorDeps {
  readonly redis: Redis
  readonly prefix: string
  readonly accessKeys: Keyring
  readonly google: GoogleFitClient
  readonly tokenService: TokenServiceClient
  readonly queues: StageQueues
  readonly now?: () => number
}

/** Tokens closer than this to expiry are refreshed before use rather than sent to Google. */
const MIN_TOKEN_LIFETIME_MS = 60_000

/**
 * Fetches one window of one user's data: reads their access token (refreshed through the token
 * service when it is stale or Google rejects it, once), pulls every consented type in one aggregate
 * request, normalises it and hands the samples to the anonymiser. Only then does the user's cursor
 * move, so a failure anywhere leaves the window to be fetched again.
 */
export function createFetchProcessor(deps: FetchProcessorDeps) {
  const now = deps.now ?? Date.now

  const accessToken = async (userId: string, forceRefresh: boolean): Promise<string> => {
    let token = forceRefresh ? undefined : await readAccessToken(deps.redis, deps.prefix, deps.accessKeys, userId)
    if (token === undefined || token.expiresAt - now() < MIN_TOKEN_LIFETIME_MS) {
      if ((await deps.redis.exists(userKey(deps.prefix, userId))) === 0) throw new UserGoneError(`user ${userId} no longer exists`)
      await deps.tokenService.refreshAccessToken(userId)
      token = await readAccessToken(deps.redis, deps.prefix, deps.accessKeys, userId)
      if (token === undefined) throw new UserGoneError(`user ${userId} no longer exists`)
    }
    return token.token
  }

  return async (data: StageData<'fetch'>, context: JobContext): Promise<FetchResult> => {
    const request = { dataTypes: data.dataTypes, window: data.window, bucketMs: data.bucketMs }
    let response: unknown
    try {
      response = await deps.google.aggregate({ ...request, accessToken: await accessToken(data.userId, false) })
    } catch (error) {
      if (!(error instanceof AccessTokenRejectedError)) throw error
      context.logger.info('access token rejected by Google; refreshing once')
      response = await deps.google.aggregate({ ...request, accessToken: await accessToken(data.userId, true) })
    }

    const { samples, rejected, buckets } = normalizeAggregate(response, data.dataTypes, data.window)
    const rejectedPoints = Object.values(rejected).reduce((a, b) => a + b, 0)
    if (rejectedPoints > 0) {
      context.logger.warn({ rejected, used: samples.length }, 'some points in Google response were unusable')
      if (samples.length === 0) {
        throw new UpstreamError('FST_ERR_GOOGLE_MALFORMED', `Google response unusable: ${JSON.stringify(rejected)}`, { permanent: true })
      }
    }
    if (samples.length > 0) {
      await deps.queues.add(
        'anonymize',
        { syncId: data.syncId, userId: data.userId, window: data.window, samples },
        { jobId: `anonymize-${data.userId}-${data.window.startMs}-${data.window.endMs}` },
      )
    }
    await advanceFetchCursor(deps.redis, deps.prefix, data.userId, data.window.endMs)
    context.logger.info({ syncId: data.syncId, samples: samples.length, buckets }, 'window fetched')
    return { samples: samples.length, rejectedPoints, buckets }
  }
}
