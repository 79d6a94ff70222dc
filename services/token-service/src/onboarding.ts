import { randomBytes } from 'node:crypto'
import { FitStreamError, isClosed, readableIn, scopesFor, type DataTypeKey, type GoogleDataApi } from '@fitstream/shared'
import type { AccessTokenKeeper } from './access-tokens.js'
import type { AccountIds } from './account-ids.js'
import { grantedDataTypes, individualTypesFor, missingScopes, optionalScopes } from './consent.js'
import { authorizationUrl, createPkcePair, exchangeAuthorizationCode, revokeGrant, type Grant, type OAuthFlowConfig } from './google-oauth.js'
import type { SyncScheduler } from './scheduler.js'
import type { SessionStore } from './sessions.js'
import type { UserRepository } from './users.js'

export interface OnboardingDeps {
  readonly users: UserRepository
  readonly tokens: AccessTokenKeeper
  readonly scheduler: SyncScheduler
  readonly sessions: SessionStore
  readonly accountIds: AccountIds
  readonly oauth: OAuthFlowConfig
  /** The API new grants are for: the scopes people are asked for, and what their consent may cover. */
  readonly api: GoogleDataApi
  /** When Google shuts the Fitness API down (ms): a deployment still on it connects nobody after that. */
  readonly fitClosesAt: number
  /** Trips to Google's consent screen one existing user may start in an hour (links, reconnects, consent changes). */
  readonly reconsentsPerHour: number
  readonly now?: () => number
}

/** Where a person goes to consent: Google's consent screen, or nowhere, and why. */
export type ConsentStart =
  | { readonly kind: 'google'; readonly location: string }
  /** The deployment's API has closed (Fit, after GOOGLE_FIT_CLOSES_AT). */
  | { readonly kind: 'api_closed' }
  /** Nothing chosen can be read from the deployment's API, so Google would be asked for no scope. */
  | { readonly kind: 'nothing_to_ask' }
  /** The user has started too many consents this hour (Google allows a project 10,000 re-consents a day). */
  | { readonly kind: 'too_many' }

export interface Choice {
  readonly dataTypes: readonly DataTypeKey[]
  /** An existing user consenting again (reconnect, or more data). */
  readonly userId?: string
  readonly timeZone?: string
  /** Types also sold as individual records (opted in to); undefined leaves an existing user's choice as it is. */
  readonly individualTypes?: readonly DataTypeKey[]
}

export type CallbackOutcome =
  | {
      readonly kind: 'connected'
      readonly userId: string
      readonly created: boolean
      readonly dataTypes: readonly DataTypeKey[]
      readonly notGranted: readonly DataTypeKey[]
    }
  | { readonly kind: 'denied' }
  | { readonly kind: 'invalid_state' }
  /** `code`: the catalogue code when the exchange failed (FST_ERR_GOOGLE_CODE, FST_ERR_GOOGLE_ID_TOKEN). */
  | { readonly kind: 'code_rejected'; readonly reason: string; readonly code?: string }
  | { readonly kind: 'nothing_granted' }
  | { readonly kind: 'user_gone' }
  /**
   * The Google account that came back is not the one the user registered with (someone else's grant on
   * a person's link, or a person's grant on someone else's link): refused, the grant handed back.
   */
  | { readonly kind: 'wrong_account' }

export type ConsentChange =
  | { readonly kind: 'updated'; readonly dataTypes: readonly DataTypeKey[] }
  | { readonly kind: 'needs_google_consent'; readonly missingScopes: readonly string[] }
  /** Types the API grants are for does not have (the Health API has no blood pressure, for one). */
  | { readonly kind: 'unavailable'; readonly dataTypes: readonly DataTypeKey[] }
  | { readonly kind: 'not_found' }

/**
 * Connecting a Google account: the authorization-code flow with PKCE, its `state` bound to the
 * browser session, and what happens with the grant (a new user, or a returning one whose tokens
 * and consent are replaced). Also consent changes, which need Google only for new scopes.
 */
export class Onboarding {
  private readonly now: () => number

  constructor(private readonly deps: OnboardingDeps) {
    this.now = deps.now ?? Date.now
  }

  /** The API new grants are for. */
  get api(): GoogleDataApi {
    return this.deps.api
  }

  /** Whether the API new grants are for has closed: then nobody can be connected through it. */
  get closed(): boolean {
    return this.hasClosed(this.deps.api)
  }

  /** Whether `api` has closed (Fit, after GOOGLE_FIT_CLOSES_AT). */
  hasClosed(api: GoogleDataApi): boolean {
    return isClosed(api, this.now(), this.deps.fitClosesAt)
  }

  /** Where to send the browser: Google's consent screen for the scopes the choice needs. */
  async start(sessionId: string, choice: Choice): Promise<ConsentStart> {
    if (this.closed) return { kind: 'api_closed' }
    // Someone moving from Fit keeps what the Health API has; the rest cannot be asked for, so it is not "not granted" either.
    const dataTypes = choice.dataTypes.filter((key) => readableIn(key, this.deps.api))
    if (dataTypes.length === 0) return { kind: 'nothing_to_ask' }
    const individual = choice.individualTypes === undefined ? {} : { individualTypes: individualTypesFor(choice.individualTypes, dataTypes) }
    if (choice.userId !== undefined && (await this.deps.sessions.countReconsent(choice.userId)) > this.deps.reconsentsPerHour) return { kind: 'too_many' }
    const state = randomBytes(24).toString('base64url')
    const pkce = createPkcePair()
    await this.deps.sessions.savePending(state, { sessionId, codeVerifier: pkce.verifier, ...choice, dataTypes, ...individual })
    return {
      kind: 'google',
      location: authorizationUrl(this.deps.oauth, {
        scopes: [...scopesFor(dataTypes, this.deps.api), ...optionalScopes(this.deps.api)],
        state,
        codeChallenge: pkce.challenge,
      }),
    }
  }

