import cookie from '@fastify/cookie'
import formbody from '@fastify/formbody'
import rateLimit from '@fastify/rate-limit'
import { randomBytes } from 'node:crypto'
import { tmpdir } from 'node:os'
import type { FastifyInstance } from 'fastify'
import {
  DeadLetters,
  FetchHistoryStore,
  MEMBERSHIP_DEFAULT_ATTEMPTS,
  MembershipQueues,
  PrivacyLedgerReader,
  SLOT_GROUPS,
  ServiceRuntime,
  UserGoneError,
  buildServer,
  isClosed,
  userKey,
  type Logger,
} from '@fitstream/shared'
import { AccessTokenKeeper } from './access-tokens.js'
import { AccountIds } from './account-ids.js'
import { registerAuthThrottle } from './auth-throttle.js'
import { clientAddress } from './client-address.js'
import { registerBullBoard } from './bull-board.js'
import { createTokenServiceMetrics } from './metrics.js'
import { deadLetterRoutes } from './dead-letter-routes.js'
import type { TokenServiceConfig } from './config.js'
import { registerApiDocs } from './docs.js'
import type { ErasureDeps } from './erasure.js'
import { refreshAccessToken, revokeGrant, type OAuthFlowConfig } from './google-oauth.js'
import { Onboarding } from './onboarding.js'
import { pageRoutes } from './pages.js'
import { PasskeyStore } from './passkey-store.js'
import { Passkeys } from './passkeys.js'
import { EarningsHistory, MembershipClient } from './earnings.js'
import { earningsForPage, earningsRoutes } from './earnings-routes.js'
import { MemberEnrolment } from './earnings-membership.js'
import { LinkUses, ReconnectLinks } from './reconnect-links.js'
import { logPathsOnly } from './request-log.js'
import { internalRoutes, userRoutes } from './routes.js'
import { ImportRunner, ImportStore } from './imports.js'
import { importRoutes } from './imports-routes.js'
import { SessionCookies } from './session-http.js'
import { SessionStore } from './sessions.js'
import { UserJobs } from './user-jobs.js'
import { SyncScheduler } from './scheduler.js'
import { createSyncProcessor, resumeReopened } from './sync-processor.js'
import { UserRepository } from './users.js'

/** The token service; `internalServer` is set when INTERNAL_HTTP_PORT is (main.ts listens on it too). */
export type TokenService = ServiceRuntime & { readonly internalServer: FastifyInstance | undefined }

