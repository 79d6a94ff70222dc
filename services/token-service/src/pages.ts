import { createHash, timingSafeEqual } from 'node:crypto'
import type { FastifyInstance, FastifyReply } from 'fastify'
import { dataApiOfScopes, type DataTypeKey } from '@fitstream/shared'
import { CONSENT_GROUP_NAMES, INDIVIDUAL_TYPE_NAMES, dataTypesForGroups } from './consent.js'
import { eraseUser, type ErasureDeps } from './erasure.js'
import { IMPORT_SCRIPT_SOURCE, withImportSection } from './imports-page.js'
import { API_NAMES, TIME_ZONE_SCRIPT, accountPage, messagePage, onboardingPage, receiptPage, reconnectPage } from './html.js'
import { withEarningsSection } from './earnings-page.js'
import type { EarningsReport } from './earnings.js'
import type { CallbackOutcome, Choice, Onboarding } from './onboarding.js'
import { PASSKEY_SCRIPT_SOURCE, passkeyAccountPage, withAccountLinks, withPasskeyLinks } from './passkey-page.js'
import { passkeyRoutes } from './passkey-routes.js'
import type { Passkeys } from './passkeys.js'
import { LINK_FIELDS, type LinkUses, type ReconnectLinks } from './reconnect-links.js'
import type { SyncScheduler } from './scheduler.js'
import type { Session } from './sessions.js'
import type { SessionCookies } from './session-http.js'
import type { User, UserRepository } from './users.js'

export interface PageDeps {
  readonly onboarding: Onboarding
  readonly sessions: SessionCookies
  readonly users: UserRepository
  readonly scheduler: SyncScheduler
  readonly reconnectLinks: ReconnectLinks
  readonly linkUses: LinkUses
  readonly erasure: ErasureDeps
  /** Counts a refusal by its catalogue code (fitstream_token_refusals_total). */
  readonly refused: (code: string) => void
  /** Per-IP limits: the pages, and Google's callback (each costs a code exchange at Google). */
  readonly rateLimits: { readonly pagesPerMinute: number; readonly callbackPerMinute: number }
  /** Google's consent screen; forms may lead there. */
  readonly googleAuthUrl: string
  /** The person's Data Union earnings for the account page (earnings-page.ts); none when no Data Union is configured. */
  readonly earnings?: (userId: string) => Promise<EarningsReport | undefined>
  /** Accounts made with a passkey, with no Google link (passkey-routes.ts); none: Google sign-in only. */
  readonly passkeys?: Passkeys
}

const FORM_LIMIT = 4 * 1024
const groupsField = {
  anyOf: [
    { type: 'string', enum: CONSENT_GROUP_NAMES },
    { type: 'array', maxItems: CONSENT_GROUP_NAMES.length, items: { type: 'string', enum: CONSENT_GROUP_NAMES } },
  ],
} as const
/** The types a person also sells as individual records (opt-in boxes, off by default). */
const individualField = {
  anyOf: [
    { type: 'string', enum: INDIVIDUAL_TYPE_NAMES },
    { type: 'array', maxItems: INDIVIDUAL_TYPE_NAMES.length, items: { type: 'string', enum: INDIVIDUAL_TYPE_NAMES } },
  ],
} as const
const csrfField = { type: 'string', maxLength: 128 } as const
const linkFields = {
  u: { type: 'string', maxLength: 64 },
  t: { type: 'string', maxLength: 512 },
  e: { type: 'string', maxLength: 16 },
  n: { type: 'string', maxLength: 32 },
  s: { type: 'string', maxLength: 64 },
} as const
const consentForm = {
  type: 'object',
  required: ['csrf'],
  additionalProperties: false,
  properties: { groups: groupsField, individual: individualField, csrf: csrfField, tz: { type: 'string', maxLength: 64 } },
} as const

/** What the account page says after an action, by the `notice` in its URL; the name is the API the person is read from. */
const NOTICES = new Map<string, (api: string) => string>([
  ['connected', (api) => `Your ${api} account is connected. The first data is being read now.`],
  ['reconnected', (api) => `${api} is connected again. Syncing continues from where it stopped.`],
  ['partial', () => 'Connected, but Google did not grant access to some of what you chose; only what Google allowed is sold.'],
  ['consent', () => 'Your choices are saved. They apply from the next read of your data.'],
  ['passkey', () => 'Your account is made and your passkey saved. Upload an export below to start selling.'],
])

