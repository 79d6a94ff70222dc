import type { FastifyInstance } from 'fastify'
import {
  DATA_TYPE_KEYS,
  GOOGLE_DATA_API_NAMES,
  ReauthRequiredError,
  UpstreamError,
  UserGoneError,
  dataApiOfScopes,
  readableIn,
  type DataTypeKey,
  type PrivacyLedgerReader,
} from '@fitstream/shared'
import type { AccessTokenKeeper } from './access-tokens.js'
import { mustMoveToHealth } from './consent.js'
import { adminOrOwner, requireToken } from './auth.js'
import { eraseUser, type ErasureDeps } from './erasure.js'
import type { Onboarding } from './onboarding.js'
import type { ReconnectLinks } from './reconnect-links.js'
import type { SyncScheduler } from './scheduler.js'
import type { SessionCookies } from './session-http.js'
import { USER_STATES, type User, type UserRepository, type UserState } from './users.js'

export interface UserRoutesDeps {
  readonly users: UserRepository
  readonly tokens: AccessTokenKeeper
  readonly scheduler: SyncScheduler
  readonly onboarding: Onboarding
  readonly sessions: SessionCookies
  readonly reconnectLinks: ReconnectLinks
  readonly erasure: ErasureDeps
  readonly publicUrl: string
  readonly adminToken: string
  readonly internalToken: string
  /** True when the internal routes are served by the internal listener (INTERNAL_HTTP_PORT). */
  readonly internalRoutesElsewhere?: boolean
  /** The privacy ledger the anonymiser keeps per user, for their report. */
  readonly privacy: Pick<PrivacyLedgerReader, 'report'>
  readonly now?: () => number
}

const userIdParams = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', pattern: '^[A-Za-z0-9_-]{8,64}$' } },
} as const

const dataTypesField = { type: 'array', minItems: 1, uniqueItems: true, items: { type: 'string', enum: DATA_TYPE_KEYS } } as const

/** Types sold as individual (pseudonymised) records; only those also in dataTypes count. Absent: unchanged (none for a new user). */
const individualTypesField = { type: 'array', uniqueItems: true, items: { type: 'string', enum: DATA_TYPE_KEYS } } as const

const createUserBody = {
  type: 'object',
  required: ['refreshToken', 'dataTypes'],
  additionalProperties: false,
  properties: {
    refreshToken: { type: 'string', minLength: 1, maxLength: 4096 },
    dataTypes: dataTypesField,
    individualTypes: individualTypesField,
    timeZone: { type: 'string', minLength: 1, maxLength: 64, description: 'IANA zone of the person (default UTC): their daily buckets follow it' },
  },
} as const

const consentBody = {
  type: 'object',
  required: ['dataTypes'],
  additionalProperties: false,
  properties: { dataTypes: dataTypesField, individualTypes: individualTypesField },
} as const

