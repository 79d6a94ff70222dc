import type { FastifyInstance } from 'fastify'
import { DATA_TYPE_KEYS, ReauthRequiredError, UpstreamError, UserGoneError, type DataTypeKey } from '@fitstream/shared'
import type { AccessTokenKeeper } from './access-tokens.js'
import { requireToken } from './auth.js'
import type { SyncScheduler } from './scheduler.js'
import type { User, UserRepository } from './users.js'

export interface UserRoutesDeps {
  readonly users: UserRepository
  readonly tokens: AccessTokenKeeper
  readonly scheduler: SyncScheduler
  readonly adminToken: string
  readonly internalToken: string
  readonly now?: () => number
}

const userIdParams = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', pattern: '^[A-Za-z0-9_-]{8,64}$' } },
} as const

const createUserBody = {
  type: 'object',
  required: ['refreshToken', 'dataTypes'],
  additionalProperties: false,
  properties: {
    refreshToken: { type: 'string', minLength: 1, maxLength: 4096 },
    dataTypes: { type: 'array', minItems: 1, uniqueItems: true, items: { type: 'string', enum: DATA_TYPE_KEYS } },
  },
} as const

/** The users API. Every route is for operators (admin token) until user sessions exist. */
export async function userRoutes(app: FastifyInstance, deps: UserRoutesDeps): Promise<void> {
  const now = deps.now ?? Date.now

  await app.register(async (admin) => {
    admin.addHook('onRequest', requireToken(deps.adminToken))

    admin.post<{ Body: { refreshToken: string; dataTypes: DataTypeKey[] } }>('/users', { schema: { body: createUserBody } }, async (request, reply) => {
      const user = await deps.users.create({ refreshToken: request.body.refreshToken, dataTypes: request.body.dataTypes, now: now() })
      try {
        // Proves the refresh token works before anything is scheduled, and leaves a fresh access token.
        await deps.tokens.ensureFresh(user.id)
      } catch (error) {
        await deps.users.delete(user.id)
        if (error instanceof ReauthRequiredError) {
          return reply.status(400).send({ error: 'Bad Request', code: error.code, message: `the refresh token was refused by Google: ${error.message}` })
        }
        if (error instanceof UpstreamError) {
          return reply.status(502).send({ error: 'Bad Gateway', code: error.code, message: error.message })
        }
        throw error
      }
      await deps.scheduler.schedule(user.id)
      await deps.scheduler.syncNow(user.id, 'onboarding')
      request.log.info({ userId: user.id, dataTypes: user.dataTypes }, 'user registered')
      return reply.status(201).send(await present(user, deps.scheduler))
    })

    admin.get<{ Params: { id: string } }>('/users/:id', { schema: { params: userIdParams } }, async (request, reply) => {
      const user = await deps.users.get(request.params.id)
      if (user === undefined) return reply.status(404).send(notFound(request.params.id))
      return present(user, deps.scheduler)
    })

    admin.delete<{ Params: { id: string } }>('/users/:id', { schema: { params: userIdParams } }, async (request, reply) => {
      const scheduleRemoved = await deps.scheduler.unschedule(request.params.id)
      const userRemoved = await deps.users.delete(request.params.id)
      if (!userRemoved && !scheduleRemoved) return reply.status(404).send(notFound(request.params.id))
      request.log.info({ userId: request.params.id }, 'user erased')
      return {
        id: request.params.id,
        erased: { account: userRemoved, tokens: userRemoved, syncCursor: userRemoved, schedule: scheduleRemoved },
        erasedAt: new Date(now()).toISOString(),
        note: 'Pending jobs for this user are discarded when a worker reaches them. Anonymised records already published cannot be recalled.',
      }
    })

    admin.post<{ Params: { id: string } }>('/users/:id/sync', { schema: { params: userIdParams } }, async (request, reply) => {
      const user = await deps.users.get(request.params.id)
      if (user === undefined) return reply.status(404).send(notFound(request.params.id))
      if (user.state !== 'active') {
        return reply.status(409).send({ error: 'Conflict', message: `user is ${user.state}; they must reconnect their Google account first` })
      }
      const jobId = await deps.scheduler.syncNow(user.id, 'manual')
      return reply.status(202).send({ id: user.id, syncJobId: jobId })
    })
  })

  await app.register(async (internal) => {
    internal.addHook('onRequest', requireToken(deps.internalToken))

    // A fetcher whose access token was rejected asks for a new one; the token itself stays in Redis.
    internal.post<{ Params: { id: string } }>('/internal/users/:id/access-token/refresh', { schema: { params: userIdParams } }, async (request, reply) => {
      try {
        const token = await deps.tokens.ensureFresh(request.params.id, { force: true })
        return { id: request.params.id, expiresAt: new Date(token.expiresAt).toISOString() }
      } catch (error) {
        if (error instanceof UserGoneError) return reply.status(404).send(notFound(request.params.id))
        if (error instanceof ReauthRequiredError) {
          await deps.users.setState(request.params.id, 'reauth_required', error.message)
          await deps.scheduler.unschedule(request.params.id)
          return reply.status(409).send({ error: 'Conflict', code: error.code, message: error.message })
        }
        if (error instanceof UpstreamError) return reply.status(502).send({ error: 'Bad Gateway', code: error.code, message: error.message })
        throw error
      }
    })
  })
}

async function present(user: User, scheduler: SyncScheduler) {
  const nextRunAt = await scheduler.nextRunAt(user.id)
  return {
    id: user.id,
    state: user.state,
    dataTypes: user.dataTypes,
    createdAt: iso(user.createdAt),
    fetchedUntil: iso(user.fetchedUntil),
    lastSyncAt: iso(user.lastSyncAt),
    lastSyncStatus: user.lastSyncStatus ?? null,
    lastError: user.lastError ?? null,
    nextSyncAt: iso(nextRunAt),
  }
}

function iso(ms: number | undefined): string | null {
  return ms === undefined || Number.isNaN(ms) ? null : new Date(ms).toISOString()
}

function notFound(id: string) {
  return { error: 'Not Found', message: `no user ${id}` }
}
