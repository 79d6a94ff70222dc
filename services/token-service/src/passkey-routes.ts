import { STATUS_CODES } from 'node:http'
import type { FastifyInstance, FastifyReply } from 'fastify'
import type { AuthenticationResponseJSON, RegistrationResponseJSON } from '@simplewebauthn/server'
import type { DataTypeKey, GoogleDataApi } from '@fitstream/shared'
import { CONSENT_GROUP_NAMES, INDIVIDUAL_TYPE_NAMES, dataTypesForGroups, individualTypesFor } from './consent.js'
import { passkeyPage } from './passkey-page.js'
import type { PasskeyOutcome, Passkeys } from './passkeys.js'
import type { SessionCookies } from './session-http.js'

export interface PasskeyRoutesDeps {
  readonly passkeys: Passkeys
  readonly sessions: SessionCookies
  /** The API whose consent groups the sign-up offers (the deployment's). */
  readonly api: GoogleDataApi
  /** Counts a refusal by its catalogue code (fitstream_token_refusals_total). */
  readonly refused: (code: string) => void
  /** Per-IP limits: the page, and the ceremonies (as many a minute as Google's callback). */
  readonly rateLimits: { readonly pagesPerMinute: number; readonly signInPerMinute: number }
  /** Sends an HTML page with the pages' security headers (pages.ts). */
  readonly html: (reply: FastifyReply, status: number, body: string) => FastifyReply
}

const BODY_LIMIT = 16 * 1024
const csrfField = { type: 'string', maxLength: 128 } as const
const listOf = (names: readonly string[]) => ({ type: 'array', maxItems: names.length, items: { type: 'string', enum: names } }) as const

const signUpChoice = {
  type: 'object',
  required: ['csrf'],
  additionalProperties: false,
  properties: { csrf: csrfField, groups: listOf(CONSENT_GROUP_NAMES), individual: listOf(INDIVIDUAL_TYPE_NAMES), tz: { type: 'string', maxLength: 64 } },
} as const

/** A WebAuthn response as the browser's `toJSON()` gives it; @simplewebauthn/server checks the rest. */
const credentialResponse = {
  type: 'object',
  required: ['id', 'rawId', 'type', 'response'],
  properties: {
    id: { type: 'string', maxLength: 1400 },
    rawId: { type: 'string', maxLength: 1400 },
    type: { type: 'string', const: 'public-key' },
    response: {
      type: 'object',
      required: ['clientDataJSON'],
      properties: {
        clientDataJSON: { type: 'string', maxLength: 8192 },
        attestationObject: { type: 'string', maxLength: 8192 },
        authenticatorData: { type: 'string', maxLength: 4096 },
        signature: { type: 'string', maxLength: 2048 },
        userHandle: { type: 'string', maxLength: 128 },
      },
    },
  },
} as const

const STATUS: Record<Extract<PasskeyOutcome, { kind: 'refused' }>['code'], number> = {
  FST_ERR_PASSKEY_CHALLENGE: 400,
  FST_ERR_PASSKEY_ORIGIN: 400,
  FST_ERR_PASSKEY_INVALID: 400,
  FST_ERR_PASSKEY_REPLAY: 400,
  FST_ERR_PASSKEY_UNKNOWN: 401,
  FST_ERR_PASSKEY_WRONG_ACCOUNT: 403,
}

/**
 * Accounts with a passkey instead of Google: the page, and the two ceremonies (options, then the
 * browser's response). Options need the form token of the page they came from; a response is
 * accepted only from the browser session its challenge was handed to.
 */