const nullableTime = { type: ['string', 'null'], format: 'date-time' } as const
const errorResponse = {
  type: 'object',
  properties: {
    error: { type: 'string' },
    code: { type: 'string' },
    message: { type: 'string' },
    missingScopes: { type: 'array', items: { type: 'string' } },
    reconsentUrl: { type: 'string' },
  },
} as const
const userResponse = {
  type: 'object',
  // Open, so fields other pieces of work add to a user show up without touching this schema.
  additionalProperties: true,
  properties: {
    id: { type: 'string' },
    state: { type: 'string', enum: USER_STATES },
    dataTypes: { type: 'array', items: { type: 'string' } },
    individualTypes: { type: 'array', items: { type: 'string' }, description: 'types sold as individual records; the rest of dataTypes only in cohorts' },
    scopes: { type: 'array', items: { type: 'string' } },
    dataApi: { type: 'string', enum: ['fit', 'health'], description: 'the Google API the user’s data is read from, by their grant' },
    createdAt: nullableTime,
    fetchedUntil: nullableTime,
    lastSyncAt: nullableTime,
    lastSyncStatus: { type: ['string', 'null'] },
    lastError: { type: ['string', 'null'] },
    nextSyncAt: nullableTime,
    timeZone: { type: 'string', description: 'IANA zone the user’s buckets align to' },
    backfill: {
      type: ['object', 'null'],
      description: 'history fetched when the user joined: chunks planned and fetched so far',
      properties: { chunks: { type: 'integer' }, done: { type: 'integer' }, until: nullableTime },
    },
    links: {
      type: 'object',
      properties: {
        account: { type: 'string', description: "the user's own page (needs their session)" },
        reconnect: { type: ['string', 'null'], description: 'signed re-consent link, valid 7 days; set when the user must reconnect' },
        move: {
          type: ['string', 'null'],
          description:
            'signed link, valid 7 days, that moves the user from Google Fit to the Google Health API; set while a deployment on the Health API still reads them from Fit',
        },
      },
    },
  },
} as const
const receiptResponse = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    erasedAt: { type: 'string', format: 'date-time' },
    erased: {
      type: 'object',
      properties: {
        account: { type: 'boolean' },
        tokens: { type: 'boolean' },
        syncCursor: { type: 'boolean' },
        consent: { type: 'boolean' },
        schedule: { type: 'boolean' },
        privacyState: { type: 'integer' },
        sessions: { type: 'integer' },
        passkeys: { type: 'integer', description: 'passkeys deleted (absent where passkeys are not offered)' },
        jobs: { type: 'object', additionalProperties: { type: 'integer' } },
      },
    },
    googleAccess: { type: 'string', enum: ['revoked', 'already_revoked', 'not_revoked', 'no_token'] },
    notRecalled: {
      type: 'object',
      properties: { runningJobs: { type: 'object', additionalProperties: { type: 'integer' } }, explanation: { type: 'string' } },
    },
    note: { type: 'string' },
    byOwner: {
      type: 'array',
      description: 'what each owner of the person’s data did: token-service, anonymizer (open cohort cells), google, published',
      items: { type: 'object', properties: { owner: { type: 'string' }, outcome: { type: 'string' }, detail: { type: 'string' } } },
    },
    earnings: {
      type: 'object',
      description: 'Data Union earnings (docs/earnings.md): paid out first, what remains claimable and how; absent when the person never joined',
      properties: {
        paid: { type: 'string' },
        paidTo: { type: 'string' },
        remaining: { type: 'string' },
        token: { type: 'string' },
        claim: { type: 'object', properties: { kind: { type: 'string' }, address: { type: 'string' }, code: { type: 'string' } } },
        notSettled: { type: 'string' },
      },
    },
  },
} as const
const errors = { 400: errorResponse, 401: errorResponse, 403: errorResponse, 404: errorResponse, 409: errorResponse } as const
type Security = { [scheme: string]: string[] }[]
const ADMIN: Security = [{ admin: [] }]
const ADMIN_OR_OWNER: Security = [{ admin: [] }, { session: [] }]

/** Redis cursors are unsigned 64-bit integers. */
const MAX_CURSOR = 2n ** 64n - 1n

/**
 * The users API. Operators use the admin token for everything; a person's browser session may read,
 * change the consent of, and erase its own user only.
 */