export async function createTokenService(config: TokenServiceConfig, logger: Logger): Promise<TokenService> {
  const runtime = new ServiceRuntime('token-service', config, logger)
  const { redis, queues } = runtime
  const prefix = config.QUEUE_PREFIX
  // On a Redis Cluster the stores whose scripts and transactions touch several keys get their group's hash tag.
  const usersPrefix = runtime.slotPrefix(SLOT_GROUPS.users)
  const privacyPrefix = runtime.slotPrefix(SLOT_GROUPS.anonymizer)

  if (isClosed(config.GOOGLE_DATA_API, Date.now(), config.GOOGLE_FIT_CLOSES_AT)) {
    logger.error(
      { closedAt: new Date(config.GOOGLE_FIT_CLOSES_AT).toISOString() },
      'GOOGLE_DATA_API=fit, but Google Fit has closed: nobody can be read or connected through it; set GOOGLE_DATA_API=health and have people move',
    )
  }
  if (config.GOOGLE_DATA_API === 'health' && config.SYNC_LOOKBACK_HOURS < 24) {
    logger.warn(
      { lookbackHours: config.SYNC_LOOKBACK_HOURS },
      'SYNC_LOOKBACK_HOURS is under 24: the Health API lists a night only once it is over, so the first hours of late-uploaded nights will be missed',
    )
  }
  const users = new UserRepository(redis, usersPrefix, config.REFRESH_TOKEN_KEYS)
  const tokenMetrics = createTokenServiceMetrics(runtime.metrics, users)
  const oauth = { clientId: config.GOOGLE_CLIENT_ID, clientSecret: config.GOOGLE_CLIENT_SECRET, tokenUrl: config.GOOGLE_TOKEN_URL }
  const tokens = new AccessTokenKeeper({
    redis,
    prefix: usersPrefix,
    accessKeys: config.ACCESS_TOKEN_KEYS,
    refreshMarginMs: config.TOKEN_REFRESH_MARGIN_MS,
    refresh: async (userId) => {
      const refreshToken = await users.refreshToken(userId)
      if (refreshToken === undefined) throw new UserGoneError(`user ${userId} no longer exists`)
      return tokenMetrics.countRefresh(refreshAccessToken(oauth, refreshToken))
    },
  })
  const scheduler = new SyncScheduler(queues, redis, prefix, config.SYNC_INTERVAL_MS, config.ACCOUNT_ID_KEY ?? config.SESSION_SECRET[0]!)
  const flow: OAuthFlowConfig = {
    ...oauth,
    authUrl: config.GOOGLE_AUTH_URL,
    revokeUrl: config.GOOGLE_REVOKE_URL,
    redirectUri: `${config.PUBLIC_URL}/oauth/callback`,
  }
  const sessionStore = new SessionStore(redis, runtime.slotPrefix(SLOT_GROUPS.sessions), config.REFRESH_TOKEN_KEYS)
  const sessions = new SessionCookies(sessionStore, config.PUBLIC_URL.startsWith('https:'))
  const onboarding = new Onboarding({
    users,
    tokens,
    scheduler,
    sessions: sessionStore,
    accountIds: new AccountIds(config.ACCOUNT_ID_KEY ?? config.SESSION_SECRET[0]!),
    oauth: flow,
    api: config.GOOGLE_DATA_API,
    fitClosesAt: config.GOOGLE_FIT_CLOSES_AT,
    reconsentsPerHour: config.RATE_LIMIT_RECONSENTS_PER_HOUR,
  })
  const reconnectLinks = new ReconnectLinks(config.PUBLIC_URL, config.SESSION_SECRET, config.LINK_TTL_MINUTES * 60_000)
  const refused = (code: string) => tokenMetrics.refusals.inc({ code })
  // Earnings from the product's Data Union, read from the membership service (docs/earnings.md).
  const earnings =
    config.MEMBERSHIP_URL === undefined || config.MEMBER_REF_KEY === undefined
      ? undefined
      : {
          membership: new MembershipClient(config.MEMBERSHIP_URL, config.INTERNAL_API_TOKEN),
          history: new EarningsHistory(redis, prefix),
          refKey: Buffer.from(config.MEMBER_REF_KEY),
          now: () => new Date(),
          logger: logger.child({ component: 'earnings' }),
        }
  const membershipQueues =
    earnings === undefined
      ? undefined
      : new MembershipQueues({
          connection: redis,
          prefix,
          cluster: runtime.cluster,
          retry: { attempts: MEMBERSHIP_DEFAULT_ATTEMPTS, backoffMs: config.RETRY_BACKOFF_MS },
          logger,
        })
  const enrolment =
    earnings === undefined || membershipQueues === undefined
      ? undefined
      : new MemberEnrolment({
          redis,
          prefix: usersPrefix,
          privacyPrefix,
          membership: earnings.membership,
          queues: membershipQueues,
          refKey: earnings.refKey,
          logger: earnings.logger,
        })
  if (enrolment !== undefined) {
    runtime.onStart(() => enrolment.start())
    runtime.onClose('membership queues', () => enrolment.close())
  }
  const privacyLedger = new PrivacyLedgerReader(redis, privacyPrefix)
  const importStore = new ImportStore(redis, prefix, Date.now)
  const passkeyStore = new PasskeyStore(redis, runtime.slotPrefix(SLOT_GROUPS.passkeys))
  const passkeys = new Passkeys({
    store: passkeyStore,
    users,
    config: {
      rpId: config.PASSKEY_RP_ID ?? new URL(config.PUBLIC_URL).hostname,
      rpName: config.PASSKEY_RP_NAME,
      origin: new URL(config.PUBLIC_URL).origin,
    },
  })
  const erasure: ErasureDeps = {
    users,
    passkeys: passkeyStore,
    userState: [
      privacyLedger,
      new FetchHistoryStore(redis, usersPrefix, (userId) => userKey(usersPrefix, userId)),
      { erase: (userId) => tokens.forget(userId) },
      { erase: (userId) => importStore.eraseLedger(userId) },
    ],
    scheduler,
    sessions: sessionStore,
    jobs: new UserJobs(queues),
    revoke: (token) => revokeGrant(flow, token),
    ...(enrolment === undefined || earnings === undefined
      ? {}
      : {
          earnings: async (userId: string, payTo?: string) => {
            await earnings.history.erase(userId)
            return enrolment.erase(userId, payTo)
          },
        }),
  }

  runtime.addWorker({
    stage: 'sync',
    concurrency: config.SYNC_CONCURRENCY,
    process: createSyncProcessor({
      users,
      tokens,
      scheduler,
      queues,
      api: config.GOOGLE_DATA_API,
      fitClosesAt: config.GOOGLE_FIT_CLOSES_AT,
      plan: {
        bucketMs: config.SYNC_BUCKET_MS,
        backfillMs: config.BACKFILL_DAYS * 86_400_000,
        chunkMs: config.FETCH_CHUNK_HOURS * 3_600_000,
        lookbackMs: config.SYNC_LOOKBACK_HOURS * 3_600_000,
      },
      ...(enrolment === undefined ? {} : { enrolment }),
    }),
  })

  runtime.onStart(() => {
    resumeReopened({ users, scheduler, api: config.GOOGLE_DATA_API, fitClosesAt: config.GOOGLE_FIT_CLOSES_AT })
      .then((resumed) => resumed > 0 && logger.info({ resumed }, 'people paused when Google Fit closed can be read from it again: syncing resumed'))
      .catch((err: unknown) => logger.warn({ err }, 'could not look for people to resume after GOOGLE_FIT_CLOSES_AT changed'))
    scheduler.start(logger)
    scheduler
      .adoptJobSchedulers()
      .then((adopted) => adopted > 0 && logger.info({ adopted }, 'per-user job schedulers moved into the sync schedule'))
      .catch((err: unknown) => logger.warn({ err }, 'could not move per-user job schedulers into the sync schedule'))
  })
  runtime.onClose('sync scheduler', () => scheduler.stop())

  const server = runtime.buildServer({ bodyLimit: 16 * 1024, beforeScrape: () => tokenMetrics.sampleUsers() })
  logPathsOnly(server)
  const address = clientAddress(config.TRUST_PROXY_HOPS)
  registerAuthThrottle(server, { redis, prefix, limit: config.RATE_LIMIT_AUTH_FAILURES, refused, address })
  // Routes opt in (config.rateLimit); counts live in Redis so every replica shares them.
  await server.register(rateLimit, {
    global: false,
    redis,
    nameSpace: `${prefix}:rate-limit:`,
    keyGenerator: address,
    onExceeded: () => refused('FST_ERR_RATE_LIMITED'),
    errorResponseBuilder: (_request, context) =>
      Object.assign(new Error(`too many requests from this address; try again in ${context.after}`), { statusCode: 429, code: 'FST_ERR_RATE_LIMITED' }),
  })
  await server.register(cookie, { secret: [...config.SESSION_SECRET] })
  await server.register(formbody)
  await registerApiDocs(server, config.PUBLIC_URL)
  const internalServer = config.INTERNAL_HTTP_PORT === undefined ? undefined : hideInternalRoutes(server)
  const publicUrl = config.PUBLIC_URL
  await userRoutes(server, {
    users,
    tokens,
    scheduler,
    onboarding,
    sessions,
    reconnectLinks,
    erasure,
    publicUrl,
    adminToken: config.ADMIN_TOKEN,
    internalToken: config.INTERNAL_API_TOKEN,
    internalRoutesElsewhere: internalServer !== undefined,
    privacy: privacyLedger,
  })
  await pageRoutes(server, {
    onboarding,
    sessions,
    users,
    scheduler,
    reconnectLinks,
    linkUses: new LinkUses(redis, prefix),
    erasure,
    refused,
    rateLimits: { pagesPerMinute: config.RATE_LIMIT_PAGES_PER_MINUTE, callbackPerMinute: config.RATE_LIMIT_CALLBACK_PER_MINUTE },
    googleAuthUrl: config.GOOGLE_AUTH_URL,
    passkeys,
    ...(earnings === undefined ? {} : { earnings: earningsForPage(earnings) }),
  })
  if (earnings !== undefined) await earningsRoutes(server, { ...earnings, users, sessions, adminToken: config.ADMIN_TOKEN })
  const imports = new ImportRunner({
    store: importStore,
    users,
    queues,
    logger: logger.child({ component: 'imports' }),
    limits: {
      maxUploadBytes: config.IMPORT_MAX_UPLOAD_BYTES,
      maxInflatedBytes: config.IMPORT_MAX_INFLATED_BYTES,
      maxRatio: config.IMPORT_MAX_RATIO,
      maxEntries: 200_000,
      maxElementBytes: 1024 ** 2,
      maxBuckets: 2_000_000,
    },
    spoolDir: config.IMPORT_SPOOL_DIR ?? tmpdir(),
    // Imported hours are the fetcher's hours; a daily grid follows each person's zone, which an export's UTC hours can't.
    bucketMs: config.SYNC_BUCKET_MS < 86_400_000 ? config.SYNC_BUCKET_MS : 3_600_000,
    backfillMs: config.BACKFILL_DAYS * 86_400_000,
    concurrency: config.IMPORT_CONCURRENCY,
  })
  runtime.onStart(() => {
    imports
      .removeLeftovers()
      .then((removed) => removed > 0 && logger.info({ removed }, 'unreadable upload spools left by a stopped process removed'))
      .catch((err: unknown) => logger.warn({ err }, 'could not look for leftover upload spools'))
  })
  runtime.onClose('imports', () => imports.idle())
  await importRoutes(server, {
    runner: imports,
    store: importStore,
    users,
    sessions,
    adminToken: config.ADMIN_TOKEN,
    maxUploadBytes: config.IMPORT_MAX_UPLOAD_BYTES,
  })
  await deadLetterRoutes(server, new DeadLetters(queues), config.ADMIN_TOKEN)
  await registerBullBoard(
    server,
    queues,
    config.ADMIN_TOKEN,
    membershipQueues === undefined
      ? []
      : [
          { queue: membershipQueues.queue, description: 'Data Union joins and parts: batches of member addresses (docs/earnings.md)' },
          { queue: membershipQueues.deadLetters, description: 'Membership batches that failed for good, with their error', readOnly: true },
        ],
  )
  if (internalServer === undefined) return Object.assign(runtime, { internalServer })

  const internal = buildServer({
    logger: logger.child({ listener: 'internal' }),
    metrics: runtime.metrics,
    readiness: { redis: async () => void (await redis.ping()) },
    // The public server's scrape samples the queues and users; its answer is not needed here.
    beforeScrape: async () => void (await server.inject({ url: '/metrics', headers: { [INTERNAL_HEADER]: internalServer.nonce } })),
  })
  logPathsOnly(internal)
  registerAuthThrottle(internal, { redis, prefix, limit: config.RATE_LIMIT_AUTH_FAILURES, refused, address })
  internal.get('/docs/json', { logLevel: 'warn' }, async () => server.swagger())
  await internalRoutes(internal, { users, tokens, scheduler, internalToken: config.INTERNAL_API_TOKEN })
  runtime.onClose('internal listener', () => internal.close())
  return Object.assign(runtime, { internalServer: internal })
}

const INTERNAL_HEADER = 'x-fitstream-internal-scrape'

/**
 * With an internal listener, the public one no longer answers /metrics or the API docs (they name
 * every route and count people); only the internal listener's own scrape reaches its /metrics, by a
 * header holding a secret that never leaves the process.
 */
function hideInternalRoutes(server: FastifyInstance): { nonce: string } {
  const nonce = randomBytes(32).toString('base64url')
  server.addHook('onRequest', async (request, reply) => {
    const path = request.url.split('?')[0] ?? ''
    const hidden = path === '/metrics' || path === '/docs' || path.startsWith('/docs/')
    if (!hidden || (path === '/metrics' && request.headers[INTERNAL_HEADER] === nonce)) return
    return reply.status(404).send({ error: 'Not Found', message: `No route for ${request.method} ${path}` })
  })
  return { nonce }
}