export async function passkeyRoutes(app: FastifyInstance, deps: PasskeyRoutesDeps): Promise<void> {
  const pageLimit = { rateLimit: { max: deps.rateLimits.pagesPerMinute, timeWindow: 60_000 } }
  const ceremonyLimit = { rateLimit: { max: deps.rateLimits.signInPerMinute, timeWindow: 60_000 } }
  const badForm = (reply: FastifyReply) =>
    reply.status(403).send({ error: STATUS_CODES[403], code: 'FST_ERR_VALIDATION', message: 'the page has expired or came from somewhere else; reload it' })

  /** Signs the person in on success; a refusal answers its code. */
  const answer = async (request: Parameters<SessionCookies['signIn']>[0], reply: FastifyReply, outcome: PasskeyOutcome, created: boolean) => {
    if (outcome.kind === 'refused') {
      deps.refused(outcome.code)
      request.log.info({ code: outcome.code }, 'passkey refused')
      const status = STATUS[outcome.code]
      return reply.status(status).send({ error: STATUS_CODES[status], code: outcome.code, message: outcome.reason })
    }
    await deps.sessions.signIn(request, reply, outcome.userId)
    request.log.info({ userId: outcome.userId, created }, created ? 'account made with a passkey' : 'signed in with a passkey')
    return reply.status(created ? 201 : 200).send({ userId: outcome.userId, location: created ? '/account?notice=passkey' : '/account' })
  }

  app.get(
    '/passkey',
    { config: pageLimit, schema: { tags: ['pages'], summary: 'Make an account with a passkey, or sign in with one' } },
    async (request, reply) => deps.html(reply, 200, passkeyPage(deps.sessions.formToken(request, reply), deps.api)),
  )

  app.post<{ Body: { csrf: string; groups?: string[]; individual?: string[]; tz?: string } }>(
    '/passkey/register/options',
    {
      bodyLimit: BODY_LIMIT,
      config: ceremonyLimit,
      schema: { tags: ['passkeys'], summary: 'WebAuthn options for making an account with a passkey', body: signUpChoice },
    },
    async (request, reply) => {
      if (!deps.sessions.checkFormToken(request, request.body.csrf)) return badForm(reply)
      const dataTypes = dataTypesForGroups(request.body.groups ?? [], deps.api)
      if (dataTypes.length === 0)
        return reply.status(400).send({ error: STATUS_CODES[400], code: 'FST_ERR_VALIDATION', message: 'tick at least one kind of data to sell' })
      const individualTypes = individualTypesFor((request.body.individual ?? []) as DataTypeKey[], dataTypes)
      const session = await deps.sessions.ensure(request, reply)
      const tz = request.body.tz
      return deps.passkeys.registrationOptions(session.id, { dataTypes, individualTypes, ...(tz ? { timeZone: tz } : {}) })
    },
  )

  app.post<{ Body: RegistrationResponseJSON }>(
    '/passkey/register',
    {
      bodyLimit: BODY_LIMIT,
      config: ceremonyLimit,
      schema: { tags: ['passkeys'], summary: 'Make the account with the new passkey, and sign in', body: credentialResponse },
    },
    async (request, reply) => answer(request, reply, await deps.passkeys.register(deps.sessions.currentId(request), request.body), true),
  )

  app.post<{ Body: { csrf: string } }>(
    '/passkey/sign-in/options',
    {
      bodyLimit: BODY_LIMIT,
      config: ceremonyLimit,
      schema: {
        tags: ['passkeys'],
        summary: 'WebAuthn options for signing in with a passkey',
        body: { type: 'object', required: ['csrf'], additionalProperties: false, properties: { csrf: csrfField } },
      },
    },
    async (request, reply) => {
      if (!deps.sessions.checkFormToken(request, request.body.csrf)) return badForm(reply)
      const session = await deps.sessions.ensure(request, reply)
      return deps.passkeys.signInOptions(session.id)
    },
  )

  app.post<{ Body: AuthenticationResponseJSON }>(
    '/passkey/sign-in',
    { bodyLimit: BODY_LIMIT, config: ceremonyLimit, schema: { tags: ['passkeys'], summary: 'Sign in with a passkey', body: credentialResponse } },
    async (request, reply) => answer(request, reply, await deps.passkeys.signIn(deps.sessions.currentId(request), request.body), false),
  )
}