export async function userRoutes(app: FastifyInstance, deps: UserRoutesDeps): Promise<void> {
  const now = deps.now ?? Date.now
  const ownerCheck = adminOrOwner(deps.adminToken, deps.sessions)

  const present = async (user: User) => ({
    id: user.id,
    state: user.state,
    dataTypes: user.dataTypes,
    individualTypes: user.individualTypes.filter((type) => user.dataTypes.includes(type)),
    scopes: user.scopes,
    dataApi: dataApiOfScopes(user.scopes, deps.onboarding.api),
    createdAt: iso(user.createdAt),
    fetchedUntil: iso(user.fetchedUntil),
    lastSyncAt: iso(user.lastSyncAt),
    lastSyncStatus: user.lastSyncStatus ?? null,
    lastError: user.lastError ?? null,
    nextSyncAt: iso(await deps.scheduler.nextRunAt(user.id)),
    timeZone: user.timeZone,
    backfill:
      user.backfill === undefined
        ? null
        : { chunks: user.backfill.chunks, done: Math.min(user.backfill.done, user.backfill.chunks), until: iso(user.backfill.end) },
    links: {
      account: `${deps.publicUrl}/account`,
      reconnect: user.state === 'reauth_required' ? deps.reconnectLinks.create(user.id) : null,
      move: mustMoveToHealth(user, deps.onboarding.api) ? deps.reconnectLinks.create(user.id) : null,
    },
  })

  await app.register(async (admin) => {
    admin.addHook('onRequest', requireToken(deps.adminToken))

    admin.post<{ Body: { refreshToken: string; dataTypes: DataTypeKey[]; individualTypes?: DataTypeKey[]; timeZone?: string } }>(
      '/users',
      {
        schema: {
          tags: ['users'],
          summary: 'Register a user from a refresh token (operators; people use the onboarding page)',
          security: ADMIN,
          body: createUserBody,
          response: { 201: userResponse, 400: errorResponse, 401: errorResponse, 502: errorResponse },
        },
      },
      async (request, reply) => {
        const { refreshToken, dataTypes, individualTypes, timeZone } = request.body
        if (timeZone !== undefined && !isTimeZone(timeZone)) {
          return reply
            .status(400)
            .send({ error: 'Bad Request', code: 'FST_ERR_VALIDATION', message: `body/timeZone must be an IANA time zone such as Asia/Kolkata` })
        }
        const user = await deps.users.create({
          refreshToken,
          dataTypes,
          now: now(),
          ...(individualTypes === undefined ? {} : { individualTypes }),
          ...(timeZone === undefined ? {} : { timeZone }),
        })
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
        // The grant's scopes, known now, say which API the person is read from. Data it or the
        // deployment's API lacks is refused, as consent changes are; so is a grant for a closed API.
        const registered = (await deps.users.get(user.id)) ?? user
        const api = dataApiOfScopes(registered.scopes, deps.onboarding.api)
        const lacking = [api, deps.onboarding.api].find((a) => registered.dataTypes.some((key) => !readableIn(key, a)))
        if (deps.onboarding.hasClosed(api) || lacking !== undefined) {
          await deps.users.delete(user.id)
          return reply.status(400).send(
            lacking === undefined
              ? {
                  error: 'Bad Request',
                  code: 'FST_ERR_API_CLOSED',
                  message: `this refresh token is for the ${GOOGLE_DATA_API_NAMES[api]}, which Google has closed; connect the person through the ${GOOGLE_DATA_API_NAMES.health}`,
                }
              : {
                  error: 'Bad Request',
                  code: 'FST_ERR_CONSENT_UNAVAILABLE',
                  message: `${registered.dataTypes.filter((key) => !readableIn(key, lacking)).join(', ')} cannot be read from the ${GOOGLE_DATA_API_NAMES[lacking]}`,
                },
          )
        }
        await deps.scheduler.schedule(user.id)
        await deps.scheduler.syncNow(user.id, 'onboarding')
        request.log.info({ userId: user.id, dataTypes: user.dataTypes }, 'user registered')
        return reply.status(201).send(await present(registered))
      },
    )

    admin.get<{ Querystring: { cursor?: string; limit?: string; dataApi?: 'fit' | 'health'; state?: UserState } }>(
      '/users',
      {
        schema: {
          tags: ['users'],
          summary: 'Every user, a page at a time; filter by the API they are read from (to find who still has to move off Google Fit) or by state',
          security: ADMIN,
          querystring: {
            type: 'object',
            additionalProperties: false,
            properties: {
              cursor: {
                type: 'string',
                pattern: '^[0-9]{1,20}$',
                description: 'where the previous page ended; leave out for the first page, and keep the same filters while following it',
              },
              limit: { type: 'string', pattern: '^([1-9][0-9]{0,2}|1000)$', description: 'users to look at for this page, 1 to 1000 (default 100)' },
              dataApi: { type: 'string', enum: ['fit', 'health'] },
              state: { type: 'string', enum: USER_STATES },
            },
          },
          response: {
            200: {
              type: 'object',
              properties: {
                users: { type: 'array', items: userResponse },
                nextCursor: { type: ['string', 'null'], description: 'pass it as cursor for the next page; null when every user has been looked at' },
              },
            },
            ...errors,
          },
        },
      },
      async (request, reply) => {
        const { cursor = '0', limit = '100', dataApi, state } = request.query
        if (BigInt(cursor) > MAX_CURSOR)
          return reply.status(400).send({ error: 'Bad Request', code: 'FST_ERR_VALIDATION', message: 'querystring/cursor is not a cursor this API gave' })
        // A page looks at about `limit` users and returns those that match: it may be short, or empty, before the end.
        const page = await deps.users.page(cursor, Number(limit), state === 'active' ? undefined : state)
        const matching = page.users.filter(
          (user) => (dataApi === undefined || dataApiOfScopes(user.scopes, deps.onboarding.api) === dataApi) && (state === undefined || user.state === state),
        )
        return { users: await Promise.all(matching.map(present)), nextCursor: page.cursor === '0' ? null : page.cursor }
      },
    )

    admin.post<{ Params: { id: string } }>(
      '/users/:id/sync',
      {
        schema: {
          tags: ['users'],
          summary: 'Sync a user now',
          security: ADMIN,
          params: userIdParams,
          response: { 202: { type: 'object', properties: { id: { type: 'string' }, syncJobId: { type: 'string' } } }, ...errors },
        },
      },
      async (request, reply) => {
        const user = await deps.users.get(request.params.id)
        if (user === undefined) return reply.status(404).send(notFound(request.params.id))
        if (user.state !== 'active') {
          const action = user.state === 'move_required' ? (user.lastError ?? 'Google Fit has closed') : 'they must reconnect their Google account first'
          return reply.status(409).send({ error: 'Conflict', message: `user is ${user.state}: ${action}` })
        }
        const jobId = await deps.scheduler.syncNow(user.id, 'manual')
        return reply.status(202).send({ id: user.id, syncJobId: jobId })
      },
    )
  })

  await app.register(async (own) => {
    own.addHook('onRequest', ownerCheck)

    own.get<{ Params: { id: string } }>(
      '/users/:id',
      {
        schema: {
          tags: ['users'],
          summary: 'State, consent, cursor, last and next sync, and a re-consent link when needed; never a token',
          security: ADMIN_OR_OWNER,
          params: userIdParams,
          response: { 200: userResponse, ...errors },
        },
      },
      async (request, reply) => {
        const user = await deps.users.get(request.params.id)
        if (user === undefined) return reply.status(404).send(notFound(request.params.id))
        return present(user)
      },
    )

    own.put<{ Params: { id: string }; Body: { dataTypes: DataTypeKey[]; individualTypes?: DataTypeKey[] } }>(
      '/users/:id/consent',
      {
        schema: {
          tags: ['users'],
          summary: 'Change what the user sells: applies from the next fetch; data needing new Google scopes answers 409 with a re-consent link',
          security: ADMIN_OR_OWNER,
          params: userIdParams,
          body: consentBody,
          response: { 200: userResponse, ...errors },
        },
      },
      async (request, reply) => {
        const change = await deps.onboarding.changeConsent(request.params.id, request.body.dataTypes)
        if (change.kind === 'not_found') return reply.status(404).send(notFound(request.params.id))
        if (change.kind === 'unavailable') {
          return reply.status(400).send({
            error: 'Bad Request',
            code: 'FST_ERR_CONSENT_UNAVAILABLE',
            message: `${change.dataTypes.join(', ')} cannot be read from the ${GOOGLE_DATA_API_NAMES[deps.onboarding.api]} this deployment uses`,
          })
        }
        if (change.kind === 'needs_google_consent') {
          return reply.status(409).send({
            error: 'Conflict',
            code: 'FST_ERR_CONSENT_NEEDS_GOOGLE',
            message: `the user has not granted ${change.missingScopes.join(', ')} at Google; send them to reconsentUrl to consent there`,
            missingScopes: change.missingScopes,
            reconsentUrl: deps.reconnectLinks.create(request.params.id, request.body.dataTypes),
          })
        }
        if (request.body.individualTypes !== undefined) await deps.users.updateIndividualTypes(request.params.id, request.body.individualTypes, now())
        request.log.info({ userId: request.params.id, dataTypes: change.dataTypes }, 'consent changed')
        const user = await deps.users.get(request.params.id)
        return user === undefined ? reply.status(404).send(notFound(request.params.id)) : present(user)
      },
    )

    own.get<{ Params: { id: string } }>(
      '/users/:id/privacy',
      {
        schema: {
          tags: ['users'],
          summary: 'What has been released about the user, and the privacy budget (epsilon) it cost, per period',
          security: ADMIN_OR_OWNER,
          params: userIdParams,
        },
      },
      async (request, reply) => {
        const user = await deps.users.get(request.params.id)
        if (user === undefined) return reply.status(404).send(notFound(request.params.id))
        return deps.privacy.report(user.id)
      },
    )

    own.delete<{ Params: { id: string }; Querystring: { payTo?: string } }>(
      '/users/:id',
      {
        schema: {
          querystring: {
            type: 'object',
            additionalProperties: false,
            properties: { payTo: { type: 'string', maxLength: 64, description: 'pay the person’s Data Union earnings to this address before erasing' } },
          },
          tags: ['users'],
          summary: "Erase a user: revoke at Google; delete tokens, cursor, consent, schedule, privacy state, sessions and the user's jobs; return a receipt",
          security: ADMIN_OR_OWNER,
          params: userIdParams,
          response: { 200: receiptResponse, ...errors },
        },
      },
      async (request, reply) => {
        const receipt = await eraseUser(deps.erasure, request.params.id, request.query.payTo === undefined ? {} : { payTo: request.query.payTo })
        if (receipt === undefined) return reply.status(404).send(notFound(request.params.id))
        request.log.info({ userId: request.params.id, googleAccess: receipt.googleAccess, jobs: receipt.erased.jobs }, 'user erased')
        return receipt
      },
    )
  })

  // With an internal listener the internal routes live there instead (see internalRoutes).
  if (deps.internalRoutesElsewhere !== true) await internalRoutes(app, deps)
}