  async complete(sessionId: string | undefined, query: { state?: string; code?: string; error?: string }): Promise<CallbackOutcome> {
    const pending = query.state === undefined ? undefined : await this.deps.sessions.takePending(query.state)
    if (pending === undefined || sessionId === undefined || pending.sessionId !== sessionId) return { kind: 'invalid_state' }
    if (query.error === 'access_denied') return { kind: 'denied' }
    if (query.error !== undefined || query.code === undefined) return { kind: 'code_rejected', reason: `Google answered ${query.error ?? 'without a code'}` }

    let grant: Grant
    try {
      grant = await exchangeAuthorizationCode(this.deps.oauth, query.code, pending.codeVerifier, this.now)
    } catch (error) {
      if (error instanceof FitStreamError) return { kind: 'code_rejected', reason: error.message, code: error.code }
      throw error
    }
    const account = this.deps.accountIds.hash(grant.subject)
    const scopes = grant.accessToken.scopes
    const dataTypes = grantedDataTypes(pending.dataTypes, scopes, this.deps.api)
    const notGranted = pending.dataTypes.filter((t) => !dataTypes.includes(t))
    const individualTypes = pending.individualTypes === undefined ? undefined : individualTypesFor(pending.individualTypes, dataTypes)
    if (dataTypes.length === 0) {
      await this.discard(grant, account)
      return { kind: 'nothing_granted' }
    }

    const now = this.now()
    let userId: string
    let created = false
    if (pending.userId === undefined) {
      // One user per Google account: someone connecting an account that has a user signs in to it.
      const registered = await this.deps.users.createForAccount(account, {
        refreshToken: grant.refreshToken,
        dataTypes,
        scopes,
        now,
        ...validTimeZone(pending.timeZone),
        ...(individualTypes === undefined ? {} : { individualTypes }),
      })
      userId = registered.id
      created = registered.created
    } else {
      const binding = await this.deps.users.bindAccount(pending.userId, account)
      if (binding !== 'same') {
        await this.discard(grant, account)
        return { kind: binding === 'gone' ? 'user_gone' : 'wrong_account' }
      }
      userId = pending.userId
    }
    // Same account, so the grant it replaces is the same grant at Google: revoking that token would end
    // this one too (Google revokes the account's whole authorization of the client). It is overwritten.
    if (!created && !(await this.deps.users.replaceGrant(userId, { refreshToken: grant.refreshToken, scopes, dataTypes, now }))) {
      await this.discard(grant, account)
      return { kind: 'user_gone' }
    }
    if (!created && individualTypes !== undefined) await this.deps.users.updateIndividualTypes(userId, individualTypes, now)
    await this.deps.tokens.keep(userId, grant.accessToken)
    await this.deps.scheduler.schedule(userId)
    await this.deps.scheduler.syncNow(userId, created ? 'onboarding' : 'manual')
    return { kind: 'connected', userId, created, dataTypes, notGranted }
  }

  /**
   * Less (or the same) applies at once, from the next fetch; more needs Google's consent first, and
   * so does any change by a person whose grant is for the other API (it moves them to this one).
   * An account with no Google link (made with a passkey) has nothing to ask Google, so any change applies at once.
   * The choice of individual records (when given) needs no Google scope, so it applies at once
   * either way: an opt-out must not wait for a consent screen the person may leave.
   */
  async changeConsent(userId: string, dataTypes: readonly DataTypeKey[], individualTypes?: readonly DataTypeKey[]): Promise<ConsentChange> {
    const unavailable = dataTypes.filter((key) => !readableIn(key, this.deps.api))
    if (unavailable.length > 0) return { kind: 'unavailable', dataTypes: unavailable }
    const user = await this.deps.users.get(userId)
    if (user === undefined) return { kind: 'not_found' }
    if (individualTypes !== undefined) {
      // Individual records go out only for types also sold, so this write and the consent's may land in either order.
      if (!(await this.deps.users.updateIndividualTypes(userId, individualTypesFor(individualTypes, dataTypes), this.now()))) return { kind: 'not_found' }
    }
    // An account with no Google link sells only what it uploads: there is no grant to widen.
    const missing = (await this.deps.users.hasGoogleGrant(userId)) ? missingScopes(dataTypes, user.scopes, this.deps.api) : []
    if (missing.length > 0) return { kind: 'needs_google_consent', missingScopes: missing }
    if (!(await this.deps.users.updateConsent(userId, dataTypes, this.now()))) return { kind: 'not_found' }
    return { kind: 'updated', dataTypes }
  }

  /**
   * A grant we won't keep is handed back, so Google doesn't list FitStream as having access; unless its
   * account has a user of its own here. Google revokes an account's whole authorization of a client when
   * any of its tokens is revoked, so handing this one back would cut that user off: a person lured onto
   * someone else's link, or unticking everything on a re-consent, would lose their own access.
   */
  private async discard(grant: Grant, account: string): Promise<void> {
    if ((await this.deps.users.findByAccount(account)) !== undefined) return
    await revokeGrant(this.deps.oauth, grant.refreshToken).catch(() => undefined)
  }
}

function validTimeZone(zone: string | undefined): { timeZone?: string } {
  if (zone === undefined || zone === '' || zone.length > 64) return {}
  try {
    new Intl.DateTimeFormat('en', { timeZone: zone })
    return { timeZone: zone }
  } catch {
    return {}
  }
}