/** The callback's pages that only say what happened, by its outcome: nothing to count, no code to quote. */
const CALLBACK_MESSAGES = {
  denied: { status: 403, title: 'You did not allow access', message: 'Google told us you chose not to give FitStream access. Nothing was stored.' },
  invalid_state: {
    status: 400,
    title: 'This sign-in is not valid',
    message: 'It was already used, has expired, or was not started in this browser. Nothing was stored. Please start again.',
  },
  nothing_granted: { status: 400, title: 'Nothing to sell', message: 'Google did not grant access to any of the data you chose, so nothing was stored.' },
  user_gone: { status: 410, title: 'This account was deleted', message: 'The account you tried to reconnect has been deleted. You can connect as a new user.' },
} as const

/** The pages people use: onboarding, Google's callback, and their own account (status, consent, deletion). */
export async function pageRoutes(app: FastifyInstance, deps: PageDeps): Promise<void> {
  const contentSecurityPolicy = [
    "default-src 'none'",
    "style-src 'unsafe-inline'",
    `script-src 'sha256-${createHash('sha256').update(TIME_ZONE_SCRIPT).digest('base64')}' ${IMPORT_SCRIPT_SOURCE} ${PASSKEY_SCRIPT_SOURCE}`,
    // The upload section posts the export and polls its import (imports-page.ts); the passkey script posts its ceremonies.
    "connect-src 'self'",
    // Chrome applies form-action to the redirect after a post, and /connect redirects to Google.
    `form-action 'self' ${new URL(deps.googleAuthUrl).origin}`,
    "frame-ancestors 'none'",
    "base-uri 'none'",
  ].join('; ')
  const html = (reply: FastifyReply, status: number, body: string) =>
    reply
      .status(status)
      .header('cache-control', 'no-store')
      .header('content-security-policy', contentSecurityPolicy)
      .header('x-content-type-options', 'nosniff')
      .header('referrer-policy', 'no-referrer')
      .type('text/html; charset=utf-8')
      .send(body)
  const seeOther = (reply: FastifyReply, location: string) => reply.status(303).header('cache-control', 'no-store').redirect(location, 303)
  const notSignedIn = (reply: FastifyReply) =>
    html(
      reply,
      401,
      messagePage('You are not signed in', `This page belongs to a connected account. Connect ${API_NAMES[deps.onboarding.api]} (again) to manage your data.`),
    )
  const badForm = (reply: FastifyReply) =>
    html(reply, 403, messagePage('This form has expired', 'The page was open for too long or came from somewhere else. Nothing was changed. Please try again.'))

  /** A page refusing with a catalogue code: counted, and the code shown so the person can quote it to support. */
  const refusalPage = (reply: FastifyReply, status: number, code: string, title: string, message: string, link?: { href: string; text: string }) => {
    deps.refused(code)
    return html(reply, status, messagePage(title, message, link, code))
  }

  /** To Google's consent screen for the choice, or a page saying why Google can't be asked. */
  const toConsent = async (reply: FastifyReply, sessionId: string, choice: Choice) => {
    const start = await deps.onboarding.start(sessionId, choice)
    if (start.kind === 'google') return seeOther(reply, start.location)
    if (start.kind === 'api_closed') return apiClosed(reply)
    if (start.kind === 'too_many') {
      return refusalPage(
        reply.header('retry-after', '3600'),
        429,
        'FST_ERR_RATE_LIMITED',
        'Too many attempts',
        'This account has been sent to Google to connect again many times in the last hour. Nothing was changed. Please try again in an hour.',
        { href: '/account', text: 'Your account' },
      )
    }
    const name = API_NAMES[deps.onboarding.api]
    return html(
      reply,
      400,
      messagePage('Nothing to connect', `Nothing you chose can be read from ${name}. Choose what to sell on your account page.`, {
        href: '/account',
        text: 'Your account',
      }),
    )
  }
  const apiClosed = (reply: FastifyReply) =>
    html(
      reply,
      503,
      messagePage(
        'Google Fit has closed',
        'This FitStream still reads Google Fit, which Google has shut down, so it cannot connect accounts now. Nothing you sold is lost; its operator is moving it to Google Health.',
      ),
    )

  const pageLimit = { rateLimit: { max: deps.rateLimits.pagesPerMinute, timeWindow: 60_000 } }
  const callbackLimit = { rateLimit: { max: deps.rateLimits.callbackPerMinute, timeWindow: 60_000 } }
  const invalidLink = (reply: FastifyReply) =>
    refusalPage(
      reply,
      400,
      'FST_ERR_LINK_INVALID',
      'This link is not valid',
      'The link has expired, was changed, or its account no longer exists. Nothing was changed. Ask for a new link.',
    )
  const usedLink = (reply: FastifyReply) =>
    refusalPage(
      reply,
      410,
      'FST_ERR_LINK_USED',
      'This link was already used',
      'Each link works once. Nothing was changed. Ask for a new link, or sign in from the start page.',
    )

  async function ownUser(session: Session | undefined) {
    return session?.userId === undefined ? undefined : deps.users.get(session.userId)
  }

  // No session for a page view: the form carries a token checked against a cookie of its own.
  app.get('/', { config: pageLimit, schema: { tags: ['pages'], summary: 'The onboarding page' } }, async (request, reply) => {
    if ((await ownUser(await deps.sessions.current(request))) !== undefined) return seeOther(reply, '/account')
    if (deps.onboarding.closed) return apiClosed(reply)
    const page = onboardingPage(deps.sessions.formToken(request, reply), deps.onboarding.api)
    return html(reply, 200, deps.passkeys === undefined ? page : withPasskeyLinks(page))
  })

  if (deps.passkeys !== undefined) {
    await passkeyRoutes(app, {
      passkeys: deps.passkeys,
      sessions: deps.sessions,
      api: deps.onboarding.api,
      refused: deps.refused,
      rateLimits: { pagesPerMinute: deps.rateLimits.pagesPerMinute, signInPerMinute: deps.rateLimits.callbackPerMinute },
      html,
    })
  }

  app.post<{ Body: { csrf: string } }>(
    '/sign-out',
    {
      bodyLimit: FORM_LIMIT,
      attachValidation: true,
      schema: {
        tags: ['pages'],
        summary: "End this browser's session",
        body: { type: 'object', required: ['csrf'], additionalProperties: false, properties: { csrf: csrfField } },
      },
    },
    async (request, reply) => {
      const session = await deps.sessions.current(request)
      if (session === undefined) return notSignedIn(reply)
      if (request.validationError !== undefined || !sameToken(request.body.csrf, session.csrfToken)) return badForm(reply)
      await deps.sessions.end(request, reply)
      return seeOther(reply, deps.passkeys === undefined ? '/' : '/passkey')
    },
  )

  /** The signed-in person's page: Google's, or that of an account with no Google link. */
  const ownPage = async (user: User, session: Session, notice: string | undefined): Promise<string> =>
    (await deps.users.hasGoogleGrant(user.id))
      ? withAccountLinks(
          accountPage({
            user,
            csrfToken: session.csrfToken,
            nextSyncAt: await deps.scheduler.nextRunAt(user.id),
            api: deps.onboarding.api,
            ...(notice === undefined ? {} : { notice }),
          }),
          user.id,
          session.csrfToken,
        )
      : passkeyAccountPage({ user, csrfToken: session.csrfToken, api: deps.onboarding.api, ...(notice === undefined ? {} : { notice }) })

  app.post<{ Body: { groups?: string | string[]; individual?: string | string[]; csrf: string; tz?: string } }>(
    '/connect',
    {
      bodyLimit: FORM_LIMIT,
      attachValidation: true,
      config: pageLimit,
      schema: { tags: ['pages'], summary: 'Start connecting: redirects to Google consent', body: consentForm },
    },
    async (request, reply) => {
      if (request.validationError !== undefined || !deps.sessions.checkFormToken(request, request.body.csrf)) return badForm(reply)
      const dataTypes = dataTypesForGroups(asArray(request.body.groups), deps.onboarding.api)
      if (dataTypes.length === 0) {
        return html(reply, 400, onboardingPage(deps.sessions.formToken(request, reply), deps.onboarding.api, 'Tick at least one kind of data to sell.'))
      }
      // Someone starts connecting: only now does the browser get a session (short-lived until signed in).
      const session = await deps.sessions.ensure(request, reply)
      const individualTypes = chosenIndividualTypes(request.body.individual)
      return toConsent(reply, session.id, { dataTypes, individualTypes, ...(request.body.tz ? { timeZone: request.body.tz } : {}) })
    },
  )

  app.get<{ Querystring: { state?: string; code?: string; error?: string; scope?: string } }>(
    '/oauth/callback',
    {
      schema: {
        tags: ['pages'],
        summary: 'Google redirects here after consent',
        querystring: {
          type: 'object',
          properties: {
            state: { type: 'string', maxLength: 256 },
            code: { type: 'string', maxLength: 2048 },
            error: { type: 'string', maxLength: 256 },
            scope: { type: 'string', maxLength: 4096 },
            authuser: { type: 'string' },
            prompt: { type: 'string' },
            hd: { type: 'string' },
          },
        },
      },
      attachValidation: true,
      config: callbackLimit,
    },
    async (request, reply) => {
      const session = await deps.sessions.current(request)
      const { state, code, error } = request.validationError === undefined ? request.query : {}
      const outcome = await deps.onboarding.complete(session?.id, {
        ...(state === undefined ? {} : { state }),
        ...(code === undefined ? {} : { code }),
        ...(error === undefined ? {} : { error }),
      })
      request.log.info(
        { outcome: outcome.kind, ...(outcome.kind === 'connected' ? { userId: outcome.userId, dataTypes: outcome.dataTypes } : {}) },
        'oauth callback',
      )
      if (outcome.kind === 'connected') await deps.sessions.signIn(request, reply, outcome.userId)
      return callbackPage(reply, outcome)
    },
  )

  function callbackPage(reply: FastifyReply, outcome: CallbackOutcome) {
    switch (outcome.kind) {
      case 'connected':
        return seeOther(reply, `/account?notice=${outcome.notGranted.length > 0 ? 'partial' : outcome.created ? 'connected' : 'reconnected'}`)
      case 'denied':
      case 'invalid_state':
      case 'nothing_granted':
      case 'user_gone': {
        const page = CALLBACK_MESSAGES[outcome.kind]
        return html(reply, page.status, messagePage(page.title, page.message))
      }
      case 'code_rejected':
        if (outcome.code === 'FST_ERR_GOOGLE_ID_TOKEN') deps.refused(outcome.code)
        return html(
          reply,
          400,
          messagePage('Google did not accept this sign-in', `${outcome.reason}. Nothing was stored. Please start again.`, undefined, outcome.code),
        )
      case 'wrong_account':
        return refusalPage(
          reply,
          403,
          'FST_ERR_WRONG_ACCOUNT',
          'That is not the Google account of this FitStream account',
          'You signed in at Google with a different account from the one this FitStream account was connected with. Nothing was changed, and the access Google just gave was handed back. Sign in at Google with the account you first connected.',
        )
    }
  }

  app.get<{ Querystring: { notice?: string } }>(
    '/account',
    {
      config: pageLimit,
      schema: {
        tags: ['pages'],
        summary: "The signed-in user's own page: status, consent, deletion",
        querystring: { type: 'object', properties: { notice: { type: 'string', maxLength: 32 } } },
      },
    },
    async (request, reply) => {
      const session = await deps.sessions.current(request)
      const user = await ownUser(session)
      if (session === undefined || user === undefined) return notSignedIn(reply)
      const notice = NOTICES.get(request.query.notice ?? '')?.(API_NAMES[dataApiOfScopes(user.scopes, deps.onboarding.api)])
      return html(
        reply,
        200,
        withImportSection(withEarningsSection(await ownPage(user, session, notice), await deps.earnings?.(user.id), session.csrfToken), user.id),
      )
    },
  )

  app.post<{ Body: { groups?: string | string[]; individual?: string | string[]; csrf: string } }>(
    '/account/consent',
    { bodyLimit: FORM_LIMIT, attachValidation: true, schema: { tags: ['pages'], summary: 'Change what the signed-in user sells', body: consentForm } },
    async (request, reply) => {
      const session = await deps.sessions.current(request)
      const user = await ownUser(session)
      if (session === undefined || user === undefined) return notSignedIn(reply)
      if (request.validationError !== undefined || !sameToken(request.body.csrf, session.csrfToken)) return badForm(reply)
      const dataTypes = dataTypesForGroups(asArray(request.body.groups), deps.onboarding.api)
      if (dataTypes.length === 0) {
        const notice = 'Tick at least one kind of data. To stop selling altogether, delete your data below.'
        return html(reply, 400, await ownPage(user, session, notice))
      }
      const individualTypes = chosenIndividualTypes(request.body.individual)
      const change = await deps.onboarding.changeConsent(user.id, dataTypes, individualTypes)
      if (change.kind === 'needs_google_consent') return toConsent(reply, session.id, { dataTypes, userId: user.id, individualTypes })
      if (change.kind === 'not_found') return notSignedIn(reply)
      // dataTypesForGroups keeps to what the API has; this only completes the outcomes.
      if (change.kind === 'unavailable') return badForm(reply)
      request.log.info({ userId: user.id, dataTypes, individualTypes }, 'consent changed')
      return seeOther(reply, '/account?notice=consent')
    },
  )

  app.post<{ Body: { csrf: string; payTo?: string } }>(
    '/account/delete',
    {
      bodyLimit: FORM_LIMIT,
      attachValidation: true,
      schema: {
        tags: ['pages'],
        summary: "Erase the signed-in user's data",
        // payTo: the earnings section's "delete, paying my earnings first" (earnings-page.ts).
        body: { type: 'object', required: ['csrf'], additionalProperties: false, properties: { csrf: csrfField, payTo: { type: 'string', maxLength: 64 } } },
      },
    },
    async (request, reply) => {
      const session = await deps.sessions.current(request)
      const user = await ownUser(session)
      if (session === undefined || user === undefined) return notSignedIn(reply)
      if (request.validationError !== undefined || !sameToken(request.body.csrf, session.csrfToken)) return badForm(reply)
      const payTo = request.body.payTo?.trim()
      const receipt = await eraseUser(deps.erasure, user.id, payTo === undefined || payTo === '' ? {} : { payTo })
      await deps.sessions.end(request, reply)
      if (receipt === undefined) return notSignedIn(reply)
      request.log.info({ userId: user.id, googleAccess: receipt.googleAccess, jobs: receipt.erased.jobs }, 'user erased at their request')
      return html(reply, 200, receiptPage(receipt))
    },
  )

  app.get(
    '/account/reconnect',
    { config: pageLimit, schema: { tags: ['pages'], summary: 'Consent at Google again (after access ended)' } },
    async (request, reply) => {
      const session = await deps.sessions.current(request)
      const user = await ownUser(session)
      if (session === undefined || user === undefined) return notSignedIn(reply)
      return toConsent(reply, session.id, { dataTypes: user.dataTypes, userId: user.id })
    },
  )

  // A link's GET only shows a button: opening it (a mail scanner, a preview) uses nothing up.
  app.get<{ Querystring: Record<string, string | undefined> }>(
    '/reconnect',
    {
      config: pageLimit,
      schema: {
        tags: ['pages'],
        summary: 'A signed reconnect, move or re-consent link (from the API): a page with a button that leads to Google consent',
        querystring: { type: 'object', properties: linkFields },
      },
      attachValidation: true,
    },
    async (request, reply) => {
      const grant = request.validationError === undefined ? deps.reconnectLinks.verify(request.query) : undefined
      if (grant === undefined || (await deps.users.get(grant.userId)) === undefined) return invalidLink(reply)
      if (await deps.linkUses.used(grant)) return usedLink(reply)
      const fields = Object.fromEntries(LINK_FIELDS.flatMap((name) => (request.query[name] === undefined ? [] : [[name, request.query[name]]])))
      return html(reply, 200, reconnectPage(fields, deps.sessions.formToken(request, reply), deps.onboarding.api))
    },
  )

  app.post<{ Body: Record<string, string | undefined> }>(
    '/reconnect',
    {
      bodyLimit: FORM_LIMIT,
      attachValidation: true,
      config: pageLimit,
      schema: {
        tags: ['pages'],
        summary: "Use a reconnect link (once): to Google consent, where only the user's own Google account is accepted",
        body: { type: 'object', required: ['csrf'], additionalProperties: false, properties: { ...linkFields, csrf: csrfField } },
      },
    },
    async (request, reply) => {
      if (request.validationError !== undefined || !deps.sessions.checkFormToken(request, request.body.csrf)) return badForm(reply)
      const grant = deps.reconnectLinks.verify(request.body)
      const user = grant === undefined ? undefined : await deps.users.get(grant.userId)
      if (grant === undefined || user === undefined) return invalidLink(reply)
      if (!(await deps.linkUses.take(grant))) return usedLink(reply)
      const session = await deps.sessions.ensure(request, reply)
      return toConsent(reply, session.id, { dataTypes: grant.dataTypes ?? user.dataTypes, userId: user.id })
    },
  )
}

function asArray(value: string | string[] | undefined): string[] {
  return value === undefined ? [] : Array.isArray(value) ? value : [value]
}

/** The form's opt-ins (the schema allows only offered types); an unticked box sends nothing, so none means none. */
function chosenIndividualTypes(value: string | string[] | undefined): DataTypeKey[] {
  return asArray(value) as DataTypeKey[]
}

function sameToken(presented: string | undefined, expected: string): boolean {
  const a = Buffer.from(presented ?? '')
  const b = Buffer.from(expected)
  return a.length === b.length && timingSafeEqual(a, b)
}