/** Calls between FitStream services: on the internal listener when there is one, else on the public one. */
export async function internalRoutes(app: FastifyInstance, deps: Pick<UserRoutesDeps, 'tokens' | 'users' | 'scheduler' | 'internalToken'>): Promise<void> {
  await app.register(async (internal) => {
    internal.addHook('onRequest', requireToken(deps.internalToken))

    // A fetcher whose access token was rejected asks for a new one; the token itself stays in Redis.
    internal.post<{ Params: { id: string } }>(
      '/internal/users/:id/access-token/refresh',
      {
        schema: {
          tags: ['internal'],
          summary: "Refresh a user's access token now (fetchers, on a 401)",
          security: [{ internal: [] }],
          params: userIdParams,
          response: { 200: { type: 'object', properties: { id: { type: 'string' }, expiresAt: { type: 'string' } } }, ...errors, 502: errorResponse },
        },
      },
      async (request, reply) => {
        try {
          const token = await deps.tokens.ensureFresh(request.params.id, { force: true })
          return { id: request.params.id, expiresAt: new Date(token.expiresAt).toISOString() }
        } catch (error) {
          if (error instanceof UserGoneError) return reply.status(404).send(notFound(request.params.id))
          if (error instanceof ReauthRequiredError) {
            await deps.users.setState(request.params.id, 'reauth_required', { lastError: error.message })
            await deps.scheduler.unschedule(request.params.id)
            return reply.status(409).send({ error: 'Conflict', code: error.code, message: error.message })
          }
          if (error instanceof UpstreamError) return reply.status(502).send({ error: 'Bad Gateway', code: error.code, message: error.message })
          throw error
        }
      },
    )

    // A fetcher that found the person in another zone (their Health settings) says so: the token
    // service keeps the zone, and the next sync lays its daily windows out in it.
    internal.put<{ Params: { id: string }; Body: { timeZone: string } }>(
      '/internal/users/:id/time-zone',
      {
        schema: {
          tags: ['internal'],
          summary: "Record the person's current time zone (fetchers, from their Health settings)",
          security: [{ internal: [] }],
          params: userIdParams,
          body: {
            type: 'object',
            required: ['timeZone'],
            additionalProperties: false,
            properties: { timeZone: { type: 'string', minLength: 1, maxLength: 64, description: 'IANA zone the person is in now' } },
          },
          response: { 204: { type: 'null' }, ...errors },
        },
      },
      async (request, reply) => {
        const { timeZone } = request.body
        if (!isTimeZone(timeZone)) {
          return reply
            .status(400)
            .send({ error: 'Bad Request', code: 'FST_ERR_VALIDATION', message: 'body/timeZone must be an IANA time zone such as Asia/Kolkata' })
        }
        if (!(await deps.users.setTimeZone(request.params.id, timeZone))) return reply.status(404).send(notFound(request.params.id))
        return reply.status(204).send()
      },
    )
  })
}

function iso(ms: number | undefined): string | null {
  return ms === undefined || Number.isNaN(ms) ? null : new Date(ms).toISOString()
}

function notFound(id: string) {
  return { error: 'Not Found', message: `no user ${id}` }
}

function isTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone: zone })
    return true
  } catch {
    return false
  }
}
